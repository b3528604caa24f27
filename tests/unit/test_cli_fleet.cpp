// The CLI's side of the fleet (design.md §7): --on selectors, --wait for
// the target nodes (op confirm, polled against a fake clock), jitgate nodes,
// policy push and policy show, against the replies the BRIEF's wire contract
// gives.
#include <doctest/doctest.h>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <functional>
#include <iostream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "cli/app.h"
#include "cli/confirm_wait.h"
#include "cli/fleet_render.h"
#include "cli/policy_push.h"
#include "core/operations.h"
#include "core/protocol.h"
#include "helpers.h"

namespace test_cli_fleet {
using namespace jg;
using namespace jg::testing;
using nlohmann::json;

namespace {

CliState parsed(std::vector<const char*> args, std::string* error = nullptr) {
    CliState s;
    auto app = build_app(s);
    args.insert(args.begin(), "jitgate");
    app->parse(static_cast<int>(args.size()), args.data());
    const std::string e = finish(s);
    if (error) *error = e;
    return s;
}

struct Ran {
    int rc = 0;
    std::string out, err;
};

// `f` with stdout and stderr captured.
Ran captured(const std::function<int()>& f) {
    std::ostringstream out, err;
    auto* old_out = std::cout.rdbuf(out.rdbuf());
    auto* old_err = std::cerr.rdbuf(err.rdbuf());
    Ran r;
    r.rc = f();
    std::cout.rdbuf(old_out);
    std::cerr.rdbuf(old_err);
    r.out = out.str();
    r.err = err.str();
    return r;
}

Ran run_main(std::vector<const char*> args) {
    args.insert(args.begin(), "jitgate");
    return captured([&] { return run_cli(static_cast<int>(args.size()), args.data()); });
}

// A stand-in jitgated: each connection's one request answered by `answer`
// (a whole reply line); the requests kept.
class FakeDaemon {
public:
    using Answer = std::function<std::string(const json& request)>;
    FakeDaemon(std::string path, Answer answer) : path_(std::move(path)), answer_(std::move(answer)) {
        fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        REQUIRE(fd_ >= 0);
        sockaddr_un sa{};
        sa.sun_family = AF_UNIX;
        REQUIRE(path_.size() < sizeof(sa.sun_path));
        std::memcpy(sa.sun_path, path_.c_str(), path_.size() + 1);
        REQUIRE(bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0);
        REQUIRE(listen(fd_, 8) == 0);
        thread_ = std::thread([this] { serve(); });
    }
    ~FakeDaemon() {
        shutdown(fd_, SHUT_RDWR);
        thread_.join();
        close(fd_);
    }
    FakeDaemon(const FakeDaemon&) = delete;
    FakeDaemon& operator=(const FakeDaemon&) = delete;
    std::vector<json> requests() {
        std::lock_guard<std::mutex> l(m_);
        return requests_;
    }
    std::vector<std::string> ops() {
        std::vector<std::string> out;
        for (const auto& q : requests()) out.push_back(q.value("op", ""));
        return out;
    }

private:
    void serve() {
        for (;;) {
            const int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
            if (c < 0) return;
            const auto req = json::parse(read_request_line(c), nullptr, false);
            {
                std::lock_guard<std::mutex> l(m_);
                requests_.push_back(req);
            }
            const std::string out = answer_(req);
            std::size_t off = 0;
            while (off < out.size()) {
                const ssize_t n = send(c, out.data() + off, out.size() - off, MSG_NOSIGNAL);
                if (n <= 0) break;
                off += static_cast<std::size_t>(n);
            }
            close(c);
        }
    }

    std::string path_;
    Answer answer_;
    int fd_ = -1;
    std::mutex m_;
    std::vector<json> requests_;
    std::thread thread_;
};

// A confirm result: `states` as {node, state}; complete when none is pending.
json confirm_result(std::int64_t grant, std::int64_t rev,
                    std::vector<std::pair<std::string, std::string>> states) {
    json r = {{"grant_id", grant}, {"revision", rev}, {"nodes", json::array()}};
    bool complete = true;
    for (const auto& [n, st] : states) {
        r["nodes"].push_back({{"node", n}, {"state", st}, {"alive", true}});
        complete = complete && st != "pending";
    }
    r["complete"] = complete;
    return r;
}

Result<json> ok_reply(const json& result) { return json{{"id", 1}, {"ok", true}, {"result", result}}; }
Result<json> error_reply(const char* code, const char* message) {
    return json{{"id", 1}, {"ok", false}, {"error", {{"code", code}, {"message", message}}}};
}

// jitgated's confirm as a script on a fake clock: each look takes
// `look_ms`; replies in turn, the last one for ever after.
struct FakeConfirm {
    std::int64_t now = 100000;
    std::int64_t look_ms = 3;
    std::vector<Result<json>> replies;
    std::vector<json> asked;  // {id, revision} of each look
    std::int64_t slept = 0;
    ConfirmHooks hooks(bool progress = false) {
        ConfirmHooks h;
        h.ask = [this](std::int64_t id, std::int64_t rev, std::int64_t) {
            asked.push_back({{"id", id}, {"revision", rev}});
            now += look_ms;
            return replies[std::min(asked.size(), replies.size()) - 1];
        };
        h.now_ms = [this] { return now; };
        h.sleep_ms = [this](std::int64_t ms) {
            now += ms;
            slept += ms;
        };
        h.progress = progress;
        return h;
    }
};

// The reply of revoke 13 in a fleet: decided at etcd revision 812, for three nodes.
json revoked13() {
    return {{"grant_id", 13},       {"request_id", 12},  {"state", "revoked"},
            {"port", 5432},         {"proto", "tcp"},    {"user", "rita"},
            {"approvers", {"bob"}}, {"ended_by", "bob"}, {"ended_at", "2027-01-15T08:05:00.000000Z"},
            {"node", "db-1"},       {"revision", 812},   {"targets", {"db-1", "db-2", "db-3"}}};
}

// The reply of approve 12 that granted it, in a fleet.
json granted12() {
    return {{"request_id", 12},     {"state", "granted"},
            {"grant_id", 13},       {"user", "rita"},
            {"port", 5432},         {"proto", "tcp"},
            {"duration_s", 600},    {"reason", "fix prod"},
            {"approvers", {"bob"}}, {"expires_at", "2027-01-15T08:10:00.000000Z"},
            {"node", "db-1"},       {"on", "role=db"},
            {"revision", 812},      {"targets", {"db-1", "db-2"}}};
}

CliState waiting(bool json_out, std::int64_t timeout_ms = 10000) {
    CliState s;
    s.json = json_out;
    s.wait = true;
    s.wait_timeout_ms = timeout_ms;
    return s;
}

std::size_t count_of(const std::string& text, const std::string& what) {
    std::size_t n = 0;
    for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
}

}  // namespace

TEST_SUITE("cli fleet") {
    TEST_CASE("--on SELECTOR: sent as typed; a bad one is a usage error naming what to write") {
        CliState s = parsed({"request", "5432", "--for", "10m", "--on", "db-1"});
        CHECK(s.args.at("on") == "db-1");
        s = parsed(
            {"break-glass", "5432/udp", "--for", "5m", "--reason", "down", "--on", "role=db,env=prod"});
        CHECK(s.op == "break_glass");
        CHECK(s.args.at("on") == "role=db,env=prod");
        s = parsed({"request", "5432", "--for", "10m"});
        CHECK_FALSE(s.args.contains("on"));

        struct Case {
            const char* on;
            const char* says;
        };
        for (const Case& c : {Case{"", "--on needs a node name or labels (key=value[,key=value])"},
                              Case{"db 1", "--on 'db 1' is not a node name: use 1-63 letters"},
                              Case{"role=", "--on 'role=' is not a selector: write a node name or key=value"},
                              Case{"role=db,role=web", "--on 'role=db,role=web' names label 'role' twice"},
                              Case{"\x1b[31mdb", "--on holds a control character, a backslash or bytes"},
                              Case{"db\\1", "--on holds a control character, a backslash or bytes"}}) {
            INFO("--on ", c.on);
            std::string error;
            parsed({"request", "5432", "--for", "10m", "--on", c.on}, &error);
            CHECK(error.find(c.says) == 0);
            parsed({"break-glass", "5432", "--for", "5m", "--reason", "x", "--on", c.on}, &error);
            CHECK(error.find(c.says) == 0);
        }

        // Exit 2 before anything is sent; the sentence has no control in it.
        TempDir dir;
        const std::string sock = dir.file("d.sock");
        FakeDaemon d(sock, [](const json& q) { return reply_ok(q.value("id", 0), json::object()); });
        const Ran r =
            run_main({"--socket", sock.c_str(), "request", "5432", "--for", "10m", "--on", "\x1b]0;x\x07"});
        CHECK(r.rc == 2);
        CHECK(r.err.find('\x1b') == std::string::npos);
        CHECK(r.err.find("jitgate: --on holds a control character") == 0);
        const Ran bad = run_main(
            {"--socket", sock.c_str(), "--json", "request", "5432", "--for", "10m", "--on", "a=b=c"});
        CHECK(bad.rc == 2);
        CHECK(json::parse(bad.out).at("error").at("code") == "invalid");
        CHECK(d.requests().empty());
    }

    TEST_CASE("--wait and --timeout on request, approve and revoke; --timeout needs --wait") {
        CliState s = parsed({"approve", "12", "--wait"});
        CHECK(s.wait);
        CHECK(s.wait_timeout_ms == 10000);
        CHECK(s.args == json{{"id", 12}});  // nothing new on the wire
        s = parsed({"revoke", "13", "--wait", "--timeout", "1m30s"});
        CHECK(s.wait);
        CHECK(s.wait_timeout_ms == 90000);
        CHECK(s.args == json{{"id", 13}});
        s = parsed({"request", "5432", "--for", "10m", "--wait", "--timeout", "30s", "--on", "role=db"});
        CHECK(s.wait_timeout_ms == 30000);
        CHECK_FALSE(s.args.contains("timeout"));
        std::string error;
        parsed({"revoke", "13", "--timeout", "30s"}, &error);
        CHECK(error == "--timeout goes with --wait: it says how long to wait for the target nodes");
        parsed({"approve", "12", "--wait", "--timeout", "soon"}, &error);
        CHECK(error.find("invalid duration 'soon'") == 0);
        CHECK_THROWS_AS(parsed({"deny", "12", "--wait"}), CLI::ParseError);
        CHECK_THROWS_AS(parsed({"break-glass", "5432", "--for", "5m", "--reason", "x", "--wait"}),
                        CLI::ParseError);
    }

    TEST_CASE("revoke --wait: confirm until every target applied it; per-node latency from the command") {
        FakeConfirm f;
        const std::int64_t sent = f.now;
        f.now += 7;  // the revoke's own round trip
        f.replies = {ok_reply(confirm_result(
                         13, 812, {{"db-1", "applied"}, {"db-2", "pending"}, {"db-3", "pending"}})),
                     ok_reply(confirm_result(
                         13, 812, {{"db-1", "applied"}, {"db-2", "applied"}, {"db-3", "pending"}})),
                     ok_reply(confirm_result(
                         13, 812, {{"db-1", "applied"}, {"db-2", "applied"}, {"db-3", "applied"}}))};
        const Ran r = captured([&] {
            return confirm_and_report(waiting(false), "revoke", revoked13(), sent, false, f.hooks());
        });
        CHECK(r.rc == 0);
        // Looks at the grant id and the decision's revision, 50 ms apart.
        REQUIRE(f.asked.size() == 3);
        for (const auto& a : f.asked) CHECK(a == json{{"id", 13}, {"revision", 812}});
        CHECK(f.slept == 100);
        CHECK(r.out.find("grant 13  revoked  5432/tcp  for rita") == 0);
        CHECK(r.out.find("\ndb-1  applied     10 ms\n"
                         "db-2  applied     63 ms\n"
                         "db-3  applied     116 ms\n") != std::string::npos);
        CHECK(r.err.empty());  // stderr is no terminal: no progress

        // A terminal sees each node as it applies.
        FakeConfirm t;
        t.replies = f.replies;
        const Ran p = captured([&] {
            return confirm_and_report(waiting(false), "revoke", revoked13(), t.now, false, t.hooks(true));
        });
        CHECK(p.rc == 0);
        CHECK(p.err ==
              "waiting up to 10s for db-1, db-2, db-3 to apply revision 812\n"
              "  db-1 applied in 3 ms\n"
              "  db-2 applied in 56 ms\n"
              "  db-3 applied in 109 ms\n");

        // --json: revoke's object plus "nodes".
        FakeConfirm j;
        j.replies = f.replies;
        const Ran js = captured([&] {
            return confirm_and_report(waiting(true), "revoke", revoked13(), j.now, false, j.hooks());
        });
        CHECK(js.rc == 0);
        json want = revoked13();
        want["nodes"] = {{{"node", "db-1"}, {"state", "applied"}, {"latency_ms", 3}},
                         {{"node", "db-2"}, {"state", "applied"}, {"latency_ms", 56}},
                         {{"node", "db-3"}, {"state", "applied"}, {"latency_ms", 109}}};
        CHECK(json::parse(js.out) == want);
        CHECK(count_of(js.out, "\n") == 1);
    }

    TEST_CASE("--wait: a node still pending at --timeout: exit 5, one sentence naming it, latency null") {
        FakeConfirm f;
        f.replies = {ok_reply(
            confirm_result(13, 812, {{"db-1", "applied"}, {"db-2", "pending"}, {"db-3", "pending"}}))};
        const Ran r = captured([&] {
            return confirm_and_report(waiting(true, 2000), "revoke", revoked13(), f.now, false, f.hooks());
        });
        CHECK(r.rc == 5);
        CHECK(r.err ==
              "jitgate: not confirmed within 2s by db-2, db-3: they may be down or cut off from etcd; "
              "`jitgate nodes` "
              "shows their last ack\n");
        const json out = json::parse(r.out);
        CHECK(out.at("nodes") == json{{{"node", "db-1"}, {"state", "applied"}, {"latency_ms", 3}},
                                      {{"node", "db-2"}, {"state", "pending"}, {"latency_ms", nullptr}},
                                      {{"node", "db-3"}, {"state", "pending"}, {"latency_ms", nullptr}}});
        // Polled until the timeout, not past it: ~50 ms apart.
        CHECK(f.now - 100000 >= 2000);
        CHECK(f.now - 100000 < 2100);
        CHECK(f.asked.size() >= 30);
        CHECK(f.asked.size() <= 41);

        // Text: every node on its line, the pending ones without a latency.
        FakeConfirm t;
        t.replies = f.replies;
        const Ran h = captured([&] {
            return confirm_and_report(waiting(false, 1000), "approve", granted12(), t.now, false, t.hooks());
        });
        CHECK(h.rc == 5);
        CHECK(h.out.find(
                  "targets (role=db): db-1, db-2\ndb-1  applied     3 ms\ndb-2  pending\ndb-3  pending\n") !=
              std::string::npos);
        CHECK(h.err.find("jitgate: not confirmed within 1s by db-2, db-3:") == 0);
    }

    TEST_CASE("--wait: unresolved is final; revoke exit 0, a grant warns naming the nodes") {
        FakeConfirm f;
        f.replies = {ok_reply(confirm_result(13, 812, {{"db-1", "applied"}, {"db-2", "unresolved"}}))};
        const Ran r = captured([&] {
            return confirm_and_report(waiting(false), "approve", granted12(), f.now, false, f.hooks());
        });
        CHECK(r.rc == 0);
        CHECK(f.asked.size() == 1);
        CHECK(r.out.find("\ndb-1  applied     3 ms\ndb-2  unresolved\n") != std::string::npos);
        CHECK(r.err == "jitgate: warning: user rita is unknown on db-2: the grant does not apply there\n");

        FakeConfirm v;
        v.replies = f.replies;
        const Ran rv = captured([&] {
            return confirm_and_report(waiting(true), "revoke", revoked13(), v.now, false, v.hooks());
        });
        CHECK(rv.rc == 0);
        CHECK(rv.err.empty());
        CHECK(json::parse(rv.out).at("nodes").at(1) ==
              json{{"node", "db-2"}, {"state", "unresolved"}, {"latency_ms", nullptr}});
    }

    TEST_CASE("--wait with no revision (one host): the answering node applied at once") {
        json local = granted12();
        for (const char* k : {"revision", "targets", "on"}) local.erase(k);
        local["node"] = "host-a";
        FakeConfirm f;
        const std::int64_t sent = f.now;
        f.now += 4;  // the reply came 4 ms after the command went
        const Ran r = captured(
            [&] { return confirm_and_report(waiting(true), "approve", local, sent, false, f.hooks()); });
        CHECK(r.rc == 0);
        CHECK(f.asked.empty());  // nothing to ask: decided before the reply
        json want = local;
        want["nodes"] = {{{"node", "host-a"}, {"state", "applied"}, {"latency_ms", 4}}};
        CHECK(json::parse(r.out) == want);

        // A jitgated that names no node: this host's name.
        local.erase("node");
        char host[256] = {};
        REQUIRE(gethostname(host, sizeof(host) - 1) == 0);
        const Ran h = captured(
            [&] { return confirm_and_report(waiting(false), "approve", local, f.now, false, f.hooks()); });
        CHECK(h.rc == 0);
        CHECK(h.out.find(std::string("\n") + host + "  applied     0 ms\n") != std::string::npos);

        // An approval that leaves the request pending has nothing to apply yet.
        json pending = local;
        pending["state"] = "pending";
        pending.erase("grant_id");
        const Ran p = captured(
            [&] { return confirm_and_report(waiting(true), "approve", pending, f.now, false, f.hooks()); });
        CHECK(p.rc == 0);
        CHECK(json::parse(p.out).at("nodes") == json::array());
        CHECK(f.asked.empty());
    }

    TEST_CASE("--wait: etcd unreachable keeps the wait going until the timeout, then exit 5 saying so") {
        // Down for good: polled until the timeout.
        FakeConfirm f;
        f.replies = {
            error_reply("fleet_unreachable", "etcd at http://127.0.0.1:2379 did not answer within 2 s")};
        const Ran r = captured([&] {
            return confirm_and_report(waiting(false, 1000), "revoke", revoked13(), f.now, false, f.hooks());
        });
        CHECK(r.rc == 5);
        CHECK(f.asked.size() >= 15);
        CHECK(r.err ==
              "jitgate: not confirmed within 1s by db-1, db-2, db-3: etcd was unreachable (etcd at "
              "http://127.0.0.1:2379 did not answer within 2 s); `jitgate nodes` shows their last ack once "
              "it is "
              "back\n");
        CHECK(r.out.find("\ndb-1  pending\ndb-2  pending\ndb-3  pending\n") != std::string::npos);

        // Back before the timeout: confirmed, exit 0.
        FakeConfirm b;
        b.replies = {error_reply("fleet_unreachable", "etcd is down"),
                     error_reply("fleet_unreachable", "etcd is down"),
                     ok_reply(confirm_result(
                         13, 812, {{"db-1", "applied"}, {"db-2", "applied"}, {"db-3", "applied"}}))};
        const Ran back = captured([&] {
            return confirm_and_report(waiting(false), "revoke", revoked13(), b.now, false, b.hooks());
        });
        CHECK(back.rc == 0);
        CHECK(b.asked.size() == 3);
        CHECK(back.err.empty());

        // jitgated itself gone: the same, saying that instead.
        FakeConfirm g;
        g.replies = {Result<json>(err("cannot reach jitgated at /run/x.sock: No such file or directory"))};
        const Ran gone = captured([&] {
            return confirm_and_report(waiting(false, 500), "revoke", revoked13(), g.now, false, g.hooks());
        });
        CHECK(gone.rc == 5);
        CHECK(gone.err.find(": jitgated could not be asked (cannot reach jitgated at /run/x.sock") !=
              std::string::npos);

        // Any other error ends the wait with its own code.
        FakeConfirm o;
        o.replies = {error_reply("not_found", "there is no grant 13")};
        const Ran other = captured([&] {
            return confirm_and_report(waiting(false), "revoke", revoked13(), o.now, false, o.hooks());
        });
        CHECK(other.rc == 1);
        CHECK(o.asked.size() == 1);
        CHECK(other.err ==
              "jitgate: revoke is decided (grant 13), but confirming it failed: there is no grant 13\n");
    }

    TEST_CASE("--wait: a node name from etcd is escaped in every line and sentence") {
        FakeConfirm f;
        json rev = revoked13();
        rev["targets"] = {"db-1", "evil\x1b]0;pwned\x07"};
        f.replies = {
            ok_reply(confirm_result(13, 812, {{"db-1", "applied"}, {"evil\x1b]0;pwned\x07", "pending"}}))};
        const Ran r = captured([&] {
            return confirm_and_report(waiting(false, 200), "revoke", rev, f.now, false, f.hooks(true));
        });
        CHECK(r.rc == 5);
        CHECK(r.out.find('\x1b') == std::string::npos);
        CHECK(r.err.find('\x1b') == std::string::npos);
        CHECK(r.err.find('\x07') == std::string::npos);
        CHECK(r.out.find("evil\\x1b]0;pwned\\x07  pending\n") != std::string::npos);
        CHECK(r.err.find("not confirmed within 1s by evil\\x1b]0;pwned\\x07:") != std::string::npos);
    }

    TEST_CASE("jitgate approve/revoke/request --wait end to end against a jitgated") {
        TempDir dir;
        const std::string sock = dir.file("d.sock");
        std::atomic<bool> fleet{true};
        FakeDaemon d(sock, [&](const json& q) {
            const auto id = q.value("id", std::int64_t(0));
            const std::string op = q.value("op", "");
            json g = granted12();
            if (!fleet) {
                for (const char* k : {"revision", "targets", "on"}) g.erase(k);
                g["node"] = "solo";
            }
            if (op == "approve" || op == "request") return reply_ok(id, g);
            if (op == "revoke") return reply_ok(id, revoked13());
            if (op == "confirm")
                return reply_ok(id, confirm_result(13, 812, {{"db-1", "applied"}, {"db-2", "applied"}}));
            return reply_error(id, code::kInvalid, "unexpected " + op);
        });
        const Ran a = run_main({"--socket", sock.c_str(), "--json", "approve", "12", "--wait"});
        CHECK(a.rc == 0);
        const json out = json::parse(a.out);
        CHECK(out.at("grant_id") == 13);
        REQUIRE(out.at("nodes").size() == 2);
        CHECK(out["nodes"][0].at("state") == "applied");
        CHECK(out["nodes"][0].at("latency_ms").is_number_integer());
        CHECK(d.ops() == std::vector<std::string>{"approve", "confirm"});
        CHECK(d.requests().back().at("args") == json{{"id", 13}, {"revision", 812}});

        const Ran r = run_main({"--socket", sock.c_str(), "revoke", "12", "--wait"});
        CHECK(r.rc == 0);
        CHECK(r.out.find("grant 13  revoked") == 0);
        CHECK(r.out.find("\ntargets: db-1, db-2, db-3\n") != std::string::npos);
        CHECK(r.out.find("\ndb-1  applied") != std::string::npos);

        // Without --wait: the reply as before, no confirm.
        const Ran plain = run_main({"--socket", sock.c_str(), "--json", "revoke", "13"});
        CHECK(plain.rc == 0);
        CHECK(json::parse(plain.out) == revoked13());
        CHECK(d.ops().back() == "revoke");

        // One host: request --wait granted at once reports the node that answered.
        fleet = false;
        const Ran q =
            run_main({"--socket", sock.c_str(), "--json", "request", "5432", "--for", "10m", "--wait"});
        CHECK(q.rc == 0);
        CHECK(json::parse(q.out).at("nodes").at(0).at("node") == "solo");
        CHECK(json::parse(q.out).at("nodes").at(0).at("state") == "applied");
        CHECK(d.ops().back() == "request");
    }

    TEST_CASE("nodes: the table, every name and label from etcd escaped; --json as jitgated sent it") {
        const json nodes = {
            {"nodes",
             {{{"node", "db-1"},
               {"labels", {{"role", "db"}, {"env", "prod"}}},
               {"alive", true},
               {"applied_revision", 812},
               {"lag", 0},
               {"policy_version", 3},
               {"grants", 12},
               {"ack_age_s", 1},
               {"rejected", 3}},
              {{"node", "evil\x1b[2J\u202e"},
               {"labels", {{"k\x1b[31m", "v\u009b"}}},
               {"alive", false},
               {"applied_revision", 790},
               {"lag", 22},
               {"policy_version", nullptr},
               {"grants", 0},
               {"ack_age_s", 125.4}},
              {{"node", "new"}, {"labels", json::object()}, {"alive", true}, {"ack_age_s", nullptr}}}},
            {"revision", 812}};
        const std::string t = render_nodes(nodes);
        CHECK(
            t ==
            "NODE               LABELS             ALIVE  APPLIED_REV  LAG  POLICY  GRANTS  ACK_AGE  "
            "REJECTED\n"
            "db-1               env=prod,role=db   yes    812          0    3       12      1s       3\n"
            "evil\\x1b[2J\\u202e  k\\x1b[31m=v\\u009b  no     790          22   -       0       2m5s     -\n"
            "new                -                  yes    -            -    -       -       -        -\n");
        CHECK(t.find('\x1b') == std::string::npos);
        CHECK(render_nodes({{"nodes", json::array()}}) == "no nodes have registered in the fleet\n");

        TempDir dir;
        const std::string sock = dir.file("d.sock");
        FakeDaemon d(sock, [&](const json& q) {
            const auto id = q.value("id", std::int64_t(0));
            if (q.value("op", "") == "nodes") return reply_ok(id, nodes);
            return reply_error(id, code::kInvalid, "unexpected");
        });
        const Ran j = run_main({"--socket", sock.c_str(), "nodes", "--json"});
        CHECK(j.rc == 0);
        CHECK(json::parse(j.out) == nodes);
        const Ran h = run_main({"--socket", sock.c_str(), "nodes"});
        CHECK(h.rc == 0);
        CHECK(h.out == t);
        CHECK(d.requests().at(0).at("args") == json::object());
    }

    TEST_CASE("a single host or etcd down: not_fleet and fleet_unreachable exit 1 with jitgated's sentence") {
        TempDir dir;
        const std::string sock = dir.file("d.sock");
        std::string code = code::kNotFleet;
        FakeDaemon d(sock, [&](const json& q) {
            return reply_error(q.value("id", std::int64_t(0)), code,
                               code == code::kNotFleet
                                   ? "this jitgated is not in a fleet (no [fleet] in its config)"
                                   : "etcd did not answer within 2 s");
        });
        for (std::vector<const char*> args : {std::vector<const char*>{"nodes"}, {"policy", "show"}}) {
            args.insert(args.begin(), {"--socket", sock.c_str()});
            const Ran r = run_main(args);
            CHECK(r.rc == 1);
            CHECK(r.err == "jitgate: this jitgated is not in a fleet (no [fleet] in its config)\n");
        }
        code = code::kFleetDown;
        const Ran r = run_main(
            {"--socket", sock.c_str(), "--json", "request", "5432", "--for", "1m", "--on", "role=db"});
        CHECK(r.rc == 1);
        CHECK(json::parse(r.out).at("error").at("code") == "fleet_unreachable");
        CHECK(r.err == "jitgate: etcd did not answer within 2 s\n");
    }

    TEST_CASE("policy push FILE: the text and file name sent; over 48 KiB refused before sending") {
        TempDir dir;
        const std::string sock = dir.file("d.sock");
        FakeDaemon d(sock, [&](const json& q) {
            const auto id = q.value("id", std::int64_t(0));
            if (q.value("op", "") == "policy_push")
                return reply_ok(id, {{"version", 4}, {"ports", 3}, {"revision", 900}});
            return reply_error(id, code::kInvalid, "unexpected");
        });
        const std::string file = dir.file("fleet.toml");
        const std::string text = "[[port]]\nname = \"db\"\nport = 5432\napprovers = [\"bob\"]\n";
        write_file(file, text);
        const Ran r = run_main({"--socket", sock.c_str(), "policy", "push", file.c_str()});
        CHECK(r.rc == 0);
        CHECK(r.out == "fleet policy version 4: 3 ports\n");
        REQUIRE(d.requests().size() == 1);
        CHECK(d.requests()[0].at("op") == "policy_push");
        CHECK(d.requests()[0].at("args") == json{{"text", text}, {"file", file}});
        const Ran j = run_main({"--socket", sock.c_str(), "--json", "policy", "push", file.c_str()});
        CHECK(json::parse(j.out) == json{{"version", 4}, {"ports", 3}, {"revision", 900}});

        // 48 KiB is the bound: at it, sent; one byte over, refused here (exit 2), never sent.
        const std::string at = dir.file("at.toml"), over = dir.file("over.toml");
        write_file(at, std::string(kMaxPolicyPushBytes, '#'));
        write_file(over, std::string(kMaxPolicyPushBytes + 1, '#'));
        CHECK(run_main({"--socket", sock.c_str(), "policy", "push", at.c_str()}).rc == 0);
        CHECK(d.requests().size() == 3);
        const Ran big = run_main({"--socket", sock.c_str(), "policy", "push", over.c_str()});
        CHECK(big.rc == 2);
        CHECK(big.err ==
              "jitgate: cannot push " + over +
                  ": it is 49153 bytes, and a fleet policy file must be at most 48 KiB (it travels in "
                  "one etcd value); shorten it\n");
        CHECK(d.requests().size() == 3);
        const Ran bigj = run_main({"--socket", sock.c_str(), "--json", "policy", "push", over.c_str()});
        CHECK(json::parse(bigj.out).at("error").at("code") == "invalid");

        // The same bound as jitgated's (core/operations.cpp).
        CHECK(std::holds_alternative<PolicyPushArgs>(
            parse_as<PolicyPushArgs>({{"text", std::string(kMaxPolicyPushBytes, '#')}, {"file", "f"}})));
        CHECK(std::holds_alternative<OpError>(
            parse_as<PolicyPushArgs>({{"text", std::string(kMaxPolicyPushBytes + 1, '#')}, {"file", "f"}})));

        // Unreadable: exit 1; not UTF-8: exit 2; neither sent.
        const std::string missing = dir.file("missing.toml");
        const Ran none = run_main({"--socket", sock.c_str(), "policy", "push", missing.c_str()});
        CHECK(none.rc == 1);
        CHECK(none.err == "jitgate: cannot push " + missing + ": No such file or directory\n");
        CHECK(run_main({"--socket", sock.c_str(), "policy", "push", dir.file("").c_str()}).rc == 1);
        const std::string latin1 = dir.file("latin1.toml");
        write_file(latin1, "# caf\xe9\n");
        const Ran bytes = run_main({"--socket", sock.c_str(), "policy", "push", latin1.c_str()});
        CHECK(bytes.rc == 2);
        CHECK(bytes.err.find("byte 6 is not UTF-8") != std::string::npos);
        CHECK(d.requests().size() == 3);
    }

    TEST_CASE("policy show: the version header, then the text escaped line by line; --json as sent") {
        const json shown = {{"version", 4},
                            {"file", "fleet.toml"},
                            {"pushed_by", "root@db-1"},
                            {"pushed_at", "2027-01-15T08:00:00.000000Z"},
                            {"text", "[[port]]\r\n\tname = \"db\"\nreason = \"\x1b[31mred\"\n"},
                            {"ports", {"db", "web\x1b"}}};
        const std::string t = render_policy_show(shown);
        CHECK(t ==
              "# fleet policy version 4, pushed by root@db-1 at 2027-01-15T08:00:00.000000Z from fleet.toml\n"
              "# 2 ports: db, web\\x1b\n"
              "[[port]]\n"
              "        name = \"db\"\n"
              "reason = \"\\x1b[31mred\"\n");
        CHECK(render_policy_push({{"version", 1}, {"ports", 1}}) == "fleet policy version 1: 1 port\n");

        TempDir dir;
        const std::string sock = dir.file("d.sock");
        FakeDaemon d(sock, [&](const json& q) { return reply_ok(q.value("id", std::int64_t(0)), shown); });
        const Ran j = run_main({"--socket", sock.c_str(), "policy", "show", "--json"});
        CHECK(j.rc == 0);
        CHECK(json::parse(j.out) == shown);
        const Ran h = run_main({"--socket", sock.c_str(), "policy", "show"});
        CHECK(h.out == t);
        CHECK(d.ops() == std::vector<std::string>{"policy_show", "policy_show"});
    }
}

}  // namespace test_cli_fleet
