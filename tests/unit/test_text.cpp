// Free text on its way to a terminal (core/text.h): refused at request time,
// escaped wherever it is shown.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "core/text.h"

namespace test_text {

using jg::escape_terminal;
using jg::text_refusal;

namespace {

// Whether `s` could act on a terminal: a C0 control or DEL byte, a C1
// control or a bidirectional control as UTF-8, or a byte that is not UTF-8.
bool terminal_safe(const std::string& s) {
    for (std::size_t i = 0; i < s.size();) {
        std::uint32_t cp = 0;
        const std::size_t len = jg::utf8_at(s, i, cp);
        if (len == 0 || jg::is_control_code_point(cp)) return false;
        i += len;
    }
    return true;
}

struct Row {
    const char* what;
    std::string input;
    std::string shown;    // escape_terminal(input)
    std::string refusal;  // words text_refusal("reason", input) says; empty: accepted
};

const Row kRows[] = {
    {"plain ASCII", "fix the replica", "fix the replica", ""},
    {"é (U+00E9)", "caf\xc3\xa9", "caf\xc3\xa9", ""},
    {"日本 (3-byte UTF-8)", "\xe6\x97\xa5\xe6\x9c\xac", "\xe6\x97\xa5\xe6\x9c\xac", ""},
    {"an emoji (4-byte UTF-8)", "ok \xf0\x9f\x9a\x80", "ok \xf0\x9f\x9a\x80", ""},
    {"NUL", std::string("a\0b", 3), "a\\x00b", "a control character (U+0000) at character 2"},
    {"tab", "a\tb", "a\\tb", "a control character (U+0009) at character 2"},
    {"newline", "a\nb", "a\\nb", "a control character (U+000A) at character 2"},
    {"carriage return", "ab\r", "ab\\r", "a control character (U+000D) at character 3"},
    {"ESC [ ... m (colour)", "\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m",
     "a control character (U+001B) at character 1"},
    {"OSC 52 clipboard write by ESC ]", "x\x1b]52;c;cm0gLXJmIC8K\x07", "x\\x1b]52;c;cm0gLXJmIC8K\\x07",
     "a control character (U+001B) at character 2"},
    {"DEL", "a\x7f", "a\\x7f", "a control character (U+007F) at character 2"},
    {"CSI as UTF-8 (U+009B)",
     "\xc2\x9b"
     "2J",
     "\\u009b2J", "a control character (U+009B) at character 1"},
    {"C1 U+0080", "\xc2\x80", "\\u0080", "a control character (U+0080) at character 1"},
    {"C1 U+009F", "z\xc2\x9f", "z\\u009f", "a control character (U+009F) at character 2"},
    {"OSC 52 by U+009D",
     "\xc2\x9d"
     "52;c;eA==\xc2\x9c",
     "\\u009d52;c;eA==\\u009c", "a control character (U+009D) at character 1"},
    {"a raw CSI byte 0x9b",
     "a\x9b"
     "2J",
     "a\\x9b2J", "a byte that is not UTF-8 (0x9B) at character 2"},
    {"a raw OSC byte 0x9d",
     "\x9d"
     "52;c;eA==",
     "\\x9d52;c;eA==", "a byte that is not UTF-8 (0x9D) at character 1"},
    {"RLO U+202E",
     "abc\xe2\x80\xae"
     "fdp.exe",
     "abc\\u202efdp.exe", "a bidirectional control (U+202E) at character 4"},
    {"LRE U+202A", "\xe2\x80\xaa", "\\u202a", "a bidirectional control (U+202A) at character 1"},
    {"RLI U+2067", "x\xe2\x81\xa7y", "x\\u2067y", "a bidirectional control (U+2067) at character 2"},
    {"PDI U+2069", "\xe2\x81\xa9", "\\u2069", "a bidirectional control (U+2069) at character 1"},
    {"LRM U+200E", "\xe2\x80\x8e", "\\u200e", "a bidirectional control (U+200E) at character 1"},
    {"RLM U+200F", "\xe2\x80\x8f", "\\u200f", "a bidirectional control (U+200F) at character 1"},
    {"ALM U+061C", "\xd8\x9c", "\\u061c", "a bidirectional control (U+061C) at character 1"},
    {"line separator U+2028", "a\xe2\x80\xa8", "a\\u2028", "a control character (U+2028) at character 2"},
    {"position counts characters, not bytes", "\xc3\xa9\xe6\x97\xa5\x1b", "\xc3\xa9\xe6\x97\xa5\\x1b",
     "a control character (U+001B) at character 3"},
    {"0xff", "bad\xff", "bad\\xff", "a byte that is not UTF-8 (0xFF) at character 4"},
    {"a lone continuation byte", "\x80x", "\\x80x", "a byte that is not UTF-8 (0x80) at character 1"},
    {"a sequence cut short", "ab\xe6\x97", "ab\\xe6\\x97", "a byte that is not UTF-8 (0xE6) at character 3"},
    {"overlong '/' (C0 AF)", "\xc0\xaf", "\\xc0\\xaf", "a byte that is not UTF-8 (0xC0) at character 1"},
    {"overlong NUL (C0 80)", "\xc0\x80", "\\xc0\\x80", "(0xC0) at character 1"},
    {"overlong 3-byte '/' (E0 80 AF)", "\xe0\x80\xaf", "\\xe0\\x80\\xaf", "(0xE0) at character 1"},
    {"overlong ESC (C0 9B)", "\xc0\x9b", "\\xc0\\x9b", "(0xC0) at character 1"},
    {"a surrogate U+D800 (ED A0 80)", "\xed\xa0\x80", "\\xed\\xa0\\x80",
     "a byte that is not UTF-8 (0xED) at character 1"},
    {"a surrogate U+DFFF (ED BF BF)", "\xed\xbf\xbf", "\\xed\\xbf\\xbf", "(0xED) at character 1"},
    {"past U+10FFFF (F4 90 80 80)", "\xf4\x90\x80\x80", "\\xf4\\x90\\x80\\x80", "(0xF4) at character 1"},
    {"0xF5 and above never start UTF-8", "\xf5\x80\x80\x80", "\\xf5\\x80\\x80\\x80", "(0xF5) at character 1"},
    {"a backslash is doubled, not refused", "C:\\temp", "C:\\\\temp", ""},
    {"quotes pass on a terminal line", "say \"hi\"", "say \"hi\"", ""},
};

}  // namespace

TEST_SUITE("text") {
    TEST_CASE("escape_terminal and text_refusal, row by row") {
        for (const Row& r : kRows) {
            INFO(r.what);
            const std::string shown = escape_terminal(r.input);
            CHECK(shown == r.shown);
            CHECK(terminal_safe(shown));
            const auto refused = text_refusal("reason", r.input);
            if (r.refusal.empty()) {
                CHECK_FALSE(refused.has_value());
            } else {
                REQUIRE(refused.has_value());
                CHECK(refused->find(r.refusal) != std::string::npos);
                CHECK(refused->rfind("the reason holds ", 0) == 0);
                // The sentence itself shows nothing of the text.
                CHECK(terminal_safe(*refused));
            }
        }
    }

    TEST_CASE("text_refusal names the field; the first offending character counts") {
        CHECK(text_refusal("ticket", "OPS-1\x1b[2J") ==
              "the ticket holds a control character (U+001B) at character 6: write it as one line of "
              "printable UTF-8 text, without control characters or bidirectional controls");
        CHECK(text_refusal("reason",
                           "a\xe2\x80\xae"
                           "b\x1b")
                  ->find("(U+202E) at character 2") != std::string::npos);
        CHECK_FALSE(text_refusal("reason", "").has_value());
    }

    TEST_CASE("escape_terminal with quotes: a \" is escaped for quoted values") {
        CHECK(escape_terminal("say \"hi\"", true) == "say \\\"hi\\\"");
        CHECK(escape_terminal("a\\b", true) == "a\\\\b");
    }

    TEST_CASE("escape_strings: every string of a reply, at any depth, keys too") {
        const nlohmann::json in = {{"reason", "\x1b[2J"},
                                   {"approvers",
                                    {"ok",
                                     "\xe2\x80\xae"
                                     "x"}},
                                   {"nested", {{"comm", std::string("p\xff")}}},
                                   {"k\x1b", 1},
                                   {"n", 5}};
        const nlohmann::json out = jg::escape_strings(in);
        CHECK(out["reason"] == "\\x1b[2J");
        CHECK(out["approvers"] == nlohmann::json{"ok", "\\u202ex"});
        CHECK(out["nested"]["comm"] == "p\\xff");
        CHECK(out["k\\x1b"] == 1);
        CHECK(out["n"] == 5);
    }

    TEST_CASE("json_text never throws: bytes that are not UTF-8 become U+FFFD") {
        const nlohmann::json j = {{"comm", std::string("ps\xff\xc3")}};
        CHECK_THROWS(j.dump());  // what an unguarded dump does
        CHECK(jg::json_text(j) == "{\"comm\":\"ps\xef\xbf\xbd\xef\xbf\xbd\"}");
    }
}

}  // namespace test_text
