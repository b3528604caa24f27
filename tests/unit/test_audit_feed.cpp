// The audit feed (daemon/audit_feed.h): who sees which records as they are
// written, the follower limits, the query budget, and an auditor who loses
// the role.  Against a real audit log in a temporary directory and a fake
// of the control socket's server.
#include <doctest/doctest.h>

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/protocol.h"
#include "daemon/audit_feed.h"
#include "daemon/audit_log.h"
#include "fakes.h"
#include "helpers.h"
#include "util/log.h"

namespace test_audit_feed {
using namespace jg;
using namespace jg::testing;

namespace {

// The control socket's server as the feed sees it: what each connection was sent.
class FakeOutput : public FeedOutput {
public:
    std::map<int, std::int64_t> streams;            // conn: request id
    std::map<int, std::vector<std::string>> lines;  // conn: lines pushed
    void follow(int conn, std::int64_t id) override { streams[conn] = id; }
    void push(int conn, const std::string& line) override { lines[conn].push_back(line); }
    // The events pushed to `conn`, as records.
    std::vector<json> events(int conn) {
        std::vector<json> out;
        for (const auto& l : lines[conn]) out.push_back(json::parse(l).at("event"));
        return out;
    }
};

// A feed on a fresh log, wired as jitgated wires it.  Root and the uids in
// `auditors` see everything.
struct Fixture {
    TempDir dir;
    std::unique_ptr<AuditLog> log;
    FakeDirectory names;
    FakeClock clock;
    std::set<std::uint32_t> auditors = {0};
    FakeOutput out;
    std::unique_ptr<AuditFeed> feed;

    Fixture() {
        auto a = AuditLog::open({dir.file("audit.jsonl"), dir.file("audit.head"), false, ""}, clock);
        REQUIRE(a.ok());
        log = std::move(*a);
        names.names = {{0, "root"}, {1000, "alice"}, {1001, "bob"}};
        feed = std::make_unique<AuditFeed>(*log, clock,
                                           [this](const Caller& c) { return auditors.count(c.uid) > 0; });
        feed->set_output(&out);
        log->wants_records = [this] { return feed->listening(); };
        log->on_record = [this](const json& r) { feed->on_record(r); };
    }
    // `jitgate audit` by uid on connection conn; the reply's last line (the result or the error).
    json ask(std::uint32_t uid, int conn, json args = json::object()) {
        // Parsed as the dispatcher parses them (core/operations.h).
        const auto parsed = parse_as<AuditArgs>(args);
        if (const auto* e = std::get_if<OpError>(&parsed))
            return json::parse(reply_error(conn, e->code, e->message));
        const Caller who{uid, 0, names.user_name(uid).value_or(std::to_string(uid))};
        const std::string reply = feed->query(Peer{uid, 0, 0, conn}, who, conn, std::get<AuditArgs>(parsed));
        const auto last = reply.rfind('\n', reply.size() - 2);
        return json::parse(last == std::string::npos ? reply : reply.substr(last + 1));
    }
    json follow(std::uint32_t uid, int conn, json args = json::object()) {
        args["follow"] = true;
        return ask(uid, conn, args);
    }
    void deny_of(std::uint32_t uid, const std::string& user, int port = 5432) {
        log->emit({{"type", "deny"}, {"port", port}, {"proto", "tcp"}, {"uid", uid}, {"user", user}});
    }
};

bool refused(const json& reply, const std::string& words) {
    return reply.at("ok") == false && reply.at("error").at("code") == code::kRefused &&
           reply.at("error").at("message").get<std::string>().find(words) != std::string::npos;
}

}  // namespace

TEST_SUITE("audit feed") {
    TEST_CASE("a follower who is not an auditor gets their own records; root and auditors get all") {
        Fixture f;
        f.auditors.insert(1001);
        CHECK(f.follow(1000, 1).at("result").at("scope") == "own");
        CHECK(f.follow(0, 2).at("result").at("scope") == "all");
        CHECK(f.follow(1001, 3).at("result").at("scope") == "all");
        CHECK(f.follow(0, 4, {{"types", {"allow"}}}).at("ok") == true);  // a filter: no deny
        f.deny_of(1000, "alice");
        f.deny_of(1002, "carol");
        f.log->emit({{"type", "request"}, {"requester", "alice"}, {"port", 5432}});
        f.log->flush();
        const auto alice = f.out.events(1), root = f.out.events(2), bob = f.out.events(3);
        REQUIRE(alice.size() == 2);
        CHECK(alice[0].at("user") == "alice");
        CHECK(alice[1].at("requester") == "alice");
        REQUIRE(root.size() == 3);
        CHECK(root[1].at("user") == "carol");
        CHECK(bob.size() == 3);
        CHECK(f.out.events(4).empty());
        // Each the record as written: sealed, with the seq and hash the log has.
        CHECK(root[2].at("seq") == f.log->head().seq);
        CHECK(root[2].at("hash") == f.log->head().hash);
        CHECK(root[2].at("prev_hash") == root[1].at("hash"));
        CHECK(root[0].at("ts").is_string());
    }

    TEST_CASE("no one follows: no record is kept for the feed") {
        Fixture f;
        CHECK_FALSE(f.feed->listening());
        f.deny_of(1000, "alice");
        f.log->flush();
        CHECK(f.out.lines.empty());
        f.follow(1000, 1);
        CHECK(f.feed->listening());
        f.feed->closed(1);
        CHECK_FALSE(f.feed->listening());
    }

    TEST_CASE("at most 4 streams per user (root excepted) and 256 in all, auditors' apart") {
        Fixture f;
        f.auditors.insert(1003);
        for (int conn = 1; conn <= 4; ++conn) CHECK(f.follow(1000, conn).at("ok") == true);
        CHECK(refused(f.follow(1000, 5), "too many audit streams open (4 for you, 4 in all"));
        CHECK(f.follow(1001, 6).at("ok") == true);  // another user is not held back
        f.feed->closed(2);
        CHECK(f.follow(1000, 7).at("ok") == true);  // a closed one frees its place
        // Users without a name (a range of subordinate uids) take every place of theirs...
        int conn = 100;
        for (std::uint32_t uid = 200000; f.feed->followers() < AuditFeed::kMaxFollowers; ++uid)
            for (int i = 0; i < 4 && f.feed->followers() < AuditFeed::kMaxFollowers; ++i)
                REQUIRE(f.follow(uid, conn++).at("ok") == true);
        CHECK(refused(f.follow(1002, 998), "0 for you, 256 in all for users who see their own records"));
        // ...and an auditor (the notifier) and root still get theirs.
        CHECK(f.follow(1003, 997).at("result").at("scope") == "all");
        for (int c = 2000; f.feed->followers() < 2 * AuditFeed::kMaxFollowers; ++c)
            REQUIRE(f.follow(0, c).at("ok") == true);  // root: no per-user limit
        CHECK(refused(f.follow(0, 999), "256 in all for auditors"));
        CHECK(f.feed->followers() == 512);
        CHECK(f.out.streams.count(999) == 0);
    }

    TEST_CASE("history queries: 5 a second for a user who sees only their own; none counted for root") {
        Fixture f;
        f.deny_of(1000, "alice");
        f.log->flush();
        for (int i = 0; i < 5; ++i) {
            const json r = f.ask(1000, 1);
            REQUIRE(r.at("ok") == true);
            CHECK(r.at("result").at("count") == 1);
        }
        CHECK(refused(f.ask(1000, 1), "more than 5 audit queries in a second"));
        CHECK(f.ask(1001, 2).at("ok") == true);  // a budget per user
        for (int i = 0; i < 10; ++i) CHECK(f.ask(0, 3).at("ok") == true);
        // Following without history reads nothing: not counted.
        CHECK(f.follow(1000, 4).at("ok") == true);
        f.clock.advance(1);
        CHECK(f.ask(1000, 1).at("ok") == true);
    }

    TEST_CASE("an auditor who loses the role keeps the stream, narrowed to their own records") {
        Fixture f;
        f.auditors.insert(1001);
        std::vector<std::string> said;
        set_log_sink([&](std::string_view m) { said.emplace_back(m); });
        CHECK(f.follow(1001, 1).at("result").at("scope") == "all");
        CHECK(f.follow(1000, 2).at("result").at("scope") == "own");
        f.deny_of(1000, "alice");
        f.log->flush();
        CHECK(f.out.events(1).size() == 1);
        f.auditors.erase(1001);
        f.feed->recheck_followers();
        set_log_sink(nullptr);
        REQUIRE(said.size() == 1);
        CHECK(said[0].find("uid 1001 is no longer an auditor") != std::string::npos);
        f.deny_of(1000, "alice");
        f.deny_of(1001, "bob");
        f.log->flush();
        const auto bob = f.out.events(1);
        REQUIRE(bob.size() == 2);
        CHECK(bob[1].at("user") == "bob");
        // A reload that makes alice an auditor widens her open stream.
        f.auditors.insert(1000);
        f.feed->policy_changed();
        f.deny_of(1002, "carol");
        f.log->flush();
        const auto alice = f.out.events(2);
        REQUIRE(alice.size() == 3);
        CHECK(alice[2].at("user") == "carol");
    }

    TEST_CASE("without an output (stopped) the feed forgets its followers") {
        Fixture f;
        f.follow(0, 1);
        f.feed->set_output(nullptr);
        CHECK(f.feed->followers() == 0);
        f.deny_of(1000, "alice");
        f.log->flush();
        CHECK(f.out.lines.empty());
    }
}

}  // namespace test_audit_feed
