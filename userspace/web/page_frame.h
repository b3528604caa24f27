#pragma once
// The frame every page shares: head (our stylesheet and script, nothing
// from elsewhere), navigation, the signed-in user and sign-out, the notice.
#include <string>

#include "web/pages.h"

namespace jg::web {

std::string page_frame(const PageContext& c, const std::string& title, const std::string& body);
// <input type="hidden" name="csrf" ...>
std::string csrf_input(const PageContext& c);

}  // namespace jg::web
