#include "cli/run_cmd.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <iostream>

#include "cli/client.h"
#include "cli/render.h"
#include "core/duration.h"
#include "core/operations.h"
#include "core/protocol.h"
#include "core/text.h"
#include "util/unique_fd.h"

namespace jg {

namespace {

using nlohmann::json;

std::atomic<bool> g_stop{false};  // a stop signal arrived (ends the wait)
std::atomic<int> g_signal{0};     // which
std::atomic<int> g_forward{0};    // one to pass on to the command, not yet passed
static_assert(std::atomic<int>::is_always_lock_free);

extern "C" void on_run_signal(int sig, siginfo_t* si, void*) {
    g_signal.store(sig);
    g_stop.store(true);
    // A terminal's Ctrl-C (SI_KERNEL) goes to the whole foreground process
    // group, the command included: passing it on would deliver it twice.
    // A signal sent to jitgate alone (kill, a supervisor) is passed on.
    if (si == nullptr || si->si_code != SI_KERNEL) g_forward.store(sig);
}

constexpr int kStopSignals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};

void install_handlers() {
    struct sigaction sa {};
    sa.sa_sigaction = on_run_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_SIGINFO;  // no SA_RESTART: a blocked call returns
    for (int sig : kStopSignals) sigaction(sig, &sa, nullptr);
}

std::string command_text(const std::vector<std::string>& cmd) {
    std::string out;
    for (const auto& a : cmd) {
        if (!out.empty()) out += ' ';
        const bool plain = !a.empty() && a.find_first_of(" \t\n'\"\\$`*?;&|<>()") == std::string::npos;
        out += plain ? escape_terminal(a) : "'" + escape_terminal(a) + "'";
    }
    return out;
}

// The message of a daemon's error object (its text as sent; escape it before showing it).
std::string message_of(const json& e) {
    const auto m = e.find("message");
    return m != e.end() && m->is_string() ? m->get<std::string>() : std::string("refused");
}

// Withdraws request `id` (the requester's deny); best effort, said on stderr.
void withdraw(const CliState& s, std::int64_t id) {
    auto r = call_daemon(daemon_endpoint(s), op_name(Op::Deny),
                         {{"id", id}, {"reason", "jitgate run was stopped before the request was decided"}});
    if (r && r->value("ok", false))
        std::cerr << fmt::format("jitgate: request {} withdrawn\n", id);
    else
        std::cerr << fmt::format(
            "jitgate: could not withdraw request {}: {}; withdraw it with: jitgate deny {}\n", id,
            escape_terminal(r ? message_of(error_of(*r)) : r.error()), id);
}

// Revokes grant `gid`; what became of it: "revoked", "expired" (or another
// end it already had), or "unknown" when jitgated could not be asked.
std::string revoke(const CliState& s, std::int64_t gid, const std::string& expires) {
    const std::string expires_at = escape_terminal(expires);
    auto r = call_daemon(daemon_endpoint(s), op_name(Op::Revoke), {{"id", gid}});
    if (!r) {
        std::cerr << fmt::format(
            "jitgate: could not revoke grant {}: {}; it still ends at {} (or: jitgate revoke {})\n", gid,
            escape_terminal(r.error()), expires_at, gid);
        return "unknown";
    }
    if (r->value("ok", false)) {
        std::cerr << fmt::format("jitgate: grant {} revoked\n", gid);
        return "revoked";
    }
    const json e = error_of(*r);
    if (e.value("code", "") == code::kConflict) {  // "grant 13 is already expired"
        const std::string msg = escape_terminal(message_of(e));
        const auto at = msg.rfind(' ');
        std::cerr << fmt::format("jitgate: grant {} had already ended ({})\n", gid, msg);
        return at == std::string::npos ? std::string("ended") : msg.substr(at + 1);
    }
    std::cerr << fmt::format("jitgate: could not revoke grant {}: {}; it still ends at {}\n", gid,
                             escape_terminal(message_of(e)), expires_at);
    return "unknown";
}

struct Child {
    pid_t pid = -1;
    int exec_errno = 0;  // set when the command could not be started
};

Child start(const std::vector<std::string>& cmd) {
    std::vector<char*> argv;
    for (const auto& a : cmd) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    // The child writes errno here when exec fails; on success the pipe
    // closes with exec (O_CLOEXEC) and the parent reads end-of-file.
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) return {-1, errno};
    unique_fd rd(p[0]), wr(p[1]);
    const pid_t pid = fork();
    if (pid < 0) return {-1, errno};
    if (pid == 0) {
        // The command starts with the signal state jitgate was started with.
        struct sigaction dfl {};
        dfl.sa_handler = SIG_DFL;
        sigemptyset(&dfl.sa_mask);
        for (int sig : kStopSignals) sigaction(sig, &dfl, nullptr);
        rd.reset();
        execvp(argv[0], argv.data());
        const int e = errno;
        (void)!write(wr.get(), &e, sizeof(e));
        _exit(e == ENOENT ? 127 : 126);
    }
    wr.reset();
    int e = 0;
    ssize_t n;
    do n = read(rd.get(), &e, sizeof(e));
    while (n < 0 && errno == EINTR);
    rd.reset();
    if (n == sizeof(e)) {
        int st;
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
        }
        return {-1, e};
    }
    return {pid, 0};
}

}  // namespace

int run_stop_signal() { return g_signal.load(); }
void request_run_stop(int sig, bool forward) {
    g_signal.store(sig);
    if (forward) g_forward.store(sig);
    g_stop.store(true);
}
void reset_run_stop() {
    g_stop.store(false);
    g_signal.store(0);
    g_forward.store(0);
}

int exit_status_of(int st) {
    if (WIFEXITED(st)) return WEXITSTATUS(st);
    if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
    return 1;
}

int run_with_grant(const CliState& s, RunOptions o) {
    using Clock = std::chrono::steady_clock;
    if (o.own_signals) install_handlers();
    o.wait.stop = &g_stop;
    o.wait.report_on_stderr = true;
    const auto stopped_status = [] { return 128 + (g_signal.load() ? g_signal.load() : SIGINT); };

    auto reply = call_daemon(daemon_endpoint(s), op_name(Op::Request), s.args);
    if (!reply) return fail(s, {{"code", code::kUnreachable}, {"message", reply.error()}});
    if (!reply->value("ok", false)) return fail(s, error_of(*reply));
    json req = reply->contains("result") ? (*reply)["result"] : json::object();
    const std::int64_t rid = req.value("request_id", std::int64_t(0));
    json summary = {{"request_id", rid}};
    if (req.value("state", "") == "pending") {
        if (!s.json) std::cerr << render_human(op_name(Op::Request), req);
        json decided;
        o.wait.decided = &decided;
        const int rc = wait_for_decision(s, req, o.wait);
        if (rc == 130) {  // stopped while pending: nothing will use the request
            std::cerr << fmt::format("jitgate: stopped before request {} was decided\n", rid);
            withdraw(s, rid);
            summary["state"] = "withdrawn";
            if (s.json) std::cout << json_text(summary) << "\n";
            return stopped_status();
        }
        if (rc != 0) {
            if (s.json && decided.is_object()) {
                summary["state"] = decided.value("state", "");
                std::cout << json_text(summary) << "\n";
            }
            return rc;
        }
        req = decided;
    } else if (req.value("state", "") == "granted") {
        std::cerr << "jitgate: " << render_wait_state(req) << "\n";
    } else {
        std::cerr << "jitgate: " << render_wait_state(req) << "\n";
        return exit_code_for(code::kRefused);
    }
    const std::int64_t gid = req.value("grant_id", std::int64_t(0));
    const std::string expires_at = req.value("expires_at", "");
    summary.update({{"state", "granted"}, {"grant_id", gid}, {"expires_at", expires_at}});
    // Stopped between the grant and the command: the command never runs.
    if (g_stop.load()) {
        summary["ended"] = revoke(s, gid, expires_at);
        if (s.json) std::cout << json_text(summary) << "\n";
        return stopped_status();
    }

    std::cerr << fmt::format("jitgate: running {} (grant {} is revoked when it exits)\n",
                             command_text(s.command), gid);
    std::cerr.flush();
    std::cout.flush();
    const Child child = start(s.command);
    if (child.pid < 0) {
        std::cerr << fmt::format("jitgate: cannot run {}: {}\n", escape_terminal(s.command.front()),
                                 std::strerror(child.exec_errno));
        summary["ended"] = revoke(s, gid, expires_at);
        summary["exit_code"] = child.exec_errno == ENOENT ? 127 : 126;
        if (s.json) std::cout << json_text(summary) << "\n";
        return summary["exit_code"].get<int>();
    }
    // Wait for the command, passing on signals and saying when the grant ends under it.
    const auto grant_end = Clock::now() + std::chrono::seconds(req.value("remaining_s", std::int64_t(0)));
    bool told_expired = !req.contains("remaining_s");
    int st = 0;
    for (;;) {
        if (const int sig = g_forward.exchange(0)) kill(child.pid, sig);
        const pid_t r = waitpid(child.pid, &st, WNOHANG);
        if (r == child.pid) break;
        if (r < 0 && errno != EINTR) {
            std::cerr << fmt::format("jitgate: waiting for {} failed: {}\n",
                                     escape_terminal(s.command.front()), std::strerror(errno));
            st = 1 << 8;
            break;
        }
        if (!told_expired && Clock::now() >= grant_end) {
            told_expired = true;
            std::cerr << fmt::format(
                "jitgate: grant {} has expired; {} keeps running without access to {}/{}\n", gid,
                escape_terminal(s.command.front()), req.value("port", 0),
                escape_terminal(req.value("proto", "")));
        }
        poll(nullptr, 0, 20);
    }
    const int status = exit_status_of(st);
    const std::string name = escape_terminal(s.command.front());
    std::cerr << (WIFSIGNALED(st) ? fmt::format("jitgate: {} was killed by signal {}\n", name, WTERMSIG(st))
                                  : fmt::format("jitgate: {} exited with status {}\n", name, status));
    summary["ended"] = revoke(s, gid, expires_at);
    summary["exit_code"] = status;
    if (WIFSIGNALED(st)) summary["signal"] = WTERMSIG(st);
    if (s.json) std::cout << json_text(summary) << "\n";
    return status;
}

}  // namespace jg
