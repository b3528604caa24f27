// `jitgate extend` in a fleet, on one node (fleet/agent_extend.cpp,
// Workflow::move_fleet_end): a grant this node applied whose document's end
// moved gets the new end in place (the same map entry, put again with the
// new CLOCK_BOOTTIME deadline), its expiry_warning armed for the new end,
// and an extend record; a grant whose deadline passed here is not brought
// back.  And an extension request's `extends` travels in its document.
#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

#include "fakes.h"
#include "fleet/agent.h"
#include "fleet/docs.h"
#include "fleet_fixtures.h"
#include "helpers.h"

namespace test_fleet_extend {
using namespace jg;
using namespace jg::testing;
using namespace jg::fleet;

namespace {

// db-1 under test; db-2 decided.  The port warns 60 s before a grant ends.
struct ExtendNode {
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

    ExtendNode() {
        dir.names = {{1000, "alice"}};
        PolicyLoad load = parse_policy(
            "[[port]]\nport = 5432\nmax_duration = \"1h\"\napprovers = [\"bob\"]\nwarn_before = \"1m\"\n",
            "node.toml");
        REQUIRE(load.ok());
        wf.set_policy(std::make_shared<const Policy>(load.policy));
    }
    // Grant 42 as db-2 writes it: started a second ago, ending `end_us`.
    void put_grant(std::int64_t start_us, std::int64_t end_us, std::int64_t rev) {
        GrantRow g;
        g.id = 42;
        g.request_id = 41;
        g.user = "alice";
        g.port = 5432;
        g.start_us = start_us;
        g.expires_us = end_us;
        g.state = "active";
        g.reason = "INC-7";
        g.approvers = {"bob"};
        json j = grant_doc(g, {"role=db", "db-2"});
        peer_trust.sign(kSigGrant, j);
        Batch b{false, rev, {KeyValue{grant_key(P, 42), j.dump(), rev, rev, 1, 0}}, {}};
        agent.on_batch(b);
    }
    GrantRow row() { return value_or_throw(store.grant(42)).value(); }
};

}  // namespace

TEST_SUITE("fleet extend") {
    TEST_CASE("a later end in the grant's document moves the deadline in place, warning armed again") {
        ExtendNode n;
        const std::int64_t start = n.clock.wall - kUs;
        n.put_grant(start, n.clock.wall + 600 * kUs, 10);
        REQUIRE(n.sink.live.count(42));
        CHECK(n.sink.live[42].expires_boot_ns == n.clock.boot + 600 * kSec);
        CHECK(n.row().warn_boot_ns == n.clock.boot + 540 * kSec);
        n.clock.advance(560);  // the warning is written
        CHECK(n.wf.warn_expiring() == 1);
        CHECK(n.row().warn_boot_ns == 0);

        // Extended by 20 minutes in etcd, 40 s before its end.
        n.put_grant(start, start + kUs + 1800 * kUs, 11);
        CHECK(n.sink.puts == std::vector<std::int64_t>{42, 42});  // put again, never removed
        CHECK(n.sink.removes.empty());
        CHECK(n.sink.live[42].expires_boot_ns == n.clock.boot + 1240 * kSec);
        const GrantRow r = n.row();
        CHECK(r.state == "active");
        CHECK(r.expires_us == start + 1801 * kUs);
        CHECK(r.warn_boot_ns == n.clock.boot + 1180 * kSec);  // warn_before the new end
        const json& ev = n.audit.last("extend");
        CHECK(ev.at("grant_id") == 42);
        CHECK(ev.at("duration_s") == 1200);
        CHECK(ev.at("old_expires_at") == rfc3339_us(start + 601 * kUs));
        CHECK(ev.at("expires_at") == rfc3339_us(start + 1801 * kUs));
        CHECK(ev.at("user") == "alice");
        // The old end passes: nothing ends; the new one does.
        n.clock.advance(60);
        CHECK(n.wf.sweep() == 0);
        n.clock.advance(1200);
        CHECK(n.wf.sweep() == 1);
        // The same version again (a full read) changes nothing more.
        n.put_grant(start, start + kUs + 1800 * kUs, 11);
        CHECK(n.audit.of("extend").size() == 1);
    }

    TEST_CASE("a wall-clock step since the grant was applied moves neither its time left nor the extension") {
        ExtendNode n;
        const std::int64_t start = n.clock.wall - kUs;
        n.put_grant(start, n.clock.wall + 600 * kUs, 10);
        REQUIRE(n.sink.live.count(42));
        const std::uint64_t deadline = n.sink.live[42].expires_boot_ns;
        n.clock.wall -= 20 * kUs;                         // NTP sets the wall clock back 20 s
        n.put_grant(start, start + kUs + 900 * kUs, 11);  // extended by five minutes
        REQUIRE(n.audit.of("extend").size() == 1);
        CHECK(n.sink.live[42].expires_boot_ns == deadline + 300 * kSec);
    }

    TEST_CASE("an end moved back past now ends the grant here (fail closed)") {
        ExtendNode n;
        const std::int64_t start = n.clock.wall - kUs;
        n.put_grant(start, n.clock.wall + 600 * kUs, 10);
        REQUIRE(n.sink.live.count(42));
        const std::uint64_t applied_boot = n.clock.boot;
        n.clock.boot += 300 * kSec;  // a suspend: 300 s left by this node's deadline, 600 s by the wall
        // A signed version 400 s earlier: still ahead by the wall, past by the node's own deadline.
        n.put_grant(start, n.clock.wall + 200 * kUs, 11);
        REQUIRE(n.sink.live.count(42));
        CHECK(n.sink.live[42].expires_boot_ns == n.clock.boot);
        CHECK(n.sink.live[42].expires_boot_ns < applied_boot + 600 * kSec);
    }

    TEST_CASE("a grant whose deadline passed here is not brought back by a later end") {
        ExtendNode n;
        const std::int64_t start = n.clock.wall - kUs;
        n.put_grant(start, n.clock.wall + 30 * kUs, 10);
        REQUIRE(n.sink.live.count(42));
        const std::uint64_t deadline = n.sink.live[42].expires_boot_ns;
        // Its kernel deadline passes before the sweep marked it (this node's
        // CLOCK_BOOTTIME ran ahead of its wall clock: a suspend).
        n.clock.boot += 31 * kSec;
        n.put_grant(start, n.clock.wall + 600 * kUs, 11);
        CHECK(n.sink.puts.size() == 1);
        CHECK(n.sink.live[42].expires_boot_ns == deadline);
        CHECK(n.row().expires_us == n.clock.wall + 30 * kUs);
        CHECK(n.audit.of("extend").empty());
        CHECK(n.audit.last("grant_rejected").at("reason").get<std::string>().find("ended on this node") !=
              std::string::npos);
        CHECK(n.wf.sweep() == 1);
        CHECK(n.row().state == "expired");
        // Ended here: the document's later end is never applied.
        n.put_grant(start, n.clock.wall + 900 * kUs, 12);
        CHECK(n.sink.puts.size() == 1);
        CHECK_FALSE(n.sink.live.count(42));
    }

    TEST_CASE("an extension request's document carries the grant it extends") {
        RequestRow r;
        r.id = 43;
        r.user = "alice";
        r.port = 5432;
        r.duration_s = 600;
        r.state = "pending";
        r.extends = 42;
        const json doc = request_doc(r, {"role=db", "web-1"});
        CHECK(doc.at("extends") == 42);
        auto back = parse_request_doc(doc.dump());
        REQUIRE_MESSAGE(back.ok(), (back.ok() ? "" : back.error()));
        CHECK(back->row.extends == 42);
        // Other requests' documents are as before, and read back with none.
        r.extends = 0;
        CHECK_FALSE(request_doc(r, {"role=db", "web-1"}).contains("extends"));
        json bad = doc;
        bad["extends"] = 0;
        CHECK_FALSE(parse_request_json(bad).ok());
        bad["extends"] = "42";
        CHECK_FALSE(parse_request_json(bad).ok());
    }

    TEST_CASE("an auto_approve rule named as the approver reads back (an auto-approved grant or extension)") {
        GrantRow g;
        g.id = 42;
        g.request_id = 41;
        g.user = "alice";
        g.port = 5432;
        g.start_us = kWall0;
        g.expires_us = kWall0 + 60 * kUs;
        g.state = "active";
        for (const std::string rule : {"auto_approve:alice", "auto_approve:@oncall"}) {
            CAPTURE(rule);
            g.approvers = {rule};
            auto back = parse_grant_doc(grant_doc(g, {"role=db", "db-2"}).dump());
            REQUIRE_MESSAGE(back.ok(), (back.ok() ? "" : back.error()));
            CHECK(back->row.approvers == std::vector<std::string>{rule});
        }
        for (const std::string bad : {"auto_approve:", "auto_approve:@", "auto_approve:al:ice",
                                      "auto_approve:a b", "Auto_approve:alice"}) {
            CAPTURE(bad);
            g.approvers = {bad};
            CHECK_FALSE(parse_grant_doc(grant_doc(g, {"role=db", "db-2"}).dump()).ok());
        }
    }
}

}  // namespace test_fleet_extend
