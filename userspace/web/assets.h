#pragma once
// The two files the pages load, served from this host (the CSP allows
// nothing else): the stylesheet and the script that counts time down.
namespace jg::web {
extern const char* const kStylesheet;
extern const char* const kCountdownScript;
}  // namespace jg::web
