// The witnessed audit (design.md §7.3): a signed audit head verifies for
// its node, seq, hash and time only; a node's published heads are checked
// against each other (forged, moved, written over, two hashes for a seq,
// going backwards); and audit verify holds a log to the heads its node
// published (a cut log with a fixed head file is still named).
#include <doctest/doctest.h>

#include <sstream>
#include <string>
#include <vector>

#include "core/audit.h"
#include "core/audit_witness.h"
#include "fleet/docs.h"
#include "fleet_fixtures.h"
#include "helpers.h"

namespace test_audit_witness {
using namespace jg;
using namespace jg::testing;

namespace {

const std::string kHashA(64, 'a'), kHashB(64, 'b'), kHashC(64, 'c');

SignedHead head(const Ed25519Key& k, std::uint64_t seq, const std::string& hash, std::int64_t t) {
    return sign_head(k, "db-1", {seq, hash}, t);
}

HeadEntry entry(const SignedHead& h, std::int64_t version = 1) {
    return {h.seq, version, head_json(h).dump()};
}

std::string ack_with(const SignedHead& h) {
    return json{{"node", "db-1"}, {"applied_revision", 5}, {"audit_head", head_json(h)}}.dump();
}

bool mentions(const WitnessReport& r, const std::string& what) {
    for (const auto& p : r.problems)
        if (p.find(what) != std::string::npos) return true;
    return false;
}

VerifyResult verify_with(const std::string& log, const std::vector<WitnessedHead>& w,
                         const ChainHead* h = nullptr) {
    std::istringstream in(log);
    return verify_chain({{"audit.jsonl", &in}}, h, &w);
}

}  // namespace

TEST_SUITE("audit witness") {
    TEST_CASE("a signed head verifies for exactly its node, seq, hash and time, by its key") {
        const auto k = key_of(1), other = key_of(2);
        const SignedHead h = head(k, 42, kHashA, 1'000'000);
        CHECK(verify_head(k.public_key(), h));
        CHECK_FALSE(verify_head(other.public_key(), h));
        CHECK(verify_head(std::vector<Ed25519Public>{other.public_key(), k.public_key()}, h));
        for (auto edit : std::vector<void (*)(SignedHead&)>{
                 [](SignedHead& x) { x.seq = 41; }, [](SignedHead& x) { x.hash = kHashB; },
                 [](SignedHead& x) { x.time_us += 1; }, [](SignedHead& x) { x.node = "db-2"; }}) {
            SignedHead t = h;
            edit(t);
            CHECK_FALSE(verify_head(k.public_key(), t));
        }
        // The message is tagged: a head is never another signed document.
        CHECK(head_message(h).rfind("jitgate audit head v1\n", 0) == 0);
        CHECK(head_message(h).find(R"("hash":")" + kHashA +
                                   R"(","node":"db-1","seq":42,"time_us":1000000})") != std::string::npos);
        auto back = parse_head(head_json(h));
        REQUIRE(back);
        CHECK(verify_head(k.public_key(), *back));
    }

    TEST_CASE("parse_head refuses what is not a head") {
        const json good = head_json(head(key_of(1), 3, kHashA, 5));
        CHECK(parse_head(good));
        for (const char* field : {"node", "seq", "hash", "time_us", "sig"}) {
            json j = good;
            j.erase(field);
            CHECK_FALSE(parse_head(j));
        }
        json j = good;
        j["hash"] = std::string(64, 'G');
        CHECK_FALSE(parse_head(j));
        j = good;
        j["seq"] = -1;
        CHECK_FALSE(parse_head(j));
        j = good;
        j["node"] = "bad name/";
        CHECK_FALSE(parse_head(j));
        CHECK_FALSE(parse_head(json::array()));
    }

    TEST_CASE("a consistent history and ack: no problem") {
        const auto k = key_of(1);
        const auto h1 = head(k, 10, kHashA, 1'000'000), h2 = head(k, 20, kHashB, 5'000'000),
                   h3 = head(k, 30, kHashC, 9'000'000);
        const auto r = check_heads("db-1", ack_with(h3), {entry(h1), entry(h2), entry(h3)}, {k.public_key()});
        CHECK(r.problems.empty());
        REQUIRE(r.head);
        CHECK(r.head->seq == 30);
        CHECK(r.history == 3);
    }

    TEST_CASE("a head that goes backwards is named: the ack behind the history, or a lower seq later") {
        const auto k = key_of(1);
        const auto h1 = head(k, 10, kHashA, 1'000'000), h2 = head(k, 20, kHashB, 5'000'000);
        // The log cut to seq 18 and the node started again.
        const auto cut = head(k, 18, kHashC, 60'000'000);
        auto r = check_heads("db-1", ack_with(cut), {entry(h1), entry(h2), entry(cut)}, {k.public_key()});
        CHECK(mentions(r, "went backwards"));
        CHECK(mentions(r, "seq 18"));
        // The history alone: seq 18 published after seq 20.
        r = check_heads("db-1", ack_with(head(k, 25, kHashA, 70'000'000)), {entry(h1), entry(h2), entry(cut)},
                        {k.public_key()});
        CHECK(mentions(r, "seq 18 was published"));
        // An old signed head put back into the ack (replayed).
        r = check_heads("db-1", ack_with(h1), {entry(h1), entry(h2)}, {k.public_key()});
        CHECK(mentions(r, "went backwards"));
        CHECK(mentions(r, "an old head was put back"));
    }

    TEST_CASE("a seq whose hash changes is named") {
        const auto k = key_of(1);
        const auto old = head(k, 20, kHashA, 1'000'000), now = head(k, 20, kHashB, 9'000'000);
        const auto r = check_heads("db-1", ack_with(now), {entry(old)}, {k.public_key()});
        CHECK(mentions(r, "seq 20 was published with two hashes"));
        // Written over in etcd (the node writes each entry once).
        const auto w = check_heads("db-1", ack_with(old), {entry(old, 2)}, {k.public_key()});
        CHECK(mentions(w, "written over"));
    }

    TEST_CASE("forged, moved and unverifiable heads are named") {
        const auto k = key_of(1), intruder = key_of(9);
        const auto good = head(k, 10, kHashA, 1'000'000);
        auto r = check_heads("db-1", ack_with(head(intruder, 99, kHashB, 2'000'000)), {entry(good)},
                             {k.public_key()});
        CHECK(mentions(r, "audit_head in its ack (seq 99) is not signed by its key"));
        r = check_heads("db-1", ack_with(good), {entry(head(intruder, 12, kHashB, 2'000'000))},
                        {k.public_key()});
        // A history entry no listed key signs judges nothing: noted apart, not a problem
        // (an etcd writer's forgery, or a head signed by a key since rotated out).
        CHECK(r.problems.empty());
        REQUIRE(r.unverified.size() == 1);
        CHECK(r.unverified_count == 1);
        CHECK(r.unverified[0].find("heads/db-1/00000000000000000012 is signed by no key listed for db-1") !=
              std::string::npos);
        CHECK(r.history == 0);
        HeadEntry moved = entry(good);
        moved.key_seq = 11;
        r = check_heads("db-1", ack_with(good), {moved}, {k.public_key()});
        CHECK(mentions(r, "copied there"));
        r = check_heads("db-1", ack_with(good), {}, {});
        CHECK(mentions(r, "no key is known"));
        r = check_heads("db-1", json{{"node", "db-1"}}.dump(), {}, {k.public_key()});
        CHECK(mentions(r, "carries no signed audit head"));
    }

    TEST_CASE("audit verify holds the log to the heads its node published") {
        ChainHead h;
        const auto lines = chain(10, h);
        std::vector<std::string> first8(lines.begin(), lines.begin() + 8);
        ChainHead at8;
        chain(8, at8);
        ChainHead at10 = h;
        // Cut by two, the local head fixed to match: only the witness shows it.
        auto r = verify_with(text(first8), {{10, at10.hash, 1'000'000}}, &at8);
        CHECK_FALSE(r.ok);
        CHECK(r.problem.find("published seq 10 to the fleet") != std::string::npos);
        CHECK(r.problem.find("records 9-10 were removed") != std::string::npos);
        // The same log without the witness passes: the fix of the head file works locally.
        std::istringstream in(text(first8));
        CHECK(verify_chain({{"audit.jsonl", &in}}, &at8).ok);
        // A record at a witnessed seq with another hash: rewritten.
        r = verify_with(text(lines), {{5, kHashA, 1'000'000}});
        CHECK_FALSE(r.ok);
        CHECK(r.seq == 5);
        CHECK(r.problem.find("not the one this node published") != std::string::npos);
        // What matches passes.
        CHECK(verify_with(text(lines), {{10, at10.hash, 1'000'000}, {8, at8.hash, 0}}).ok);
    }

    TEST_CASE("heads keys: P/heads/NODE/<20 digits>") {
        CHECK(fleet::head_key("/p", "db-1", 42) == "/p/heads/db-1/00000000000000000042");
        const auto k = fleet::parse_key("/p", "/p/heads/db-1/00000000000000000042");
        CHECK(k.kind == "heads");
        CHECK(k.node == "db-1");
        CHECK(k.seq == 42);
        CHECK(fleet::parse_key("/p", "/p/heads/db-1/42").kind.empty());
        CHECK(fleet::parse_key("/p", "/p/heads/db-1/0000000000000000004x").kind.empty());
        CHECK(fleet::parse_key("/p", "/p/heads/db-1/99999999999999999999").kind.empty());
        CHECK(fleet::parse_key("/p", "/p/heads/../00000000000000000042").kind.empty());
    }
}

}  // namespace test_audit_witness
