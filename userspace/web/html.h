#pragma once
// HTML text: every byte of untrusted text that reaches a page goes through
// html_escape (requesters write reasons and tickets; tokens carry names).
#include <string>
#include <string_view>

namespace jg::web {

// `text` safe inside element content and double- or single-quoted
// attribute values: & < > " ' escaped.
std::string html_escape(std::string_view text);

}  // namespace jg::web
