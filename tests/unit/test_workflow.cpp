// Workflow: requests, approvals, grants, revocation, expiry, against fakes of
// the kernel (GrantSink), the user database (Directory), audit and clocks.
#include <doctest/doctest.h>
#include <fmt/format.h>
#include <sqlite3.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/clock.h"
#include "core/policy.h"
#include "core/protocol.h"
#include "core/store.h"
#include "core/workflow.h"
#include "fakes.h"
#include "wire_op.h"

namespace test_workflow {
using namespace jg;
using namespace jg::testing;

namespace {

// The caps on pending requests (test_limits.cpp) above what these cases ask.
const char* kPolicy = R"(
[daemon]
max_pending_per_port = 20

[[port]]
name = "db"
port = 5432
max_duration = "1h"
approvers = ["alice", "@dba"]
request_ttl = "15m"

[[port]]
name = "pair"
port = 6000
proto = "both"
max_duration = "2h"
approvers = ["alice", "bob", "carol"]
approvals_required = 2
break_glass_max = "30m"
break_glass = ["bob", "@oncall"]

[[port]]
name = "self"
port = 7000
approvers = ["alice"]
self_approve = true
require_reason = false
break_glass_max = "0s"

[[port]]
name = "auto"
port = 8000
max_duration = "1h"
approvers = ["alice"]
break_glass = []

[[port.auto_approve]]
group = "oncall"
max_duration = "15m"

[[port.auto_approve]]
user = "ci"
max_duration = "5m"

[[port]]
name = "nets"
port = 9000
approvers = ["alice"]
allow_prefix = { ipv4 = 24, ipv6 = 64 }

[[port]]
name = "v4nets"
port = 9100
proto = "both"
approvers = ["alice"]
allow_prefix = { ipv4 = 28 }
)";

Store memory_store() {
    auto s = Store::open(":memory:");
    REQUIRE(s.ok());
    return std::move(*s);
}

const Caller kReq{1000, 4242, "rita"};  // an ordinary requester
const Caller kAlice{1001, 11, "alice"};
const Caller kBob{1002, 12, "bob"};
const Caller kCarol{1003, 13, "carol"};
const Caller kDave{1004, 14, "dave"};  // in group dba
const Caller kEve{1005, 15, "eve"};    // nobody in particular
const Caller kOlly{1006, 16, "olly"};  // in group oncall
const Caller kCi{1007, 17, "ci"};
const Caller kRoot{0, 1, "root"};

struct Env {
    Store store = memory_store();
    FakeDirectory dir;
    FakeSink sink;
    FakeAudit audit;
    FakeClock clock;
    Workflow wf{store, dir, sink, audit, clock, "boot-A"};

    Env() {
        auto load = parse_policy(kPolicy, "unit.toml");
        for (auto& e : load.errors) MESSAGE(e);
        REQUIRE(load.ok());
        wf.set_policy(std::make_shared<Policy>(load.policy));
        dir.groups["dave"] = {"dba"};
        dir.groups["olly"] = {"oncall", "users"};
    }

    Reply request(const Caller& c, int port, const char* proto, std::int64_t dur,
                  const char* reason = "fix prod", const char* ticket = nullptr) {
        json a = {{"port", port}, {"proto", proto}, {"duration_s", dur}};
        if (reason) a["reason"] = reason;
        if (ticket) a["ticket"] = ticket;
        return op(&Workflow::request, wf, c, a);
    }
    // A request for the remote source `from` (the wire argument "from").
    Reply request_from(const Caller& c, int port, const char* from, std::int64_t dur = 1800,
                       const char* proto = "tcp") {
        return op(&Workflow::request, wf, c,
                  json{{"port", port},
                       {"proto", proto},
                       {"duration_s", dur},
                       {"reason", "peer debugging"},
                       {"from", from}});
    }
    // A pending request for `from`, asserting it is pending.
    std::int64_t pending_from(const char* from, int port = 5432, const Caller& c = kReq) {
        Reply r = request_from(c, port, from);
        INFO("message: ", r.message);
        REQUIRE(r.ok);
        REQUIRE(r.result.at("state") == "pending");
        return r.result.at("request_id").get<std::int64_t>();
    }
    Reply approve(const Caller& c, std::int64_t id, std::optional<std::int64_t> dur = std::nullopt) {
        json a = {{"id", id}};
        if (dur) a["duration_s"] = *dur;
        return op(&Workflow::approve, wf, c, a);
    }
    Reply deny(const Caller& c, std::int64_t id, const char* reason = nullptr) {
        json a = {{"id", id}};
        if (reason) a["reason"] = reason;
        return op(&Workflow::deny, wf, c, a);
    }
    Reply revoke(const Caller& c, std::int64_t id) { return op(&Workflow::revoke, wf, c, json{{"id", id}}); }
    Reply break_glass(const Caller& c, int port, std::int64_t dur, const char* reason = "db down, paging",
                      const char* proto = "tcp") {
        return op(&Workflow::break_glass, wf, c,
                  json{{"port", port}, {"proto", proto}, {"duration_s", dur}, {"reason", reason}});
    }
    Reply show(const Caller& c, std::int64_t id) { return op(&Workflow::show, wf, c, json{{"id", id}}); }
    // A break-glass grant: returns {request id, grant id}.
    std::pair<std::int64_t, std::int64_t> glass(const Caller& c = kReq, int port = 5432,
                                                std::int64_t dur = 600) {
        Reply r = break_glass(c, port, dur);
        INFO("message: ", r.message);
        REQUIRE(r.ok);
        REQUIRE(r.result.at("state") == "granted");
        return {r.result.at("request_id").get<std::int64_t>(), r.result.at("grant_id").get<std::int64_t>()};
    }

    // A pending request id from kReq on `port`, asserting it is pending.
    std::int64_t pending(int port = 5432, std::int64_t dur = 1800, const Caller& c = kReq) {
        Reply r = request(c, port, "tcp", dur);
        REQUIRE(r.ok);
        REQUIRE(r.result.at("state") == "pending");
        return r.result.at("request_id").get<std::int64_t>();
    }
    // A granted request: returns {request id, grant id}.
    std::pair<std::int64_t, std::int64_t> granted(int port = 5432, std::int64_t dur = 1800,
                                                  const Caller& c = kReq) {
        const std::int64_t id = pending(port, dur, c);
        Reply r = approve(kAlice, id);
        REQUIRE(r.ok);
        REQUIRE(r.result.at("state") == "granted");
        return {id, r.result.at("grant_id").get<std::int64_t>()};
    }
};

void check_fail(const Reply& r, const std::string& code, const std::string& in_message = "") {
    CHECK_FALSE(r.ok);
    CHECK(r.code == code);
    if (!in_message.empty()) {
        INFO("message: ", r.message);
        CHECK(r.message.find(in_message) != std::string::npos);
    }
}

// Grant old_id ended at at_us, replaced by grant new_id, and the last revoke
// record says so.
void check_replaced(Env& e, std::int64_t old_id, std::int64_t new_id, std::int64_t at_us) {
    auto old = must(e.store.grant(old_id));
    REQUIRE(old);
    CHECK(old->state == "replaced");
    CHECK(old->ended_by == "grant " + std::to_string(new_id));
    CHECK(old->ended_us == at_us);
    const json& rv = e.audit.last("revoke");
    CHECK(rv.at("grant_id") == old_id);
    CHECK(rv.at("reason") == "replaced by grant " + std::to_string(new_id));
}

}  // namespace

TEST_SUITE("workflow") {
    TEST_CASE("a request for an unprotected port or protocol is refused") {
        Env e;
        check_fail(e.request(kReq, 5433, "tcp", 600), code::kRefused, "port 5433/tcp is not protected");
        check_fail(e.request(kReq, 5432, "udp", 600), code::kRefused, "port 5432/udp is not protected");
        CHECK(must(e.store.requests("all", 100)).empty());
        CHECK(e.audit.records.empty());
        CHECK(exit_code_for(code::kRefused) == 3);
    }

    TEST_CASE("malformed request arguments are invalid") {
        Env e;
        check_fail(e.request(kReq, 0, "tcp", 600), code::kInvalid, "port");
        check_fail(e.request(kReq, 70000, "tcp", 600), code::kInvalid, "port");
        check_fail(e.request(kReq, 5432, "sctp", 600), code::kInvalid, "sctp");
        check_fail(e.request(kReq, 5432, "tcp", 0), code::kInvalid, "duration");
        check_fail(e.request(kReq, 5432, "tcp", -60), code::kInvalid, "duration");
        check_fail(e.request(kReq, 5432, "tcp", 366LL * 86400 + 1), code::kInvalid, "duration");
        check_fail(e.request(kReq, 5432, "tcp", 600, "two\nlines"), code::kRefused, "reason");
        check_fail(e.request(kReq, 5432, "tcp", 600, std::string(kMaxReasonBytes + 1, 'r').c_str()),
                   code::kInvalid, "reason");
        check_fail(e.request(kReq, 5432, "tcp", 600, "ok", std::string(kMaxTicketBytes + 1, 't').c_str()),
                   code::kInvalid, "ticket");
        check_fail(e.request(kReq, 5432, "tcp", 600, "ok", "T-1\t2"), code::kRefused, "ticket");
        CHECK(must(e.store.requests("all", 100)).empty());
        CHECK(e.audit.records.empty());
        // At the limits exactly: accepted.
        CHECK(e.request(kReq, 5432, "tcp", 600, std::string(kMaxReasonBytes, 'r').c_str(),
                        std::string(kMaxTicketBytes, 't').c_str())
                  .ok);
    }

    TEST_CASE(
        "free text that would drive a terminal is refused: reason, ticket, deny and break-glass reasons") {
        Env e;
        const std::int64_t id = e.pending();
        e.audit.records.clear();
        struct Row {
            const char* text;
            const char* words;
        };
        const Row rows[] = {
            {"a\x1b[31mred", "holds a control character (U+001B) at character 2"},
            {"x\x1b]52;c;cm0gLXJmIC8K\x07", "(U+001B) at character 2"},
            {"\xc2\x9b"
             "2J",
             "a control character (U+009B) at character 1"},
            {"\xc2\x9d"
             "52;c;eA==",
             "(U+009D) at character 1"},
            {"ab\xe2\x80\xae"
             "fdp.exe",
             "a bidirectional control (U+202E) at character 3"},
            {"\xe2\x81\xa6x", "(U+2066) at character 1"},
            {"\xe2\x80\x8fx", "(U+200F) at character 1"},
            {"\xd8\x9cx", "(U+061C) at character 1"},
            {"a\x7f", "(U+007F) at character 2"},
            {"bad\xff", "a byte that is not UTF-8 (0xFF) at character 4"},
            {"a\x9b"
             "2J",
             "a byte that is not UTF-8 (0x9B) at character 2"},
            {"\xc0\xaf", "(0xC0) at character 1"},
            {"\xed\xa0\x80", "(0xED) at character 1"},
        };
        for (const Row& r : rows) {
            INFO(r.words);
            const std::pair<Reply, const char*> refused[] = {
                {e.request(kReq, 5432, "tcp", 600, r.text), "the reason holds "},
                {e.request(kReq, 5432, "tcp", 600, "ok", r.text), "the ticket holds "},
                {e.deny(kAlice, id, r.text), "the reason holds "},
                {e.break_glass(kBob, 6000, 600, r.text), "the reason holds "}};
            for (const auto& [reply, field] : refused) {
                check_fail(reply, code::kRefused, r.words);
                CHECK(reply.message.rfind(field, 0) == 0);
            }
        }
        CHECK(exit_code_for(code::kRefused) == 3);
        CHECK(must(e.store.requests("all", 100)).size() == 1);  // only the pending one from before
        CHECK(e.audit.records.empty());
        // Printable UTF-8 is accepted.
        Reply ok = e.request(kReq, 5432, "tcp", 600, "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x9a\x80",
                             "\xc3\xa9-1");
        INFO(ok.message);
        CHECK(ok.ok);
    }

    TEST_CASE("a request longer than max_duration is refused, naming the maximum") {
        Env e;
        Reply r = e.request(kReq, 5432, "tcp", 3601);
        check_fail(r, code::kRefused, "ask for 1h or less");
        CHECK(r.message.find("'db'") != std::string::npos);
        CHECK(r.message.find("1h1s") != std::string::npos);
        check_fail(e.request(kReq, 6000, "udp", 3 * 3600), code::kRefused, "ask for 2h or less");
        CHECK(must(e.store.requests("all", 100)).empty());
        // Exactly the maximum is fine.
        Reply ok = e.request(kReq, 5432, "tcp", 3600);
        CHECK(ok.ok);
    }

    TEST_CASE("require_reason: an empty or blank reason is refused where required") {
        Env e;
        check_fail(e.request(kReq, 5432, "tcp", 600, nullptr), code::kRefused, "requires a reason");
        check_fail(e.request(kReq, 5432, "tcp", 600, ""), code::kRefused, "requires a reason");
        check_fail(e.request(kReq, 5432, "tcp", 600, "   "), code::kRefused, "requires a reason");
        CHECK(must(e.store.requests("all", 100)).empty());
        // Port "self" has require_reason = false.
        Reply r = e.request(kReq, 7000, "tcp", 600, nullptr);
        REQUIRE(r.ok);
        CHECK(r.result.at("reason") == "");
    }

    TEST_CASE("a valid request is stored pending and audited") {
        Env e;
        Reply r = e.request(kReq, 5432, "tcp", 1800, "fix prod", "INC-7");
        REQUIRE(r.ok);
        const json& j = r.result;
        const std::int64_t id = j.at("request_id").get<std::int64_t>();
        CHECK(id > 0);
        CHECK(j.at("state") == "pending");
        CHECK(j.at("uid") == 1000);
        CHECK(j.at("user") == "rita");
        CHECK(j.at("port") == 5432);
        CHECK(j.at("proto") == "tcp");
        CHECK(j.at("duration_s") == 1800);
        CHECK(j.at("reason") == "fix prod");
        CHECK(j.at("ticket") == "INC-7");
        CHECK(j.at("approvers") == json::array());
        CHECK(j.at("approvals_required") == 1);
        CHECK(j.at("eligible_approvers") == json::array({"alice", "@dba"}));  // who the requester waits for
        CHECK(j.at("created_at") == "2027-01-15T08:00:00.000000Z");
        CHECK(j.at("expires_at") == "2027-01-15T08:15:00.000000Z");  // request_ttl 15m
        CHECK_FALSE(j.contains("grant_id"));

        auto row = must(e.store.request(id));
        REQUIRE(row);
        CHECK(row->state == "pending");
        CHECK(row->deadline_us == kWall0 + 900 * kUs);
        CHECK(row->uid == 1000u);

        CHECK(e.sink.puts.empty());
        REQUIRE(e.audit.types() == std::vector<std::string>{"request"});
        const json& ev = e.audit.records[0];
        CHECK(ev.at("request_id") == id);
        CHECK(ev.at("uid") == 1000);
        CHECK(ev.at("user") == "rita");
        CHECK(ev.at("pid") == 4242);
        CHECK(ev.at("port") == 5432);
        CHECK(ev.at("proto") == "tcp");
        CHECK(ev.at("duration_s") == 1800);
        CHECK(ev.at("reason") == "fix prod");
        CHECK(ev.at("ticket") == "INC-7");
        // The sink adds these, not the workflow.
        CHECK_FALSE(ev.contains("seq"));
        CHECK_FALSE(ev.contains("hash"));
    }

    TEST_CASE("approval by a listed user grants; the grant reaches the sink with the right expiry") {
        Env e;
        const std::int64_t id = e.pending(5432, 1800);
        e.clock.advance(120);  // the grant's clock starts at approval, not at the request
        Reply r = e.approve(kAlice, id);
        REQUIRE(r.ok);
        CHECK(r.result.at("state") == "granted");
        CHECK(r.result.at("request_id") == id);
        const std::int64_t gid = r.result.at("grant_id").get<std::int64_t>();
        CHECK(gid != id);
        CHECK(r.result.at("approvers") == json{"alice"});
        CHECK(r.result.at("decided_by") == "alice");
        CHECK(r.result.at("grant_state") == "active");
        CHECK(r.result.at("expires_at") == rfc3339_us(kWall0 + (120 + 1800) * kUs));

        REQUIRE(e.sink.puts == std::vector<std::int64_t>{gid});
        REQUIRE(e.sink.live.count(gid) == 1);
        const FakeGrant& g = e.sink.live[gid];
        CHECK(g.uid == 1000u);
        CHECK(g.src.empty());
        CHECK(g.port == 5432);
        CHECK(g.proto == Proto::Tcp);
        CHECK(g.expires_boot_ns == kBoot0 + 120 * kSec + 1800 * kSec);

        auto stored = must(e.store.grant(gid));
        REQUIRE(stored);
        CHECK(stored->request_id == id);
        CHECK(stored->expires_us == kWall0 + (120 + 1800) * kUs);
        CHECK(stored->start_us == kWall0 + 120 * kUs);
        CHECK(stored->boot_id == "boot-A");
        CHECK(stored->state == "active");
        CHECK(stored->expires_boot_ns == g.expires_boot_ns);
        CHECK(stored->approvers == std::vector<std::string>{"alice"});
        CHECK(must(e.store.request(id))->state == "granted");
        CHECK(must(e.store.request(id))->grant_id == gid);

        CHECK(e.audit.types() == std::vector<std::string>{"request", "approve", "grant"});
        const json& ap = e.audit.last("approve");
        CHECK(ap.at("user") == "alice");
        CHECK(ap.at("uid") == 1001);
        CHECK(ap.at("request_id") == id);
        CHECK(ap.at("requester") == "rita");
        const json& gr = e.audit.last("grant");
        CHECK(gr.at("grant_id") == gid);
        CHECK(gr.at("request_id") == id);
        CHECK(gr.at("uid") == 1000);
        CHECK(gr.at("user") == "rita");
        CHECK(gr.at("duration_s") == 1800);
        CHECK(gr.at("approvers") == json{"alice"});
    }

    TEST_CASE("a decision whose record cannot be written takes no effect") {
        Env e;
        const std::int64_t id = e.pending(5432, 1800);
        e.audit.unwritable = true;
        check_fail(e.approve(kAlice, id), code::kInternal, "cannot write its audit log");
        CHECK(e.sink.puts.empty());
        CHECK(e.sink.live.empty());
        CHECK(must(e.store.count_grants("active")) == 0);
        CHECK(must(e.store.request(id))->state == "pending");
    }

    TEST_CASE("a store error fails the operation with kInternal and rolls its transaction back") {
        TempDir tmp;
        const std::string path = tmp.file("state.db");
        Env e;
        e.store = must(Store::open(path));
        const std::int64_t id = e.pending(5432, 1800);
        const std::int64_t next_id = must(e.store.meta("next_id")).value_or(0);
        // Another connection breaks the database under the workflow: the
        // grant's transaction takes an id, then cannot read the grants.
        sqlite3* other = nullptr;
        REQUIRE(sqlite3_open(path.c_str(), &other) == SQLITE_OK);
        const int dropped = sqlite3_exec(other, "DROP TABLE grants;", nullptr, nullptr, nullptr);
        sqlite3_close(other);
        REQUIRE(dropped == SQLITE_OK);
        Reply r = e.approve(kAlice, id);
        check_fail(r, code::kInternal, "jitgated could not complete approve: ");
        CHECK(r.message.find("no such table: grants") != std::string::npos);
        CHECK(e.sink.puts.empty());
        // Rolled back: the id it took is not used up, the request is pending,
        // and no transaction is left open.
        CHECK(must(e.store.meta("next_id")).value_or(0) == next_id);
        CHECK(must(e.store.request(id))->state == "pending");
        CHECK(e.store.begin().ok());
        CHECK(e.store.commit().ok());
        // A read that fails is the same kind of reply.
        check_fail(e.revoke(kRoot, 999), code::kInternal, "jitgated could not complete revoke: ");
    }

    TEST_CASE("approve: unknown id, non-approver, own request") {
        Env e;
        check_fail(e.approve(kAlice, 999), code::kNotFound, "999");
        const std::int64_t id = e.pending();
        check_fail(e.approve(kEve, id), code::kForbidden, "eve is not an approver of port 'db'");
        CHECK(exit_code_for(code::kForbidden) == 3);

        // alice is an approver of db, but may not approve her own request.
        const std::int64_t own = e.pending(5432, 600, kAlice);
        check_fail(e.approve(kAlice, own), code::kForbidden, "your own request");
        CHECK(must(e.store.request(own))->state == "pending");
        CHECK(must(e.store.request(id))->state == "pending");
        CHECK(e.sink.puts.empty());
        CHECK(e.audit.types() == std::vector<std::string>{"request", "request"});
    }

    TEST_CASE("self_approve lets an approver approve their own request") {
        Env e;
        const std::int64_t own = e.pending(7000, 600, kAlice);
        Reply r = e.approve(kAlice, own);
        REQUIRE(r.ok);
        CHECK(r.result.at("state") == "granted");
        CHECK(e.sink.live.size() == 1);
        CHECK(e.sink.live.begin()->second.uid == 1001u);
    }

    TEST_CASE("a group approver is resolved through the Directory") {
        Env e;
        const std::int64_t id = e.pending();
        Reply r = e.approve(kDave, id);
        REQUIRE(r.ok);
        CHECK(r.result.at("state") == "granted");
        CHECK(r.result.at("approvers") == json{"dave"});
        CHECK(std::find(e.dir.asked.begin(), e.dir.asked.end(), "dave@dba") != e.dir.asked.end());

        // Someone outside the group is not an approver.
        const std::int64_t id2 = e.pending(5432, 600, kBob);
        check_fail(e.approve(kOlly, id2), code::kForbidden, "not an approver");
    }

    TEST_CASE("approvals_required = 2: distinct approvers, each counted once") {
        Env e;
        const std::int64_t id = e.pending(6000, 1800);
        Reply first = e.approve(kAlice, id);
        REQUIRE(first.ok);
        CHECK(first.result.at("state") == "pending");
        CHECK(first.result.at("approvers") == json{"alice"});
        CHECK(first.result.at("approvals_required") == 2);
        CHECK(e.sink.puts.empty());
        CHECK(must(e.store.request(id))->approvers == std::vector<std::string>{"alice"});

        check_fail(e.approve(kAlice, id), code::kConflict, "already approved");
        CHECK(must(e.store.request(id))->approvers == std::vector<std::string>{"alice"});
        CHECK(e.sink.puts.empty());

        Reply second = e.approve(kBob, id);
        REQUIRE(second.ok);
        CHECK(second.result.at("state") == "granted");
        CHECK(second.result.at("approvers") == json{"alice", "bob"});
        CHECK(second.result.at("decided_by") == "bob");
        REQUIRE(e.sink.live.size() == 1);
        CHECK(must(e.store.grant(e.sink.live.begin()->first))->approvers ==
              std::vector<std::string>{"alice", "bob"});
        CHECK(e.audit.types() == std::vector<std::string>{"request", "approve", "approve", "grant"});
        CHECK(e.audit.last("grant").at("approvers") == json{"alice", "bob"});

        // Decided: a third approver gets a conflict.
        check_fail(e.approve(kCarol, id), code::kConflict, "already granted");
    }

    TEST_CASE("approve --for shortens the grant, and may not lengthen it") {
        Env e;
        const std::int64_t id = e.pending(5432, 1800);
        Reply longer = e.approve(kAlice, id, 3600);
        check_fail(longer, code::kRefused, "shorten a request, not lengthen it");
        CHECK(longer.message.find("30m") != std::string::npos);
        check_fail(e.approve(kAlice, id, 0), code::kInvalid, "duration");
        CHECK(must(e.store.request(id))->state == "pending");
        CHECK(must(e.store.request(id))->approvers.empty());

        Reply r = e.approve(kAlice, id, 600);
        REQUIRE(r.ok);
        CHECK(r.result.at("state") == "granted");
        const std::int64_t gid = r.result.at("grant_id").get<std::int64_t>();
        CHECK(e.sink.live.at(gid).expires_boot_ns == kBoot0 + 600 * kSec);
        CHECK(must(e.store.grant(gid))->expires_us == kWall0 + 600 * kUs);
        CHECK(e.audit.last("grant").at("duration_s") == 600);
        CHECK(e.audit.last("approve").at("duration_s") == 600);
    }

    TEST_CASE("with two approvers the shortest --for wins") {
        Env e;
        const std::int64_t id = e.pending(6000, 3600);
        REQUIRE(e.approve(kAlice, id, 900).ok);
        CHECK(must(e.store.request(id))->shortest_s == 900);
        Reply r = e.approve(kBob, id);  // no --for: keeps alice's 15m
        REQUIRE(r.ok);
        const std::int64_t gid = r.result.at("grant_id").get<std::int64_t>();
        CHECK(e.sink.live.at(gid).expires_boot_ns == kBoot0 + 900 * kSec);
        CHECK(e.audit.last("grant").at("duration_s") == 900);
    }

    TEST_CASE("a decided request's state is told only to who may decide it") {
        Env e;
        auto [rid, gid] = e.granted(5432, 600);
        (void)gid;
        check_fail(e.approve(kEve, rid), code::kForbidden, "eve is not an approver of port 'db'");
        check_fail(e.deny(kEve, rid, "no"), code::kForbidden, "eve is not an approver");
        check_fail(e.approve(kAlice, rid), code::kConflict, "already granted");
    }

    TEST_CASE("deny by an approver, withdraw by the requester") {
        Env e;
        const std::int64_t id = e.pending();
        check_fail(e.deny(kEve, id, "no"), code::kForbidden, "eve is not an approver of port 5432/tcp");
        check_fail(e.deny(kAlice, 999), code::kNotFound, "999");
        check_fail(e.deny(kAlice, id, "bad\nreason"), code::kRefused, "reason");

        Reply d = e.deny(kAlice, id, "not during the freeze");
        REQUIRE(d.ok);
        CHECK(d.result.at("state") == "rejected");
        CHECK(d.result.at("decided_by") == "alice");
        CHECK(d.result.at("decision_reason") == "not during the freeze");
        CHECK(must(e.store.request(id))->state == "rejected");
        const json& ev = e.audit.last("reject");
        CHECK(ev.at("request_id") == id);
        CHECK(ev.at("user") == "alice");
        CHECK(ev.at("requester") == "rita");
        CHECK(ev.at("reason") == "not during the freeze");

        check_fail(e.deny(kAlice, id), code::kConflict, "already rejected");
        check_fail(e.approve(kAlice, id), code::kConflict, "already rejected");
        CHECK(e.sink.puts.empty());

        const std::int64_t mine = e.pending();
        Reply w = e.deny(kReq, mine);
        REQUIRE(w.ok);
        CHECK(w.result.at("state") == "rejected");
        CHECK(w.result.at("decided_by") == "rita");
        CHECK(w.result.at("decision_reason") == "withdrawn by the requester");

        const std::int64_t other = e.pending();
        CHECK(e.deny(kRoot, other).ok);
        CHECK(e.audit.types() ==
              std::vector<std::string>{"request", "reject", "request", "reject", "request", "reject"});
    }

    TEST_CASE("revoke: holder, approver and root may; others may not; twice is a conflict") {
        Env e;
        auto [rid, gid] = e.granted();
        check_fail(e.revoke(kEve, gid), code::kForbidden, "only the holder");
        CHECK(e.sink.removes.empty());
        CHECK(must(e.store.grant(gid))->state == "active");

        e.clock.advance(60);
        Reply r = e.revoke(kReq, gid);
        REQUIRE(r.ok);
        CHECK(r.result.at("state") == "revoked");
        CHECK(r.result.at("grant_id") == gid);
        CHECK(r.result.at("ended_by") == "rita");
        CHECK(r.result.at("ended_at") == rfc3339_us(kWall0 + 60 * kUs));
        CHECK(e.sink.removes == std::vector<std::int64_t>{gid});
        CHECK(e.sink.live.empty());
        auto g = must(e.store.grant(gid));
        REQUIRE(g);
        CHECK(g->state == "revoked");
        CHECK(g->ended_us == kWall0 + 60 * kUs);
        const json& ev = e.audit.last("revoke");
        CHECK(ev.at("grant_id") == gid);
        CHECK(ev.at("request_id") == rid);
        CHECK(ev.at("user") == "rita");
        CHECK(ev.at("uid") == 1000);

        check_fail(e.revoke(kReq, gid), code::kConflict, "already revoked");
        check_fail(e.revoke(kReq, rid), code::kConflict, "already revoked");  // by its request id too
        CHECK(e.sink.removes.size() == 1);
        CHECK(e.audit.types() == std::vector<std::string>{"request", "approve", "grant", "revoke"});

        auto [rid2, gid2] = e.granted(5432, 600, kBob);
        Reply byroot = e.revoke(kRoot, gid2);
        REQUIRE(byroot.ok);
        CHECK(must(e.store.grant(gid2))->state == "revoked");
        CHECK(must(e.store.grant(gid2))->ended_by == "root");
        (void)rid2;

        auto [rid3, gid3] = e.granted(5432, 600, kCarol);
        (void)rid3;
        Reply byapprover = e.revoke(kDave, gid3);  // dave approves db through @dba
        REQUIRE(byapprover.ok);
        CHECK(must(e.store.grant(gid3))->state == "revoked");
    }

    TEST_CASE("revoke accepts the id of the request that led to the grant") {
        Env e;
        auto [rid, gid] = e.granted();
        Reply r = e.revoke(kReq, rid);
        REQUIRE(r.ok);
        CHECK(r.result.at("grant_id") == gid);
        CHECK(must(e.store.grant(gid))->state == "revoked");
        CHECK(e.sink.removes == std::vector<std::int64_t>{gid});

        const std::int64_t p = e.pending();
        check_fail(e.revoke(kReq, p), code::kConflict, "has no grant");
        check_fail(e.revoke(kReq, 4711), code::kNotFound, "4711");
    }

    TEST_CASE("sweep ends grants at their expiry and audits expire") {
        Env e;
        auto [rid, gid] = e.granted(5432, 600);
        e.clock.advance(599);
        CHECK(e.wf.sweep() == 0);
        CHECK(must(e.store.grant(gid))->state == "active");
        CHECK(e.sink.removes.empty());

        e.clock.advance(1);  // now == expires_boot_ns: void at or after
        CHECK(e.wf.sweep() == 1);
        auto g = must(e.store.grant(gid));
        REQUIRE(g);
        CHECK(g->state == "expired");
        CHECK(g->ended_by == "clock");
        CHECK(e.sink.removes == std::vector<std::int64_t>{gid});
        CHECK(e.sink.live.empty());
        const json& ev = e.audit.last("expire");
        CHECK(ev.at("grant_id") == gid);
        CHECK(ev.at("request_id") == rid);
        CHECK(ev.at("uid") == 1000);
        CHECK(ev.at("user") == "rita");
        CHECK(e.audit.types() == std::vector<std::string>{"request", "approve", "grant", "expire"});

        CHECK(e.wf.sweep() == 0);  // nothing twice
        CHECK(e.sink.removes.size() == 1);
        check_fail(e.revoke(kReq, gid), code::kConflict, "already expired");
    }

    TEST_CASE("a port gone from the policy: its grants revoked, its pending requests rejected") {
        Env e;
        auto [rid, gid] = e.granted(5432, 600);
        auto [rid2, gid2] = e.granted(7000, 600);
        REQUIRE(e.request(kReq, 5432, "tcp", 60).ok);  // pending
        auto load = parse_policy(R"(
[[port]]
name = "self"
port = 7000
approvers = ["alice"]
self_approve = true
require_reason = false
)",
                                 "reload.toml");
        REQUIRE(load.ok());
        e.wf.set_policy(std::make_shared<Policy>(load.policy));
        CHECK(e.wf.end_unprotected() == 2);
        CHECK(must(e.store.grant(gid))->state == "revoked");
        CHECK(must(e.store.grant(gid))->ended_by == "policy_reload");
        CHECK(must(e.store.grant(gid2))->state == "active");
        CHECK(e.sink.removes == std::vector<std::int64_t>{gid});
        const json& rev = e.audit.last("revoke");
        CHECK(rev.at("grant_id") == gid);
        CHECK(rev.at("ended_by") == "policy_reload");
        CHECK(rev.at("requester") == "rita");
        const json& rej = e.audit.last("reject");
        CHECK(rej.at("reason") == "the port is no longer protected");
        CHECK(must(e.store.count_requests("pending")) == 0);
        CHECK(e.wf.end_unprotected() == 0);  // nothing twice
        (void)rid;
        (void)rid2;
    }

    TEST_CASE("sweep expires pending requests past request_ttl") {
        Env e;
        const std::int64_t id = e.pending();  // db: request_ttl 15m
        e.clock.advance(899);
        CHECK(e.wf.sweep() == 0);
        CHECK(must(e.store.request(id))->state == "pending");
        e.clock.advance(1);
        CHECK(e.wf.sweep() == 1);
        auto r = must(e.store.request(id));
        REQUIRE(r);
        CHECK(r->state == "expired");
        CHECK(r->decided_by == "request_ttl");
        CHECK(r->decided_us == kWall0 + 900 * kUs);
        const json& ev = e.audit.last("expire");
        CHECK(ev.at("request_id") == id);
        CHECK_FALSE(ev.contains("grant_id"));
        CHECK(ev.at("user") == "rita");
        check_fail(e.approve(kAlice, id), code::kConflict, "already expired");
        CHECK(e.sink.puts.empty());
    }

    TEST_CASE("a request past its request_ttl cannot be approved, even before the sweep ran") {
        Env e;
        const std::int64_t id = e.pending();  // db: request_ttl 15m
        e.clock.advance(3600);
        check_fail(e.approve(kAlice, id), code::kConflict, "already expired");
        CHECK(e.sink.puts.empty());
        CHECK(must(e.store.request(id))->state == "expired");
        CHECK(must(e.store.grants("active", 100)).empty());
    }

    TEST_CASE("auto_approve grants at once within its cap, and not beyond") {
        Env e;
        Reply r = e.request(kOlly, 8000, "tcp", 900);
        REQUIRE(r.ok);
        CHECK(r.result.at("state") == "granted");
        CHECK(r.result.at("approvers") == json{"auto_approve:@oncall"});
        CHECK(r.result.at("decided_by") == "auto_approve:@oncall");
        const std::int64_t gid = r.result.at("grant_id").get<std::int64_t>();
        CHECK(e.sink.live.at(gid).expires_boot_ns == kBoot0 + 900 * kSec);
        CHECK(e.sink.live.at(gid).uid == 1006u);
        CHECK(e.audit.types() == std::vector<std::string>{"request", "grant"});

        Reply over = e.request(kOlly, 8000, "tcp", 901);
        REQUIRE(over.ok);
        CHECK(over.result.at("state") == "pending");
        CHECK(e.sink.puts.size() == 1);

        // By user name.
        Reply ci = e.request(kCi, 8000, "tcp", 300);
        REQUIRE(ci.ok);
        CHECK(ci.result.at("state") == "granted");
        CHECK(ci.result.at("approvers") == json{"auto_approve:ci"});
        Reply ci_over = e.request(kCi, 8000, "tcp", 301);
        REQUIRE(ci_over.ok);
        CHECK(ci_over.result.at("state") == "pending");

        // Not in the group, not the user: a human must approve.
        Reply eve = e.request(kEve, 8000, "tcp", 60);
        REQUIRE(eve.ok);
        CHECK(eve.result.at("state") == "pending");
        CHECK(e.sink.puts.size() == 2);
    }

    TEST_CASE("a full grant map: capacity error, request rejected, nothing active") {
        Env e;
        const std::int64_t id = e.pending();
        e.sink.fail_with = "the grant map is full (65536 grants); revoke unused grants and try again";
        Reply r = e.approve(kAlice, id);
        check_fail(r, code::kCapacity, "the grant map is full");
        CHECK(exit_code_for(r.code) == 1);
        auto row = must(e.store.request(id));
        REQUIRE(row);
        CHECK(row->state == "rejected");
        CHECK(row->grant_id == 0);  // no grant to point at
        CHECK(row->decision_reason.find("grant map is full") != std::string::npos);
        CHECK(must(e.store.grants("active", 100)).empty());
        CHECK(e.sink.live.empty());
        CHECK(e.audit.types() == std::vector<std::string>{"request", "approve", "reject"});
        CHECK(e.audit.last("reject").at("request_id") == id);
        Reply list = op(&Workflow::list, e.wf, kReq, json::object());
        REQUIRE(list.ok);
        CHECK(list.result.at("grants").empty());
        CHECK(list.result.at("requests").empty());

        // Auto-approved requests hit the same wall.
        Reply a = e.request(kOlly, 8000, "tcp", 60);
        check_fail(a, code::kCapacity, "full");
        CHECK(must(e.store.grants("active", 100)).empty());
    }

    TEST_CASE("a full map while replacing keeps the old grant active") {
        Env e;
        auto [rid1, gid1] = e.granted(5432, 600);
        (void)rid1;
        const std::int64_t id2 = e.pending(5432, 1200);
        e.sink.fail_with = "full";
        check_fail(e.approve(kAlice, id2), code::kCapacity, "full");
        auto old = must(e.store.grant(gid1));
        REQUIRE(old);
        CHECK(old->state == "active");
        CHECK(old->ended_by.empty());
        auto active = must(e.store.grants("active", 100));
        REQUIRE(active.size() == 1);
        CHECK(active[0].id == gid1);
    }

    TEST_CASE("a second grant for the same uid/port/proto replaces the first") {
        Env e;
        auto [rid1, gid1] = e.granted(5432, 600);
        const std::int64_t id2 = e.pending(5432, 1800);
        e.clock.advance(30);
        Reply r = e.approve(kAlice, id2);
        REQUIRE(r.ok);
        const std::int64_t gid2 = r.result.at("grant_id").get<std::int64_t>();
        check_replaced(e, gid1, gid2, kWall0 + 30 * kUs);
        auto active = must(e.store.grants("active", 100));
        REQUIRE(active.size() == 1);
        CHECK(active[0].id == gid2);
        CHECK(e.sink.live.at(gid2).expires_boot_ns == kBoot0 + (30 + 1800) * kSec);
        CHECK(e.audit.types() == std::vector<std::string>{"request", "approve", "grant", "request", "approve",
                                                          "revoke", "grant"});
        CHECK(e.audit.last("revoke").at("request_id") == rid1);

        // Other port, other protocol, other user: no replacement.
        auto [r3, g3] = e.granted(5432, 600, kBob);
        (void)r3;
        CHECK(must(e.store.grant(gid2))->state == "active");
        CHECK(must(e.store.grant(g3))->state == "active");
        CHECK(must(e.store.grants("active", 100)).size() == 2);
    }

    TEST_CASE(
        "rebase_boot rebases grants from another boot by the wall clock; the sweep then ends the expired") {
        Env e;
        auto put = [&](std::int64_t id, std::int64_t expires_in_s, const std::string& boot) {
            GrantRow g;
            g.id = id;
            g.request_id = id - 1;
            g.uid = 1000;
            g.user = "rita";
            g.port = 5432;
            g.proto = Proto::Tcp;
            g.start_us = kWall0 - 100 * kUs;
            g.expires_us = kWall0 + expires_in_s * kUs;
            g.expires_boot_ns = 42ULL * kSec;  // meaningless in this boot
            g.boot_id = boot;
            g.state = "active";
            must(e.store.put_grant(g));
        };
        put(101, 600, "boot-OLD");
        put(103, -5, "boot-OLD");
        put(105, 300, "boot-A");  // this boot: left alone
        auto before = must(e.store.grant(105));
        REQUIRE(before);

        e.wf.rebase_boot();
        e.wf.sweep();

        auto a = must(e.store.grant(101));
        REQUIRE(a);
        CHECK(a->state == "active");
        CHECK(a->boot_id == "boot-A");
        CHECK(a->expires_boot_ns == kBoot0 + 600 * kSec);

        auto b = must(e.store.grant(103));
        REQUIRE(b);
        CHECK(b->state == "expired");
        CHECK(b->boot_id == "boot-A");

        auto c = must(e.store.grant(105));
        REQUIRE(c);
        CHECK(c->expires_boot_ns == 42ULL * kSec);  // same boot: untouched...
        CHECK(c->state == "expired");               // ...and 42 s is long past at 5000 s

        CHECK(e.sink.removes == std::vector<std::int64_t>{105, 103});
        CHECK(e.audit.types() == std::vector<std::string>{"expire", "expire"});
    }

    TEST_CASE("list filters") {
        Env e;  // listed by root, who sees every user's (issue 16.9)
        const std::int64_t p = e.pending();
        auto [rid, gid] = e.granted(5432, 600, kBob);
        Reply d = op(&Workflow::list, e.wf, kRoot, json::object());
        REQUIRE(d.ok);
        REQUIRE(d.result.at("requests").size() == 1);
        CHECK(d.result["requests"][0].at("request_id") == p);
        REQUIRE(d.result.at("grants").size() == 1);
        CHECK(d.result["grants"][0].at("grant_id") == gid);
        CHECK(d.result["grants"][0].at("remaining_s") == 600);

        Reply pend = op(&Workflow::list, e.wf, kRoot, json{{"filter", "pending"}});
        REQUIRE(pend.ok);
        CHECK(pend.result.at("requests").size() == 1);
        CHECK(pend.result.at("grants").empty());

        Reply act = op(&Workflow::list, e.wf, kRoot, json{{"filter", "active"}});
        REQUIRE(act.ok);
        CHECK(act.result.at("requests").empty());
        CHECK(act.result.at("grants").size() == 1);

        Reply all = op(&Workflow::list, e.wf, kRoot, json{{"filter", "all"}});
        REQUIRE(all.ok);
        CHECK(all.result.at("requests").size() == 2);
        CHECK(all.result.at("grants").size() == 1);
        CHECK(all.result["requests"][0].at("request_id") == rid);  // newest first

        check_fail(op(&Workflow::list, e.wf, kRoot, json{{"filter", "everything"}}), code::kInvalid,
                   "filter");
    }

    TEST_CASE("ids are unique across requests and grants") {
        Env e;
        auto [r1, g1] = e.granted();
        const std::int64_t r2 = e.pending(7000);
        CHECK(r1 < g1);
        CHECK(g1 < r2);
        CHECK_FALSE(must(e.store.grant(r1)).has_value());
        CHECK_FALSE(must(e.store.request(g1)).has_value());
    }

    TEST_CASE("remote: request --from, approve, and the sink gets the grant with its source") {
        Env e;
        Reply r = e.request_from(kReq, 5432, "203.0.113.7", 1800);
        REQUIRE(r.ok);
        CHECK(r.result.at("state") == "pending");
        CHECK(r.result.at("src") == "203.0.113.7");
        CHECK(r.result.at("uid") == 1000);  // the requester is still who asked
        CHECK(r.result.at("user") == "rita");
        const std::int64_t id = r.result.at("request_id").get<std::int64_t>();
        CHECK(must(e.store.request(id))->src == "203.0.113.7");
        const json& rq = e.audit.last("request");
        CHECK(rq.at("src") == "203.0.113.7");
        CHECK(rq.at("uid") == 1000);

        e.clock.advance(60);
        Reply a = e.approve(kAlice, id);
        REQUIRE(a.ok);
        CHECK(a.result.at("state") == "granted");
        CHECK(a.result.at("src") == "203.0.113.7");
        const std::int64_t gid = a.result.at("grant_id").get<std::int64_t>();
        REQUIRE(e.sink.puts == std::vector<std::int64_t>{gid});
        const FakeGrant& g = e.sink.live.at(gid);
        CHECK(g.src == "203.0.113.7");
        CHECK(g.uid == 1000u);
        CHECK(g.port == 5432);
        CHECK(g.proto == Proto::Tcp);
        CHECK(g.expires_boot_ns == kBoot0 + (60 + 1800) * kSec);
        CHECK(must(e.store.grant(gid))->src == "203.0.113.7");

        CHECK(e.audit.types() == std::vector<std::string>{"request", "approve", "grant"});
        CHECK(e.audit.last("approve").at("src") == "203.0.113.7");
        const json& gr = e.audit.last("grant");
        CHECK(gr.at("src") == "203.0.113.7");
        CHECK(gr.at("grant_id") == gid);
        CHECK(gr.at("user") == "rita");

        Reply l = op(&Workflow::list, e.wf, kReq, json{{"filter", "all"}});
        REQUIRE(l.ok);
        CHECK(l.result["requests"][0].at("src") == "203.0.113.7");
        CHECK(l.result["grants"][0].at("src") == "203.0.113.7");
        CHECK(e.wf.grant_json(*must(e.store.grant(gid))).at("src") == "203.0.113.7");

        // The holder revokes it like a local grant; the record names the source.
        Reply rv = e.revoke(kReq, id);
        REQUIRE(rv.ok);
        CHECK(rv.result.at("src") == "203.0.113.7");
        CHECK(e.sink.removes == std::vector<std::int64_t>{gid});
        CHECK(e.audit.last("revoke").at("src") == "203.0.113.7");
    }

    TEST_CASE("remote: the source is stored in canonical form") {
        Env e;
        CHECK(e.request_from(kReq, 5432, "::ffff:203.0.113.7").result.at("src") == "203.0.113.7");
        CHECK(e.request_from(kReq, 5432, "203.0.113.8/32").result.at("src") == "203.0.113.8");
        CHECK(e.request_from(kReq, 5432, "2001:DB8:0::0007").result.at("src") == "2001:db8::7");
        CHECK(e.request_from(kReq, 9000, "::ffff:198.51.100.0/120").result.at("src") == "198.51.100.0/24");
    }

    TEST_CASE("local principals carry no src anywhere") {
        Env e;
        auto [rid, gid] = e.granted();
        CHECK_FALSE(e.wf.request_json(*must(e.store.request(rid))).contains("src"));
        CHECK_FALSE(e.wf.grant_json(*must(e.store.grant(gid))).contains("src"));
        CHECK(e.sink.live.at(gid).src.empty());
        for (const json& ev : e.audit.records) CHECK_FALSE(ev.contains("src"));
    }

    TEST_CASE("remote: a malformed or refused source is invalid, and nothing is stored") {
        Env e;
        check_fail(e.request_from(kReq, 5432, "1.2.3"), code::kInvalid, "invalid source address '1.2.3'");
        check_fail(e.request_from(kReq, 5432, ""), code::kInvalid, "invalid source address ''");
        check_fail(e.request_from(kReq, 5432, "203.0.113.5/24"), code::kInvalid,
                   "203.0.113.5/24 has host bits set; did you mean 203.0.113.0/24?");
        check_fail(e.request_from(kReq, 5432, "127.0.0.1"), code::kInvalid,
                   "local users get access without --from");
        check_fail(e.request_from(kReq, 5432, "::1"), code::kInvalid, "loopback");
        check_fail(e.request_from(kReq, 5432, "0.0.0.0"), code::kInvalid, "unspecified");
        check_fail(e.request_from(kReq, 5432, "224.0.0.1"), code::kInvalid, "multicast");
        check_fail(e.request_from(kReq, 5432, "255.255.255.255"), code::kInvalid, "broadcast");
        check_fail(e.request_from(kReq, 9000, "0.0.0.0/0"), code::kInvalid, "every IPv4 address");
        check_fail(e.request_from(kReq, 9000, "2001:db8::/129"), code::kInvalid, "invalid prefix length");
        CHECK(exit_code_for(code::kInvalid) == 2);
        CHECK(must(e.store.requests("all", 100)).empty());
        CHECK(e.audit.records.empty());
    }

    TEST_CASE("remote: a network is refused where allow_prefix is not set") {
        Env e;
        Reply r = e.request_from(kReq, 5432, "203.0.113.0/24");
        check_fail(r, code::kRefused,
                   "port 5432/tcp accepts single hosts only with --from (policy allow_prefix is not set)");
        CHECK(r.message.find("203.0.113.0/24") != std::string::npos);
        check_fail(e.request_from(kReq, 5432, "2001:db8::/127"), code::kRefused,
                   "accepts single hosts only with --from (policy allow_prefix is not set)");
        CHECK(exit_code_for(code::kRefused) == 3);
        CHECK(must(e.store.requests("all", 100)).empty());
        CHECK(e.audit.records.empty());
        // A host is always fine, however it is written.
        CHECK(e.request_from(kReq, 5432, "203.0.113.0/32").ok);
        CHECK(e.request_from(kReq, 5432, "2001:db8::/128").ok);
    }

    TEST_CASE("remote: networks within allow_prefix are accepted, wider ones refused") {
        Env e;
        // nets: ipv4 = 24, ipv6 = 64.
        for (const char* ok : {"203.0.113.0/24", "203.0.113.128/25", "203.0.113.7", "2001:db8::/64",
                               "2001:db8:0:0:8000::/65", "2001:db8::7"}) {
            CAPTURE(ok);
            Reply r = e.request_from(kReq, 9000, ok);
            INFO("message: ", r.message);
            CHECK(r.ok);
        }
        Reply v4 = e.request_from(kReq, 9000, "203.0.0.0/16");
        check_fail(v4, code::kRefused, "port 9000/tcp accepts prefixes up to /24 for IPv4");
        CHECK(v4.message.find("203.0.0.0/16 is wider") != std::string::npos);
        check_fail(e.request_from(kReq, 9000, "203.0.112.0/23"), code::kRefused, "up to /24 for IPv4");
        check_fail(e.request_from(kReq, 9000, "2001:db8::/48"), code::kRefused,
                   "port 9000/tcp accepts prefixes up to /64 for IPv6");
        check_fail(e.request_from(kReq, 9000, "2001:db8::/63"), code::kRefused, "up to /64 for IPv6");

        // v4nets: ipv4 = 28 only; IPv6 networks refused, IPv6 hosts fine; both protocols.
        CHECK(e.request_from(kReq, 9100, "198.51.100.16/28").ok);
        CHECK(e.request_from(kReq, 9100, "198.51.100.16/28", 1800, "udp").ok);
        check_fail(e.request_from(kReq, 9100, "198.51.100.0/27", 1800, "udp"), code::kRefused,
                   "port 9100/udp accepts prefixes up to /28 for IPv4");
        check_fail(
            e.request_from(kReq, 9100, "2001:db8::/64"), code::kRefused,
            "port 9100/tcp accepts single IPv6 hosts only with --from (policy allow_prefix.ipv6 is not "
            "set)");
        CHECK(e.request_from(kReq, 9100, "2001:db8::1").ok);
    }

    TEST_CASE("remote: a network grant reaches the sink as its canonical network") {
        Env e;
        const std::int64_t id = e.pending_from("2001:0DB8:0000:0000:8000:0000:0000:0000/65", 9000);
        Reply a = e.approve(kAlice, id);
        REQUIRE(a.ok);
        const std::int64_t gid = a.result.at("grant_id").get<std::int64_t>();
        CHECK(e.sink.live.at(gid).src == "2001:db8:0:0:8000::/65");
        CHECK(e.audit.last("grant").at("src") == "2001:db8:0:0:8000::/65");
    }

    TEST_CASE("remote: a second grant for the same source replaces the first, whoever asked") {
        Env e;
        auto first = e.pending_from("203.0.113.7");
        REQUIRE(e.approve(kAlice, first).ok);
        const std::int64_t gid1 = must(e.store.request(first))->grant_id;
        // rita's own local grant on the same port, and other sources: none of them replaced.
        auto [lr, lg] = e.granted(5432, 600);
        (void)lr;
        const std::int64_t other = e.pending_from("203.0.113.8");
        REQUIRE(e.approve(kAlice, other).ok);
        const std::int64_t gother = must(e.store.request(other))->grant_id;
        const std::int64_t net = e.pending_from("203.0.113.0/24", 9000);
        REQUIRE(e.approve(kAlice, net).ok);
        CHECK(must(e.store.grants("active", 100)).size() == 4);

        // bob asks for the same source and port: rita's grant for it is replaced.
        e.clock.advance(30);
        const std::int64_t second = e.pending_from("::ffff:203.0.113.7", 5432, kBob);
        Reply a = e.approve(kAlice, second);
        REQUIRE(a.ok);
        const std::int64_t gid2 = a.result.at("grant_id").get<std::int64_t>();
        check_replaced(e, gid1, gid2, kWall0 + 30 * kUs);
        CHECK(must(e.store.grant(gid2))->state == "active");
        CHECK(must(e.store.grant(gid2))->uid == 1002u);
        CHECK(must(e.store.grant(lg))->state == "active");
        CHECK(must(e.store.grant(gother))->state == "active");
        CHECK(must(e.store.grants("active", 100)).size() == 4);
        CHECK(e.sink.live.at(gid2).src == "203.0.113.7");

        const json& rv = e.audit.last("revoke");
        CHECK(rv.at("uid") == 1000);  // the replaced grant's holder
        CHECK(rv.at("src") == "203.0.113.7");
        const auto types = e.audit.types();
        CHECK(std::vector<std::string>(types.end() - 4, types.end()) ==
              std::vector<std::string>{"request", "approve", "revoke", "grant"});
        CHECK(e.audit.last("grant").at("user") == "bob");

        // A later local grant for bob does not touch his remote one.
        auto [br, bg] = e.granted(5432, 600, kBob);
        (void)br;
        CHECK(must(e.store.grant(gid2))->state == "active");
        CHECK(must(e.store.grant(bg))->state == "active");
    }

    TEST_CASE("remote: every decision record carries src") {
        Env e;
        // reject (deny)
        const std::int64_t d = e.pending_from("198.51.100.9");
        REQUIRE(e.deny(kAlice, d, "no").ok);
        CHECK(e.audit.last("reject").at("src") == "198.51.100.9");
        CHECK(e.wf.request_json(*must(e.store.request(d))).at("src") == "198.51.100.9");

        // expire of a pending request (request_ttl)
        const std::int64_t t = e.pending_from("198.51.100.10");
        e.clock.advance(900);
        REQUIRE(e.wf.sweep() == 1);
        CHECK(must(e.store.request(t))->state == "expired");
        const json& te = e.audit.last("expire");
        CHECK(te.at("request_id") == t);
        CHECK(te.at("src") == "198.51.100.10");

        // expire of a grant
        const std::int64_t g = e.pending_from("2001:db8::9");
        REQUIRE(e.approve(kAlice, g, 600).ok);
        const std::int64_t gid = must(e.store.request(g))->grant_id;
        e.clock.advance(600);
        REQUIRE(e.wf.sweep() == 1);
        CHECK(must(e.store.grant(gid))->state == "expired");
        CHECK(e.sink.removes.back() == gid);
        const json& ge = e.audit.last("expire");
        CHECK(ge.at("grant_id") == gid);
        CHECK(ge.at("src") == "2001:db8::9");

        // reject when the map is full
        const std::int64_t f = e.pending_from("198.51.100.11");
        e.sink.fail_with = "full";
        check_fail(e.approve(kAlice, f), code::kCapacity, "full");
        CHECK(e.audit.last("reject").at("request_id") == f);
        CHECK(e.audit.last("reject").at("src") == "198.51.100.11");

        // Every record of this test is about a remote principal.
        for (const json& ev : e.audit.records) {
            CAPTURE(ev.dump());
            CHECK(ev.contains("src"));
        }
    }

    TEST_CASE("remote: auto_approve and self_approve work as for local grants") {
        Env e;
        Reply r = e.request_from(kOlly, 8000, "198.51.100.20", 900);
        REQUIRE(r.ok);
        CHECK(r.result.at("state") == "granted");
        CHECK(r.result.at("src") == "198.51.100.20");
        const std::int64_t gid = r.result.at("grant_id").get<std::int64_t>();
        CHECK(e.sink.live.at(gid).src == "198.51.100.20");
        CHECK(e.audit.types() == std::vector<std::string>{"request", "grant"});
        CHECK(e.audit.last("grant").at("src") == "198.51.100.20");

        // max_duration and the approver rules are unchanged.
        check_fail(e.request_from(kReq, 5432, "198.51.100.21", 3601), code::kRefused, "ask for 1h or less");
        const std::int64_t own = e.pending_from("198.51.100.22", 5432, kAlice);
        check_fail(e.approve(kAlice, own), code::kForbidden, "your own request");
        const std::int64_t self = e.pending_from("198.51.100.23", 7000, kAlice);
        CHECK(e.approve(kAlice, self).ok);
    }

}  // TEST_SUITE

TEST_SUITE("break-glass") {
    TEST_CASE("granted at once, no approver, recorded as break_glass then grant") {
        Env e;
        e.dir.groups["rita"].insert("dba");  // an approver of db (@dba): she may break the glass
        e.clock.advance(30);
        Reply r = e.break_glass(kReq, 5432, 600, "primary down, paging failed");
        INFO("message: ", r.message);
        REQUIRE(r.ok);
        const json& j = r.result;
        const std::int64_t rid = j.at("request_id").get<std::int64_t>();
        const std::int64_t gid = j.at("grant_id").get<std::int64_t>();
        CHECK(j.at("state") == "granted");
        CHECK(j.at("break_glass") == true);
        CHECK(j.at("decided_by") == "break_glass");
        CHECK(j.at("approvers") == json::array());
        CHECK(j.at("expires_at") == rfc3339_us(kWall0 + (30 + 600) * kUs));
        CHECK(j.at("remaining_s") == 600);
        CHECK(j.at("grant_state") == "active");
        CHECK(j.at("user") == "rita");
        CHECK(j.at("reason") == "primary down, paging failed");

        // In the kernel at once, for the requester, with the asked duration.
        REQUIRE(e.sink.puts == std::vector<std::int64_t>{gid});
        const FakeGrant& g = e.sink.live.at(gid);
        CHECK(g.uid == 1000u);
        CHECK(g.port == 5432);
        CHECK(g.expires_boot_ns == kBoot0 + (30 + 600) * kSec);

        // Stored as break-glass: the request and its grant.
        auto row = must(e.store.request(rid));
        REQUIRE(row);
        CHECK(row->kind == "break_glass");
        CHECK(row->state == "granted");
        CHECK(row->decided_by == "break_glass");
        CHECK(row->grant_id == gid);
        auto grow = must(e.store.grant(gid));
        REQUIRE(grow);
        CHECK(grow->kind == "break_glass");
        CHECK(grow->state == "active");
        CHECK(e.wf.grant_json(*grow).at("break_glass") == true);

        // One break_glass record, then the usual grant record marked as break-glass.
        REQUIRE(e.audit.types() == std::vector<std::string>{"break_glass", "grant"});
        const json& bg = e.audit.records[0];
        CHECK(bg.at("uid") == 1000);
        CHECK(bg.at("user") == "rita");
        CHECK(bg.at("pid") == 4242);
        CHECK(bg.at("requester") == "rita");
        CHECK(bg.at("request_id") == rid);
        CHECK(bg.at("grant_id") == gid);
        CHECK(bg.at("port") == 5432);
        CHECK(bg.at("proto") == "tcp");
        CHECK(bg.at("duration_s") == 600);
        CHECK(bg.at("reason") == "primary down, paging failed");
        CHECK(bg.at("expires_at") == rfc3339_us(kWall0 + (30 + 600) * kUs));
        const json& gr = e.audit.records[1];
        CHECK(gr.at("break_glass") == true);
        CHECK(gr.at("grant_id") == gid);
        CHECK(gr.at("request_id") == rid);
        CHECK(gr.at("duration_s") == 600);
        CHECK(gr.at("approvers") == json::array());

        // Revoked like any grant, by its holder.
        Reply rv = e.revoke(kReq, gid);
        REQUIRE(rv.ok);
        CHECK(rv.result.at("state") == "revoked");
        CHECK(rv.result.at("break_glass") == true);
        CHECK(e.sink.removes == std::vector<std::int64_t>{gid});
        CHECK(e.audit.types().back() == "revoke");
    }

    TEST_CASE("an ordinary grant carries no break_glass mark anywhere") {
        Env e;
        auto [rid, gid] = e.granted();
        CHECK_FALSE(e.wf.request_json(*must(e.store.request(rid))).contains("break_glass"));
        CHECK_FALSE(e.wf.grant_json(*must(e.store.grant(gid))).contains("break_glass"));
        CHECK(must(e.store.grant(gid))->kind.empty());
        for (const json& ev : e.audit.records) CHECK_FALSE(ev.contains("break_glass"));
    }

    TEST_CASE("expiry ends a break-glass grant like any other") {
        Env e;
        e.dir.groups["rita"].insert("dba");  // an approver of db (@dba): she may break the glass
        auto [rid, gid] = e.glass(kReq, 5432, 120);
        (void)rid;
        e.clock.advance(121);
        CHECK(e.wf.sweep() == 1);
        CHECK(must(e.store.grant(gid))->state == "expired");
        CHECK(e.sink.live.empty());
        CHECK(e.audit.last("expire").at("grant_id") == gid);
    }

    TEST_CASE("the cap: 15m by default, break_glass_max where set; over it refused, naming the cap") {
        Env e;
        e.dir.groups["rita"].insert("dba");  // an approver of db (@dba): she may break the glass
        CHECK(e.wf.policy().find(5432, Proto::Tcp)->break_glass_max_s == 900);
        Reply over = e.break_glass(kReq, 5432, 901);
        check_fail(over, code::kRefused, "ask for 15m or less");
        CHECK(over.message.find("15m1s is longer than break-glass on port 'db' allows") != std::string::npos);
        CHECK(exit_code_for(over.code) == 3);
        CHECK(must(e.store.requests("all", 100)).empty());
        CHECK(e.audit.records.empty());
        CHECK(e.sink.puts.empty());
        CHECK(e.break_glass(kReq, 5432, 900).ok);

        // pair: break_glass_max = "30m", longer than the default.
        check_fail(e.break_glass(kBob, 6000, 1801, "x", "udp"), code::kRefused, "ask for 30m or less");
        Reply ok = e.break_glass(kBob, 6000, 1800, "dns broken", "udp");
        INFO("message: ", ok.message);
        REQUIRE(ok.ok);
        CHECK(e.sink.live.at(ok.result.at("grant_id").get<std::int64_t>()).expires_boot_ns ==
              kBoot0 + 1800 * kSec);
    }

    TEST_CASE("refused where turned off, where the user is not listed, on unprotected ports") {
        Env e;
        Reply off = e.break_glass(kAlice, 7000, 60);
        check_fail(off, code::kRefused, "port 'self' has break-glass turned off (break_glass_max = \"0s\")");
        CHECK(exit_code_for(off.code) == 3);

        Reply nobody = e.break_glass(kOlly, 8000, 60);
        check_fail(nobody, code::kForbidden, "port 'auto' lets nobody break the glass (break_glass = [])");
        CHECK(exit_code_for(nobody.code) == 3);

        Reply rita = e.break_glass(kReq, 6000, 60);
        check_fail(
            rita, code::kForbidden,
            "rita may not break the glass on port 'pair' (not in its break_glass list): ask for access "
            "with jitgate request");
        // Approvers of the port are not on its break_glass list either.
        check_fail(e.break_glass(kAlice, 6000, 60), code::kForbidden, "alice may not break the glass");

        check_fail(e.break_glass(kReq, 5433, 60), code::kRefused,
                   "port 5433/tcp is not protected by jitgate");
        check_fail(e.break_glass(kReq, 5432, 60, "x", "udp"), code::kRefused,
                   "port 5432/udp is not protected");

        CHECK(must(e.store.requests("all", 100)).empty());
        CHECK(must(e.store.grants("all", 100)).empty());
        CHECK(e.audit.records.empty());
        CHECK(e.sink.puts.empty());
    }

    TEST_CASE("break_glass = [\"bob\", \"@oncall\"]: by name or by group membership") {
        Env e;
        e.dir.asked.clear();
        Reply olly = e.break_glass(kOlly, 6000, 300);
        INFO("message: ", olly.message);
        REQUIRE(olly.ok);
        CHECK(olly.result.at("user") == "olly");
        CHECK(std::find(e.dir.asked.begin(), e.dir.asked.end(), "olly@oncall") != e.dir.asked.end());
        CHECK(e.break_glass(kBob, 6000, 300).ok);
        // dave is in dba, not oncall.
        check_fail(e.break_glass(kDave, 6000, 300), code::kForbidden, "dave may not break the glass");
        // No break_glass key (port db): its approvers may (alice, and dave through @dba), nobody else.
        CHECK(e.break_glass(kAlice, 5432, 300).ok);
        CHECK(e.break_glass(kDave, 5432, 300).ok);
        check_fail(e.break_glass(kEve, 5432, 300), code::kForbidden, "only its approvers may");
        check_fail(e.break_glass(kReq, 5432, 300), code::kForbidden, "only its approvers may");
    }

    TEST_CASE("the reason is mandatory, whatever require_reason says") {
        Env e;
        for (const char* blank : {"", " ", "    "}) {
            CAPTURE(blank);
            check_fail(e.break_glass(kReq, 5432, 60, blank), code::kInvalid, "break-glass needs a reason");
        }
        check_fail(e.break_glass(kReq, 5432, 60, "two\nlines"), code::kRefused, "(U+000A) at character 4");
        const std::string long_reason(kMaxReasonBytes + 1, 'r');
        check_fail(e.break_glass(kReq, 5432, 60, long_reason.c_str()), code::kInvalid, "one line");
        check_fail(e.break_glass(kReq, 5432, 0), code::kInvalid, "duration");
        CHECK(must(e.store.requests("all", 100)).empty());
        CHECK(e.audit.records.empty());
    }

    TEST_CASE("it replaces the user's grant for the port, as an approved grant does") {
        Env e;
        e.dir.groups["rita"].insert("dba");  // an approver of db (@dba): she may break the glass
        auto [r1, g1] = e.granted(5432, 1800);
        (void)r1;
        e.clock.advance(10);
        auto [r2, g2] = e.glass(kReq, 5432, 300);
        (void)r2;
        check_replaced(e, g1, g2, kWall0 + 10 * kUs);
        // break_glass is the decision: written (flushed) before the grant
        // takes effect; the effects (the old grant's revoke, the grant) follow.
        CHECK(e.audit.types() ==
              std::vector<std::string>{"request", "approve", "grant", "break_glass", "revoke", "grant"});
        CHECK(e.audit.flushed == 4);
        auto active = must(e.store.grants("active", 10));
        REQUIRE(active.size() == 1);
        CHECK(active[0].id == g2);
    }

    TEST_CASE("a full grant map: refused, recorded as a rejected break-glass, nothing active") {
        Env e;
        e.dir.groups["rita"].insert("dba");  // an approver of db (@dba): she may break the glass
        e.sink.fail_with = "the grant map is full (65536 grants); revoke unused grants and try again";
        Reply r = e.break_glass(kReq, 5432, 60);
        check_fail(r, code::kCapacity, "the grant map is full");
        // Decided (written before the map was tried), then refused by the map.
        CHECK(e.audit.types() == std::vector<std::string>{"break_glass", "reject"});
        CHECK(e.audit.last("reject").at("break_glass") == true);
        auto rows = must(e.store.requests("all", 10));
        REQUIRE(rows.size() == 1);
        CHECK(rows[0].state == "rejected");
        CHECK(rows[0].kind == "break_glass");
        CHECK(must(e.store.grants("active", 10)).empty());
    }

    TEST_CASE("list: break-glass grants of the last 7 days for review, newest first") {
        Env e;
        e.dir.groups["rita"].insert("dba");              // an approver of db (@dba): she may break the glass
        auto [old_r, old_g] = e.glass(kReq, 5432, 600);  // 8 days before the others
        (void)old_r;
        e.clock.advance(8 * 86400);
        e.wf.sweep();
        auto [r1, g1] = e.glass(kAlice, 5432, 120);
        (void)r1;
        e.clock.advance(200);  // g1 expires: still listed for review
        e.wf.sweep();
        auto [rn, gn] = e.granted(5432, 600, kCarol);  // approved: not break-glass
        (void)rn;
        auto [r2, g2] = e.glass(kReq, 5432, 300);
        (void)r2;

        Reply d = op(&Workflow::list, e.wf, kDave, json::object());  // an approver of db (@dba), reviewing
        REQUIRE(d.ok);
        const json& bg = d.result.at("break_glass");
        REQUIRE(bg.size() == 2);
        CHECK(bg[0].at("grant_id") == g2);
        CHECK(bg[0].at("state") == "active");
        CHECK(bg[0].at("break_glass") == true);
        CHECK(bg[0].at("remaining_s") == 300);
        CHECK(bg[1].at("grant_id") == g1);
        CHECK(bg[1].at("state") == "expired");
        CHECK(bg[1].at("ended_by") == "clock");
        for (const json& g : bg) CHECK(g.at("grant_id") != old_g);
        // The active grants hold both kinds, as before.
        std::set<std::int64_t> active;
        for (const json& g : d.result.at("grants")) active.insert(g.at("grant_id").get<std::int64_t>());
        CHECK(active == std::set<std::int64_t>{gn, g2});

        Reply all = op(&Workflow::list, e.wf, kDave, json{{"filter", "all"}});
        REQUIRE(all.ok);
        CHECK(all.result.at("break_glass") == bg);
        for (const char* f : {"pending", "active"}) {
            CAPTURE(f);
            Reply only = op(&Workflow::list, e.wf, kDave, json{{"filter", f}});
            REQUIRE(only.ok);
            CHECK(only.result.at("break_glass") == json::array());
        }

        // A week after g1 started it leaves the list.
        e.clock.advance(7 * 86400 - 199);
        Reply later = op(&Workflow::list, e.wf, kDave, json::object());
        REQUIRE(later.ok);
        REQUIRE(later.result.at("break_glass").size() == 1);
        CHECK(later.result["break_glass"][0].at("grant_id") == g2);
    }

    TEST_CASE("list: at most 100 break-glass grants") {
        Env e;
        e.dir.groups["rita"].insert("dba");  // an approver of db (@dba): she may break the glass
        std::int64_t last = 0;
        for (int i = 0; i < 101; ++i) {
            e.clock.advance(1);
            last = e.glass(kReq, 5432, 600).second;
        }
        Reply d = op(&Workflow::list, e.wf, kReq, json::object());
        REQUIRE(d.ok);
        REQUIRE(d.result.at("break_glass").size() == 100);
        CHECK(d.result["break_glass"][0].at("grant_id") == last);
        CHECK(d.result["break_glass"][99].at("state") == "replaced");
    }
}

TEST_SUITE("show") {
    TEST_CASE("show: one request as request_json, to an approver of its port; an unknown id is not_found") {
        Env e;
        const std::int64_t id = e.pending(6000, 600);
        Reply s = e.show(kCarol, id);  // not the requester, an approver who has not approved
        REQUIRE(s.ok);
        CHECK(s.result == e.wf.request_json(*must(e.store.request(id))));
        CHECK(s.result.at("state") == "pending");
        CHECK(s.result.at("approvals_required") == 2);
        CHECK(s.result.at("approvers") == json::array());

        REQUIRE(e.approve(kAlice, id).ok);
        Reply one = e.show(kReq, id);
        REQUIRE(one.ok);
        CHECK(one.result.at("state") == "pending");
        CHECK(one.result.at("approvers") == json{"alice"});

        e.clock.advance(5);
        REQUIRE(e.approve(kBob, id).ok);
        e.clock.advance(2);
        Reply done = e.show(kReq, id);
        REQUIRE(done.ok);
        CHECK(done.result.at("state") == "granted");
        const std::int64_t gid = done.result.at("grant_id").get<std::int64_t>();
        CHECK(done.result.at("remaining_s") == 598);
        CHECK(done.result.at("grant_state") == "active");

        check_fail(e.show(kReq, 999), code::kNotFound, "there is no request 999");
        check_fail(e.show(kReq, gid), code::kNotFound,
                   fmt::format("{} is a grant, not a request: its request is {}", gid, id));
        CHECK(exit_code_for(code::kNotFound) == 1);
    }

    TEST_CASE("show: rejected with who and why; a request past its TTL shows expired") {
        Env e;
        const std::int64_t id = e.pending();
        REQUIRE(e.deny(kAlice, id, "not during the freeze").ok);
        Reply r = e.show(kReq, id);
        REQUIRE(r.ok);
        CHECK(r.result.at("state") == "rejected");
        CHECK(r.result.at("decided_by") == "alice");
        CHECK(r.result.at("decision_reason") == "not during the freeze");

        const std::int64_t late = e.pending();
        e.clock.advance(901);  // request_ttl is 15m; no sweep ran
        Reply x = e.show(kReq, late);
        REQUIRE(x.ok);
        CHECK(x.result.at("state") == "expired");
        CHECK(x.result.at("decided_by") == "request_ttl");
        CHECK(must(e.store.request(late))->state == "expired");
    }
}

namespace {

// Replaces e's policy with `toml` (which must be valid).
void use_policy(Env& e, const char* toml) {
    auto load = parse_policy(toml, "unit.toml");
    for (auto& err : load.errors) MESSAGE(err);
    REQUIRE(load.ok());
    e.wf.set_policy(std::make_shared<Policy>(load.policy));
}

// Two approvals of members of group dba on port 6100; dave, eve and olly are members.
const char* kGroupPair = R"(
[daemon]
auditors = ["@secops"]

[[port]]
name = "grouppair"
port = 6100
approvers = ["@dba"]
approvals_required = 2

[[port]]
name = "db"
port = 5432
max_duration = "1h"
approvers = ["alice", "@dba"]
request_ttl = "15m"
)";

std::vector<std::string> approvers_of(Env& e, std::int64_t id) {
    auto r = must(e.store.request(id));
    REQUIRE(r);
    return r->approvers;
}

}  // namespace

TEST_SUITE("approvals that lapse (issue 16.5)") {
    TEST_CASE("an approver removed from the group before the last approval no longer counts") {
        Env e;
        use_policy(e, kGroupPair);
        e.dir.groups["eve"] = {"dba"};
        e.dir.groups["olly"] = {"dba"};
        const std::int64_t id = e.pending(6100);
        REQUIRE(e.approve(kDave, id).result.at("state") == "pending");
        e.dir.groups["dave"] = {};  // dave leaves dba
        Reply second = e.approve(kEve, id);
        REQUIRE(second.ok);
        CHECK(second.result.at("state") == "pending");
        CHECK(approvers_of(e, id) == std::vector<std::string>{"eve"});
        const json& lapsed = e.audit.last("approval_lapsed");
        CHECK(lapsed.at("user") == "dave");
        CHECK(lapsed.at("uid") == kDave.uid);
        CHECK(lapsed.at("request_id") == id);
        CHECK(lapsed.at("requester") == "rita");
        CHECK(lapsed.at("approvers") == json::array({"eve"}));
        CHECK(lapsed.at("reason").get<std::string>().find("no longer an approver") != std::string::npos);
        CHECK(e.audit.last("approve").at("approvers") == json::array({"eve"}));
        CHECK(e.sink.puts.empty());
        Reply third = e.approve(kOlly, id);
        REQUIRE(third.ok);
        CHECK(third.result.at("state") == "granted");
        CHECK(third.result.at("approvers") == json::array({"eve", "olly"}));
    }

    TEST_CASE("a reload takes lapsed approvals off pending requests and grants none") {
        Env e;
        const std::int64_t id = e.pending(6000);  // "pair": alice, bob, carol; two required
        REQUIRE(e.approve(kAlice, id).result.at("state") == "pending");
        const std::int64_t kept = e.pending(6000, 1800, kEve);
        REQUIRE(e.approve(kBob, kept).result.at("state") == "pending");
        use_policy(e, R"(
[[port]]
name = "pair"
port = 6000
proto = "both"
approvers = ["bob", "carol"]
approvals_required = 1
)");
        CHECK(e.wf.recheck_approvals() == 1);
        CHECK(must(e.store.request(id))->state == "pending");
        CHECK(approvers_of(e, id).empty());
        // bob still qualifies, and one approval is now enough: still nothing granted by a reload.
        CHECK(must(e.store.request(kept))->state == "pending");
        CHECK(approvers_of(e, kept) == std::vector<std::string>{"bob"});
        CHECK(e.sink.puts.empty());
        CHECK(e.audit.last("approval_lapsed").at("user") == "alice");
        CHECK(e.audit.of("approval_lapsed").size() == 1);
        CHECK(e.approve(kBob, id).result.at("state") == "granted");
    }

    TEST_CASE("an approval whose approver's uid now names another account lapses") {
        Env e;
        const std::int64_t id = e.pending(6000);
        REQUIRE(e.approve(kAlice, id).result.at("state") == "pending");
        e.dir.names[kAlice.uid] = "mallory";  // alice deleted, her uid given to mallory
        check_fail(e.approve(Caller{kAlice.uid, 99, "mallory"}, id), code::kForbidden, "not an approver");
        Reply r = e.approve(kBob, id);
        REQUIRE(r.ok);
        CHECK(r.result.at("state") == "pending");
        CHECK(e.audit.last("approval_lapsed").at("reason").get<std::string>().find("account was removed") !=
              std::string::npos);
        CHECK(e.approve(kCarol, id).result.at("state") == "granted");
    }

    TEST_CASE("an approval stored without its approver's uid (an older state) lapses at the last approval") {
        Env e;
        const std::int64_t id = e.pending(6000);
        auto r = must(e.store.request(id));
        r->approvers = {"alice"};  // as schema 3 stored it: names only
        must(e.store.put_request(*r));
        CHECK(e.approve(kBob, id).result.at("state") == "pending");
        CHECK(e.approve(kAlice, id).result.at("state") == "granted");
    }
}

TEST_SUITE("accounts removed or reused (issue 16.6)") {
    TEST_CASE("a grant and a request whose uid now names another account end as account_removed") {
        Env e;
        auto [rid, gid] = e.granted(5432, 600);
        const std::int64_t pend = e.pending(6000);
        auto [bob_rid, bob_gid] = e.granted(5432, 600, kBob);
        CHECK(e.wf.end_removed_accounts(64) == 0);
        e.dir.names[kReq.uid] = "newbie";  // rita deleted; useradd -u 1000 newbie
        CHECK(e.wf.end_removed_accounts(64) == 2);
        auto g = must(e.store.grant(gid));
        CHECK(g->state == "revoked");
        CHECK(g->ended_by == "account_removed");
        CHECK(e.sink.live.count(gid) == 0);
        CHECK(e.audit.last("revoke").at("ended_by") == "account_removed");
        auto r = must(e.store.request(pend));
        CHECK(r->state == "rejected");
        CHECK(r->decided_by == "account_removed");
        CHECK(must(e.store.grant(bob_gid))->state == "active");
        CHECK(e.wf.end_removed_accounts(64) == 0);
        (void)rid;
        (void)bob_rid;
    }

    TEST_CASE("a deleted account's grant ends; the check walks the accounts a few per call") {
        Env e;
        auto [r1, g1] = e.granted(5432, 600);
        auto [r2, g2] = e.granted(5432, 600, kBob);
        e.dir.gone = {kReq.uid, kBob.uid};
        int ended = 0, calls = 0;
        while (calls < 4 && ended < 2) {
            ended += e.wf.end_removed_accounts(1);
            ++calls;
        }
        CHECK(ended == 2);
        CHECK(calls == 2);
        CHECK(must(e.store.grant(g1))->ended_by == "account_removed");
        CHECK(must(e.store.grant(g2))->ended_by == "account_removed");
        (void)r1;
        (void)r2;
    }

    TEST_CASE("a user database that does not answer ends nothing") {
        Env e;
        auto [rid, gid] = e.granted(5432, 600);
        e.dir.unanswered = true;
        CHECK(e.wf.end_removed_accounts(64) == 0);
        CHECK(must(e.store.grant(gid))->state == "active");
        (void)rid;
    }

    TEST_CASE("no answer about the requester at the last approval: nothing kept, a retry completes it") {
        Env e;
        const std::int64_t id = e.pending();
        e.dir.unanswered_uids.insert(kReq.uid);
        check_fail(e.approve(kAlice, id), code::kInternal, "try again");
        CHECK(e.sink.puts.empty());
        CHECK(must(e.store.request(id))->state == "pending");
        CHECK(must(e.store.request(id))->approvers.empty());
        e.dir.unanswered_uids.clear();
        CHECK(e.approve(kAlice, id).ok);
        CHECK(must(e.store.request(id))->state == "granted");
    }

    TEST_CASE("approving a request whose requester's uid was given to another account is refused") {
        Env e;
        const std::int64_t id = e.pending();
        e.dir.names[kReq.uid] = "newbie";
        check_fail(e.approve(kAlice, id), code::kConflict, "account was removed");
        CHECK(e.sink.puts.empty());
        CHECK(must(e.store.request(id))->state == "rejected");
        CHECK(must(e.store.request(id))->decided_by == "account_removed");
    }
}

TEST_SUITE("clocks (issue 16.8)") {
    // An active grant of an earlier boot: started `start_s` and ending
    // `end_s` seconds from kWall0 by the wall clock.
    void put_old(Env & e, std::int64_t id, std::int64_t start_s, std::int64_t end_s, int port = 5432) {
        GrantRow g;
        g.id = id;
        g.request_id = id - 1;
        g.uid = 1000;
        g.user = "rita";
        g.port = static_cast<std::uint16_t>(port);
        g.proto = Proto::Tcp;
        g.start_us = kWall0 + start_s * kUs;
        g.expires_us = kWall0 + end_s * kUs;
        g.expires_boot_ns = 42ULL * kSec;
        g.boot_id = "boot-OLD";
        g.state = "active";
        must(e.store.put_grant(g));
    }

    TEST_CASE("rebase with the wall clock behind the grant's start: the grant ends as clock_unknown") {
        Env e;
        // A 10 s grant begun a day after what the wall clock now says.
        put_old(e, 101, 86400, 86410);
        const std::string why = e.wf.rebase_boot();
        CHECK(why.find("clock_unknown") != std::string::npos);
        e.wf.sweep();
        auto g = must(e.store.grant(101));
        CHECK(g->state == "expired");
        CHECK(g->ended_by == "clock_unknown");
        CHECK(e.audit.last("expire").at("ended_by") == "clock_unknown");
    }

    TEST_CASE("rebase with the wall clock before the last stop: the time left is unknown") {
        Env e;
        put_old(e, 101, -50, 600);
        must(e.store.set_meta(kMetaLastStop, kWall0 + 100 * kUs));
        CHECK_FALSE(e.wf.rebase_boot().empty());
        e.wf.sweep();
        CHECK(must(e.store.grant(101))->ended_by == "clock_unknown");
    }

    TEST_CASE("rebase with a normal wall clock: the time left, capped by the port's max_duration") {
        Env e;
        put_old(e, 101, -10, 590);
        put_old(e, 103, -10, 86400);  // longer than "db" allows (1h)
        must(e.store.set_meta(kMetaLastStop, kWall0 - 20 * kUs));
        CHECK(e.wf.rebase_boot().empty());
        e.wf.sweep();
        auto a = must(e.store.grant(101));
        CHECK(a->state == "active");
        CHECK(a->expires_boot_ns == kBoot0 + 590 * kSec);
        auto b = must(e.store.grant(103));
        CHECK(b->state == "active");
        CHECK(b->expires_boot_ns == kBoot0 + 3600 * kSec);
        CHECK(b->expires_us == kWall0 + 3600 * kUs);
        CHECK(b->boot_id == "boot-A");
    }

    TEST_CASE("rebase with the wall clock ahead: a grant whose end passed expires by the clock") {
        Env e;
        put_old(e, 101, -86400, -86000);
        CHECK(e.wf.rebase_boot().empty());
        e.wf.sweep();
        CHECK(must(e.store.grant(101))->state == "expired");
        CHECK(must(e.store.grant(101))->ended_by == "clock");
    }

    TEST_CASE("record_stop keeps the wall clock for the next start") {
        Env e;
        e.wf.record_stop();
        CHECK(must(e.store.meta(kMetaLastStop)) == kWall0);
    }

    TEST_CASE(
        "a pending request of an earlier boot: its TTL re-based, or expired when the clock is unknown") {
        Env e;
        RequestRow r;
        r.id = 50;
        r.uid = 1000;
        r.user = "rita";
        r.port = 5432;
        r.duration_s = 600;
        r.reason = std::string(1, 'x');  // not = "x": GCC 12 warns falsely there (-Wrestrict, GCC bug 105329)
        r.state = "pending";
        r.created_us = kWall0 - 60 * kUs;
        r.deadline_us = kWall0 + 840 * kUs;
        r.boot_id = "boot-OLD";
        must(e.store.put_request(r));
        RequestRow ahead = r;
        ahead.id = 51;
        ahead.created_us = kWall0 + 3600 * kUs;  // made "later" than the clock now says
        ahead.deadline_us = kWall0 + 4500 * kUs;
        must(e.store.put_request(ahead));
        e.wf.rebase_boot();
        auto moved = must(e.store.request(50));
        CHECK(moved->state == "pending");
        CHECK(moved->boot_id == "boot-A");
        CHECK(moved->deadline_boot_ns == kBoot0 + 840 * kSec);
        CHECK(must(e.store.request(51))->state == "expired");
        CHECK(must(e.store.request(51))->decided_by == "clock_unknown");
    }

    TEST_CASE("request_ttl follows CLOCK_BOOTTIME, not wall-clock steps") {
        Env e;
        const std::int64_t id = e.pending();  // request_ttl 15m
        e.clock.wall += 86400 * kUs;          // the wall clock jumps a day ahead
        e.clock.boot += 60 * kSec;
        e.wf.sweep();
        CHECK(must(e.store.request(id))->state == "pending");
        CHECK(e.show(kReq, id).result.at("state") == "pending");
        e.clock.wall -= 2 * 86400 * kUs;  // and then a day behind
        e.clock.boot += 900 * kSec;
        e.wf.sweep();
        CHECK(must(e.store.request(id))->state == "expired");
    }

    TEST_CASE("used_s follows CLOCK_BOOTTIME, not wall-clock steps") {
        Env e;
        auto [rid, gid] = e.granted(5432, 600);
        e.clock.wall += 86400 * kUs;
        e.clock.boot += 60 * kSec;
        REQUIRE(e.revoke(kReq, gid).ok);
        CHECK(e.audit.last("revoke").at("used_s") == 60);
        (void)rid;
    }
}

TEST_SUITE("scope of list and show (issue 16.9)") {
    TEST_CASE("list and show: own records, approvers their ports, auditors and root everything") {
        Env e;
        use_policy(e, kGroupPair);
        e.dir.groups["olly"] = {"secops"};
        const std::int64_t id = e.pending(5432);  // rita; approvers alice and @dba
        auto ids = [&](const Caller& c, const char* filter) {
            Reply r = op(&Workflow::list, e.wf, c, json{{"filter", filter}});
            REQUIRE(r.ok);
            std::set<std::int64_t> out;
            for (auto& x : r.result.at("requests")) out.insert(x.at("request_id").get<std::int64_t>());
            return out;
        };
        CHECK(ids(kBob, "all").empty());  // bob: nobody here
        CHECK(ids(kBob, "pending").empty());
        CHECK(ids(kAlice, "pending").count(id) == 1);  // an approver of 5432
        CHECK(ids(kDave, "all").count(id) == 1);       // through @dba
        CHECK(ids(kReq, "all").count(id) == 1);        // their own
        CHECK(ids(kOlly, "all").count(id) == 1);       // an auditor (@secops)
        CHECK(ids(kRoot, "all").count(id) == 1);
        check_fail(e.show(kBob, id), code::kForbidden, "not yours");
        CHECK(e.show(kAlice, id).ok);
        CHECK(e.show(kReq, id).ok);
        CHECK(e.show(kOlly, id).ok);
        CHECK(e.wf.sees_all(kOlly));
        CHECK_FALSE(e.wf.sees_all(kAlice));
    }
}

// Callers who proved who they are with an OIDC ID token (design.md §8).
TEST_SUITE("workflow token callers") {
    Caller token_of(const Caller& c, std::vector<std::string> groups = {}) {
        Caller t = c;
        t.token = TokenAuth{"https://sso.example.com", "sub-" + c.user, std::move(groups)};
        return t;
    }

    TEST_CASE("a token's groups are its @groups, not the host's") {
        Env e;
        const std::int64_t id = e.pending();
        // dave is in dba on the host, but his token says nothing of it.
        check_fail(e.approve(token_of(kDave), id), code::kForbidden, "not an approver");
        // eve is in no group on the host; her token puts her in dba.
        Reply r = e.approve(token_of(kEve, {"dba"}), id);
        INFO(r.message);
        REQUIRE(r.ok);
        CHECK(r.result.at("state") == "granted");  // the last approval rechecked as her token, not NSS
        const json ev = e.audit.of("approve").back();
        CHECK(ev.at("auth") == "oidc");
        CHECK(ev.at("issuer") == "https://sso.example.com");
        CHECK(ev.at("subject") == "sub-eve");
        CHECK(ev.at("user") == "eve");
        CHECK_FALSE(e.audit.of("request").back().contains("auth"));  // the shell request's record
    }

    TEST_CASE(
        "two approvals that count through tokens' groups both stand, until the policy drops the group") {
        Env e;
        auto with_policy = [&](const char* approvers) {
            auto load = parse_policy(std::string(kPolicy) + "\n", "unit.toml");
            auto p = load.policy;
            for (auto& port : p.ports)
                if (port.name == "db") {
                    port.approvals_required = 2;
                    port.approvers = {Principal{true, approvers}};
                }
            e.wf.set_policy(std::make_shared<Policy>(p));
        };
        with_policy("sso-dba");  // a group only the identity provider knows
        const std::int64_t id = e.pending();
        REQUIRE(e.approve(token_of(kEve, {"sso-dba", "staff"}), id).ok);
        // Kept with the approval: the port's groups the token gave, no others.
        auto row = must(e.store.request(id));
        REQUIRE(row->approver_token_groups.size() == 1);
        CHECK(row->approver_token_groups[0] == std::vector<std::string>{"sso-dba"});
        // A reload rechecks it as the token said, not as the host's groups.
        CHECK(e.wf.recheck_approvals() == 0);
        CHECK(e.audit.of("approval_lapsed").empty());
        Reply r = e.approve(token_of(kAlice, {"sso-dba"}), id);
        INFO(r.message);
        REQUIRE(r.ok);
        CHECK(r.result.at("state") == "granted");
        // The group leaves the policy: an approval made through it lapses.
        const std::int64_t next = e.pending(5432, 1800, kDave);
        REQUIRE(e.approve(token_of(kEve, {"sso-dba"}), next).ok);
        with_policy("other");
        CHECK(e.wf.recheck_approvals() == 1);
        CHECK(e.audit.of("approval_lapsed").back().at("user") == "eve");
    }

    TEST_CASE("no self-approval across the two identities, by uid or by name") {
        Env e;
        e.wf.set_policy([&] {
            auto load = parse_policy(std::string(kPolicy) + "\n", "unit.toml");
            auto p = load.policy;
            for (auto& port : p.ports)
                if (port.name == "db") port.approvers.push_back(Principal{false, "rita"});
            return std::make_shared<Policy>(p);
        }());
        const std::int64_t shell = e.pending();
        check_fail(e.approve(token_of(kReq), shell), code::kForbidden, "your own request");
        const std::int64_t by_token = e.pending(5432, 1800, token_of(kReq));
        check_fail(e.approve(kReq, by_token), code::kForbidden, "your own request");
        // The same name on another uid is still the same person.
        check_fail(e.approve(Caller{2000, 1, "rita"}, shell), code::kForbidden, "your own request");
        CHECK(e.audit.of("request").back().at("auth") == "oidc");
    }
}

}  // namespace test_workflow
