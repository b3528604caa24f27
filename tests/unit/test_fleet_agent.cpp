// The node agent (fleet/agent) on what etcd holds: a grant meant for this
// node is applied once; garbage under the prefix is refused with a record
// and never applied; what a refusal logs is escaped (etcd's values are
// anyone's with write access to the prefix).
#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

#include "fakes.h"
#include "fleet/agent.h"
#include "fleet/docs.h"
#include "fleet_fixtures.h"
#include "helpers.h"
#include "util/log.h"

namespace test_fleet_agent {
using namespace jg;
using namespace jg::testing;
using namespace jg::fleet;

namespace {

// Fixed keys: db-1 is the node under test, db-2 the node that decided.
struct AgentNode {
    Ed25519Key own = key_of('1'), peer = key_of('2');
    Trust trust{"db-1", own, {{"db-1", own.public_key()}, {"db-2", peer.public_key()}}};
    Trust peer_trust{"db-2", peer, {}};
    Store store = memory_store();
    NamesDirectory dir;
    FakeSink sink;
    FakeAudit audit;
    FakeClock clock;
    Workflow wf{store, dir, sink, audit, clock, "boot-A"};
    Agent agent{{P, "db-1", {{"role", "db"}}, 15, "boot-A"},
                trust,
                wf,
                store,
                audit,
                clock,
                dir,
                [](const PolicyDoc&, const Policy&, const json&) { return true; }};

    AgentNode() {
        dir.names = {{1000, "alice"}};
        PolicyLoad load = parse_policy("[[port]]\nport = 5432\napprovers = [\"bob\"]\n", "node.toml");
        REQUIRE(load.ok());
        wf.set_policy(std::make_shared<const Policy>(load.policy));
    }
    // A document as db-2 writes it (signed).
    std::string signed_by_peer(const std::string& text, const char* kind = kSigGrant) const {
        json j = json::parse(text);
        peer_trust.sign(kind, j);
        return j.dump();
    }
    void put(const std::string& key, const std::string& value, std::int64_t rev) {
        Batch b{false, rev, {KeyValue{key, value, rev, rev, 1, 0}}, {}};
        agent.on_batch(b);
    }
};

// Another agent of node db-1 on n's store (the daemon started again), trusting
// `trust`; as FleetNode::start does, it verifies everything at its first full read.
std::unique_ptr<Agent> restarted(AgentNode& n, const Trust& trust) {
    auto a = std::make_unique<Agent>(Agent::Config{P, "db-1", {{"role", "db"}}, 15, "boot-A"}, trust, n.wf,
                                     n.store, n.audit, n.clock, n.dir,
                                     [](const PolicyDoc&, const Policy&, const json&) { return true; });
    a->signers_changed();
    return a;
}

std::string a_grant(std::int64_t id, const std::string& on, std::int64_t now_us) {
    // An hour: the port's max_duration.
    return grant_doc(active_grant_row(id, now_us, 3599), {on, "db-2"}).dump();
}

}  // namespace

TEST_SUITE("fleet agent") {
    TEST_CASE("a grant for this node is applied once, with grant_applied") {
        AgentNode n;
        n.put(grant_key(P, 42), n.signed_by_peer(a_grant(42, "role=db", n.clock.wall)), 10);
        CHECK(n.sink.puts == std::vector<std::int64_t>{42});
        REQUIRE(n.sink.live.count(42));
        CHECK(n.sink.live[42].uid == 1000);
        const json& applied = n.audit.last("grant_applied");
        CHECK(applied.at("grant_id") == 42);
        CHECK(applied.at("latency_ms") == 1000);
        // Written as it was applied, not at the end of the daemon's turn.
        CHECK(n.audit.flushed == n.audit.records.size());
        // The same document again (a full read) applies nothing more.
        n.put(grant_key(P, 42), n.signed_by_peer(a_grant(42, "role=db", n.clock.wall)), 11);
        CHECK(n.sink.puts.size() == 1);
        // Its key deleted (no signed revocation): ended here, and that written at once too.
        Batch gone{false, 12, {}, {KeyValue{grant_key(P, 42), "", 12, 12, 0, 0}}};
        n.agent.on_batch(gone);
        CHECK_FALSE(n.sink.live.count(42));
        CHECK(n.audit.last("revoke_applied").at("grant_id") == 42);
        CHECK(n.audit.flushed == n.audit.records.size());
    }

    TEST_CASE("partition: an outage that ended between two ticks ends there, and grace counts again") {
        AgentNode n;
        PolicyLoad load = parse_policy(
            "[[port]]\nport = 5432\napprovers = [\"bob\"]\nfleet_mode = \"strict\"\n", "node.toml");
        REQUIRE(load.ok());
        n.wf.set_policy(std::make_shared<const Policy>(load.policy));
        n.put(grant_key(P, 42), n.signed_by_peer(a_grant(42, "role=db", n.clock.wall)), 10);
        REQUIRE(n.sink.live.count(42));
        n.agent.tick(true, "", 0);
        n.agent.tick(false, "etcd does not answer", 1);  // grace (15 s) counts from here
        CHECK(n.audit.of("fleet_disconnected").size() == 1);
        n.clock.advance(10);
        // Seen down again, but by the watcher's count it was up in between.
        n.agent.tick(false, "etcd does not answer", 2);
        CHECK(n.audit.of("fleet_reconnected").size() == 1);
        CHECK(n.audit.of("fleet_disconnected").size() == 2);
        n.clock.advance(10);  // 20 s since the first outage, 10 since this one
        n.agent.tick(false, "etcd does not answer", 2);
        CHECK(n.sink.live.count(42) == 1);
        n.clock.advance(6);  // grace of this outage over: the strict port's grant ends
        n.agent.tick(false, "etcd does not answer", 2);
        CHECK(n.sink.live.count(42) == 0);
        CHECK(n.audit.of("fleet_disconnected").size() == 2);
    }

    TEST_CASE("an ended grant's older version written back after its key was deleted is refused") {
        AgentNode n;
        const std::string active = n.signed_by_peer(a_grant(42, "role=web", n.clock.wall));
        n.put(grant_key(P, 42), active, 10);  // not for this node: seen, not applied
        std::string revoked = a_grant(42, "role=web", n.clock.wall);
        revoked.replace(revoked.find("\"active\""), 8, "\"revoked\"");
        n.put(grant_key(P, 42), n.signed_by_peer(revoked), 11);
        Batch del{false, 12, {}, {KeyValue{grant_key(P, 42), "", 12, 12, 1, 0}}};
        n.agent.on_batch(del);
        // Deleted: nothing of it is held now; the old active version comes back,
        // now naming this node.
        const std::string back = n.signed_by_peer(a_grant(42, "role=db", n.clock.wall));
        n.put(grant_key(P, 42), back, 13);
        CHECK(n.sink.puts.empty());
        REQUIRE_FALSE(n.audit.of("grant_rejected").empty());
        CHECK(n.audit.last("grant_rejected").at("reason").get<std::string>().find("saw end (revoked)") !=
              std::string::npos);
    }

    TEST_CASE("a grant no decision under the policy could make is refused with a record") {
        AgentNode n;
        std::string longer = a_grant(42, "role=db", n.clock.wall);
        const std::string end = std::to_string(n.clock.wall + 3599LL * 1000000);
        longer.replace(longer.find(end), end.size(), std::to_string(n.clock.wall + 3601LL * 1000000));
        n.put(grant_key(P, 42), n.signed_by_peer(longer), 10);
        CHECK(n.sink.puts.empty());
        REQUIRE(n.audit.of("grant_rejected").size() == 1);
        CHECK(n.audit.last("grant_rejected").at("reason").get<std::string>().find("longer than port") !=
              std::string::npos);
    }

    TEST_CASE("only a node's own signed ack says what it applied; registrations name labels until then") {
        AgentNode n;
        const std::string key = P + "/acks/db-2";
        auto ack = [](std::int64_t applied, const char* role) {
            return json{{"node", "db-2"}, {"labels", {{"role", role}}}, {"applied_revision", applied}};
        };
        auto node = [&]() -> const NodeInfo* {
            auto it = n.agent.view().nodes.find("db-2");
            return it == n.agent.view().nodes.end() ? nullptr : &it->second;
        };
        n.put(P + "/nodes/db-2", json{{"labels", {{"role", "web"}}}}.dump(), 2);
        REQUIRE(node());
        CHECK(node()->labels.at("role") == "web");
        // Unsigned, or signed by another listed node: nothing is taken from it.
        n.put(key, ack(9007199254740991, "db").dump(), 3);
        CHECK(node()->applied_revision == 0);
        CHECK_FALSE(node()->ack);
        json by_other = ack(50, "db");
        n.trust.sign(kSigAck, by_other);  // db-1's key, for db-2's ack
        n.put(key, by_other.dump(), 4);
        CHECK(node()->applied_revision == 0);
        // A signature over other bytes (applied_revision raised afterwards).
        json mine = ack(5, "db");
        n.peer_trust.sign(kSigAck, mine);
        json raised = mine;
        raised["applied_revision"] = 99;
        n.put(key, raised.dump(), 5);
        CHECK(node()->applied_revision == 0);
        n.put(key, mine.dump(), 6);
        CHECK(node()->applied_revision == 5);
        CHECK(node()->labels.at("role") == "db");
        // A registration rewritten (anyone can) no longer moves its labels.
        n.put(P + "/nodes/db-2", json{{"labels", {{"role", "web"}}}}.dump(), 7);
        CHECK(node()->labels.at("role") == "db");
        // A forged ack over it takes back what the signed one said.
        n.put(key, ack(100, "db").dump(), 8);
        CHECK(node()->applied_revision == 0);
    }

    TEST_CASE("a grant for other nodes is not applied") {
        AgentNode n;
        n.put(grant_key(P, 42), n.signed_by_peer(a_grant(42, "role=web", n.clock.wall)), 10);
        n.put(grant_key(P, 43), n.signed_by_peer(a_grant(43, "db-2", n.clock.wall)), 11);
        CHECK(n.sink.puts.empty());
        CHECK(n.audit.of("grant_applied").empty());
    }

    TEST_CASE("garbage under the prefix is refused with a record, once, and never applied") {
        AgentNode n;
        std::vector<std::string> logged;
        set_log_sink([&](std::string_view m) { logged.emplace_back(m); });
        n.put(grant_key(P, 42), "{not json", 10);
        n.put(grant_key(P, 42), "{not json", 10);  // the same version: one record
        n.put(grant_key(P, 43), n.signed_by_peer(a_grant(44, "role=db", n.clock.wall)),
              11);  // its id is not its key's
        std::string wrong = a_grant(45, "role=db", n.clock.wall);
        wrong.replace(wrong.find("\"user\":\"alice\""), 14, "\"user\":\"al ice\"");
        n.put(grant_key(P, 45), n.signed_by_peer(wrong), 12);
        set_log_sink(nullptr);
        CHECK(n.sink.puts.empty());
        const auto rejected = n.audit.of("grant_rejected");
        REQUIRE(rejected.size() == 3);
        CHECK(rejected[0].at("key") == grant_key(P, 42));
        CHECK(rejected[0].at("revision") == 10);
        CHECK(rejected[0].at("reason").get<std::string>().find("not a JSON object") != std::string::npos);
        CHECK(rejected[1].at("reason").get<std::string>().find("its id is not its key's") !=
              std::string::npos);
        CHECK(rejected[2].at("reason").get<std::string>().find("'user'") != std::string::npos);
        CHECK(logged.size() == 3);
    }

    TEST_CASE("many junk keys in one read: 100 records one by one, the rest counted in one") {
        AgentNode n;
        std::vector<std::string> said;
        set_log_sink([&](std::string_view m) { said.emplace_back(m); });
        Batch b{true, 50, {}, {}};
        for (int i = 0; i < 1000; ++i)
            b.puts.push_back(KeyValue{P + "/zz/" + std::to_string(i), "x", 40, 40, 1, 0});
        n.agent.on_batch(b);
        set_log_sink(nullptr);
        const auto recs = n.audit.of("grant_rejected");
        REQUIRE(recs.size() == 101);
        CHECK(recs.back().at("suppressed") == 900);
        CHECK(recs.back().at("reason").get<std::string>().find("900 more documents under the prefix") !=
              std::string::npos);
        CHECK(said.size() <= 102);
        // The same keys at the next full read: each recorded already, nothing more.
        n.agent.on_batch(b);
        CHECK(n.audit.of("grant_rejected").size() == 101);
    }

    TEST_CASE("a fleet policy that does not parse is refused; what is logged of it is escaped") {
        AgentNode n;
        std::vector<std::string> logged;
        set_log_sink([&](std::string_view m) { logged.emplace_back(m); });
        const std::string text =
            "[[port]]\nport = 5432\napprovers = [\"\\u001b]0;owned\\u0007\\u001b[2J\"]\n";
        n.put(policy_key(P),
              n.signed_by_peer(policy_doc({1, text, "fleet.toml", "root", n.clock.wall}).dump(), kSigPolicy),
              10);
        set_log_sink(nullptr);
        CHECK(n.agent.policy_version() == 0);
        const json& r = n.audit.last("policy_rejected");
        CHECK(r.at("key") == policy_key(P));
        REQUIRE(logged.size() == 1);
        CHECK(logged[0].find("is not a user name") != std::string::npos);
        CHECK(logged[0].find('\x1b') == std::string::npos);
        CHECK(logged[0].find('\x07') == std::string::npos);
        CHECK(logged[0].find("\\x1b") != std::string::npos);
    }
    // fleet/verified.h: what a restart spares, and what it must check again.
    TEST_CASE("a restart checks no grant signature it checked before; other bytes or signers are checked") {
        AgentNode n;
        // 70 grants: past the threshold at which a full read checks on threads.
        std::vector<KeyValue> kvs;
        for (std::int64_t id = 100; id < 170; ++id)
            kvs.push_back(KeyValue{grant_key(P, id), n.signed_by_peer(a_grant(id, "role=db", n.clock.wall)),
                                   10, 10, 1, 0});
        Batch first{true, 10, kvs, {}};
        n.agent.on_batch(first);
        CHECK(n.agent.signatures_checked() == 70);
        CHECK(n.agent.checks_kept() == 70);
        CHECK(n.sink.live.size() == 70);
        n.agent.tick(true, "");  // written to the store

        // Started again: the same documents, none checked.
        auto again = restarted(n, n.trust);
        Batch same{true, 11, kvs, {}};
        again->on_batch(same);
        CHECK(again->signatures_checked() == 0);
        CHECK(again->checks_kept() == 70);
        CHECK(n.sink.live.size() == 70);
        CHECK(n.audit.of("grant_rejected").empty());

        // One document's bytes changed without its signer (a forgery in etcd),
        // one re-signed (a real change), one alone in a batch of its own.
        json forged = json::parse(kvs[0].value);
        forged["reason"] = "forged";
        kvs[0].value = forged.dump();
        kvs[1].value = n.signed_by_peer(a_grant(101, "role=web", n.clock.wall));
        kvs[0].mod_revision = kvs[1].mod_revision = 12;
        auto third = restarted(n, n.trust);
        Batch changed{true, 12, kvs, {}};
        third->on_batch(changed);
        CHECK(third->signatures_checked() == 2);
        REQUIRE(n.audit.of("grant_rejected").size() == 1);
        CHECK(n.audit.last("grant_rejected").at("key") == grant_key(P, 100));
        CHECK(n.audit.last("grant_rejected").at("reason").get<std::string>().find("does not verify") !=
              std::string::npos);
        CHECK(third->checks_kept() == 69);  // the forgery is never kept
        json f = json::parse(n.signed_by_peer(a_grant(170, "role=db", n.clock.wall)));
        f["reason"] = "forged";
        Batch one{false, 13, {KeyValue{grant_key(P, 170), f.dump(), 13, 13, 1, 0}}, {}};
        third->on_batch(one);
        CHECK(third->signatures_checked() == 3);
        CHECK(n.audit.of("grant_rejected").size() == 2);
        CHECK_FALSE(n.sink.live.count(170));
        third->tick(true, "");

        // Another list of signers: every document is checked against it.
        const Ed25519Key other = key_of('3');
        Trust wider{
            "db-1",
            n.own,
            {{"db-1", n.own.public_key()}, {"db-2", n.peer.public_key()}, {"db-3", other.public_key()}}};
        CHECK(wider.fingerprint() != n.trust.fingerprint());
        auto fourth = restarted(n, wider);
        Batch later{true, 14, kvs, {}};
        fourth->on_batch(later);
        CHECK(fourth->signatures_checked() == 70);
    }
    // What a held version carries into the checks kept: only bytes that verified.
    TEST_CASE(
        "a grant kept unverified (its signer removed) is never kept as checked: a restart refuses it again") {
        AgentNode n;
        std::vector<KeyValue> kvs{KeyValue{
            grant_key(P, 100), n.signed_by_peer(a_grant(100, "role=db", n.clock.wall)), 10, 10, 1, 0}};
        Batch b1{true, 10, kvs, {}};
        n.agent.on_batch(b1);
        REQUIRE(n.sink.live.count(100));
        n.trust.set_signers({{"db-1", n.own.public_key()}});  // db-2 removed (a reload)
        n.agent.signers_changed();
        Batch b2{true, 11, kvs, {}};
        n.agent.on_batch(b2);  // refused, kept: applied here before
        CHECK(n.audit.of("grant_rejected").size() == 1);
        Batch b3{true, 12, kvs, {}};
        n.agent.on_batch(b3);  // the periodic full read: held as it is
        CHECK(n.agent.checks_kept() == 0);
        n.agent.tick(true, "");
        auto again = restarted(n, n.trust);
        Batch b4{true, 13, kvs, {}};
        again->on_batch(b4);
        CHECK(again->signatures_checked() == 1);
        CHECK(n.audit.of("grant_rejected").size() == 2);  // the operator is told again
    }

    TEST_CASE("other bytes under the revision held (etcd restored) are never kept as checked") {
        AgentNode n;
        n.dir.names = {{1000, "alice"}, {1001, "mallory"}};
        const std::string real = n.signed_by_peer(a_grant(100, "role=db", n.clock.wall));
        Batch b1{true, 10, {KeyValue{grant_key(P, 100), real, 10, 10, 1, 0}}, {}};
        n.agent.on_batch(b1);
        REQUIRE(n.sink.live.count(100));
        json forged = json::parse(real);
        forged["user"] = "mallory";
        const std::vector<KeyValue> kvs{KeyValue{grant_key(P, 100), forged.dump(), 10, 10, 1, 0}};
        Batch b2{true, 20, kvs, {}};  // the same revision, other bytes
        n.agent.on_batch(b2);
        CHECK(n.agent.checks_kept() == 0);
        n.agent.tick(true, "");
        auto again = restarted(n, n.trust);
        for (std::int64_t rev : {21, 22}) {  // the first full read, and the next one
            Batch b{true, rev, kvs, {}};
            again->on_batch(b);
        }
        CHECK(again->signatures_checked() >= 1);
        CHECK(again->checks_kept() == 0);
        CHECK_FALSE((n.sink.live.count(100) && n.sink.live[100].uid == 1001));
    }
    TEST_CASE("the periodic full read keeps every check (10 grants checked one by one, 70 on threads)") {
        for (std::int64_t count : {10, 70}) {
            CAPTURE(count);
            AgentNode n;
            std::vector<KeyValue> kvs;
            for (std::int64_t id = 100; id < 100 + count; ++id)
                kvs.push_back(KeyValue{grant_key(P, id),
                                       n.signed_by_peer(a_grant(id, "role=db", n.clock.wall)), 10, 10, 1, 0});
            for (std::int64_t rev : {10, 11, 12}) {  // the first full read, then the same documents twice
                Batch b{true, rev, kvs, {}};
                n.agent.on_batch(b);
            }
            CHECK(n.agent.signatures_checked() == std::uint64_t(count));
            CHECK(n.agent.checks_kept() == std::size_t(count));
            n.agent.tick(true, "");
            auto again = restarted(n, n.trust);
            Batch b{true, 13, kvs, {}};
            again->on_batch(b);
            CHECK(again->signatures_checked() == 0);
            CHECK(again->signatures_spared() == std::uint64_t(count));
            CHECK(n.sink.live.size() == std::size_t(count));
        }
    }
}

}  // namespace test_fleet_agent
