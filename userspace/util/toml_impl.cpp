// toml++'s implementation, built once into jitgate rather than loaded from
// libtomlplusplus.so (the reason is fmt_impl.cpp's): every file includes
// toml++ with TOML_HEADER_ONLY=0 (jg_format's definition), this one with
// TOML_IMPLEMENTATION as well.
#define TOML_IMPLEMENTATION
#include <toml++/toml.h>
