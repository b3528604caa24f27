// The fleet's documents in etcd (fleet/docs): what a node writes reads back
// the same, and anything else under the prefix (anyone with write access to
// etcd wrote it) is refused with one sentence, never applied, never a crash.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "core/duration.h"
#include "core/protocol.h"
#include "fleet/docs.h"
#include "fleet/witness.h"
#include "fleet_fixtures.h"

namespace test_fleet_docs {
using namespace jg;
using namespace jg::fleet;
using namespace jg::testing;

namespace {

RequestRow a_request() {
    RequestRow r;
    r.id = 41;
    r.user = "alice";
    r.port = 5432;
    r.proto = Proto::Tcp;
    r.duration_s = 3600;
    r.reason = "INC-7: vacuum the orders table, ça marche 日本";
    r.ticket = "INC-7";
    r.state = "granted";
    r.created_us = 1'790'000'000'000'000;
    r.deadline_us = r.created_us + 900'000'000;
    r.decided_us = r.created_us + 5'000'000;
    r.decided_by = "bob";
    r.decision_reason = "ok";
    r.grant_id = 42;
    r.approvers = {"bob", "carol"};
    r.shortest_s = 1800;
    r.src = "";
    r.kind = "";
    return r;
}

GrantRow a_grant() {
    GrantRow g;
    g.id = 42;
    g.request_id = 41;
    g.user = "alice";
    g.port = 53;
    g.proto = Proto::Udp;
    g.start_us = 1'790'000'005'000'000;
    g.expires_us = g.start_us + 1800'000'000;
    g.state = "active";
    g.ended_us = 0;
    g.ended_by = "";
    g.reason = "INC-7";
    g.ticket = "";
    g.approvers = {"bob"};
    g.src = "203.0.113.0/24";
    g.kind = "";
    return g;
}

const Extras kExtras{"env=prod,role=db", "db-1"};

// A document with one field replaced (or removed, with a discarded value).
json with(json doc, const std::string& key, const json& value) {
    if (value.is_discarded())
        doc.erase(key);
    else
        doc[key] = value;
    return doc;
}

json removed() { return json(json::value_t::discarded); }

// The refusal of a request or grant document, which must be refused.
std::string request_refusal(const std::string& text) {
    auto d = parse_request_doc(text);
    REQUIRE_FALSE(d.ok());
    CHECK_FALSE(d.error().empty());
    return d.error();
}
std::string grant_refusal(const std::string& text) {
    auto d = parse_grant_doc(text);
    REQUIRE_FALSE(d.ok());
    CHECK_FALSE(d.error().empty());
    return d.error();
}

}  // namespace

TEST_SUITE("fleet docs") {
    TEST_CASE("a request document reads back as written") {
        const RequestRow r = a_request();
        const json doc = request_doc(r, kExtras);
        auto back = parse_request_doc(doc.dump());
        REQUIRE_MESSAGE(back.ok(), (back.ok() ? "" : back.error()));
        CHECK(request_doc(back->row, back->x) == doc);
        CHECK(back->row.user == "alice");
        CHECK(back->row.approvers == std::vector<std::string>{"bob", "carol"});
        CHECK(back->x.on == kExtras.on);
        CHECK(back->x.origin == "db-1");
        // The node's own fields are not in the document.
        CHECK(back->row.uid == 0);
        CHECK(back->row.boot_id.empty());

        RequestRow pending = a_request();
        pending.state = "pending";
        pending.decided_us = 0;
        pending.decided_by = "";
        pending.grant_id = 0;
        pending.approvers = {};
        pending.kind = kBreakGlass;
        pending.src = "2001:db8::1";
        auto p = parse_request_doc(request_doc(pending, {"db-2", "web-1"}).dump());
        REQUIRE_MESSAGE(p.ok(), (p.ok() ? "" : p.error()));
        CHECK(p->row.kind == kBreakGlass);
        CHECK(p->row.src == "2001:db8::1");
        CHECK(p->x.on == "db-2");
    }

    TEST_CASE("a grant document reads back as written") {
        for (const std::string& state :
             std::vector<std::string>{"active", "expired", "revoked", "replaced"}) {
            CAPTURE(state);
            GrantRow g = a_grant();
            g.state = state;
            if (state != "active") {
                g.ended_us = g.start_us + 60'000'000;
                g.ended_by = "carol";
            }
            const json doc = grant_doc(g, kExtras);
            auto back = parse_grant_doc(doc.dump());
            REQUIRE_MESSAGE(back.ok(), (back.ok() ? "" : back.error()));
            CHECK(grant_doc(back->row, back->x) == doc);
            CHECK(back->row.proto == Proto::Udp);
            CHECK(back->row.src == "203.0.113.0/24");
            CHECK(back->row.expires_boot_ns == 0);  // each node converts expires_us itself
        }
    }

    TEST_CASE("a policy document reads back as written") {
        PolicyDoc p{7, "[[port]]\nport = 5432\napprovers = [\"alice\"]\n", "/etc/jitgate/fleet.toml", "root",
                    1'790'000'000'000'000};
        auto back = parse_policy_doc(policy_doc(p).dump());
        REQUIRE_MESSAGE(back.ok(), (back.ok() ? "" : back.error()));
        CHECK(back->version == 7);
        CHECK(back->text == p.text);
        CHECK(back->file == p.file);
        CHECK(back->pushed_by == "root");
        CHECK(back->pushed_at_us == p.pushed_at_us);
    }

    TEST_CASE("the longest selector a request may give reads back from its grant") {
        // 16 labels of 63-character keys and values: what parse_selector accepts.
        std::string on;
        for (int i = 0; i < 16; ++i)
            on +=
                (i ? "," : "") + std::string(61, 'k') + fmt::format("{:02d}", i) + "=" + std::string(63, 'v');
        REQUIRE(parse_selector(on).ok());
        auto back = parse_grant_doc(grant_doc(a_grant(), {on, "db-1"}).dump());
        REQUIRE_MESSAGE(back.ok(), (back.ok() ? "" : back.error()));
        CHECK(back->x.on == on);
        auto req = parse_request_doc(request_doc(a_request(), {on, "db-1"}).dump());
        REQUIRE_MESSAGE(req.ok(), (req.ok() ? "" : req.error()));
    }

    TEST_CASE("text that is not a JSON object is refused") {
        for (const std::string& bad : std::vector<std::string>{
                 "", "   ", "null", "42", "\"x\"", "[]", "[{\"id\":1}]", "{", "{\"id\":1", "{\"id\":1}}",
                 "{'id':1}", "\xff\xfe{}", std::string("{\"id\"\0:1}", 9)}) {
            CAPTURE(bad);
            CHECK(request_refusal(bad).find("is not a JSON object") != std::string::npos);
            CHECK(grant_refusal(bad).find("is not a JSON object") != std::string::npos);
            auto p = parse_policy_doc(bad);
            REQUIRE_FALSE(p.ok());
            CHECK(p.error().find("is not a JSON object") != std::string::npos);
        }
        const std::string huge = "{\"reason\":\"" + std::string(70 * 1024, 'a') + "\"}";
        CHECK(request_refusal(huge).find("larger than") != std::string::npos);
        CHECK(grant_refusal(huge).find("larger than") != std::string::npos);
        CHECK_FALSE(parse_policy_doc(huge).ok());
    }

    TEST_CASE("deeply nested JSON is refused without a crash") {
        const std::string deep = std::string(20000, '[') + std::string(20000, ']');
        CHECK_FALSE(parse_request_doc(deep).ok());
        const std::string deep_field = "{\"id\":" + std::string(20000, '[') + std::string(20000, ']') + "}";
        CHECK(request_refusal(deep_field).find("nests deeper than 16 levels") != std::string::npos);
        // Within the size cap, as deep as it goes: refused while parsing, on
        // any stack (the signature's text is made by recursive copies).
        const std::string deep_grant = "{\"signer\":\"db-1\",\"sig\":\"x\",\"z\":" + std::string(30000, '[') +
                                       std::string(30000, ']') + "}";
        CHECK(grant_refusal(deep_grant).find("nests deeper than 16 levels") != std::string::npos);
        CHECK_FALSE(parse_policy_doc(deep_grant).ok());
        // Sixteen levels still read.
        auto nested = [](int n) { return "{\"a\":" + std::string(n, '[') + std::string(n, ']') + "}"; };
        CHECK(parse_object(nested(16), "x").ok());
        CHECK_FALSE(parse_object(nested(17), "x").ok());
    }

    TEST_CASE("a missing field or one of the wrong type is refused, naming it") {
        const json doc = request_doc(a_request(), kExtras);
        for (const auto& [key, value] : doc.items()) {
            CAPTURE(key);
            CHECK(request_refusal(with(doc, key, removed()).dump()).find("'" + key + "'") !=
                  std::string::npos);
            // An object is no field's type; a string is not a number, a number not text.
            CHECK(request_refusal(with(doc, key, json::object()).dump()).find("'" + key + "'") !=
                  std::string::npos);
            const json other = value.is_string() ? json(1) : json("1");
            CHECK(request_refusal(with(doc, key, other).dump()).find("'" + key + "'") != std::string::npos);
        }
        const json g = grant_doc(a_grant(), kExtras);
        for (const auto& [key, value] : g.items()) {
            CAPTURE(key);
            CHECK(grant_refusal(with(g, key, removed()).dump()).find("'" + key + "'") != std::string::npos);
            CHECK(grant_refusal(with(g, key, json::array({nullptr})).dump()).find("'" + key + "'") !=
                  std::string::npos);
            CHECK(grant_refusal(with(g, key, nullptr).dump()).find("'" + key + "'") != std::string::npos);
        }
        const json p = policy_doc({1, "t", "f", "root", 1});
        for (const auto& [key, value] : p.items()) {
            CAPTURE(key);
            auto missing = parse_policy_doc(with(p, key, removed()).dump());
            REQUIRE_FALSE(missing.ok());
            CHECK(missing.error().find("'" + key + "'") != std::string::npos);
            auto wrong = parse_policy_doc(with(p, key, json::array({1})).dump());
            REQUIRE_FALSE(wrong.ok());
            CHECK(wrong.error().find("'" + key + "'") != std::string::npos);
        }
    }

    TEST_CASE("numbers out of range: negative, zero ids, huge, fractional, past 64 bits") {
        const json doc = grant_doc(a_grant(), kExtras);
        const std::vector<std::pair<std::string, std::string>> bad = {
            {"id", "0"},
            {"id", "-1"},
            {"id", "9007199254740993"},  // past 2^53: not exact in every JSON reader
            {"id", "18446744073709551615"},
            {"id", "18446744073709551616"},  // past 64 bits: read as a float
            {"id", "1e3"},
            {"id", "1.0"},
            {"request_id", "-5"},
            {"port", "0"},
            {"port", "65536"},
            {"port", "4294972728"},  // 5432 + 2^32: must not wrap to 5432
            {"port", "-60104"},      // 5432 - 2^16
            {"start_us", "-1"},
            {"expires_us", "9223372036854775807"},
            {"ended_us", "-9223372036854775808"},
        };
        for (const auto& [key, number] : bad) {
            CAPTURE(key);
            CAPTURE(number);
            json d = doc;
            d.erase(key);
            std::string text = d.dump();
            text.insert(1, "\"" + key + "\":" + number + ",");
            CHECK(grant_refusal(text).find("'" + key + "'") != std::string::npos);
        }
        // A number past a double's range is not JSON at all.
        std::string overflow = doc.dump();
        overflow.replace(overflow.find("\"port\":53"), 9, "\"port\":1e400");
        CHECK(grant_refusal(overflow).find("is not a JSON object") != std::string::npos);
        const json r = request_doc(a_request(), kExtras);
        for (const auto& [key, value] : std::vector<std::pair<std::string, json>>{
                 {"duration_s", 0},
                 {"duration_s", kMaxDurationSeconds + 1},
                 {"shortest_s", -1},
                 {"grant_id", -42},
                 {"created_us", std::numeric_limits<std::int64_t>::min()},
                 {"deadline_us", std::numeric_limits<std::uint64_t>::max()}}) {
            CAPTURE(key);
            CHECK(request_refusal(with(r, key, value).dump()).find("'" + key + "'") != std::string::npos);
        }
        auto policy = parse_policy_doc(policy_doc({0, "t", "f", "root", 1}).dump());
        REQUIRE_FALSE(policy.ok());
        CHECK(policy.error().find("'version'") != std::string::npos);
    }

    TEST_CASE("a grant must end after it starts, by at most a year") {
        GrantRow g = a_grant();
        g.expires_us = g.start_us;
        CHECK(grant_refusal(grant_doc(g, kExtras).dump()).find("'expires_us' is not after 'start_us'") !=
              std::string::npos);
        g.expires_us = g.start_us - 1;
        CHECK(grant_refusal(grant_doc(g, kExtras).dump()).find("'expires_us'") != std::string::npos);
        g.expires_us = g.start_us + (kMaxDurationSeconds + 1) * 1'000'000;
        CHECK(grant_refusal(grant_doc(g, kExtras).dump()).find("'expires_us'") != std::string::npos);
        g.expires_us = g.start_us + kMaxDurationSeconds * 1'000'000;
        CHECK(parse_grant_doc(grant_doc(g, kExtras).dump()).ok());
    }

    TEST_CASE("text fields: control characters, bidirectional marks, bad UTF-8, too long") {
        const json r = request_doc(a_request(), kExtras);
        for (const std::string& key :
             std::vector<std::string>{"reason", "ticket", "decided_by", "decision_reason"}) {
            CAPTURE(key);
            for (const std::string& bad :
                 std::vector<std::string>{"a\x1b[2Jb", "line\nbreak", "tab\there", "\x7f", "\u202egnp.exe",
                                          "a\u2028b", std::string("nul\0x", 5), "\u009b31m"}) {
                CAPTURE(bad);
                CHECK(request_refusal(with(r, key, bad).dump()).find("'" + key + "' holds unprintable") !=
                      std::string::npos);
            }
        }
        CHECK(request_refusal(with(r, "reason", std::string(kMaxReasonBytes + 1, 'r')).dump())
                  .find("'reason' is longer than") != std::string::npos);
        CHECK(request_refusal(with(r, "ticket", std::string(kMaxTicketBytes + 1, 't')).dump())
                  .find("'ticket' is longer than") != std::string::npos);
        CHECK(parse_request_doc(with(r, "reason", std::string(kMaxReasonBytes, 'r')).dump()).ok());
        // Bytes that are not UTF-8 (raw in the text, or a lone surrogate escaped): not JSON.
        std::string raw = r.dump();
        raw.replace(raw.find("ça"), 2, "\xc3\x28");
        CHECK(request_refusal(raw).find("is not a JSON object") != std::string::npos);
        std::string surrogate = r.dump();
        surrogate.replace(surrogate.find("ça"), 2, "\\ud800");
        CHECK(request_refusal(surrogate).find("is not a JSON object") != std::string::npos);
        // A control character written as a JSON escape is still refused.
        std::string escaped = r.dump();
        escaped.replace(escaped.find("ça"), 2, "\\u001b[31m");
        CHECK(request_refusal(escaped).find("'reason' holds unprintable") != std::string::npos);
        // The policy's own fields too; its text is TOML, parsed when applied.
        auto p = parse_policy_doc(policy_doc({1, "t", "f\x1b", "root", 1}).dump());
        REQUIRE_FALSE(p.ok());
        CHECK(p.error().find("'file'") != std::string::npos);
    }

    TEST_CASE("user names: the requester, each approver") {
        const json r = request_doc(a_request(), kExtras);
        for (const std::string& bad : std::vector<std::string>{
                 "", "al ice", "alice\n", "../root", "a/b", "al:ice", std::string(65, 'u'), "\xc3\xa9lise"}) {
            CAPTURE(bad);
            CHECK(request_refusal(with(r, "user", bad).dump()).find("'user'") != std::string::npos);
            CHECK(
                request_refusal(with(r, "approvers", json::array({"bob", bad})).dump()).find("'approvers'") !=
                std::string::npos);
        }
        for (const std::string& good : std::vector<std::string>{"alice", "svc-backup", "first.last", "_apt",
                                                                "machine$", std::string(32, 'u')}) {
            CAPTURE(good);
            CHECK(parse_request_doc(with(r, "user", good).dump()).ok());
        }
        CHECK(request_refusal(with(r, "approvers", "bob").dump()).find("'approvers'") != std::string::npos);
        CHECK(request_refusal(with(r, "approvers", json::array({1})).dump()).find("'approvers'") !=
              std::string::npos);
        std::vector<std::string> many(17, "bob");
        CHECK(request_refusal(with(r, "approvers", many).dump()).find("at most 16") != std::string::npos);
        many.resize(16);
        CHECK(parse_request_doc(with(r, "approvers", many).dump()).ok());
    }

    TEST_CASE("approvers' token groups read back beside their approvers; anything else is refused") {
        RequestRow r = a_request();
        // Without a token anywhere, the document stays as it was.
        CHECK_FALSE(request_doc(r, kExtras).contains(kTokenGroupsField));
        r.approver_token_groups = {std::nullopt, std::nullopt};
        CHECK_FALSE(request_doc(r, kExtras).contains(kTokenGroupsField));
        r.approver_token_groups = {std::vector<std::string>{"sso-dba", "ça"}, std::vector<std::string>{}};
        const json doc = request_doc(r, kExtras);
        CHECK(doc.at(kTokenGroupsField) == json::array({json{"sso-dba", "ça"}, json::array()}));
        auto back = parse_request_doc(doc.dump());
        REQUIRE_MESSAGE(back.ok(), (back.ok() ? "" : back.error()));
        CHECK(back->row.approver_token_groups == r.approver_token_groups);
        CHECK(request_doc(back->row, back->x) == doc);
        // Only the second approver used a token (and a row shorter than its
        // approvers: the rest approved without one).
        r.approver_token_groups = {std::nullopt, std::vector<std::string>{"sso-ops"}};
        auto second = parse_request_doc(request_doc(r, kExtras).dump());
        REQUIRE(second.ok());
        CHECK(second->row.approver_token_groups == r.approver_token_groups);
        r.approver_token_groups = {std::vector<std::string>{"sso-ops"}};
        CHECK(request_doc(r, kExtras).at(kTokenGroupsField) == json::array({json{"sso-ops"}, nullptr}));

        const std::vector<std::string> most(kMaxTokenGroups, std::string(kMaxTokenGroupBytes, 'g'));
        CHECK(parse_request_doc(with(doc, kTokenGroupsField, json::array({most, nullptr})).dump()).ok());
        std::vector<std::string> too_many = most;
        too_many.push_back("g");
        // A token that put its user in more of a port's groups than a
        // document carries: the first ones are written, and read back.
        r.approver_token_groups = {too_many, std::nullopt};
        auto cut = parse_request_doc(request_doc(r, kExtras).dump());
        REQUIRE_MESSAGE(cut.ok(), (cut.ok() ? "" : cut.error()));
        CHECK(cut->row.approver_token_groups[0] == most);
        for (const json& bad : std::vector<json>{
                 "sso-dba", json::object(), json::array({json{"sso-dba"}}),
                 json::array({json{"a"}, json{"b"}, json{"c"}}), json::array({"sso-dba", nullptr}),
                 json::array({json{1}, nullptr}), json::array({json{nullptr}, nullptr}),
                 json::array({too_many, nullptr}),
                 json::array({json{std::string(kMaxTokenGroupBytes + 1, 'g')}, nullptr}),
                 json::array({json{"sso\ndba"}, nullptr}), json::array({json{"sso\x1b[2J"}, nullptr}),
                 json::array({json{"a\u202eb"}, nullptr})}) {
            CAPTURE(bad.dump());
            CHECK(request_refusal(with(doc, kTokenGroupsField, bad).dump())
                      .find(std::string("'") + kTokenGroupsField + "'") != std::string::npos);
        }
    }

    TEST_CASE("src, proto, state, kind, on and origin: only their own values") {
        const json g = grant_doc(a_grant(), kExtras);
        for (const std::string& bad :
             std::vector<std::string>{"203.0.113.5/33", "203.0.113.0/", "not-an-address", "203.0.113.1/24",
                                      "2001:DB8::1", "2001:db8:0::1", " 203.0.113.5", "198.51.100.7\n"}) {
            CAPTURE(bad);
            CHECK(grant_refusal(with(g, "src", bad).dump()).find("'src'") != std::string::npos);
        }
        for (const std::string& good :
             std::vector<std::string>{"", "203.0.113.5", "198.51.100.0/24", "2001:db8::/32", "2001:db8::1"}) {
            CAPTURE(good);
            auto d = parse_grant_doc(with(g, "src", good).dump());
            REQUIRE_MESSAGE(d.ok(), (d.ok() ? "" : d.error()));
            CHECK(d->row.src == good);
        }
        for (const std::string& bad : std::vector<std::string>{"TCP", "icmp", "", "tcp "}) {
            CAPTURE(bad);
            CHECK(grant_refusal(with(g, "proto", bad).dump()).find("'proto'") != std::string::npos);
        }
        for (const std::string& bad :
             std::vector<std::string>{"pending", "ACTIVE", "", "active\n", "granted"}) {
            CAPTURE(bad);
            CHECK(grant_refusal(with(g, "state", bad).dump()).find("'state'") != std::string::npos);
        }
        const json r = request_doc(a_request(), kExtras);
        for (const std::string& bad : std::vector<std::string>{"active", "revoked", "Pending", ""}) {
            CAPTURE(bad);
            CHECK(request_refusal(with(r, "state", bad).dump()).find("'state'") != std::string::npos);
        }
        for (const std::string& bad : std::vector<std::string>{"breakglass", "break_glass ", "auto"}) {
            CAPTURE(bad);
            CHECK(grant_refusal(with(g, "kind", bad).dump()).find("'kind'") != std::string::npos);
            CHECK(request_refusal(with(r, "kind", bad).dump()).find("'kind'") != std::string::npos);
        }
        for (const std::string& bad :
             std::vector<std::string>{"", "role=", "role=db,role=web", "db 1", "role=db;rm -rf /"}) {
            CAPTURE(bad);
            CHECK(grant_refusal(with(g, "on", bad).dump()).find("'on'") != std::string::npos);
        }
        for (const std::string& bad :
             std::vector<std::string>{"", "db 1", "role=db", std::string(64, 'n'), "-db"}) {
            CAPTURE(bad);
            CHECK(grant_refusal(with(g, "origin", bad).dump()).find("'origin'") != std::string::npos);
        }
    }

    TEST_CASE("unknown fields are ignored; the first problem is the one named") {
        const json g = grant_doc(a_grant(), kExtras);
        auto extra = parse_grant_doc(with(g, "signature", "AAAA").dump());
        CHECK(extra.ok());
        json two = with(with(g, "id", -1), "port", 0);
        CHECK(grant_refusal(two.dump()).find("'id'") != std::string::npos);
    }

    TEST_CASE("keys under the prefix") {
        CHECK(ids_key(P) == "/jitgate/v1/ids");
        CHECK(policy_key(P) == "/jitgate/v1/policy");
        CHECK(request_key(P, 7) == "/jitgate/v1/requests/000000000007");
        CHECK(grant_key(P, 123456789012) == "/jitgate/v1/grants/123456789012");
        CHECK(node_key(P, "db-1") == "/jitgate/v1/nodes/db-1");
        CHECK(ack_key(P, "db-1") == "/jitgate/v1/acks/db-1");

        auto k = parse_key(P, request_key(P, 7));
        CHECK(k.kind == "requests");
        CHECK(k.id == 7);
        k = parse_key(P, grant_key(P, 999999999999));
        CHECK(k.kind == "grants");
        CHECK(k.id == 999999999999);
        k = parse_key(P, node_key(P, "db-1"));
        CHECK(k.kind == "nodes");
        CHECK(k.node == "db-1");
        k = parse_key(P, ack_key(P, "web.prod_2"));
        CHECK(k.kind == "acks");
        CHECK(k.node == "web.prod_2");
        CHECK(parse_key(P, ids_key(P)).kind == "ids");
        CHECK(parse_key(P, policy_key(P)).kind == "policy");
        CHECK(parse_key("/other", "/other/grants/000000000001").id == 1);
    }

    TEST_CASE("junk keys under the prefix are nothing") {
        for (const std::string& junk : std::vector<std::string>{"",
                                                                "/",
                                                                "/jitgate/v1",
                                                                "/jitgate/v1/",
                                                                "/jitgate/v10/ids",
                                                                "/jitgate/v2/ids",
                                                                "jitgate/v1/ids",
                                                                "/jitgate/v1ids",
                                                                "//jitgate/v1/ids",
                                                                "/jitgate/v1/ids/",
                                                                "/jitgate/v1/ids/x",
                                                                "/jitgate/v1/policy/",
                                                                "/jitgate/v1/policy/1",
                                                                "/jitgate/v1/Policy",
                                                                "/jitgate/v1/other",
                                                                "/jitgate/v1/other/x",
                                                                "/jitgate/v1/requests",
                                                                "/jitgate/v1/requests/",
                                                                "/jitgate/v1/requests/7",
                                                                "/jitgate/v1/requests/00000000007",
                                                                "/jitgate/v1/requests/0000000000007",
                                                                "/jitgate/v1/requests/000000000000",
                                                                "/jitgate/v1/requests/00000000000x",
                                                                "/jitgate/v1/requests/-00000000007",
                                                                "/jitgate/v1/requests/+00000000007",
                                                                "/jitgate/v1/requests/ 00000000007",
                                                                "/jitgate/v1/grants/000000000007/",
                                                                "/jitgate/v1/grants/000000000007/x",
                                                                "/jitgate/v1/grant/000000000007",
                                                                "/jitgate/v1/nodes/",
                                                                "/jitgate/v1/nodes/db 1",
                                                                "/jitgate/v1/nodes/-db",
                                                                "/jitgate/v1/nodes/a/b",
                                                                "/jitgate/v1/nodes/db\x1b",
                                                                "/jitgate/v1/acks/" + std::string(64, 'n'),
                                                                "/jitgate/v1/acks/db=1",
                                                                std::string("/jitgate/v1/acks/db\0", 20)}) {
            CAPTURE(junk);
            const KeyName k = parse_key(P, junk);
            CHECK(k.kind.empty());
            CHECK(k.id == 0);
            CHECK(k.node.empty());
        }
    }

    TEST_CASE("valid_user_name") {
        CHECK(valid_user_name("alice"));
        CHECK(valid_user_name(std::string(64, 'a')));
        // Directory services' names travel too.
        CHECK(valid_user_name("alice@corp.example"));
        CHECK_FALSE(valid_user_name(""));
        CHECK_FALSE(valid_user_name(std::string(65, 'a')));
        CHECK_FALSE(valid_user_name("a b"));
        CHECK_FALSE(valid_user_name("a\x1b"));
    }
}

TEST_SUITE("fleet witness") {
    TEST_CASE("an ack nested thousands deep is ignored, not followed into a crash; a signed one counts") {
        // Anyone who can write etcd can write this node's ack: its audit
        // head is read on every event and at every start.
        const Ed25519Key key = key_of('w');
        Witness w("/jg", "db-2", key);
        ChainHead head;
        head.seq = 7;
        head.hash = std::string(64, 'a');
        const json good = {{"node", "db-2"}, {"audit_head", head_json(sign_head(key, "db-2", head, 1000))}};
        Batch b;
        b.puts.push_back({"/jg/acks/db-2",
                          "{\"audit_head\":" + std::string(300000, '[') + std::string(300000, ']') + "}"});
        w.absorb(b);
        CHECK(w.own_heads().empty());
        b.puts = {{"/jg/acks/db-2", good.dump()}};
        w.absorb(b);
        REQUIRE(w.own_heads().size() == 1);
        CHECK(w.own_heads()[0].at("seq") == 7);
    }
}

}  // namespace test_fleet_docs
