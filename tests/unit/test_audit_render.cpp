// Audit records rendered for people (`jitgate audit`): the known fields in
// order, the rest after them, untrusted text escaped.
#include <doctest/doctest.h>

#include <string>

#include "cli/audit_render.h"

namespace test_audit_render {

using json = nlohmann::json;
using namespace jg;

TEST_SUITE("audit view") {
    TEST_CASE("render_event_human: the examples") {
        json deny = {{"ts", "2026-11-21T09:56:00.123456Z"},
                     {"seq", 42},
                     {"type", "deny"},
                     {"uid", 1001},
                     {"user", "alice"},
                     {"port", 5432},
                     {"proto", "tcp"},
                     {"hook", "connect4"},
                     {"pid", 123},
                     {"comm", "psql"},
                     {"prev_hash", std::string(64, '0')},
                     {"hash", std::string(64, 'f')}};
        CHECK(render_event_human(deny) ==
              "2026-11-21 09:56:00.123456Z #42 deny user=alice(1001) port=5432/tcp hook=connect4 pid=123 "
              "comm=psql");

        json grant = {{"ts", "2026-11-21T09:56:01.000001Z"},
                      {"seq", 43},
                      {"type", "grant"},
                      {"grant_id", 7},
                      {"request_id", 6},
                      {"user", "alice"},
                      {"requester", "alice"},
                      {"port", 5432},
                      {"proto", "tcp"},
                      {"duration_s", 1800},
                      {"approvers", {"bob", "carol"}},
                      {"reason", "debug prod"},
                      {"ticket", "OPS-1"},
                      {"expires_at", "2026-11-21T10:26:01.000001Z"},
                      {"hash", "h"}};
        CHECK(render_event_human(grant) ==
              "2026-11-21 09:56:01.000001Z #43 grant grant=7 request=6 user=alice port=5432/tcp for=30m "
              "by=bob,carol reason=\"debug prod\" ticket=OPS-1 expires=2026-11-21T10:26:01.000001Z");

        json xdp = {{"ts", "2026-11-21T09:56:02.000000Z"},
                    {"seq", 44},
                    {"type", "deny"},
                    {"src", "203.0.113.7"},
                    {"sport", 40000},
                    {"dst", "198.51.100.1"},
                    {"port", 5432},
                    {"proto", "tcp"},
                    {"hook", "xdp"},
                    {"suppressed", 41}};
        CHECK(
            render_event_human(xdp) ==
            "2026-11-21 09:56:02.000000Z #44 deny src=203.0.113.7 sport=40000 dst=198.51.100.1 port=5432/tcp "
            "hook=xdp suppressed=41");
    }

    TEST_CASE("render_event_human: other fields after the known ones; never the hashes") {
        json r = {{"ts", "2026-11-21T09:56:00.000000Z"},
                  {"seq", 5},
                  {"type", "approve"},
                  {"uid", 1002},
                  {"user", "bob"},
                  {"requester", "alice"},
                  {"request_id", 3},
                  {"zeta", true},
                  {"note", "two words"},
                  {"ok", false},
                  {"ports", {{"a", 1}}},
                  {"prev_hash", "p"},
                  {"hash", "h"}};
        const std::string line = render_event_human(r);
        CHECK(line ==
              "2026-11-21 09:56:00.000000Z #5 approve request=3 user=bob(1002) requester=alice note=\"two "
              "words\" "
              "ok=false ports=\"{\\\"a\\\":1}\" zeta=true");
        CHECK(line.find("prev_hash") == std::string::npos);
        CHECK(line.find("hash") == std::string::npos);

        // A uid without a name, a port without a protocol, a duration that is not a number.
        CHECK(render_event_human(json{{"ts", "x"},
                                      {"seq", 1},
                                      {"type", "deny"},
                                      {"uid", 7},
                                      {"port", 22},
                                      {"duration_s", "long"}}) == "x #1 deny uid=7 port=22 duration_s=long");
        // Missing ts, seq or type.
        CHECK(render_event_human(json{{"cgroup_id", 9}}) == "- #? ? cgroup_id=9");
        CHECK(render_event_human(json{{"reason", ""}, {"type", "policy_reload"}}) ==
              "- #? policy_reload reason=\"\"");
    }

    TEST_CASE("render_event_human: untrusted text cannot drive the terminal or forge a line") {
        json r = {{"ts", "2026-11-21T09:56:00.000000Z"},
                  {"seq", 9},
                  {"type", "deny"},
                  {"comm", "\x1b[31mred\n2026-11-21 #10 grant"},
                  {"reason", std::string("a\tb\rc\x7f\x01 say \"hi\" back\\slash")},
                  {"ticket",
                   "\xc2\x9b"
                   "2J\xe2\x80\xae"
                   "evil"},
                  {"user", std::string("bad\xff") + "utf8"},
                  {"k\x1b"
                   "ey",
                   "v"}};
        const std::string line = render_event_human(r);
        INFO(line);
        for (char c : line) {
            CHECK(static_cast<unsigned char>(c) >= 0x20);
            CHECK(c != 0x7f);
        }
        CHECK(line.find("\xc2\x9b") == std::string::npos);
        CHECK(line.find("\xe2\x80\xae") == std::string::npos);
        CHECK(line.find("comm=\"\\x1b[31mred\\n2026-11-21 #10 grant\"") != std::string::npos);
        CHECK(line.find("reason=\"a\\tb\\rc\\x7f\\x01 say \\\"hi\\\" back\\\\slash\"") != std::string::npos);
        CHECK(line.find("ticket=\"\\u009b2J\\u202eevil\"") != std::string::npos);
        CHECK(line.find("user=\"bad\\xffutf8\"") != std::string::npos);
        CHECK(line.find(" k\\x1bey=v") != std::string::npos);
        CHECK(printable("a b\x1b[0m\n\xff\"") == "a b\\x1b[0m\\n\\xff\\\"");
        CHECK(printable("plain") == "plain");
        // Printable UTF-8 stays as it is.
        CHECK(render_event_human(json{{"type", "deny"}, {"comm", "caf\xc3\xa9"}}) ==
              "- #? deny comm=caf\xc3\xa9");
        // Through the wire: a JSON escape in a log line becomes the byte, and is escaped again here.
        const json parsed = json::parse(R"({"type":"deny","comm":"\u001b]0;pwned\u0007"})");
        CHECK(render_event_human(parsed) == "- #? deny comm=\"\\x1b]0;pwned\\x07\"");
    }
}

}  // namespace test_audit_render
