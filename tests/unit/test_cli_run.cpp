// jitgate run: parsing, and the whole flow against a scripted jitgated
// (request, wait, run the command, revoke).
#include <doctest/doctest.h>

#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <functional>
#include <iostream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cli/app.h"
#include "cli/run_cmd.h"
#include "core/protocol.h"
#include "helpers.h"

namespace test_cli_run {
using namespace jg;
using namespace jg::testing;

namespace {

CliState parsed(std::vector<const char*> args) {
    CliState s;
    auto app = build_app(s);
    args.insert(args.begin(), "jitgate");
    app->parse(static_cast<int>(args.size()), args.data());
    return s;
}

// A jitgated that answers each connection's one request by its op, from
// `answers` (an op not listed is an error reply), and records the ops.
class ScriptedDaemon {
public:
    using Answer = std::function<nlohmann::json(const nlohmann::json& args)>;  // a result
    ScriptedDaemon(std::string path, std::map<std::string, Answer> answers)
        : path_(std::move(path)), answers_(std::move(answers)) {
        fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        REQUIRE(fd_ >= 0);
        sockaddr_un sa{};
        sa.sun_family = AF_UNIX;
        std::memcpy(sa.sun_path, path_.c_str(), path_.size() + 1);
        REQUIRE(bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0);
        REQUIRE(listen(fd_, 8) == 0);
        thread_ = std::thread([this] { serve(); });
    }
    ~ScriptedDaemon() {
        shutdown(fd_, SHUT_RDWR);
        thread_.join();
        close(fd_);
    }
    std::vector<std::string> ops() {
        std::lock_guard<std::mutex> l(m_);
        return ops_;
    }
    nlohmann::json last_args(const std::string& op) {
        std::lock_guard<std::mutex> l(m_);
        return args_[op];
    }

private:
    void serve() {
        for (;;) {
            const int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
            if (c < 0) return;
            const auto q = nlohmann::json::parse(jg::testing::read_request_line(c), nullptr, false);
            const std::string op = q.value("op", "");
            const auto id = q.value("id", std::int64_t(0));
            {
                std::lock_guard<std::mutex> l(m_);
                ops_.push_back(op);
                args_[op] = q.value("args", nlohmann::json());
            }
            auto it = answers_.find(op);
            std::string out;
            if (it == answers_.end()) {
                out = reply_error(id, code::kInvalid, "unexpected op " + op);
            } else {
                const nlohmann::json r = it->second(q.value("args", nlohmann::json()));
                out = r.contains("error")
                          ? reply_error(id, r["error"].value("code", ""), r["error"].value("message", ""))
                          : reply_ok(id, r);
            }
            (void)!send(c, out.data(), out.size(), MSG_NOSIGNAL);
            close(c);
        }
    }
    std::string path_;
    std::map<std::string, Answer> answers_;
    int fd_ = -1;
    std::thread thread_;
    std::mutex m_;
    std::vector<std::string> ops_;
    std::map<std::string, nlohmann::json> args_;
};

nlohmann::json request(const std::string& state) {
    nlohmann::json r = {
        {"request_id", 21}, {"state", state},    {"user", "rita"}, {"port", 5432},
        {"proto", "tcp"},   {"duration_s", 600}, {"reason", "x"},  {"approvers", nlohmann::json::array()}};
    if (state == "pending") r["approvals_required"] = 1;
    if (state == "granted")
        r.update({{"grant_id", 22},
                  {"grant_state", "active"},
                  {"remaining_s", 600},
                  {"expires_at", "2027-01-15T08:10:00.000000Z"}});
    return r;
}

nlohmann::json revoked(const nlohmann::json&) { return {{"grant_id", 22}, {"state", "revoked"}}; }

struct Ran {
    int rc = 0;
    std::string out, err;
};

Ran run(const std::string& sock, std::vector<const char*> args, bool json = false) {
    std::vector<const char*> full{"--socket", sock.c_str()};
    if (json) full.push_back("--json");
    full.insert(full.end(), args.begin(), args.end());
    CliState s = parsed(full);
    REQUIRE(finish(s).empty());
    RunOptions o;
    o.own_signals = false;
    o.wait.poll_ms = 5;
    o.wait.unreachable_ms = 500;
    std::ostringstream out, err;
    auto* old_out = std::cout.rdbuf(out.rdbuf());
    auto* old_err = std::cerr.rdbuf(err.rdbuf());
    Ran r;
    r.rc = run_with_grant(s, o);
    std::cout.rdbuf(old_out);
    std::cerr.rdbuf(old_err);
    r.out = out.str();
    r.err = err.str();
    return r;
}

bool has(const std::string& text, const std::string& what) { return text.find(what) != std::string::npos; }

}  // namespace

TEST_SUITE("cli run") {
    TEST_CASE("run PORT[/PROTO] --for --reason [--ticket] [--from] -- COMMAND...: the request's arguments") {
        CliState s = parsed({"run", "5432/tcp", "--for", "10m", "--reason", "fix", "--ticket", "T-1", "--",
                             "psql", "-h", "127.0.0.1", "--json"});
        REQUIRE(finish(s).empty());
        CHECK(s.op == "run");
        CHECK(s.command == std::vector<std::string>{"psql", "-h", "127.0.0.1", "--json"});
        CHECK_FALSE(s.json);  // after --, --json is the command's
        CHECK(
            s.args ==
            nlohmann::json{
                {"port", 5432}, {"proto", "tcp"}, {"duration_s", 600}, {"reason", "fix"}, {"ticket", "T-1"}});

        CliState g = parsed({"--json", "run", "53/udp", "--for", "1m", "--from", "203.0.113.7", "--", "dig"});
        REQUIRE(finish(g).empty());
        CHECK(g.json);
        CHECK(g.args.at("from") == "203.0.113.7");
        CHECK(g.args.at("proto") == "udp");

        // Without --, plain words are the command too.
        CliState w = parsed({"run", "5432", "--for", "1m", "true"});
        REQUIRE(finish(w).empty());
        CHECK(w.command == std::vector<std::string>{"true"});
    }

    TEST_CASE("run: no command, a bad duration, port or source are usage errors") {
        CHECK_THROWS_AS(parsed({"run", "5432", "--for", "1m"}), CLI::ParseError);
        CHECK_THROWS_AS(parsed({"run", "5432", "--"}), CLI::ParseError);
        CliState d = parsed({"run", "5432", "--for", "soon", "--", "true"});
        CHECK_FALSE(finish(d).empty());
        CliState p = parsed({"run", "70000", "--for", "1m", "--", "true"});
        CHECK_FALSE(finish(p).empty());
        CliState f = parsed({"run", "5432", "--for", "1m", "--from", "127.0.0.1", "--", "true"});
        CHECK_FALSE(finish(f).empty());
        CliState e = parsed({"run", "5432", "--for", "1m", "--", ""});
        CHECK(finish(e).find("run needs a command") != std::string::npos);
    }

    TEST_CASE("exit_status_of: the command's code, or 128+N for signal N") {
        CHECK(exit_status_of(0) == 0);
        CHECK(exit_status_of(7 << 8) == 7);
        CHECK(exit_status_of(SIGTERM) == 128 + SIGTERM);
        CHECK(exit_status_of(SIGKILL) == 128 + SIGKILL);
    }

    TEST_CASE("run: granted at once, the command runs, its status is ours, the grant is revoked") {
        reset_run_stop();
        TempDir dir;
        const std::string sock = dir.file("d.sock");
        ScriptedDaemon d(sock,
                         {{"request", [](const auto&) { return request("granted"); }}, {"revoke", revoked}});
        const std::string marker = dir.file("ran");
        const std::string script = "touch " + marker + "; exit 7";
        const Ran r =
            run(sock, {"run", "5432", "--for", "10m", "--reason", "x", "--", "sh", "-c", script.c_str()});
        CHECK(r.rc == 7);
        CHECK(std::filesystem::exists(marker));
        CHECK(d.ops() == std::vector<std::string>{"request", "revoke"});
        CHECK(d.last_args("revoke") == nlohmann::json{{"id", 22}});
        CAPTURE(r.err);
        CHECK(has(r.err, "request 21: granted, grant 22"));
        CHECK(has(r.err, "jitgate: running sh -c '" + script + "' (grant 22 is revoked when it exits)"));
        CHECK(has(r.err, "jitgate: sh exited with status 7\njitgate: grant 22 revoked\n"));
        CHECK(r.out.empty());  // the command's output went to the real stdout, not std::cout

        const Ran j = run(sock, {"run", "5432", "--for", "10m", "--", "true"}, true);
        CHECK(j.rc == 0);
        CHECK(nlohmann::json::parse(j.out) == nlohmann::json{{"request_id", 21},
                                                             {"state", "granted"},
                                                             {"grant_id", 22},
                                                             {"expires_at", "2027-01-15T08:10:00.000000Z"},
                                                             {"ended", "revoked"},
                                                             {"exit_code", 0}});
    }

    TEST_CASE("run: pending, then granted; killed by a signal: 128+N; a missing command: 127") {
        reset_run_stop();
        TempDir dir;
        const std::string sock = dir.file("d.sock");
        std::atomic<int> shows{0};
        ScriptedDaemon d(sock,
                         {{"request", [](const auto&) { return request("pending"); }},
                          {"show", [&](const auto&) { return request(++shows < 3 ? "pending" : "granted"); }},
                          {"revoke", revoked}});
        const Ran r = run(sock, {"run", "5432", "--for", "10m", "--", "sh", "-c", "kill -TERM $$"});
        CHECK(r.rc == 128 + SIGTERM);
        CHECK(d.ops() == std::vector<std::string>{"request", "show", "show", "show", "revoke"});
        CAPTURE(r.err);
        CHECK(has(r.err, "request 21: pending, 0 of 1 approvals; waiting for a decision"));
        CHECK(has(r.err, "waiting for approval: an approver runs  jitgate approve 21"));
        CHECK(has(r.err, "jitgate: sh was killed by signal 15\n"));

        shows = 10;
        const Ran missing = run(sock, {"run", "5432", "--for", "10m", "--", "/nonexistent/jg-cmd"});
        CHECK(missing.rc == 127);
        CHECK(has(missing.err, "jitgate: cannot run /nonexistent/jg-cmd: No such file or directory"));
        CHECK(has(missing.err, "grant 22 revoked"));
    }

    TEST_CASE("run: refused or rejected: exit 3, the command never runs; unreachable: exit 4") {
        reset_run_stop();
        TempDir dir;
        const std::string sock = dir.file("d.sock");
        const std::string marker = dir.file("ran");
        const std::string touch = "touch " + marker;
        {
            ScriptedDaemon d(sock,
                             {{"request", [](const auto&) {
                                   return nlohmann::json{
                                       {"error", {{"code", "refused"}, {"message", "over max_duration"}}}};
                               }}});
            const Ran r = run(sock, {"run", "5432", "--for", "10m", "--", "sh", "-c", touch.c_str()});
            CHECK(r.rc == 3);
            CHECK(has(r.err, "over max_duration"));
        }
        ::unlink(sock.c_str());
        {
            nlohmann::json rej = request("rejected");
            rej["decided_by"] = "bob";
            ScriptedDaemon d(sock, {{"request", [](const auto&) { return request("pending"); }},
                                    {"show", [&](const auto&) { return rej; }}});
            const Ran r = run(sock, {"run", "5432", "--for", "10m", "--", "sh", "-c", touch.c_str()}, true);
            CHECK(r.rc == 3);
            CHECK(has(r.err, "request 21: rejected by bob"));
            CHECK(nlohmann::json::parse(r.out) == nlohmann::json{{"request_id", 21}, {"state", "rejected"}});
        }
        ::unlink(sock.c_str());
        CHECK_FALSE(std::filesystem::exists(marker));
        const Ran down = run(sock, {"run", "5432", "--for", "10m", "--", "true"});
        CHECK(down.rc == 4);
        CHECK(has(down.err, "Start it with: sudo jitgated"));
    }

    TEST_CASE("run: stopped while pending withdraws the request; a signal for jitgate reaches the command") {
        TempDir dir;
        const std::string sock = dir.file("d.sock");
        std::atomic<int> shows{0};
        ScriptedDaemon d(sock, {{"request", [](const auto&) { return request("pending"); }},
                                {"show",
                                 [&](const auto&) {
                                     if (++shows == 2) request_run_stop(SIGTERM, true);
                                     return request("pending");
                                 }},
                                {"deny", [](const auto&) { return request("rejected"); }}});
        reset_run_stop();
        const Ran r = run(sock, {"run", "5432", "--for", "10m", "--", "true"});
        CHECK(r.rc == 128 + SIGTERM);
        CHECK(d.ops() == std::vector<std::string>{"request", "show", "show", "deny"});
        CHECK(d.last_args("deny").at("id") == 21);
        CHECK(has(r.err, "stopped before request 21 was decided\njitgate: request 21 withdrawn\n"));

        // Granted; the command waits for a signal, which jitgate passes on.
        ScriptedDaemon g(dir.file("g.sock"),
                         {{"request", [](const auto&) { return request("granted"); }}, {"revoke", revoked}});
        reset_run_stop();
        std::thread stopper([] {
            std::this_thread::sleep_for(std::chrono::milliseconds(300));
            request_run_stop(SIGHUP, true);
        });
        const Ran s = run(dir.file("g.sock"), {"run", "5432", "--for", "10m", "--", "sleep", "20"});
        stopper.join();
        CHECK(s.rc == 128 + SIGHUP);
        CHECK(has(s.err, "grant 22 revoked"));
        reset_run_stop();
    }
}

}  // namespace test_cli_run
