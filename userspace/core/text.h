#pragma once
// Text a person chose (a reason, a ticket, a process name, a user name) on
// its way to a terminal: refused where it enters, escaped where it is shown.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace jg {

// The code point of the UTF-8 sequence at s[i] and its length; 0 when the
// bytes there are not valid UTF-8 (a stray continuation byte, a sequence cut
// short, an overlong form, a surrogate, past U+10FFFF).
std::size_t utf8_at(std::string_view s, std::size_t i, std::uint32_t& cp);

// Code points a terminal acts on or that change how a line reads although
// they show nothing: C0 and C1 controls (0x1B is ESC, 0x9B is CSI), DEL,
// bidirectional marks, embeddings, overrides and isolates (U+061C, U+200E,
// U+200F, U+202A-U+202E, U+2066-U+2069), line and paragraph separators and
// the byte order mark.
bool is_control_code_point(std::uint32_t cp);

// Why `text` may not be stored as the free text `field` ("reason",
// "ticket"): one sentence naming the field, the first offending character
// (its code point, or the byte that is not UTF-8) and its position counted
// in characters from 1; nothing when every character is printable UTF-8.
// A reason is one line, so tab and newline are refused as well.
std::optional<std::string> text_refusal(std::string_view field, std::string_view text);

// `text` safe to print on a terminal, on one line: control characters as
// \n, \r, \t or \x1b, DEL as \x7f, C1 and bidirectional controls as \u009b
// or \u202e, each byte that is not UTF-8 as \xff, and a backslash doubled so
// that what is shown reads back unambiguously. Printable UTF-8 (é, 日本,
// emoji) passes unchanged. `quotes` escapes " too (for quoted values).
std::string escape_terminal(std::string_view text, bool quotes = false);

// `j` with every string in it (values and keys, at any depth) escaped as
// escape_terminal does: a reply of jitgated made fit for a human rendering.
nlohmann::json escape_strings(const nlohmann::json& j);

// `j` as JSON text that never throws: bytes that are not UTF-8 (a kernel
// comm, a name from NSS) become U+FFFD instead of a type_error 316.
std::string json_text(const nlohmann::json& j, int indent = -1);

}  // namespace jg
