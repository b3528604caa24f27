#pragma once
// Properties the fuzz targets hold the parsers to. A broken one is a bug:
// it names itself and the input on stderr and aborts, which libFuzzer
// reports as a crash and keeps the input as the reproducer.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace jg::fuzz {

// `s` with every byte outside printable ASCII as \xNN: one readable line.
inline std::string shown(std::string_view s) {
    std::string out;
    for (unsigned char c : s) {
        if (c >= 0x20 && c < 0x7f && c != '\\') {
            out += static_cast<char>(c);
        } else {
            char buf[8];
            std::snprintf(buf, sizeof(buf), "\\x%02x", c);
            out += buf;
        }
    }
    return out;
}

[[noreturn]] inline void broken(const char* file, int line, const char* property, std::string_view input,
                                const std::string& detail) {
    std::fprintf(stderr, "%s:%d: property broken: %s\n  input: '%s'\n  %s\n", file, line, property,
                 shown(input).c_str(), detail.c_str());
    std::abort();
}

// Whether `s` is valid UTF-8 without a C0 or C1 control (nor DEL), a
// bidirectional override or isolate, or a line or paragraph separator: text
// that cannot move a terminal's cursor, reorder what it shows or start a
// new line.
inline bool terminal_safe(std::string_view s) {
    for (std::size_t i = 0; i < s.size();) {
        const auto b0 = static_cast<unsigned char>(s[i]);
        if (b0 < 0x20 || b0 == 0x7f) return false;
        if (b0 < 0x80) {
            ++i;
            continue;
        }
        const std::size_t len = b0 >= 0xf0 ? 4 : b0 >= 0xe0 ? 3 : b0 >= 0xc0 ? 2 : 0;
        if (len == 0 || b0 > 0xf4 || i + len > s.size()) return false;
        std::uint32_t cp = b0 & (0x7f >> len);
        for (std::size_t k = 1; k < len; ++k) {
            const auto b = static_cast<unsigned char>(s[i + k]);
            if ((b & 0xc0) != 0x80) return false;
            cp = (cp << 6) | (b & 0x3f);
        }
        static constexpr std::uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < kMin[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
        if ((cp >= 0x80 && cp <= 0x9f) || cp == 0x061c || cp == 0x200e || cp == 0x200f ||
            (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069) || cp == 0x2028 ||
            cp == 0x2029 || cp == 0xfeff)
            return false;
        i += len;
    }
    return true;
}

}  // namespace jg::fuzz

// JG_CHECK(condition, input, detail): aborts, naming the property, when it fails.
#define JG_CHECK(cond, input, detail)                                                  \
    do {                                                                               \
        if (!(cond)) ::jg::fuzz::broken(__FILE__, __LINE__, #cond, (input), (detail)); \
    } while (0)
