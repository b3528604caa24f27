// Extending a grant (jitgate extend) and the expiry_warning before a grant
// ends (design.md §9), against the workflow's fakes.
#include <doctest/doctest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "cli/app.h"
#include "core/clock.h"
#include "core/policy.h"
#include "core/protocol.h"
#include "core/store.h"
#include "core/workflow.h"
#include "fakes.h"
#include "wire_op.h"

namespace test_extend {
using namespace jg;
using namespace jg::testing;

namespace {

const char* kPolicy = R"(
[[port]]
name = "db"
port = 5432
max_duration = "1h"
approvers = ["alice", "@dba", "rita"]
warn_before = "2m"

[[port]]
name = "pair"
port = 6000
max_duration = "2h"
approvers = ["alice", "bob"]
approvals_required = 2

[[port]]
name = "self"
port = 7000
approvers = ["rita", "alice"]
self_approve = true
require_reason = false

[[port]]
name = "auto"
port = 8000
max_duration = "1h"
approvers = ["alice"]

[[port.auto_approve]]
group = "oncall"
max_duration = "15m"

[[port]]
name = "quiet"
port = 9000
approvers = ["alice"]
warn_before = "0s"
)";

const Caller kReq{1000, 4242, "rita"};
const Caller kAlice{1001, 11, "alice"};
const Caller kBob{1002, 12, "bob"};
const Caller kEve{1005, 15, "eve"};
const Caller kOlly{1006, 16, "olly"};  // in group oncall

Store memory_store() {
    auto s = Store::open(":memory:");
    REQUIRE(s.ok());
    return std::move(*s);
}

struct Env {
    Store store = memory_store();
    FakeDirectory dir;
    FakeSink sink;
    FakeAudit audit;
    FakeClock clock;
    std::unique_ptr<Workflow> wf = make("boot-A");

    std::unique_ptr<Workflow> make(const std::string& boot) {
        auto w = std::make_unique<Workflow>(store, dir, sink, audit, clock, boot);
        auto load = parse_policy(kPolicy, "unit.toml");
        for (auto& e : load.errors) MESSAGE(e);
        REQUIRE(load.ok());
        w->set_policy(std::make_shared<Policy>(load.policy));
        dir.groups["olly"] = {"oncall"};
        return w;
    }

    Reply request(const Caller& c, int port, std::int64_t dur) {
        return op(&Workflow::request, *wf, c,
                  json{{"port", port}, {"proto", "tcp"}, {"duration_s", dur}, {"reason", "fix prod"}});
    }
    Reply approve(const Caller& c, std::int64_t id) {
        return op(&Workflow::approve, *wf, c, json{{"id", id}});
    }
    Reply extend(const Caller& c, std::int64_t id, std::int64_t dur) {
        return op(&Workflow::extend, *wf, c, json{{"id", id}, {"duration_s", dur}});
    }
    // A grant of kReq on `port` approved by alice: {request id, grant id}.
    std::pair<std::int64_t, std::int64_t> granted(int port, std::int64_t dur, const Caller& by = kAlice) {
        Reply r = request(kReq, port, dur);
        REQUIRE(r.ok);
        const std::int64_t id = r.result.at("request_id").get<std::int64_t>();
        Reply a = approve(by, id);
        INFO("message: ", a.message);
        REQUIRE(a.ok);
        REQUIRE(a.result.at("state") == "granted");
        return {id, a.result.at("grant_id").get<std::int64_t>()};
    }
    std::int64_t expires_boot(std::int64_t gid) {
        return std::int64_t(must(store.grant(gid))->expires_boot_ns);
    }
};

void check_fail(const Reply& r, const std::string& code, const std::string& in_message) {
    CHECK_FALSE(r.ok);
    CHECK(r.code == code);
    INFO("message: ", r.message);
    CHECK(r.message.find(in_message) != std::string::npos);
}

}  // namespace

TEST_SUITE("extend") {
    TEST_CASE("an extension is a pending request, approved like one; the grant's end moves in place") {
        Env e;
        auto [rid, gid] = e.granted(5432, 600);
        e.clock.advance(300);
        Reply x = e.extend(kReq, gid, 900);
        INFO("message: ", x.message);
        REQUIRE(x.ok);
        CHECK(x.result.at("state") == "pending");
        CHECK(x.result.at("extends") == gid);
        const std::int64_t xid = x.result.at("request_id").get<std::int64_t>();
        CHECK(xid != rid);
        CHECK(x.result.at("eligible_approvers") == json{"alice", "@dba", "rita"});
        CHECK(e.audit.last("request").at("extends") == gid);
        CHECK(e.audit.last("request").at("reason") == "fix prod");  // the grant's, when none is given

        // Self-approval is refused as for any request (rita approves port db,
        // whose self_approve is false).
        check_fail(e.approve(kReq, xid), code::kForbidden, "cannot approve your own request");
        check_fail(e.approve(kEve, xid), code::kForbidden, "not an approver");

        const std::size_t puts = e.sink.puts.size();
        Reply a = e.approve(kAlice, xid);
        INFO("message: ", a.message);
        REQUIRE(a.ok);
        CHECK(a.result.at("state") == "granted");
        CHECK(a.result.at("grant_id") == gid);
        CHECK(a.result.at("expires_at") == rfc3339_us(kWall0 + (600 + 900) * kUs));
        // The same grant, its map entry written again (an update), never removed.
        CHECK(e.sink.puts.size() == puts + 1);
        CHECK(e.sink.puts.back() == gid);
        CHECK(e.sink.removes.empty());
        CHECK(e.sink.live.at(gid).expires_boot_ns == kBoot0 + 1500 * kSec);
        auto g = must(e.store.grant(gid));
        CHECK(g->state == "active");
        CHECK(g->expires_us == kWall0 + 1500 * kUs);
        CHECK(g->request_id == rid);

        const json& ev = e.audit.last("extend");
        CHECK(ev.at("grant_id") == gid);
        CHECK(ev.at("request_id") == xid);
        CHECK(ev.at("approvers") == json{"alice"});
        CHECK(ev.at("duration_s") == 900);
        CHECK(ev.at("old_expires_at") == rfc3339_us(kWall0 + 600 * kUs));
        CHECK(ev.at("expires_at") == rfc3339_us(kWall0 + 1500 * kUs));
        CHECK(ev.at("user") == "rita");

        // The timers follow: not due at the old end, due at the new one.
        e.clock.advance(300);  // the old end
        CHECK(e.wf->sweep() == 0);
        CHECK(e.wf->next_expiry() == kBoot0 + 1500 * kSec);
        e.clock.advance(900);
        CHECK(e.wf->sweep() == 1);
        CHECK(must(e.store.grant(gid))->state == "expired");
    }

    TEST_CASE("the id of the request that led to the grant works too") {
        Env e;
        auto [rid, gid] = e.granted(5432, 600);
        Reply x = e.extend(kReq, rid, 60);
        REQUIRE(x.ok);
        CHECK(x.result.at("extends") == gid);
    }

    TEST_CASE("max_duration counts from the grant's start") {
        Env e;
        auto [rid, gid] = e.granted(5432, 1800);
        e.clock.advance(1000);
        check_fail(e.extend(kReq, gid, 1801), code::kRefused, "ask for 30m or less");
        CHECK(e.extend(kReq, gid, 1800).ok);
        // Already as long as the port allows: nothing more.
        Env f;
        auto [rid2, gid2] = f.granted(5432, 3600);
        check_fail(f.extend(kReq, gid2, 60), code::kRefused, "the most port 'db' allows");
    }

    TEST_CASE("two extensions approved: the second is capped at max_duration from the start") {
        Env e;
        auto [rid, gid] = e.granted(5432, 1800);
        const auto x1 = e.extend(kReq, gid, 1200).result.at("request_id").get<std::int64_t>();
        const auto x2 = e.extend(kReq, gid, 1200).result.at("request_id").get<std::int64_t>();
        REQUIRE(e.approve(kAlice, x1).ok);
        Reply a2 = e.approve(kAlice, x2);
        REQUIRE(a2.ok);
        CHECK(must(e.store.grant(gid))->expires_us == kWall0 + 3600 * kUs);
        CHECK(e.audit.last("extend").at("duration_s") == 600);
    }

    TEST_CASE("approvals_required and self_approve apply as to a request") {
        Env e;
        Reply r = e.request(kReq, 6000, 600);
        const std::int64_t id = r.result.at("request_id").get<std::int64_t>();
        REQUIRE(e.approve(kAlice, id).ok);
        Reply g = e.approve(kBob, id);
        REQUIRE(g.ok);
        const std::int64_t gid = g.result.at("grant_id").get<std::int64_t>();
        const auto xid = e.extend(kReq, gid, 600).result.at("request_id").get<std::int64_t>();
        Reply one = e.approve(kAlice, xid);
        REQUIRE(one.ok);
        CHECK(one.result.at("state") == "pending");
        CHECK(must(e.store.grant(gid))->expires_us == kWall0 + 600 * kUs);
        Reply two = e.approve(kBob, xid);
        REQUIRE(two.ok);
        CHECK(two.result.at("state") == "granted");
        CHECK(must(e.store.grant(gid))->expires_us == kWall0 + 1200 * kUs);
        CHECK(e.audit.last("extend").at("approvers") == json{"alice", "bob"});

        // self_approve = true: the holder approves their own extension.
        auto [rid7, gid7] = e.granted(7000, 600);
        const auto x7 = e.extend(kReq, gid7, 60).result.at("request_id").get<std::int64_t>();
        Reply self = e.approve(kReq, x7);
        INFO("message: ", self.message);
        REQUIRE(self.ok);
        CHECK(self.result.at("state") == "granted");
    }

    TEST_CASE("auto_approve extends at once while the grant stays within its cap") {
        Env e;
        Reply r = e.request(kOlly, 8000, 600);
        REQUIRE(r.result.at("state") == "granted");
        const std::int64_t gid = r.result.at("grant_id").get<std::int64_t>();
        Reply x = op(&Workflow::extend, *e.wf, kOlly, json{{"id", gid}, {"duration_s", 300}});
        REQUIRE(x.ok);
        CHECK(x.result.at("state") == "granted");
        CHECK(x.result.at("decided_by") == "auto_approve:@oncall");
        CHECK(must(e.store.grant(gid))->expires_us == kWall0 + 900 * kUs);
        // 15m from the start at most: beyond, an approver decides.
        Reply over = op(&Workflow::extend, *e.wf, kOlly, json{{"id", gid}, {"duration_s", 60}});
        REQUIRE(over.ok);
        CHECK(over.result.at("state") == "pending");
    }

    TEST_CASE("only the holder may ask; an ended grant is refused with one sentence") {
        Env e;
        auto [rid, gid] = e.granted(5432, 600);
        check_fail(e.extend(kAlice, gid, 60), code::kForbidden, "only the holder of grant");
        check_fail(e.extend(kReq, 999, 60), code::kNotFound, "there is no grant or request 999");
        e.clock.advance(600);
        e.wf->sweep();
        Reply x = e.extend(kReq, gid, 60);
        check_fail(x, code::kConflict, "has already ended (expired)");
        CHECK(std::count(x.message.begin(), x.message.end(), '.') <= 1);
    }

    TEST_CASE("a grant that ends before its extension is approved: the extension is rejected") {
        Env e;
        auto [rid, gid] = e.granted(5432, 600);
        const auto xid = e.extend(kReq, gid, 60).result.at("request_id").get<std::int64_t>();
        e.clock.advance(600);
        e.wf->sweep();  // the grant expires; the extension request is still pending
        Reply a = e.approve(kAlice, xid);
        check_fail(a, code::kConflict, "ended before its extension was decided");
        CHECK(must(e.store.request(xid))->state == "rejected");
        CHECK(e.sink.live.count(gid) == 0);  // not put back
    }
}

TEST_SUITE("expiry_warning") {
    TEST_CASE("written once, warn_before before the end, with the time left") {
        Env e;
        auto [rid, gid] = e.granted(5432, 600);
        e.clock.advance(479);
        CHECK(e.wf->warn_expiring() == 0);
        e.clock.advance(1);  // 600 - 120
        CHECK(e.wf->warn_expiring() == 1);
        const json& w = e.audit.last("expiry_warning");
        CHECK(w.at("grant_id") == gid);
        CHECK(w.at("request_id") == rid);
        CHECK(w.at("port") == 5432);
        CHECK(w.at("user") == "rita");
        CHECK(w.at("expires_at") == rfc3339_us(kWall0 + 600 * kUs));
        CHECK(w.at("remaining_s") == 120);
        e.clock.advance(30);
        CHECK(e.wf->warn_expiring() == 0);  // once
        CHECK(e.audit.of("expiry_warning").size() == 1);
    }

    TEST_CASE("not repeated, nor lost, across a restart of jitgated") {
        Env e;
        e.granted(5432, 600);
        e.granted(7000, 600);  // default warn_before 5m
        e.clock.advance(500);
        CHECK(e.wf->warn_expiring() == 2);
        // The same boot: a new daemon on the same store.
        e.wf = e.make("boot-A");
        e.wf->rebase_boot();
        CHECK(e.wf->warn_expiring() == 0);
        CHECK(e.audit.of("expiry_warning").size() == 2);

        // A warning not yet written when the daemon stopped is written after
        // its start, in another boot too (re-based with the grant).
        Env f;
        f.granted(5432, 600);
        f.clock.advance(100);
        f.wf->record_stop();
        f.clock.boot = kBoot0 / 2;  // a reboot: CLOCK_BOOTTIME starts again
        f.clock.wall += 10 * kUs;
        f.wf = f.make("boot-B");
        f.wf->rebase_boot();
        CHECK(f.wf->warn_expiring() == 0);
        f.clock.advance(600 - 110 - 120);
        CHECK(f.wf->warn_expiring() == 1);
        CHECK(f.audit.last("expiry_warning").at("remaining_s") == 120);
        f.wf = f.make("boot-B");
        CHECK(f.wf->warn_expiring() == 0);
    }

    TEST_CASE("no warning for a grant no longer than warn_before, nor where warn_before is 0s") {
        Env e;
        e.granted(5432, 120);
        e.granted(9000, 3600);
        for (int i = 0; i < 4000; i += 10) {
            e.clock.advance(10);
            e.wf->warn_expiring();
        }
        CHECK(e.audit.of("expiry_warning").empty());
    }

    TEST_CASE("an extension re-arms the warning for the new end") {
        Env e;
        auto [rid, gid] = e.granted(5432, 600);
        e.clock.advance(500);
        CHECK(e.wf->warn_expiring() == 1);
        const auto xid = e.extend(kReq, gid, 600).result.at("request_id").get<std::int64_t>();
        REQUIRE(e.approve(kAlice, xid).ok);
        CHECK(e.wf->warn_expiring() == 0);
        e.clock.advance(600 - 120 + 100 - 1);  // just before new end - warn_before
        CHECK(e.wf->warn_expiring() == 0);
        e.clock.advance(1);
        CHECK(e.wf->warn_expiring() == 1);
        CHECK(e.audit.last("expiry_warning").at("expires_at") == rfc3339_us(kWall0 + 1200 * kUs));
    }

    TEST_CASE("policy: warn_before is a duration, 0s turns it off, default 5m") {
        auto ok = parse_policy("[[port]]\nport = 1\napprovers = [\"a\"]\n", "p.toml");
        REQUIRE(ok.ok());
        CHECK(ok.policy.ports[0].warn_before_s == 300);
        auto bad =
            parse_policy("[[port]]\nport = 1\napprovers = [\"a\"]\nwarn_before = \"soon\"\n", "p.toml");
        CHECK_FALSE(bad.ok());
        auto off = parse_policy("[[port]]\nport = 1\napprovers = [\"a\"]\nwarn_before = \"0s\"\n", "p.toml");
        REQUIRE(off.ok());
        CHECK(off.policy.ports[0].warn_before_s == 0);
    }
}

TEST_SUITE("extend on the wire and the command line") {
    TEST_CASE("op extend: id, duration_s and an optional reason, each checked") {
        auto ok = parse_as<ExtendArgs>(json{{"id", 7}, {"duration_s", 900}, {"reason", "still on it"}});
        REQUIRE(std::holds_alternative<ExtendArgs>(ok));
        CHECK(std::get<ExtendArgs>(ok).id == 7);
        CHECK(std::get<ExtendArgs>(ok).duration_s == 900);
        CHECK(std::get<ExtendArgs>(ok).reason == "still on it");
        auto zero = parse_as<ExtendArgs>(json{{"id", 7}, {"duration_s", 0}});
        REQUIRE(std::holds_alternative<OpError>(zero));
        CHECK(std::get<OpError>(zero).code == code::kInvalid);
        auto ctl = parse_as<ExtendArgs>(json{{"id", 7}, {"duration_s", 60}, {"reason", "a\nb"}});
        REQUIRE(std::holds_alternative<OpError>(ctl));
        CHECK(std::get<OpError>(ctl).code == code::kRefused);
        CHECK(parse_request(R"({"op":"extend","args":{"id":3}})").error() ==
              "extend: argument \"duration_s\" is required");
    }

    TEST_CASE("jitgate extend ID --for DUR [--reason TEXT] [--wait] sends op extend") {
        CliState s;
        auto app = build_app(s);
        std::vector<const char*> argv{"jitgate", "extend",   "12",   "--for",
                                      "15m",     "--reason", "more", "--wait"};
        REQUIRE_NOTHROW(app->parse(static_cast<int>(argv.size()), argv.data()));
        CHECK(s.op == "extend");
        CHECK(finish(s).empty());
        CHECK(s.args == json{{"id", 12}, {"duration_s", 900}, {"reason", "more"}});
        CHECK(s.wait);
        CliState bad;
        auto app2 = build_app(bad);
        std::vector<const char*> argv2{"jitgate", "extend", "12", "--for", "soon"};
        REQUIRE_NOTHROW(app2->parse(static_cast<int>(argv2.size()), argv2.data()));
        CHECK_FALSE(finish(bad).empty());
    }
}

}  // namespace test_extend
