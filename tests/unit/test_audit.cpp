// The audit record chain: canonical form, SHA-256, seal, line rendering, head recovery.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "core/audit.h"
#include "core/clock.h"
#include "helpers.h"

namespace test_audit {
using namespace jg;
using namespace jg::testing;

namespace {

json sample(const char* type) {
    return json{{"ts", "2026-11-21T09:56:00.123456Z"},
                {"type", type},
                {"uid", 1000},
                {"user", "alice"},
                {"port", 5432},
                {"proto", "tcp"},
                {"approvers", {"bob", "carol"}},
                {"reason", "incident 42: \"db\" down"}};
}

std::string hash_of(const std::string& line) { return json::parse(line).at("hash").get<std::string>(); }

// The keys of a rendered line, in the order they appear.
std::vector<std::string> key_order(const std::string& line) {
    auto o = nlohmann::ordered_json::parse(line);
    std::vector<std::string> keys;
    for (auto& [k, v] : o.items()) keys.push_back(k);
    return keys;
}

}  // namespace

TEST_SUITE("audit") {
    TEST_CASE("sha256_hex known vectors") {
        CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        CHECK(sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        CHECK(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
              "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
        CHECK(sha256_hex(std::string("a\0b", 3)) != sha256_hex("a"));
    }

    TEST_CASE("canonical: sorted keys, no whitespace, no hash") {
        json a = {{"type", "grant"},
                  {"seq", 3},
                  {"hash", "ffff"},
                  {"prev_hash", "00"},
                  {"b", {{"y", 1}, {"x", 2}}}};
        CHECK(canonical(a) == R"({"b":{"x":2,"y":1},"prev_hash":"00","seq":3,"type":"grant"})");
        // The record itself is not changed.
        CHECK(a.contains("hash"));
    }

    TEST_CASE("canonical does not depend on key insertion order") {
        json a;
        a["type"] = "deny";
        a["uid"] = 7;
        a["port"] = 22;
        json b;
        b["port"] = 22;
        b["uid"] = 7;
        b["type"] = "deny";
        CHECK(canonical(a) == canonical(b));
        // Nor does parsing text with another key order.
        CHECK(canonical(json::parse(R"({"z":1,"a":{"d":1,"c":2}})")) ==
              canonical(json::parse(R"({"a":{"c":2,"d":1},"z":1})")));
        // A record with and without "hash" has the same canonical form.
        json c = a;
        c["hash"] = "abc";
        CHECK(canonical(a) == canonical(c));
    }

    TEST_CASE("canonical replaces invalid UTF-8 instead of throwing") {
        json r = {{"comm", std::string("ab\xFF")}};
        std::string s;
        CHECK_NOTHROW(s = canonical(r));
        CHECK(s == "{\"comm\":\"ab\xEF\xBF\xBD\"}");
    }

    TEST_CASE("seal chains seq, prev_hash and hash and advances the head") {
        ChainHead head;
        CHECK(head.seq == 0);
        CHECK(head.hash == kGenesisHash);
        CHECK(std::string(kGenesisHash).size() == 64);

        json r1 = sample("request");
        seal(r1, head);
        CHECK(r1["seq"].get<std::uint64_t>() == 1);
        CHECK(r1["prev_hash"] == kGenesisHash);
        REQUIRE(r1["hash"].is_string());
        const std::string h1 = r1["hash"].get<std::string>();
        CHECK(h1.size() == 64);
        CHECK(h1 == sha256_hex(canonical(r1)));
        CHECK(head.seq == 1);
        CHECK(head.hash == h1);

        json r2 = sample("approve");
        seal(r2, head);
        CHECK(r2["seq"].get<std::uint64_t>() == 2);
        CHECK(r2["prev_hash"] == h1);
        CHECK(r2["hash"] == sha256_hex(canonical(r2)));
        CHECK(r2["hash"] != r1["hash"]);
        CHECK(head.seq == 2);
        CHECK(head.hash == r2["hash"].get<std::string>());

        // The same content sealed at another place in the chain hashes differently.
        ChainHead other;
        json r2b = sample("approve");
        seal(r2b, other);
        CHECK(r2b["hash"] != r2["hash"]);
    }

    TEST_CASE("seal ignores a stale hash and seq already in the record") {
        ChainHead head{41, std::string(64, 'a')};
        json r = sample("grant");
        r["seq"] = 999;
        r["hash"] = "bogus";
        r["prev_hash"] = "bogus";
        seal(r, head);
        CHECK(r["seq"].get<std::uint64_t>() == 42);
        CHECK(r["prev_hash"] == std::string(64, 'a'));
        CHECK(r["hash"] == sha256_hex(canonical(r)));
        CHECK(head.seq == 42);
    }

    TEST_CASE("the hash covers every field: any change changes it") {
        ChainHead head;
        json r = sample("revoke");
        seal(r, head);
        const std::string h = r["hash"].get<std::string>();
        for (const char* key :
             {"ts", "type", "uid", "user", "port", "proto", "approvers", "reason", "seq", "prev_hash"}) {
            CAPTURE(key);
            json m = r;
            if (m[key].is_string()) {
                std::string s = m[key].get<std::string>();
                s.back() = static_cast<char>(s.back() ^ 1);
                m[key] = s;
            } else if (m[key].is_number()) {
                m[key] = m[key].get<std::int64_t>() + 1;
            } else {
                m[key].push_back("mallory");
            }
            CHECK(sha256_hex(canonical(m)) != h);
        }
        json extra = r;
        extra["note"] = "";
        CHECK(sha256_hex(canonical(extra)) != h);
        json missing = r;
        missing.erase("reason");
        CHECK(sha256_hex(canonical(missing)) != h);
    }

    TEST_CASE("render_line: ts, seq, type first; prev_hash, hash last; one line") {
        ChainHead head;
        json r = sample("grant");
        r["grant_id"] = 17;
        seal(r, head);
        const std::string line = render_line(r);
        REQUIRE(!line.empty());
        CHECK(line.back() == '\n');
        CHECK(line.find('\n') == line.size() - 1);
        // Compact: exactly what a whitespace-free dump of the same key order gives.
        CHECK(nlohmann::ordered_json::parse(line).dump() + "\n" == line);
        const auto keys = key_order(line);
        const std::vector<std::string> want = {"ts",    "seq",    "type", "approvers", "grant_id",  "port",
                                               "proto", "reason", "uid",  "user",      "prev_hash", "hash"};
        CHECK(keys == want);
    }

    TEST_CASE("render_line omits missing leading fields rather than writing null") {
        json r = {{"type", "daemon_start"}, {"hash", "h"}};
        const auto keys = key_order(render_line(r));
        CHECK(keys == std::vector<std::string>{"type", "hash"});
    }

    TEST_CASE("a rendered line re-parsed verifies: hash == sha256(canonical(parsed))") {
        ChainHead head;
        std::string prev = kGenesisHash;
        for (const char* type : {"request", "approve", "grant", "allow", "revoke"}) {
            CAPTURE(type);
            json r = sample(type);
            r["comm"] = std::string("ps\xC3");  // invalid UTF-8, as comm can be
            seal(r, head);
            const std::string line = render_line(r);
            json parsed = json::parse(line);
            CHECK(parsed["prev_hash"] == prev);
            CHECK(parsed["hash"].get<std::string>() == sha256_hex(canonical(parsed)));
            CHECK(parsed["hash"] == r["hash"]);
            prev = parsed["hash"].get<std::string>();

            // Changing any one byte of the line's content breaks verification
            // (or the line no longer parses).
            int broken = 0, tried = 0;
            for (std::size_t i = 0; i + 1 < line.size(); ++i) {
                std::string t = line;
                t[i] = static_cast<char>(t[i] == 'a' ? 'b' : (t[i] == '1' ? '2' : 'a'));
                ++tried;
                json p = json::parse(t, nullptr, false);
                if (p.is_discarded() || !p.is_object() || !p.contains("hash") || !p["hash"].is_string() ||
                    p["hash"].get<std::string>() != sha256_hex(canonical(p)))
                    ++broken;
            }
            CHECK(broken == tried);
        }
    }

    TEST_CASE("read_log_tail: missing and empty files are empty tails that continue from genesis") {
        TempDir dir;
        auto missing = read_log_tail(dir.file("none.jsonl"));
        REQUIRE(missing.ok());
        CHECK(missing->empty);
        CHECK_FALSE(missing->head);
        CHECK(missing->head.value_or(ChainHead{}).seq == 0);
        CHECK(missing->head.value_or(ChainHead{}).hash == kGenesisHash);

        write_file(dir.file("empty.jsonl"), "");
        auto empty = read_log_tail(dir.file("empty.jsonl"));
        REQUIRE(empty.ok());
        CHECK(empty->empty);
        CHECK(empty->head.value_or(ChainHead{}).seq == 0);
        CHECK(empty->head.value_or(ChainHead{}).hash == kGenesisHash);

        // Newlines only: not empty, but no record either.
        write_file(dir.file("nl.jsonl"), "\n\n");
        auto nl = read_log_tail(dir.file("nl.jsonl"));
        REQUIRE(nl.ok());
        CHECK_FALSE(nl->empty);
        CHECK_FALSE(nl->incomplete);
        CHECK_FALSE(nl->unreadable_last);
        CHECK(nl->head.value_or(ChainHead{}).seq == 0);
    }

    TEST_CASE("read_log_tail: the last sealed line gives seq, hash and prev_hash") {
        TempDir dir;
        ChainHead head;
        const auto lines = chain(3, head);
        write_file(dir.file("audit.jsonl"), text(lines));
        auto t = read_log_tail(dir.file("audit.jsonl"));
        REQUIRE(t.ok());
        CHECK_FALSE(t->empty);
        CHECK_FALSE(t->incomplete);
        CHECK_FALSE(t->unreadable_last);
        REQUIRE(t->head);
        CHECK(t->head->seq == 3);
        CHECK(t->head->hash == head.hash);
        CHECK(t->prev_hash == hash_of(lines[1]));

        // Continuing from the recovered head links to the file's last record.
        ChainHead resumed = *t->head;
        json next = sample("expire");
        seal(next, resumed);
        CHECK(next["seq"].get<std::uint64_t>() == 4);
        CHECK(next["prev_hash"] == head.hash);

        // A first record's prev_hash is the genesis hash; a sealed line without
        // prev_hash still gives the head, with no prev_hash.
        write_file(dir.file("one.jsonl"), lines[0]);
        auto one = read_log_tail(dir.file("one.jsonl"));
        REQUIRE(one.ok());
        REQUIRE(one->head);
        CHECK(one->head->seq == 1);
        CHECK(one->prev_hash == kGenesisHash);
        write_file(dir.file("bare.jsonl"), "{\"seq\":2,\"hash\":\"ab\"}\n");
        auto bare = read_log_tail(dir.file("bare.jsonl"));
        REQUIRE(bare.ok());
        REQUIRE(bare->head);
        CHECK(bare->head->seq == 2);
        CHECK(bare->head->hash == "ab");
        CHECK(bare->prev_hash.empty());
    }

    TEST_CASE("read_log_tail: bytes after the last newline are an incomplete record, not the head") {
        TempDir dir;
        ChainHead head;
        const auto lines = chain(3, head);
        const std::string log = text(lines);
        // The last line without its newline (cut short during the write): the
        // head is the last complete line before it.
        write_file(dir.file("nonl.jsonl"), log.substr(0, log.size() - 1));
        auto t = read_log_tail(dir.file("nonl.jsonl"));
        REQUIRE(t.ok());
        CHECK_FALSE(t->empty);
        CHECK(t->incomplete);
        CHECK_FALSE(t->unreadable_last);
        REQUIRE(t->head);
        CHECK(t->head->seq == 2);
        CHECK(t->head->hash == hash_of(lines[1]));
        CHECK(t->prev_hash == hash_of(lines[0]));

        // Only a cut line: no complete line, so no head.
        write_file(dir.file("cut.jsonl"), "{\"seq\":1,\"ty");
        auto cut = read_log_tail(dir.file("cut.jsonl"));
        REQUIRE(cut.ok());
        CHECK_FALSE(cut->empty);
        CHECK(cut->incomplete);
        CHECK_FALSE(cut->unreadable_last);
        CHECK_FALSE(cut->head);
    }

    TEST_CASE("read_log_tail: the last line beyond 1 MiB of earlier records") {
        TempDir dir;
        ChainHead head;
        std::string log;
        std::string prev;
        while (log.size() < 1536 * 1024) {
            json r = sample("deny");
            r["reason"] = std::string(3000, 'x');
            prev = head.hash;
            seal(r, head);
            log += render_line(r);
        }
        write_file(dir.file("big.jsonl"), log);
        auto t = read_log_tail(dir.file("big.jsonl"));
        REQUIRE(t.ok());
        REQUIRE(t->head);
        CHECK(t->head->seq == head.seq);
        CHECK(t->head->hash == head.hash);
        CHECK(t->prev_hash == prev);
    }

    TEST_CASE("read_log_tail: a garbage or unsealed last line is unreadable_last, with no head") {
        TempDir dir;
        ChainHead head;
        json r = sample("deny");
        seal(r, head);
        const std::string good = render_line(r);
        const std::vector<std::string> tails = {
            "not json at all\n",
            "{\"seq\": 2, \"hash\": \"ab\"\n",        // truncated
            "[1,2,3]\n",                              // not an object
            "{\"type\":\"deny\",\"hash\":\"ab\"}\n",  // no seq
            "{\"seq\":2,\"type\":\"deny\"}\n",        // no hash
            "{\"seq\":\"2\",\"hash\":\"ab\"}\n",      // seq not a number
            "{\"seq\":-2,\"hash\":\"ab\"}\n",         // negative seq
            "{\"seq\":2,\"hash\":7}\n",               // hash not a string
        };
        for (const auto& tail : tails) {
            CAPTURE(tail);
            const std::string path = dir.file("bad.jsonl");
            write_file(path, good + tail);
            auto t = read_log_tail(path);
            REQUIRE(t.ok());
            CHECK(t->unreadable_last);
            CHECK_FALSE(t->incomplete);
            CHECK_FALSE(t->head);
        }
    }

    TEST_CASE("read_log_tail: what is not a regular file is an error naming it") {
        TempDir dir;
        const std::string path = dir.file("");
        auto t = read_log_tail(path);
        REQUIRE_FALSE(t.ok());
        CHECK(t.error() == "the audit log " + path + " is not a regular file");
    }

    TEST_CASE("seal_line writes the bytes and the hash of seal() + render_line()") {
        const std::string ts = "2026-11-21T09:56:00.123456Z";
        std::vector<json> records = {
            sample("approve"),
            json{{"type", "deny"}, {"uid", 4294967295u}, {"pid", -1}, {"suppressed", 0}},
            json{{"type", "x"},
                 {"comm", std::string("a\x01\x7f\tb\n\"\\")},
                 {"reason", "caf\xc3\xa9 \xe2\x80\xae"}},
            json{{"type", "x"},
                 {"bad", std::string("\xff\xfe ok \xc3")},
                 {"f", 1.5},
                 {"b", true},
                 {"n", nullptr}},
            json{{"type", "x"}, {"nested", {{"z", 1}, {"a", {1, "two", false}}}}, {"empty", json::array()}},
            // A record's own ts, seq and hashes are replaced by the seal's.
            json{{"type", "x"}, {"ts", "old"}, {"seq", 99}, {"prev_hash", "p"}, {"hash", "h"}, {"zz", ""}},
            json{{"no_type", 1}, {"a_b", "c"}},
        };
        ChainHead slow, fast;
        for (const auto& r : records) {
            json sealed = r;
            sealed["ts"] = ts;
            seal(sealed, slow);
            std::string out = "kept";
            seal_line(r, ts, fast, out);
            CHECK(out == "kept" + render_line(sealed));
            CHECK(fast.seq == slow.seq);
            CHECK(fast.hash == slow.hash);
        }
        CHECK(fast.seq == records.size());
    }

}  // TEST_SUITE

TEST_SUITE("audit view") {
    TEST_CASE("audit_types: the design's sixteen, approval_lapsed and §9's three, each known") {
        const auto& t = audit_types();
        CHECK(t.size() == 20);
        for (const char* k :
             {"deny",        "would_deny",      "allow",          "request",      "approve",
              "reject",      "grant",           "revoke",         "expire",       "break_glass",
              "events_lost", "tamper_detected", "policy_reload",  "daemon_start", "daemon_stop",
              "bind_denied", "approval_lapsed", "expiry_warning", "extend",       "notify_failed"})
            CHECK(is_audit_type(k));
        CHECK_FALSE(is_audit_type(""));
        CHECK_FALSE(is_audit_type("Deny"));
        CHECK_FALSE(is_audit_type("deny "));
    }

    TEST_CASE("parse_rfc3339_us: Z, offsets, fractions, separators") {
        CHECK(*parse_rfc3339_us("1970-01-01T00:00:00Z") == 0);
        CHECK(*parse_rfc3339_us("1970-01-01T00:00:01.5Z") == 1500000);
        CHECK(*parse_rfc3339_us("1969-12-31T23:59:59.999999Z") == -1);
        const std::int64_t t = *parse_rfc3339_us("2026-11-21T09:56:00.123456Z");
        CHECK(rfc3339_us(t) == "2026-11-21T09:56:00.123456Z");
        CHECK(*parse_rfc3339_us("2026-11-21 09:56:00.123456Z") == t);
        CHECK(*parse_rfc3339_us("2026-11-21t09:56:00.123456z") == t);
        CHECK(*parse_rfc3339_us("2026-11-21T10:56:00.123456+01:00") == t);
        CHECK(*parse_rfc3339_us("2026-11-21T04:26:00.123456-05:30") == t);
        CHECK(*parse_rfc3339_us("2026-11-21T09:56:00.123456789Z") == t);  // cut to microseconds
        CHECK(*parse_rfc3339_us("2026-11-21T09:56:00.1Z") == t - 23456);
        CHECK(*parse_rfc3339_us("2026-11-21T09:56:00Z") == t - 123456);
        CHECK(*parse_rfc3339_us("2024-02-29T00:00:00Z") ==
              *parse_rfc3339_us("2024-02-28T00:00:00Z") + 86400000000);
        CHECK(parse_rfc3339_us("2000-02-29T00:00:00Z").ok());
        // Round trips across the range.
        for (std::int64_t us :
             {0LL, 1LL, 951782400000000LL, 1795255560123456LL, -86400000001LL, 4102444799999999LL}) {
            CAPTURE(us);
            CHECK(*parse_rfc3339_us(rfc3339_us(us)) == us);
        }
    }

    TEST_CASE("parse_rfc3339_us refuses garbage with a sentence") {
        for (const char* bad : {"",
                                "yesterday",
                                "2026-11-21",
                                "2026-11-21T09:56Z",
                                "2026-11-21T09:56:00",
                                "2026-13-01T00:00:00Z",
                                "2026-00-01T00:00:00Z",
                                "2026-02-29T00:00:00Z",
                                "2100-02-29T00:00:00Z",
                                "2026-04-31T00:00:00Z",
                                "2026-11-21T24:00:00Z",
                                "2026-11-21T09:60:00Z",
                                "2026-11-21T09:56:61Z",
                                "2026-11-21T09:56:00.Z",
                                "2026-11-21T09:56:00.1234567890Z",
                                "2026-11-21T09:56:00+0100",
                                "2026-11-21T09:56:00+24:00",
                                "2026-11-21T09:56:00Zjunk",
                                "2026-11-21X09:56:00Z",
                                "26-11-21T09:56:00Z",
                                "2026-1-21T09:56:00Z",
                                " 2026-11-21T09:56:00Z"}) {
            CAPTURE(bad);
            auto r = parse_rfc3339_us(bad);
            REQUIRE_FALSE(r.ok());
            CHECK(r.error().find(std::string("invalid time '") + bad + "'") == 0);
            CHECK(r.error().find("2026-11-21T09:56:00Z") != std::string::npos);
        }
    }

    TEST_CASE("parse_since: a time, or a duration ago") {
        const std::int64_t now = *parse_rfc3339_us("2026-11-21T12:00:00Z");
        CHECK(*parse_since("10m", now) == now - 600 * 1000000LL);
        CHECK(*parse_since("2h", now) == now - 7200 * 1000000LL);
        CHECK(*parse_since("1h30m", now) == *parse_rfc3339_us("2026-11-21T10:30:00Z"));
        CHECK(*parse_since("2026-11-21T09:56:00Z", now) == *parse_rfc3339_us("2026-11-21T09:56:00Z"));
        CHECK(*parse_since("2026-11-21T09:56:00+01:00", now) == *parse_rfc3339_us("2026-11-21T08:56:00Z"));
        // Errors speak about the form the text looks like.
        CHECK(parse_since("2026-11-21T25:00:00Z", now).error().find("time of day") != std::string::npos);
        CHECK(parse_since("400d", now).error().find("longer than a year") != std::string::npos);
        CHECK(parse_since("10", now).error().find("unit") != std::string::npos);
        const auto junk = parse_since("last tuesday", now);
        REQUIRE_FALSE(junk.ok());
        CHECK(junk.error().find("how long ago") != std::string::npos);
        CHECK_FALSE(parse_since("", now).ok());
        CHECK_FALSE(parse_since("-10m", now).ok());
    }

    TEST_CASE("matches: type, port, user (name, requester or uid), since; all must hold") {
        const json deny = {{"ts", "2026-11-21T09:56:00.000000Z"},
                           {"type", "deny"},
                           {"uid", 1001},
                           {"user", "alice"},
                           {"port", 5432},
                           {"proto", "tcp"}};
        const json approve = {{"ts", "2026-11-21T10:00:00.000000Z"},
                              {"type", "approve"},
                              {"uid", 1002},
                              {"user", "bob"},
                              {"requester", "alice"},
                              {"port", 22}};
        const json start = {{"ts", "2026-11-21T08:00:00.000000Z"}, {"type", "daemon_start"}, {"uid", 0}};
        AuditFilter all;
        CHECK(matches(all, deny));
        CHECK(matches(all, start));
        CHECK_FALSE(matches(all, json::array()));

        AuditFilter types;
        types.types = {"deny", "grant"};
        CHECK(matches(types, deny));
        CHECK_FALSE(matches(types, approve));
        CHECK_FALSE(matches(types, json{{"seq", 1}}));

        AuditFilter port;
        port.port = 5432;
        CHECK(matches(port, deny));
        CHECK_FALSE(matches(port, approve));
        CHECK_FALSE(matches(port, start));
        CHECK_FALSE(matches(port, json{{"port", "5432"}}));

        AuditFilter user;
        user.user = "alice";
        CHECK(matches(user, deny));
        CHECK(matches(user, approve));  // as requester
        CHECK_FALSE(matches(user, start));
        user.user = "bob";
        CHECK_FALSE(matches(user, deny));
        CHECK(matches(user, approve));
        user.user = "1001";
        CHECK(matches(user, deny));
        CHECK_FALSE(matches(user, approve));
        user.user = "0";
        CHECK(matches(user, start));
        user.user = "ali";
        CHECK_FALSE(matches(user, deny));

        AuditFilter since;
        since.since_us = *parse_rfc3339_us("2026-11-21T09:56:00Z");
        CHECK(matches(since, deny));  // ts == since
        CHECK(matches(since, approve));
        CHECK_FALSE(matches(since, start));
        CHECK_FALSE(matches(since, json{{"type", "deny"}}));                  // no ts
        CHECK_FALSE(matches(since, json{{"ts", "soon"}, {"type", "deny"}}));  // unreadable ts

        AuditFilter both;
        both.types = {"approve"};
        both.user = "alice";
        both.port = 22;
        both.since_us = since.since_us;
        CHECK(matches(both, approve));
        both.port = 5432;
        CHECK_FALSE(matches(both, approve));
    }

    TEST_CASE("audit_filter_from_args: the audit operation's arguments") {
        auto f = audit_filter_from_args(json{
            {"types", {"deny", "grant"}}, {"port", 5432}, {"user", "alice"}, {"since_us", 17}, {"limit", 5}});
        REQUIRE(f.ok());
        CHECK(f->types == std::vector<std::string>{"deny", "grant"});
        CHECK(f->port == 5432);
        CHECK(f->user == "alice");
        CHECK(f->since_us == 17);
        auto empty = audit_filter_from_args(json::object());
        REQUIRE(empty.ok());
        CHECK(empty->types.empty());
        CHECK_FALSE(empty->port.has_value());
        CHECK(audit_filter_from_args(json{{"types", {"deny", "nope"}}})
                  .error()
                  .find("unknown audit record type \"nope\"") == 0);
        CHECK(audit_filter_from_args(json{{"port", 0}}).error().find("1 to 65535") != std::string::npos);
        CHECK(audit_filter_from_args(json{{"port", 65536}}).error().find("1 to 65535") != std::string::npos);
        CHECK_FALSE(audit_filter_from_args(json{{"user", ""}}).ok());
    }

    TEST_CASE("belongs_to: uid, user, requester, or among the approvers") {
        const json deny = {{"type", "deny"}, {"uid", 1001}, {"user", "alice"}};
        CHECK(belongs_to(deny, 1001, "alice"));
        CHECK(belongs_to(deny, 1001, "someone"));  // the uid alone
        CHECK(belongs_to(deny, 7, "alice"));       // the name alone
        CHECK_FALSE(belongs_to(deny, 1002, "bob"));

        const json approve = {{"type", "approve"}, {"uid", 1002}, {"user", "bob"}, {"requester", "alice"}};
        CHECK(belongs_to(approve, 1001, "alice"));
        CHECK(belongs_to(approve, 1002, "bob"));
        CHECK_FALSE(belongs_to(approve, 1003, "carol"));

        const json grant = {{"type", "grant"}, {"user", "alice"}, {"approvers", {"bob", "carol"}}};
        CHECK(belongs_to(grant, 1003, "carol"));
        CHECK_FALSE(belongs_to(grant, 1004, "dave"));

        // Remote records have no uid or user; an empty name matches nothing.
        const json remote = {{"type", "deny"}, {"src", "203.0.113.7"}, {"port", 5432}};
        CHECK_FALSE(belongs_to(remote, 0, ""));
        CHECK_FALSE(belongs_to(json{{"user", ""}}, 5, ""));
        CHECK_FALSE(belongs_to(json{{"uid", "1001"}}, 1001, "x"));  // a uid is a number
        CHECK_FALSE(belongs_to(json::array(), 1, "x"));
    }
}

TEST_SUITE("audit hint") {
    TEST_CASE("access_hint: a denial names the command that asks for access; nothing else does") {
        CHECK(jg::access_hint({{"type", "deny"}, {"uid", 1001}, {"port", 5432}, {"proto", "tcp"}}) ==
              "jitgate request 5432/tcp --for 30m --reason WHY");
        CHECK(jg::access_hint({{"type", "deny"}, {"src", "203.0.113.7"}, {"port", 53}, {"proto", "udp"}}) ==
              "jitgate request 53/udp --from 203.0.113.7 --for 30m --reason WHY");
        CHECK(jg::access_hint({{"type", "deny"}, {"src", "2001:db8::/64"}, {"port", 22}, {"proto", "tcp"}}) ==
              "jitgate request 22/tcp --from 2001:db8::/64 --for 30m --reason WHY");
        CHECK(jg::access_hint({{"type", "would_deny"}, {"port", 5432}, {"proto", "tcp"}}).empty());
        CHECK(jg::access_hint({{"type", "allow"}, {"port", 5432}, {"proto", "tcp"}}).empty());
        CHECK(jg::access_hint({{"type", "deny"}, {"port", "5432"}, {"proto", "tcp"}}).empty());
        CHECK(jg::access_hint({{"type", "deny"}, {"port", 5432}, {"proto", "x; rm"}}).empty());
        CHECK(jg::access_hint({{"type", "deny"}, {"src", "a b"}, {"port", 1}, {"proto", "tcp"}}).empty());
        CHECK(jg::access_hint(nlohmann::json::array()).empty());
    }
}

}  // namespace test_audit
