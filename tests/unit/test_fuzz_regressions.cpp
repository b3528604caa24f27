// Inputs that broke a parser under tests/fuzz, kept as tests: each one
// failed (crashed) before its fix. tests/fuzz/corpus holds a seed for each.
#include <doctest/doctest.h>

#include <sstream>
#include <string>

#include "core/audit.h"
#include "core/policy.h"
#include "core/protocol.h"
#include "helpers.h"

namespace test_fuzz_regressions {
using namespace jg;
using namespace jg::testing;

namespace {

// A JSON value of `depth` nested lists.
std::string nested(std::size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); }

VerifyResult verify_text(const std::string& t) {
    std::istringstream in(t);
    return verify_chain({{"audit.jsonl", &in}});
}

// A sealed record, continuing `head`, holding `value` under "x".
std::string sealed_with(ChainHead& head, const std::string& value) {
    json r = chain_record(static_cast<int>(head.seq) + 1);
    r["x"] = json::parse(value);
    seal(r, head);
    return render_line(r);
}

}  // namespace

TEST_SUITE("fuzz regressions") {
    // A record nested 200000 levels deep (400 KB, under the 1 MiB line
    // limit): canonical() copied and serialised it recursively, and
    // `jitgate audit verify` died of a stack overflow instead of naming it.
    TEST_CASE("verify_chain names a line nested too deeply, and does not overflow the stack") {
        ChainHead head;
        const std::string intact = text(chain(2, head));
        const std::string zeros(64, '0');
        const std::string deep = R"({"seq":3,"prev_hash":")" + zeros + R"(","hash":")" + zeros + R"(","x":)" +
                                 nested(200000) + "}\n";
        const auto r = verify_text(intact + deep + intact);
        CHECK_FALSE(r.ok);
        CHECK(r.records == 2);
        CHECK(r.line == 3);
        CHECK(r.seq == 0);
        CHECK(r.problem == "line 3 is not an audit record: it nests deeper than 16 levels");

        // Cut short at the end of the log, it is still a truncated log.
        const auto cut = verify_text(intact + deep.substr(0, deep.size() / 2));
        CHECK_FALSE(cut.ok);
        CHECK(cut.truncated);
    }

    TEST_CASE("records nested up to the limit verify; one level more does not") {
        ChainHead head;
        std::string log = sealed_with(head, nested(16));
        CHECK(verify_text(log).ok);
        log += sealed_with(head, nested(17));
        const auto r = verify_text(log);
        CHECK_FALSE(r.ok);
        CHECK(r.records == 1);
        CHECK(r.line == 2);
        CHECK(r.problem.find("nests deeper than 16 levels") != std::string::npos);
    }

    // 64 KiB of brackets in "args": the copy into WireRequest::args recursed
    // per level (a stack overflow under ASan from 16000 levels; jitgated is
    // reachable by every local user).
    TEST_CASE("parse_request refuses a message nested too deeply, and does not overflow the stack") {
        const std::string line = R"({"id":5,"op":"status","args":{"a":)" + nested(32000) + "}}";
        REQUIRE(line.size() <= kMaxMessageBytes);
        WireError why{-99, "untouched"};
        auto r = parse_request(line, &why);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error() == "message nests deeper than 16 levels");
        CHECK(why.id == 0);
        CHECK(why.message == r.error());

        // The deepest request there is (a list of strings in args) is far from the limit.
        auto audit = parse_request(R"({"id":1,"op":"audit","args":{"types":["deny","allow"]}})");
        REQUIRE(audit.ok());
        CHECK(audit->args.at("types").size() == 2);
        auto level16 = parse_request(R"({"op":"status","args":{"a":)" + nested(15) + "}}");
        REQUIRE_FALSE(level16.ok());
        CHECK(level16.error() == "status: unknown argument \"a\"");
        auto level17 = parse_request(R"({"op":"status","args":{"a":)" + nested(16) + "}}");
        REQUIRE_FALSE(level17.ok());
        CHECK(level17.error() == "message nests deeper than 16 levels");
    }
}

TEST_CASE("parse_json_bounded: records parse, a line nested past any record is refused unbuilt") {
    bool deep = true;
    const json ok = jg::parse_json_bounded(R"({"seq":1,"approvers":["a","b"]})", &deep);
    CHECK_FALSE(deep);
    REQUIRE(ok.is_object());
    CHECK(ok.at("approvers").size() == 2);
    // What jitgated's history reader and read_log_tail meet in a planted line.
    const std::string line = "{\"seq\":1,\"x\":" + std::string(200000, '[') + std::string(200000, ']') + "}";
    const json bad = jg::parse_json_bounded(line, &deep);
    CHECK(deep);
    CHECK(bad.is_discarded());
    CHECK(jg::parse_json_bounded("not json").is_discarded());
}

TEST_CASE("policy: a float where a whole number belongs is refused, however large (no conversion)") {
    // Found by fuzz_policy: toml++ converted 5.4e61 to int64 (undefined) before the check.
    const char* cases[][2] = {
        {"[[port]]\nport = 54222222222222222222222222222222222222222222222222222222222232.0\n",
         "port must be a whole number from 1 to 65535"},
        {"[[port]]\nport = 5432.0\n", "port must be a whole number from 1 to 65535"},
        {"[[port]]\nport = 5432\napprovers = [\"a\", \"b\"]\napprovals_required = 1e300\n",
         "approvals_required must be a whole number from 1 to 16"},
        {"[[port]]\nport = 5432\napprovers = [\"a\"]\nallow_prefix = { ipv4 = 2.4e40 }\n",
         "allow_prefix.ipv4 must be a whole number from 1 to 32"},
    };
    for (const auto& [text, message] : cases) {
        CAPTURE(text);
        const auto load = jg::parse_policy(text, "fuzz.toml");
        CHECK_FALSE(load.ok());
        bool named = false;
        for (const auto& e : load.errors) named = named || e.find(message) != std::string::npos;
        CHECK(named);
    }
}

}  // namespace test_fuzz_regressions
