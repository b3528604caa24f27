// Ending a grant ends the TCP connections it admitted: which grant each cut
// connection is counted for, when the kernel is asked to cut at all, and
// what the revoke/expire records say.
#include <doctest/doctest.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/keys.h"
#include "core/policy.h"
#include "core/store.h"
#include "core/workflow.h"
#include "fakes.h"
#include "wire_op.h"

namespace test_cut {
using namespace jg;
using namespace jg::testing;

namespace {

const char* kPolicy = R"(
[[port]]
name = "cut"
port = 5432
proto = "both"
approvers = ["alice"]
allow_prefix = { ipv4 = 24 }
[[port.auto_approve]]
user = "rita"
max_duration = "1h"

[[port]]
name = "drained"
port = 5433
approvers = ["alice"]
on_expiry = "drain"
[[port.auto_approve]]
user = "rita"
max_duration = "1h"

[[port]]
name = "watched"
port = 5434
mode = "audit"
approvers = ["alice"]
[[port.auto_approve]]
user = "rita"
max_duration = "1h"
)";

const Caller kRita{1000, 7, "rita"};
const Caller kSam{1001, 8, "sam"};

struct Env {
    Store store = memory_store();
    FakeDirectory dir;
    FakeSink sink;
    FakeAudit audit;
    FakeClock clock;
    Workflow wf{store, dir, sink, audit, clock, "boot-A"};

    Env() {
        auto load = parse_policy(kPolicy, "cut.toml");
        for (auto& e : load.errors) MESSAGE(e);
        REQUIRE(load.ok());
        wf.set_policy(std::make_shared<Policy>(load.policy));
    }
    // An auto-approved grant for rita: its id.
    std::int64_t grant(int port, const char* proto, std::int64_t secs, const char* from = nullptr) {
        json a = {{"port", port}, {"proto", proto}, {"duration_s", secs}, {"reason", "cut test"}};
        if (from) a["from"] = from;
        Reply r = op(&Workflow::request, wf, kRita, a);
        INFO(r.message);
        REQUIRE(r.ok);
        REQUIRE(r.result.at("state") == "granted");
        return r.result.at("grant_id").get<std::int64_t>();
    }
    json last(const char* type) {
        auto v = audit.of(type);
        REQUIRE(!v.empty());
        return v.back();
    }
};

CutConnection local_conn(std::int64_t grant_id, std::uint32_t uid, std::uint16_t port) {
    CutConnection c;
    c.grant_id = grant_id;
    c.local = true;
    c.uid = uid;
    c.port = port;
    return c;
}

CutConnection remote_conn(std::int64_t grant_id, const char* peer, std::uint16_t port) {
    CutConnection c;
    c.grant_id = grant_id;
    c.local = false;
    auto a = parse_addr(peer);
    REQUIRE(a.ok());
    c.peer = *a;
    c.port = port;
    return c;
}

}  // namespace

TEST_CASE("an expiring TCP grant is cut once and counts the connections it admitted") {
    Env e;
    const auto g1 = e.grant(5432, "tcp", 60);
    const auto g2 = e.grant(5432, "tcp", 60, "203.0.113.7");
    // Both end in the same sweep: one cut pass for the two.
    e.sink.next_cut = {local_conn(g1, 1000, 5432), local_conn(g1, 1000, 5432),
                       remote_conn(g2, "203.0.113.7", 5432)};
    e.clock.advance(61);
    CHECK(e.wf.sweep() == 2);
    CHECK(e.sink.cut_calls == 1);
    auto expires = e.audit.of("expire");
    REQUIRE(expires.size() == 2);
    std::map<std::int64_t, int> by_grant;
    for (auto& r : expires)
        by_grant[r.at("grant_id").get<std::int64_t>()] = r.at("connections_ended").get<int>();
    CHECK(by_grant[g1] == 2);
    CHECK(by_grant[g2] == 1);
    CHECK(e.wf.take_stray_cuts().empty());
}

TEST_CASE("a cut connection without a grant id is counted for the grant of its principal") {
    Env e;
    const auto local = e.grant(5432, "tcp", 60);
    const auto net = e.grant(5432, "tcp", 60, "198.51.100.0/24");
    e.sink.next_cut = {local_conn(0, 1000, 5432),                      // rita's socket, id forgotten
                       local_conn(0, 1001, 5432),                      // sam's: no grant of this batch
                       remote_conn(0, "198.51.100.9", 5432),           // inside the /24
                       remote_conn(0, "203.0.113.9", 5432),            // outside it
                       remote_conn(0, "::ffff:198.51.100.10", 5432)};  // the same IPv4 peer, v4-mapped form
    e.clock.advance(61);
    e.wf.sweep();
    std::map<std::int64_t, int> by_grant;
    for (auto& r : e.audit.of("expire"))
        by_grant[r.at("grant_id").get<std::int64_t>()] = r.at("connections_ended").get<int>();
    CHECK(by_grant[local] == 1);
    CHECK(by_grant[net] == 2);
    auto strays = e.wf.take_stray_cuts();
    REQUIRE(strays.size() == 2);
    CHECK(strays[0].uid == 1001);
    CHECK(format_addr(strays[1].peer) == "203.0.113.9");
    CHECK(e.wf.take_stray_cuts().empty());  // taken once
}

TEST_CASE("a revoke cuts at once and says how many connections it ended") {
    Env e;
    const auto g = e.grant(5432, "tcp", 600);
    e.sink.next_cut = {local_conn(g, 1000, 5432)};
    Reply r = op(&Workflow::revoke, e.wf, kRita, json{{"id", g}});
    REQUIRE(r.ok);
    CHECK(e.sink.cut_calls == 1);
    const json rec = e.last("revoke");
    CHECK(rec.at("grant_id") == g);
    CHECK(rec.at("connections_ended") == 1);
    CHECK(rec.at("ended_by") == "rita");
}

TEST_CASE("drain, audit mode and UDP grants end without a cut pass") {
    Env e;
    e.grant(5433, "tcp", 60);
    e.grant(5434, "tcp", 60);
    e.grant(5432, "udp", 60);
    e.clock.advance(61);
    CHECK(e.wf.sweep() == 3);
    CHECK(e.sink.cut_calls == 0);
    REQUIRE(e.audit.of("expire").size() == 3);
    for (auto& r : e.audit.of("expire")) {
        if (r.at("proto") == "tcp")
            CHECK(r.at("connections_ended") == 0);
        else
            CHECK_FALSE(r.contains("connections_ended"));  // UDP has no connections to end
    }
}

TEST_CASE("the soonest grant end is what the daemon waits for") {
    Env e;
    CHECK_FALSE(e.wf.next_expiry().has_value());
    e.grant(5432, "tcp", 600);
    e.grant(5433, "tcp", 30);
    const std::uint64_t soonest = e.clock.boot + 30 * kSec;
    REQUIRE(e.wf.next_expiry().has_value());
    CHECK(*e.wf.next_expiry() == soonest);
    e.clock.advance(30);
    e.wf.sweep();
    CHECK(*e.wf.next_expiry() == soonest + 570 * kSec);
}

TEST_CASE("net_contains: a prefix holds its addresses, in their own family only") {
    auto net = parse_source("198.51.100.0/24");
    REQUIRE(net.ok());
    auto in = parse_addr("198.51.100.200");
    auto out = parse_addr("198.51.101.1");
    auto v6 = parse_addr("2001:db8::1");
    REQUIRE((in.ok() && out.ok() && v6.ok()));
    CHECK(net_contains(*net, *in));
    CHECK_FALSE(net_contains(*net, *out));
    CHECK_FALSE(net_contains(*net, *v6));
    auto net6 = parse_source("2001:db8::/64");
    REQUIRE(net6.ok());
    CHECK(net_contains(*net6, *v6));
    CHECK_FALSE(net_contains(*net6, *in));
    auto host = parse_source("203.0.113.7");
    auto same = parse_addr("::ffff:203.0.113.7");
    REQUIRE((host.ok() && same.ok()));
    CHECK(net_contains(*host, *same));
}

TEST_CASE("a connection admitted under a replaced grant is counted for the grant that replaced it") {
    Env e;
    const auto first = e.grant(5432, "tcp", 60);
    const auto second = e.grant(5432, "tcp", 600);  // renews rita's grant: first is replaced
    REQUIRE(first != second);
    // The socket still carries the id of the grant it connected under.
    e.sink.next_cut = {local_conn(first, 1000, 5432)};
    Reply r = op(&Workflow::revoke, e.wf, kRita, json{{"id", second}});
    REQUIRE(r.ok);
    CHECK(e.last("revoke").at("grant_id") == second);
    CHECK(e.last("revoke").at("connections_ended") == 1);
    CHECK(e.wf.take_stray_cuts().empty());
}

}  // namespace test_cut
