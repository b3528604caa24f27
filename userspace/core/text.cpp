#include "core/text.h"

#include <fmt/format.h>

namespace jg {

std::size_t utf8_at(std::string_view s, std::size_t i, std::uint32_t& cp) {
    const auto b0 = static_cast<unsigned char>(s[i]);
    if (b0 < 0x80) {
        cp = b0;
        return 1;
    }
    const std::size_t len = b0 >= 0xF0 ? 4 : b0 >= 0xE0 ? 3 : b0 >= 0xC0 ? 2 : 0;
    if (len == 0 || b0 > 0xF4 || i + len > s.size()) return 0;
    cp = b0 & (0x7F >> len);
    for (std::size_t k = 1; k < len; ++k) {
        const auto b = static_cast<unsigned char>(s[i + k]);
        if ((b & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (b & 0x3F);
    }
    static constexpr std::uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return len;
}

bool is_control_code_point(std::uint32_t cp) {
    return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F) || cp == 0x061C || cp == 0x200E || cp == 0x200F ||
           (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069) || cp == 0x2028 || cp == 0x2029 ||
           cp == 0xFEFF;
}

namespace {

// How a refused code point is named in a sentence.
std::string control_name(std::uint32_t cp) {
    const bool bidi = cp == 0x061C || cp == 0x200E || cp == 0x200F || (cp >= 0x202A && cp <= 0x202E) ||
                      (cp >= 0x2066 && cp <= 0x2069);
    return fmt::format("{} (U+{:04X})", bidi ? "a bidirectional control" : "a control character", cp);
}

}  // namespace

std::optional<std::string> text_refusal(std::string_view field, std::string_view text) {
    std::size_t position = 1;
    for (std::size_t i = 0; i < text.size(); ++position) {
        std::uint32_t cp = 0;
        const std::size_t len = utf8_at(text, i, cp);
        std::string what;
        if (len == 0)
            what = fmt::format("a byte that is not UTF-8 (0x{:02X})", static_cast<unsigned char>(text[i]));
        else if (is_control_code_point(cp))
            what = control_name(cp);
        if (!what.empty())
            return fmt::format(
                "the {} holds {} at character {}: write it as one line of printable UTF-8 text, without "
                "control characters or bidirectional controls",
                field, what, position);
        i += len;
    }
    return std::nullopt;
}

std::string escape_terminal(std::string_view s, bool quotes) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size();) {
        std::uint32_t cp = 0;
        const std::size_t len = utf8_at(s, i, cp);
        if (len == 0) {
            out += fmt::format("\\x{:02x}", static_cast<unsigned char>(s[i]));
            ++i;
            continue;
        }
        i += len;
        if (cp == '\\' || (quotes && cp == '"')) {
            out += '\\';
            out += static_cast<char>(cp);
        } else if (cp == '\n') {
            out += "\\n";
        } else if (cp == '\r') {
            out += "\\r";
        } else if (cp == '\t') {
            out += "\\t";
        } else if (cp < 0x20 || cp == 0x7F) {
            out += fmt::format("\\x{:02x}", cp);
        } else if (is_control_code_point(cp)) {
            out += fmt::format("\\u{:04x}", cp);
        } else {
            out.append(s.substr(i - len, len));
        }
    }
    return out;
}

nlohmann::json escape_strings(const nlohmann::json& j) {
    if (j.is_string()) return escape_terminal(j.get_ref<const std::string&>());
    if (j.is_array()) {
        nlohmann::json out = nlohmann::json::array();
        for (const auto& e : j) out.push_back(escape_strings(e));
        return out;
    }
    if (j.is_object()) {
        nlohmann::json out = nlohmann::json::object();
        for (const auto& [k, v] : j.items()) out[escape_terminal(k)] = escape_strings(v);
        return out;
    }
    return j;
}

std::string json_text(const nlohmann::json& j, int indent) {
    return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace jg
