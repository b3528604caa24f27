// Issue 16: what bounds the rows one user can make jitgated keep (caps on
// pending requests, the request rate, retention, free space, list's pages),
// and the time-namespace refusal.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <memory>
#include <optional>
#include <string>

#include "cli/app.h"
#include "cli/render.h"
#include "core/limits.h"
#include "core/policy.h"
#include "core/protocol.h"
#include "core/store.h"
#include "core/timens.h"
#include "core/workflow.h"
#include "fakes.h"
#include "wire_op.h"

namespace test_limits {
using namespace jg;
using namespace jg::testing;

namespace {

const char* kPorts = R"(
[[port]]
name = "db"
port = 5432
approvers = ["alice"]

[[port]]
name = "cache"
port = 6379
approvers = ["alice"]

[[port]]
name = "mq"
port = 5672
approvers = ["alice"]
)";

const Caller kRita{1000, 42, "rita"};
const Caller kSam{1001, 43, "sam"};
const Caller kAlice{1002, 44, "alice"};
const Caller kRoot{0, 1, "root"};

struct Env {
    Store store = memory_store();
    FakeDirectory dir;
    FakeSink sink;
    FakeAudit audit;
    FakeClock clock;
    Workflow wf{store, dir, sink, audit, clock, "boot-A"};

    explicit Env(const std::string& daemon = "") {
        auto load = parse_policy(daemon + kPorts, "unit.toml");
        for (auto& e : load.errors) MESSAGE(e);
        REQUIRE(load.ok());
        wf.set_policy(std::make_shared<Policy>(load.policy));
    }
    Reply request(const Caller& c, int port) {
        return op(&Workflow::request, wf, c,
                  json{{"port", port}, {"proto", "tcp"}, {"duration_s", 600}, {"reason", "r"}});
    }
    std::int64_t pending(const Caller& c, int port) {
        Reply r = request(c, port);
        INFO("message: ", r.message);
        REQUIRE(r.ok);
        return r.result.at("request_id").get<std::int64_t>();
    }
    Reply list(json args) { return op(&Workflow::list, wf, kAlice, args); }
};

std::vector<std::string> errors_of(const std::string& text) { return parse_policy(text, "t.toml").errors; }

}  // namespace

TEST_SUITE("limits") {
    TEST_CASE("[daemon] limit keys: defaults, values and refusals") {
        const RequestLimits d = parse_policy("", "t.toml").policy.daemon.limits;
        CHECK(d.max_pending_per_user == 20);
        CHECK(d.max_pending_per_port == 5);
        CHECK(d.rate_burst == 30);
        CHECK(d.rate_period_s == 60);
        CHECK(d.retention_s == 30 * 86400);
        CHECK(d.min_free_mb == 64);

        auto load = parse_policy(
            "[daemon]\nmax_pending_per_user = 3\nmax_pending_per_port = 2\nrequest_rate = \"5/s\"\n"
            "retention = \"90d\"\nmin_free_mb = 0\n",
            "t.toml");
        REQUIRE(load.ok());
        const RequestLimits& l = load.policy.daemon.limits;
        CHECK(l.max_pending_per_user == 3);
        CHECK(l.max_pending_per_port == 2);
        CHECK(l.rate_burst == 5);
        CHECK(l.rate_period_s == 1);
        CHECK(l.retention_s == 90 * 86400);
        CHECK(l.min_free_mb == 0);
        CHECK(parse_policy("[daemon]\nretention = \"0s\"\n", "t.toml").policy.daemon.limits.retention_s == 0);

        CHECK(errors_of("[daemon]\nmax_pending_per_user = 0\n").size() == 1);
        CHECK(errors_of("[daemon]\nmax_pending_per_port = \"5\"\n").size() == 1);
        CHECK(errors_of("[daemon]\nrequest_rate = \"10\"\n").size() == 1);
        CHECK(errors_of("[daemon]\nrequest_rate = \"0/m\"\n").size() == 1);
        CHECK(errors_of("[daemon]\nrequest_rate = \"10/d\"\n").size() == 1);
        CHECK(errors_of("[daemon]\nretention = \"1d\"\n").at(0).find("at least 7d") != std::string::npos);
        CHECK(errors_of("[daemon]\nmin_free_mb = -1\n").size() == 1);
    }

    TEST_CASE("parse_rate") {
        CHECK(*parse_rate("30/m") == std::pair<int, std::int64_t>{30, 60});
        CHECK(*parse_rate("1/s") == std::pair<int, std::int64_t>{1, 1});
        CHECK(*parse_rate("100/h") == std::pair<int, std::int64_t>{100, 3600});
        for (const char* bad : {"", "/m", "m", "30", "30/", "30/x", "-1/m", "0/s", "3 /m", "1234567/s"})
            CHECK_FALSE(parse_rate(bad).ok());
        CHECK(format_rate(30, 60) == "30 per minute");
    }

    TEST_CASE("RequestRate: a burst, then one per period/burst, per uid") {
        RequestRate r;
        std::uint64_t now = kBoot0;
        for (int i = 0; i < 3; ++i) CHECK(r.take(7, now, 3, 60));
        std::int64_t wait = 0;
        CHECK_FALSE(r.take(7, now, 3, 60, &wait));
        CHECK(wait == 20);             // one token every 20 s
        CHECK(r.take(8, now, 3, 60));  // another uid has its own bucket
        CHECK_FALSE(r.take(7, now + 19 * kSec, 3, 60));
        CHECK(r.take(7, now + 20 * kSec, 3, 60));
        CHECK_FALSE(r.take(7, now + 20 * kSec, 3, 60));
        // Long idle refills to the burst, no more.
        now += 3600 * kSec;
        for (int i = 0; i < 3; ++i) CHECK(r.take(7, now, 3, 60));
        CHECK_FALSE(r.take(7, now, 3, 60));
    }

    TEST_CASE("caps: pending requests per user and port, and per user; others unaffected") {
        Env e("[daemon]\nmax_pending_per_user = 7\nmax_pending_per_port = 3\nrequest_rate = \"1000/s\"\n");
        for (int i = 0; i < 3; ++i) e.pending(kRita, 5432);
        Reply r = e.request(kRita, 5432);
        CHECK_FALSE(r.ok);
        CHECK(r.code == code::kRefused);
        CHECK(exit_code_for(r.code) == 3);
        CHECK(r.message.find("3 pending requests for port 'db'") != std::string::npos);
        CHECK(r.message.find("max_pending_per_port") != std::string::npos);
        CHECK(must(e.store.count_requests("pending")) == 3);
        // Another port, up to the per-user cap of 7.
        for (int i = 0; i < 3; ++i) e.pending(kRita, 6379);
        e.pending(kRita, 5672);
        r = e.request(kRita, 5672);
        CHECK_FALSE(r.ok);
        CHECK(r.message.find("7 pending requests, the most [daemon] max_pending_per_user") !=
              std::string::npos);
        // Someone else asks as before, and so does root.
        e.pending(kSam, 5432);
        for (int i = 0; i < 10; ++i) e.pending(kRoot, 5432);
        // A withdrawn request makes room.
        const auto id = must(e.store.requests("pending", 1000)).back().id;
        REQUIRE(op(&Workflow::deny, e.wf, kRita, json{{"id", id}}).ok);
        CHECK(e.request(kRita, 5672).ok);
        // The refusals left no rows and no records.
        CHECK(e.audit.of("request").size() == 3 + 3 + 1 + 1 + 10 + 1);
    }

    TEST_CASE("request_rate: a flood by one uid is refused with when to retry") {
        Env e("[daemon]\nmax_pending_per_user = 1000\nmax_pending_per_port = 1000\nrequest_rate = \"4/m\"\n");
        for (int i = 0; i < 4; ++i) e.pending(kRita, 5432);
        Reply r = e.request(kRita, 5432);
        CHECK_FALSE(r.ok);
        CHECK(r.code == code::kRefused);
        CHECK(r.message.find("too many requests: at most 4 per minute") != std::string::npos);
        CHECK(r.message.find("try again in 15s") != std::string::npos);
        e.pending(kSam, 5432);
        e.clock.advance(15);
        e.pending(kRita, 5432);
        CHECK_FALSE(e.request(kRita, 5432).ok);
        CHECK(must(e.store.count_requests("pending")) == 6);
    }

    TEST_CASE("a nearly full disk refuses new requests (exit 1), saying why") {
        Env e;
        e.wf.set_space_check(
            [] { return std::optional<std::string>("the filesystem of /x has 3 MiB free"); });
        Reply r = e.request(kRita, 5432);
        CHECK_FALSE(r.ok);
        CHECK(exit_code_for(r.code) == 1);
        CHECK(r.message.find("3 MiB free") != std::string::npos);
        CHECK(e.request(kRoot, 5432).ok == false);
        CHECK(must(e.store.count_requests("pending")) == 0);
        e.wf.set_space_check([] { return std::optional<std::string>(); });
        CHECK(e.request(kRita, 5432).ok);
    }

    TEST_CASE("prune: decided rows past retention go, a bounded number per call") {
        Env e(
            "[daemon]\nretention = \"7d\"\nrequest_rate = \"1000/s\"\nmax_pending_per_port = 100\n"
            "max_pending_per_user = 100\n");
        // Old: 5 denied, one granted whose grant was revoked, one granted and still active (30d grant).
        std::vector<std::int64_t> denied;
        for (int i = 0; i < 5; ++i) {
            denied.push_back(e.pending(kRita, 5432));
            REQUIRE(op(&Workflow::deny, e.wf, kAlice, json{{"id", denied.back()}}).ok);
        }
        const auto ended = e.pending(kRita, 6379);
        Reply g = op(&Workflow::approve, e.wf, kAlice, json{{"id", ended}});
        REQUIRE(g.ok);
        const auto ended_grant = g.result.at("grant_id").get<std::int64_t>();
        REQUIRE(op(&Workflow::revoke, e.wf, kAlice, json{{"id", ended_grant}}).ok);
        const auto old_pending = e.pending(kSam, 5672);
        e.clock.advance(8 * 86400);
        // Recent: one denied.
        const auto recent = e.pending(kSam, 5432);
        REQUIRE(op(&Workflow::deny, e.wf, kAlice, json{{"id", recent}}).ok);

        const std::size_t records = e.audit.records.size();
        CHECK(e.wf.prune(4) == 5);                  // 4 requests (the bound) and the revoked grant
        CHECK(must(e.store.request(old_pending)));  // pending, whatever its age
        CHECK(e.wf.prune(4) == 2);                  // the other 2 old decided requests
        CHECK(e.wf.prune(4) == 0);
        for (auto id : denied) CHECK_FALSE(must(e.store.request(id)));
        CHECK_FALSE(must(e.store.request(ended)));
        CHECK_FALSE(must(e.store.grant(ended_grant)));
        // Pending (even expired-by-ttl-but-unswept) and recent rows stay; the audit log is untouched.
        CHECK(must(e.store.request(recent)));
        CHECK(e.audit.records.size() == records);
        // The old pending one expires at the sweep, and goes a week later.
        e.wf.sweep();
        CHECK(must(e.store.request(old_pending)));
        e.clock.advance(8 * 86400);
        CHECK(e.wf.prune() == 2);
        CHECK_FALSE(must(e.store.request(old_pending)));
        CHECK_FALSE(must(e.store.request(recent)));
    }

    TEST_CASE("prune keeps a request whose grant is still active, and retention 0s keeps everything") {
        Env e("[daemon]\nretention = \"7d\"\n");
        const auto id = e.pending(kRita, 5432);
        Reply g = op(&Workflow::approve, e.wf, kAlice, json{{"id", id}});
        REQUIRE(g.ok);
        // Its grant, pretended long: a decided request 8 days old with an active grant.
        auto row = must(e.store.grant(g.result.at("grant_id").get<std::int64_t>()));
        row->expires_boot_ns += 30ULL * 86400 * kSec;
        must(e.store.put_grant(*row));
        e.clock.advance(8 * 86400);
        CHECK(e.wf.prune() == 0);
        CHECK(must(e.store.request(id)));

        Env keep("[daemon]\nretention = \"0s\"\n");
        const auto d = keep.pending(kRita, 5432);
        REQUIRE(op(&Workflow::deny, keep.wf, kRita, json{{"id", d}}).ok);
        keep.clock.advance(400 * 86400);
        CHECK(keep.wf.prune() == 0);
        CHECK(must(keep.store.request(d)));
    }

    TEST_CASE("list pages: --limit and --after, with how many more and the next page's id") {
        Env e(
            "[daemon]\nrequest_rate = \"1000/s\"\nmax_pending_per_port = 1000\nmax_pending_per_user = "
            "1000\n");
        std::vector<std::int64_t> ids;
        for (int i = 0; i < 250; ++i) ids.push_back(e.pending(i % 2 ? kRita : kSam, 5432));
        Reply p1 = e.list(json{{"filter", "pending"}});
        REQUIRE(p1.ok);
        CHECK(p1.result.at("requests").size() == 100);                      // the default page
        CHECK(p1.result.at("requests")[0].at("request_id") == ids.back());  // newest first
        CHECK(p1.result.at("total").at("requests") == 250);
        CHECK(p1.result.at("more").at("requests") == 150);
        const auto next = p1.result.at("next_after").at("requests").get<std::int64_t>();
        CHECK(next == ids[150]);
        Reply p2 = e.list(json{{"filter", "pending"}, {"after", next}, {"limit", 120}});
        REQUIRE(p2.ok);
        CHECK(p2.result.at("requests").size() == 120);
        CHECK(p2.result.at("requests")[0].at("request_id") == ids[149]);
        CHECK(p2.result.at("more").at("requests") == 30);
        Reply p3 = e.list(json{
            {"filter", "pending"}, {"after", p2.result.at("next_after").at("requests")}, {"limit", 120}});
        REQUIRE(p3.ok);
        CHECK(p3.result.at("requests").size() == 30);
        CHECK(p3.result.at("requests").back().at("request_id") == ids.front());
        CHECK(p3.result.at("more").at("requests") == 0);
        CHECK_FALSE(p3.result.at("next_after").contains("requests"));
        // The default view pages its sections too.
        Reply d = e.list(json{{"limit", 10}});
        CHECK(d.result.at("requests").size() == 10);
        CHECK(d.result.at("more").at("requests") == 240);
        CHECK(d.result.at("more").at("grants") == 0);
        CHECK_FALSE(e.list(json{{"limit", 0}}).ok);
        CHECK_FALSE(e.list(json{{"limit", 1001}}).ok);
        CHECK_FALSE(e.list(json{{"after", -1}}).ok);

        // The human output says how many more and what to type.
        const std::string text = render_human("list", p1.result);
        CHECK(text.find(fmt::format("... 150 more pending requests: jitgate list --pending --after {}",
                                    next)) != std::string::npos);
        const std::string t2 = render_human("list", p2.result);
        CHECK(t2.find("... 30 more pending requests: jitgate list --pending --limit 120 --after") !=
              std::string::npos);
        CHECK(render_human("list", p3.result).find("more") == std::string::npos);
    }

    TEST_CASE("time namespace offsets: zero is fine, any shift is refused") {
        CHECK_FALSE(timens_refusal(""));
        CHECK_FALSE(timens_refusal("monotonic           0         0\nboottime            0         0\n"));
        CHECK_FALSE(timens_refusal("1 0 0\n7 0 0\n"));  // before Linux 5.11: clock ids
        auto r = timens_refusal("monotonic           0         0\nboottime         1000         0\n");
        REQUIRE(r);
        CHECK(r->find("boottime 1000.000000000 s") != std::string::npos);
        CHECK(r->find("start jitgated in the host's time namespace") != std::string::npos);
        CHECK(timens_refusal("monotonic -5 0\nboottime 0 0\n"));
        CHECK(timens_refusal("7 0 1\n"));
        CHECK(timens_refusal("monotonic zero 0\n"));  // unreadable: refused, not trusted
    }
}

TEST_SUITE("cli") {
    TEST_CASE("list --limit N --after ID") {
        auto parse = [](std::initializer_list<const char*> args, std::string* error = nullptr) {
            CliState s;
            auto app = build_app(s);
            std::vector<const char*> argv{"jitgate"};
            argv.insert(argv.end(), args.begin(), args.end());
            app->parse(static_cast<int>(argv.size()), argv.data());
            const std::string e = finish(s);
            if (error) *error = e;
            return s.args;
        };
        CHECK(parse({"list", "--pending", "--limit", "5", "--after", "77"}) ==
              json{{"filter", "pending"}, {"limit", 5}, {"after", 77}});
        CHECK(parse({"list"}) == json{{"filter", "default"}});
        std::string error;
        parse({"list", "--limit", "0"}, &error);
        CHECK(error == "--limit must be from 1 to 1000");
        parse({"list", "--after", "0"}, &error);
        CHECK(error.find("--after must be") == 0);
    }
}

}  // namespace test_limits
