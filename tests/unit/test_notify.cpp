// jitgate notify's pure parts (design.md §9): the Standard Webhooks
// signature, the payloads (Slack's escaping), the [[notify]] tables and
// their errors, each target's state file; and the daemon's side: the
// notify_failed operation's checks and the audit op's after_seq.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "core/clock.h"
#include "core/operations.h"
#include "core/protocol.h"
#include "notify/config.h"
#include "notify/payload.h"
#include "notify/signature.h"
#include "notify/state.h"

namespace test_notify {
using namespace jg;
using namespace jg::notify;

namespace {

std::string fake_read(const std::string& path, std::string* error) {
    if (path == "/secret") return "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n";
    if (path == "/bad") return "not-a-secret";
    *error = "cannot read " + path + ": No such file or directory";
    return {};
}

ConfigLoad parse(const std::string& text) { return parse_config(text, "n.toml", fake_read); }

std::string joined(const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += x + "\n";
    return s;
}

}  // namespace

TEST_SUITE("notify") {
    TEST_CASE("signature: the Standard Webhooks known vector") {
        auto key = decode_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        REQUIRE(key.ok());
        CHECK(sign(*key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, R"({"test": 2432232314})") ==
              "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        CHECK_FALSE(decode_secret("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").ok());  // no whsec_
        CHECK_FALSE(decode_secret("whsec_***").ok());
        CHECK_FALSE(decode_secret("whsec_YWJj").ok());  // 3 bytes: too short a key
    }

    TEST_CASE("slack: untrusted text escaped, fields named, the approve link") {
        CHECK(slack_escape("<!here> & <http://x|y>") == "&lt;!here&gt; &amp; &lt;http://x|y&gt;");
        const json rec = {{"ts", "2026-12-06T10:00:00.000000Z"},
                          {"seq", 7},
                          {"type", "request"},
                          {"requester", "alice"},
                          {"user", "alice"},
                          {"port", 5432},
                          {"proto", "tcp"},
                          {"request_id", 12},
                          {"reason", "<!channel> fix & go"},
                          {"ticket", "OPS-<1>"},
                          {"duration_s", 1800},
                          {"node", "db-1"},
                          {"expires_at", "2026-12-06T10:15:00.000000Z"}};
        const json m = slack_payload(rec, "https://jg.example", *parse_rfc3339_us("2026-12-06T10:00:00Z"));
        const std::string all = m.dump();
        CHECK(m.contains("text"));
        CHECK(m["blocks"].is_array());
        CHECK(all.find("&lt;!channel&gt; fix &amp; go") != std::string::npos);
        CHECK(all.find("<!channel>") == std::string::npos);
        CHECK(all.find("OPS-&lt;1&gt;") != std::string::npos);
        CHECK(all.find("5432/tcp") != std::string::npos);
        CHECK(all.find("db-1") != std::string::npos);
        CHECK(all.find("30m") != std::string::npos);
        CHECK(all.find("15m left") != std::string::npos);
        CHECK(all.find("<https://jg.example/requests#request-12|Approve or deny>") != std::string::npos);
        CHECK(slack_payload(rec, "", 0).dump().find("jg.example") == std::string::npos);
    }

    TEST_CASE("slack: a field's escaped text is cut to fit, never inside a character or an entity") {
        CHECK(slack_clip("short &amp;", 1900) == "short &amp;");
        const std::string amps = slack_escape(std::string(1024, '&'));  // 5120 bytes
        const std::string cut = slack_clip(amps, kSlackFieldBytes);
        CHECK(cut.size() <= kSlackFieldBytes);
        CHECK(cut.size() > kSlackFieldBytes - 8);
        CHECK(cut.substr(cut.size() - 3) == "\u2026");
        const std::string body = cut.substr(0, cut.size() - 3);
        CHECK(body.size() % 5 == 0);  // whole "&amp;" only
        CHECK(body.find_first_not_of("&amp;") == std::string::npos);
        // Two-byte characters: never cut in half, whatever the length.
        for (std::size_t max = 10; max < 20; ++max) {
            CAPTURE(max);
            const std::string c = slack_clip(std::string(40, 'x') + std::string(20, '\xc3'), max);
            CHECK(c.size() <= max);
        }
        for (std::size_t max = 10; max < 20; ++max) {
            CAPTURE(max);
            std::string e;
            for (int i = 0; i < 20; ++i) e += "\xc3\xa9";  // é
            const std::string c = slack_clip(e, max);
            CHECK(c.size() <= max);
            CHECK((c.size() - 3) % 2 == 0);
        }
        // The reason field of a message with such a reason: within Slack's 2000 characters.
        const json m =
            slack_payload({{"type", "request"}, {"reason", std::string(1024, '&')}, {"seq", 1}}, "", 0);
        for (const auto& block : m["blocks"])
            if (block.contains("fields"))
                for (const auto& f : block["fields"]) CHECK(f["text"].get<std::string>().size() <= 2000);
    }

    TEST_CASE("json: the record plus links, only with a web url") {
        const json rec = {{"seq", 3}, {"type", "grant"}, {"grant_id", 4}, {"request_id", 2}};
        CHECK(json_payload(rec, "https://jg.example")["links"]["web"] == "https://jg.example/grants#grant-4");
        CHECK_FALSE(json_payload(rec, "").contains("links"));
        CHECK(json_payload(rec, "")["seq"] == 3);
    }

    TEST_CASE("config: targets, defaults, and every error with its line") {
        auto ok = parse(R"([web]
public_url = "https://jg.example/"

[[notify]]
name = "ops"
url = "https://hooks.example.test/services/T/B/X"
format = "slack"
secret_file = "/secret"
ports = [5432]
give_up_after = "10m"
)");
        REQUIRE(ok.errors.empty());
        REQUIRE(ok.config.targets.size() == 1);
        const Target& t = ok.config.targets[0];
        CHECK(t.name == "ops");
        CHECK(t.format == Format::Slack);
        CHECK(t.secret.size() == 24);
        CHECK(t.types.count("expiry_warning") == 1);
        CHECK(t.types.count("deny") == 0);
        CHECK(t.ports.count(5432) == 1);
        CHECK(t.give_up_after_s == 600);
        CHECK(ok.config.web_url == "https://jg.example");
        CHECK(origin_of(t.url) == "https://hooks.example.test");

        auto bad = parse(R"([[notify]]
url = "https://h.example.test/x"
types = ["request",
  "bogus"]

[[notify]]
url = "http://hooks.example.test/x"
format = "xml"
secret_file = "/bad"

[[notify]]
url = "https://user:pw@h.example.test/"
secret_file = "/missing"
colour = "red"
)");
        const std::string e = joined(bad.errors);
        CHECK(e.find("n.toml:4: [[notify]] #1.types: unknown record type 'bogus'") != std::string::npos);
        CHECK(e.find("n.toml:7: [[notify]] #2.url must be https://") != std::string::npos);
        CHECK(e.find("n.toml:8: [[notify]] #2.format") != std::string::npos);
        CHECK(e.find("n.toml:9: [[notify]] #2.secret_file /bad") != std::string::npos);
        CHECK(e.find("n.toml:12: [[notify]] #3.url must not hold a user or password") != std::string::npos);
        CHECK(e.find("n.toml:13: [[notify]] #3.secret_file: cannot read /missing") != std::string::npos);
        CHECK(e.find("n.toml:14: unknown key 'colour'") != std::string::npos);
        CHECK(parse("").errors.size() == 1);  // no target at all
        CHECK(parse("[[notify]]\nurl = \"http://127.0.0.1:8080/h\"\n").errors.empty());
        // A name that only starts like loopback resolves anywhere: https only.
        for (const char* u : {"http://127.evil.example/h", "http://localhost.evil.example/h"})
            CHECK(joined(parse(std::string("[[notify]]\nurl = \"") + u + "\"\n").errors)
                      .find("must be https://") != std::string::npos);
    }

    TEST_CASE("state: written atomically, read back; a foreign file refused") {
        char tmpl[] = "/tmp/jg-notify-XXXXXX";
        REQUIRE(mkdtemp(tmpl));
        const std::string dir = tmpl;
        auto none = read_state(dir, "a");
        REQUIRE(none.ok());
        CHECK_FALSE(none->has_value());
        REQUIRE(write_state(dir, "a", {41, 5}).ok());
        REQUIRE(write_state(dir, "a", {42, 6}).ok());
        auto got = read_state(dir, "a");
        REQUIRE(got.ok());
        REQUIRE(got->has_value());
        CHECK((*got)->seq == 42);
        CHECK((*got)->delivered_us == 6);
        CHECK_FALSE(std::filesystem::exists(state_path(dir, "a") + ".tmp"));
        std::ofstream(state_path(dir, "b")) << "garbage";
        CHECK_FALSE(read_state(dir, "b").ok());
        std::filesystem::remove_all(dir);
    }

    TEST_CASE("notify_failed: a bare origin, bounded printable texts") {
        auto parsed = [](const json& a) { return operation(Op::NotifyFailed).parse(a); };
        const json good = {
            {"target", "ops"}, {"url", "https://hooks.example.test:8443"}, {"error", "HTTP 500"}};
        CHECK(std::holds_alternative<OpArgs>(parsed(good)));
        for (const char* url : {"https://hooks.example.test/services/SECRET", "https://u:p@h.example.test",
                                "ftp://h.example.test", "https://h.example.test?k=v"}) {
            json a = good;
            a["url"] = url;
            CHECK_MESSAGE(std::holds_alternative<OpError>(parsed(a)), url);
        }
        json a = good;
        a["error"] = std::string(400, 'x');
        CHECK(std::holds_alternative<OpError>(parsed(a)));
        a = good;
        a["error"] = "line\x1b[31m";
        CHECK(std::holds_alternative<OpError>(parsed(a)));
    }

    TEST_CASE("audit after_seq: limit 1 or more, not with since") {
        auto parsed = [](const json& a) { return operation(Op::Audit).parse(a); };
        auto p = parsed({{"after_seq", 10}});
        REQUIRE(std::holds_alternative<OpArgs>(p));
        const auto& args = std::get<AuditArgs>(std::get<OpArgs>(p));
        CHECK(args.after_seq == 10u);
        CHECK(args.limit == 1000);
        CHECK(std::holds_alternative<OpError>(parsed({{"after_seq", 10}, {"limit", 0}})));
        CHECK(std::holds_alternative<OpError>(parsed({{"after_seq", -1}})));
    }
}

}  // namespace test_notify
