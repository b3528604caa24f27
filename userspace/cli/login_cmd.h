#pragma once
// jitgate login URL: an ID token for jitgate-web at URL through the OAuth
// device authorization grant (RFC 8628) at the issuer jitgate-web names,
// kept for `jitgate --web URL ...` (cli/token_store.h). jitgate logout URL
// (or login --forget) removes it.
#include "cli/app.h"

namespace jg {

int run_login(const CliState& s);
int run_logout(const CliState& s);

}  // namespace jg
