#include "cli/app.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <iostream>
#include <thread>

#include <unistd.h>

#include "cli/audit_cmd.h"
#include "cli/client.h"
#include "cli/confirm_wait.h"
#include "cli/login_cmd.h"
#include "cli/policy_push.h"
#include "cli/render.h"
#include "cli/run_cmd.h"
#include "cli/token_store.h"
#include "core/audit.h"
#include "core/clock.h"
#include "core/duration.h"
#include "core/keys.h"
#include "core/operations.h"
#include "core/policy.h"
#include "core/protocol.h"
#include "core/selector.h"
#include "core/service_users.h"
#include "core/text.h"
#include "jitgate/version.h"
#include "notify/command.h"

namespace jg {

namespace {

// --timeout DUR of a sub-command with --wait.
void add_timeout(CLI::App& cmd, CliState& s) {
    cmd.add_option("--timeout", s.timeout, "with --wait: how long to wait for the target nodes (default 10s)")
        ->type_name("DUR");
}

}  // namespace

std::unique_ptr<CLI::App> build_app(CliState& s) {
    auto app = std::make_unique<CLI::App>(
        "jitgate: ask for, approve and watch just-in-time access to protected ports");
    app->set_version_flag("--version", "jitgate " JITGATE_VERSION, "print the version and exit");
    // CLI11's messages quote the arguments they could not use: escaped line by
    // line (set before the sub-commands, which copy it).
    app->failure_message([](const CLI::App* a, const CLI::Error& e) {
        const std::string text = CLI::FailureMessage::simple(a, e);
        std::string out;
        for (std::size_t at = 0; at < text.size();) {
            const std::size_t nl = std::min(text.find('\n', at), text.size());
            out += escape_terminal(std::string_view(text).substr(at, nl - at)) + "\n";
            at = nl + 1;
        }
        return out;
    });
    app->require_subcommand(1);
    app->fallthrough();
    app->add_option("--socket", s.socket, "jitgated control socket")->capture_default_str();
    app->add_flag("--json", s.json, "print one JSON object");
    app->add_option("--web", s.web,
                    "send the command through jitgate-web at URL, as the user `jitgate login URL` signed in")
        ->type_name("URL");

    auto* req = app->add_subcommand(op_name(Op::Request), "ask for access to a protected port");
    req->add_option("PORT", s.port_spec, "PORT or PORT/PROTO (tcp, udp)")->required();
    req->add_option("--for", s.duration, "how long, e.g. 30m or 1h30m")->required();
    req->add_option("--reason", s.reason, "why you need it (recorded)");
    req->add_option("--ticket", s.ticket, "a ticket id (recorded)");
    auto* from =
        req->add_option("--from", s.from,
                        "for a remote peer: its source address, or ADDR/PREFIX where the port's policy "
                        "allow_prefix permits")
            ->type_name("ADDR");
    req->add_flag(
           "--from-me", s.from_me,
           "with --web: for this machine as a remote peer, at the address jitgate-web sees it come from")
        ->excludes(from);
    req->add_option("--on", s.on,
                    "in a fleet: the nodes it is for, a node's name or labels key=value[,key=value] "
                    "(default: this node)")
        ->type_name("SELECTOR");
    req->add_flag("--wait", s.wait,
                  "wait until the request is decided (exit 3 when rejected or expired), then until every "
                  "target node applied the grant (exit 5 when not within --timeout)");
    add_timeout(*req, s);
    req->callback([&s] { s.op = op_name(Op::Request); });

    auto* run = app->add_subcommand(
        "run", "request access, wait for approval, run COMMAND, and revoke the grant when it exits");
    run->add_option("PORT", s.port_spec, "PORT or PORT/PROTO (tcp, udp)")->required();
    run->add_option("--for", s.duration, "how long at most, e.g. 30m or 1h30m")->required();
    run->add_option("--reason", s.reason, "why you need it (recorded)");
    run->add_option("--ticket", s.ticket, "a ticket id (recorded)");
    run->add_option("--from", s.from, "for a remote peer: its source address (as request --from)")
        ->type_name("ADDR");
    run->add_option("COMMAND", s.command, "the command and its arguments, after --")->required();
    run->callback([&s] { s.op = "run"; });
    run->footer(
        "Exit status: the command's; 3 when the request is refused, 4 when jitgated is unreachable, "
        "128+N when the command was killed by signal N.");

    auto* bg = app->add_subcommand(
        "break-glass", "emergency access at once, without an approver; recorded and listed for review");
    bg->add_option("PORT", s.port_spec, "PORT or PORT/PROTO (tcp, udp)")->required();
    bg->add_option("--for", s.duration, "how long, within the port's break_glass_max (default 15m)")
        ->required();
    bg->add_option("--reason", s.reason, "why (mandatory; reviewed after the fact)")->required();
    bg->add_option("--on", s.on, "in a fleet: the nodes it is for, as request --on (default: this node)")
        ->type_name("SELECTOR");
    bg->callback([&s] { s.op = op_name(Op::BreakGlass); });

    auto* appr = app->add_subcommand(op_name(Op::Approve), "approve a pending request");
    appr->add_option("ID", s.id, "request id")->required();
    appr->add_option("--for", s.approve_for, "shorten the grant to this duration");
    appr->add_flag("--wait", s.wait,
                   "once granted, wait until every target node applied the grant (exit 5 when not within "
                   "--timeout)");
    add_timeout(*appr, s);
    appr->callback([&s] { s.op = op_name(Op::Approve); });

    auto* ext = app->add_subcommand(op_name(Op::Extend),
                                    "ask for more time on your active grant, decided like a request");
    ext->add_option("ID", s.id, "grant id, or the id of the request that led to it")->required();
    ext->add_option("--for", s.duration,
                    "how much longer, e.g. 15m (within the port's max_duration from the "
                    "grant's start)")
        ->required();
    ext->add_option("--reason", s.reason, "why (recorded; default: the grant's reason)");
    ext->add_flag("--wait", s.wait, "wait until the extension is decided (exit 3 when rejected or expired)");
    ext->callback([&s] { s.op = op_name(Op::Extend); });

    auto* deny = app->add_subcommand(op_name(Op::Deny), "reject a pending request (or withdraw your own)");
    deny->add_option("ID", s.id, "request id")->required();
    deny->add_option("--reason", s.reason, "why (recorded)");
    deny->callback([&s] { s.op = op_name(Op::Deny); });

    auto* rev = app->add_subcommand(op_name(Op::Revoke), "end a grant now");
    rev->add_option("ID", s.id, "grant id, or the id of the request that led to it")->required();
    rev->add_flag("--wait", s.wait,
                  "wait until every target node applied the revocation (exit 5 when not within --timeout)");
    add_timeout(*rev, s);
    rev->callback([&s] { s.op = op_name(Op::Revoke); });

    auto* list =
        app->add_subcommand(op_name(Op::List), "show requests and grants (default: pending and active)");
    auto* g = list->add_option_group("filter");
    g->add_flag("--pending", s.pending, "pending requests");
    g->add_flag("--active", s.active, "active grants");
    g->add_flag("--all", s.all, "recent requests and grants, whatever their state");
    g->require_option(0, 1);
    list->add_option("--limit", s.list_limit, "at most N requests and N grants (1-1000; default 100)")
        ->type_name("N");
    list->add_option("--after", s.list_after,
                     "the page after this id: the rows listed below it (list says what to type)")
        ->type_name("ID");
    list->callback([&s] { s.op = op_name(Op::List); });

    auto* nodes = app->add_subcommand(
        op_name(Op::Nodes),
        "the fleet's nodes: labels, alive, applied etcd revision and lag, policy version, grants, last ack");
    nodes->callback([&s] { s.op = op_name(Op::Nodes); });

    auto* st = app->add_subcommand(op_name(Op::Status), "programs, protected ports, grants and counters");
    st->callback([&s] { s.op = op_name(Op::Status); });

    auto* met = app->add_subcommand(
        op_name(Op::Metrics),
        "jitgated's counters and gauges in the Prometheus text format (--json: structured)");
    met->callback([&s] { s.op = op_name(Op::Metrics); });

    auto* aud = app->add_subcommand(
        op_name(Op::Audit),
        "show audit records (oldest first), or follow them as they are written; audit verify checks "
        "the hash chain");
    aud->require_subcommand(0, 1);
    aud->add_flag("-f,--follow", s.follow, "keep printing records as jitgated writes them");
    aud->add_option("--since", s.since, "records from this time on: RFC 3339, or how long ago (10m, 2h)")
        ->type_name("TIME");
    aud->add_option("--type", s.types, "only records of this type (repeat, or separate with commas)")
        ->type_name("T")
        ->allow_extra_args(false);
    aud->add_option("--port", s.audit_port, "only records about this port")->type_name("P");
    aud->add_option("--user", s.user, "only records about this user (name or uid)")->type_name("U");
    aud->add_option("--limit", s.limit,
                    "at most N of the newest past records (1-10000; default 50, and none with --follow "
                    "unless --since or --limit)")
        ->type_name("N");
    aud->callback([&s] {
        if (s.op.empty()) s.op = op_name(Op::Audit);
    });
    auto* ver = aud->add_subcommand(
        "verify",
        "check the audit log's hash chain and name the first broken record (default: jitgated's log)");
    ver->add_option("FILE", s.files,
                    "log files, oldest first (a rotated log, then its continuation); - reads standard input");
    ver->add_flag("--fleet", s.fleet,
                  "in a fleet (root): check every node's published audit head against its history of heads "
                  "in etcd");
    ver->callback([&s] { s.op = "audit-verify"; });

    auto* pol = app->add_subcommand("policy", "policy file tools, and the fleet's policy");
    pol->require_subcommand(1);
    auto* chk = pol->add_subcommand("check", "validate a policy file and name every problem with its line");
    chk->add_option("FILE", s.file, "policy file")->required();
    chk->callback([&s] { s.op = "policy-check"; });
    auto* push = pol->add_subcommand(
        "push", "store FILE's [[port]] tables as the fleet's new policy version (root on a node)");
    push->add_option("FILE", s.file, "policy file, at most 48 KiB")->required();
    push->callback([&s] { s.op = op_name(Op::PolicyPush); });
    auto* show =
        pol->add_subcommand("show", "the fleet's policy: its version, who pushed it, when, and its text");
    show->callback([&s] { s.op = op_name(Op::PolicyShow); });

    auto* notify = app->add_subcommand(
        "notify", "deliver audit records to webhooks and Slack (run as a member of daemon.auditors)");
    notify->add_option("--config", s.notify_config, "the file of [[notify]] tables (jitgated's own)")
        ->required();
    notify->add_option("--state-dir", s.notify_state_dir, "where each target's last delivered seq is kept")
        ->type_name("DIR");
    notify->add_option("--retry-max", s.notify_retry_max, "the longest wait between two tries (default 60s)")
        ->type_name("DUR");
    notify->add_flag("--status", s.notify_status, "show each target's last delivered seq and lag, and exit");
    notify->callback([&s] { s.op = "notify"; });

    auto* login = app->add_subcommand(
        "login", "sign in to jitgate-web at URL (device login at its identity provider) for --web URL");
    login->add_option("URL", s.login_url, "jitgate-web's base URL, e.g. https://jitgate.example.com")
        ->required();
    login->add_flag("--forget", s.forget, "remove the token kept for URL instead (as jitgate logout URL)");
    login->callback([&s] { s.op = "login"; });
    auto* logout = app->add_subcommand("logout", "remove the token `jitgate login URL` kept");
    logout->add_option("URL", s.login_url, "jitgate-web's base URL")->required();
    logout->callback([&s] { s.op = "logout"; });
    return app;
}

namespace {

int policy_check(const CliState& s) {
    auto load = load_policy_file(s.file);
    auto warnings = load.ok() ? unknown_principals(load.policy, host_knows) : std::vector<std::string>{};
    if (load.ok()) {
        // Sockets on a protected port now whose owner could not bind it
        // once the policy is loaded (this host's network namespace).
        HostAccounts db;
        const BindRules rules = resolve_service_users(load.policy, read_uid_min(), db);
        for (auto& w : impostor_warnings(load.policy, rules, read_listeners(), db)) warnings.push_back(w);
    }
    if (s.json) {
        std::cout << json_text({{"ok", load.ok()},
                                {"file", s.file},
                                {"errors", load.errors},
                                {"warnings", warnings},
                                {"ports", load.policy.ports.size()}})
                  << "\n";
    } else if (load.ok()) {
        for (auto& w : warnings)
            std::cerr << escape_terminal(s.file) << ": warning: " << escape_terminal(w) << "\n";
        std::cout << fmt::format("{}: valid, {} protected ports\n", escape_terminal(s.file),
                                 load.policy.ports.size());
    } else {
        for (auto& e : load.errors) std::cerr << escape_terminal(e) << "\n";
    }
    return load.ok() ? 0 : 1;
}

// One look at request `id` (op "show"), on a new connection, so that a
// restarted jitgated is found again: its reply line; an error when jitgated
// cannot be reached (or *stop became true: then an empty error).
Result<nlohmann::json> show_request(const Endpoint& to, std::int64_t id, const std::atomic<bool>* stop) {
    std::optional<nlohmann::json> reply;
    auto end = stream_daemon(
        to, op_name(Op::Show), {{"id", id}},
        [&](const nlohmann::json& line) {
            if (!line.contains("result") && !line.contains("error")) return true;
            reply = line;
            return false;
        },
        stop);
    if (!end) return err(end.error());
    if (reply) return *reply;
    if (*end == kStreamInterrupted) return err("");
    return err("jitgated closed the connection without a reply");
}

// While a wait goes on, a terminal shows one line that counts it, rewritten
// in place each second. Anywhere else (a pipe, a log file, the journal)
// nothing: carriage returns do not belong there, and the state lines,
// written whenever the state changes, say all there is.
class WaitTicker {
public:
    explicit WaitTicker(bool on) : on_(on) {}
    ~WaitTicker() { clear(); }
    void show(const std::string& line) {
        if (!on_) return;
        std::cerr << "\r\033[K" << line << std::flush;
        shown_ = true;
    }
    // Before any other line goes to stderr.
    void clear() {
        if (shown_) std::cerr << "\r\033[K" << std::flush;
        shown_ = false;
    }

private:
    bool on_;
    bool shown_ = false;
};

}  // namespace

int wait_for_decision(const CliState& s, const nlohmann::json& first, const WaitOptions& o) {
    using Clock = std::chrono::steady_clock;
    const std::int64_t id = first.value("request_id", std::int64_t(0));
    auto stopped = [&] { return o.stop && o.stop->load(); };
    nlohmann::json cur = first;
    std::string shown;         // the state line last written to stderr
    bool unreachable = false;  // jitgated has not answered since `lost`
    Clock::time_point lost{};
    const Clock::time_point started = Clock::now();
    WaitTicker ticker(isatty(STDERR_FILENO) == 1);
    for (;;) {
        ticker.clear();
        const std::string state = cur.value("state", "");
        if (state != "pending" && o.decided) *o.decided = cur;
        if (state == "granted") {
            if (o.report_on_stderr)
                std::cerr << "jitgate: " << render_wait_state(cur) << "\n";
            else if (!s.json)
                std::cout << render_wait_state(cur) << "\n";
            else if (o.print_granted_json)
                std::cout << json_text(cur) << "\n";
            return 0;
        }
        if (state != "pending") {
            if (s.json && !o.report_on_stderr) std::cout << json_text(cur) << "\n";
            std::cerr << "jitgate: " << render_wait_state(cur) << "\n";
            return exit_code_for(code::kRefused);
        }
        if (const std::string line = render_wait_state(cur); line != shown) {
            std::string more;
            if (shown.empty()) {
                const std::string wait_for = render_wait_for(cur);
                more = "; waiting for a decision" + (wait_for.empty() ? "" : " " + wait_for) +
                       " (Ctrl-C stops waiting)";
            }
            std::cerr << line << more << "\n";
            shown = line;
        }
        ticker.show(render_waiting(
            cur, std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - started).count()));
        const auto next = Clock::now() + std::chrono::milliseconds(o.poll_ms);
        while (!stopped() && Clock::now() < next)
            std::this_thread::sleep_for(
                std::min<Clock::duration>(std::chrono::milliseconds(50), next - Clock::now()));
        std::optional<Result<nlohmann::json>> looked;
        if (!stopped()) looked = show_request(daemon_endpoint(s), id, o.stop);
        if (stopped()) {
            ticker.clear();
            if (o.decided) *o.decided = cur;
            if (o.report_on_stderr) return 130;  // jitgate run withdraws it and says so
            if (s.json) std::cout << json_text(cur) << "\n";
            std::cerr << fmt::format(
                "stopped waiting; request {} stays pending (jitgate deny {} withdraws it)\n", id, id);
            return 130;
        }
        const Result<nlohmann::json>& reply = *looked;
        if (!reply) {
            const auto now = Clock::now();
            ticker.clear();
            if (!unreachable) {
                unreachable = true;
                lost = now;
                std::cerr << fmt::format("jitgate: {}; trying again for up to {} s\n", reply.error(),
                                         (o.unreachable_ms + 999) / 1000);
            } else if (now - lost >= std::chrono::milliseconds(o.unreachable_ms)) {
                return fail(s,
                            {{"code", code::kUnreachable},
                             {"message", fmt::format("{}; request {} stays pending (jitgate list shows it)",
                                                     reply.error(), id)}});
            }
            continue;
        }
        unreachable = false;
        const nlohmann::json& r = *reply;
        if (!r.value("ok", false)) {
            nlohmann::json e = error_of(r);
            if (e.value("message", "").find("unknown operation") != std::string::npos)
                e = {
                    {"code", code::kInternal},
                    {"message", fmt::format("this jitgated cannot be asked about one request (no op show; it "
                                            "is older than this jitgate): request {} stays pending, see it "
                                            "with jitgate list",
                                            id)}};
            return fail(s, e);
        }
        if (r.contains("result") && r["result"].is_object()) cur = r["result"];
    }
}

int fail(const CliState& s, const nlohmann::json& error) {
    if (s.json) std::cout << json_text({{"ok", false}, {"error", error}}) << "\n";
    // A message may echo what a user typed or chose (an argument, a name).
    const auto m = error.find("message");
    std::cerr << "jitgate: "
              << (m != error.end() && m->is_string() ? escape_terminal(m->get<std::string>())
                                                     : std::string("the daemon refused without a reason"))
              << "\n";
    return exit_code_for(error.value("code", code::kInternal));
}

nlohmann::json error_of(const nlohmann::json& reply) {
    auto e = reply.find("error");
    return e != reply.end() && e->is_object() ? *e : nlohmann::json::object();
}

// CLI11's message where it does not say what to do: an unknown command, or
// an id that is not a number.  Empty: CLI11's own message is clear.
std::string usage_hint(const CLI::App& app, const CLI::ParseError& e, int argc, const char* const* argv) {
    std::string first;  // the first word that is not an option or its value
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--socket" || a == "--web") {
            ++i;
            continue;
        }
        if (a.rfind("-", 0) == 0) continue;
        first = a;
        break;
    }
    if (!first.empty() &&
        app.get_subcommands([&](const CLI::App* sc) { return sc->get_name() == first; }).empty() &&
        (dynamic_cast<const CLI::RequiredError*>(&e) || dynamic_cast<const CLI::ExtrasError*>(&e))) {
        std::string names;
        for (const auto* sc : app.get_subcommands([](const CLI::App*) { return true; }))
            names += (names.empty() ? "" : ", ") + sc->get_name();
        return fmt::format("unknown command '{}'; the commands are: {} (jitgate --help)", first, names);
    }
    if (dynamic_cast<const CLI::ConversionError*>(&e) &&
        std::string(e.what()).find("ID") != std::string::npos)
        return "ID must be a number: the request or grant id that `jitgate request` or `jitgate list` shows";
    return {};
}

int run_cli(int argc, const char* const* argv) {
    CliState s;
    auto app = build_app(s);
    try {
        app->parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        if (auto hint = usage_hint(*app, e, argc, argv); !hint.empty()) {
            std::cerr << "jitgate: " << escape_terminal(hint) << "\n";
            return 2;
        }
        return app->exit(e) == 0 ? 0 : 2;
    }
    if (auto why = free_text_refusal(s)) return fail(s, {{"code", code::kRefused}, {"message", *why}});
    if (auto e = finish(s); !e.empty()) return fail(s, {{"code", code::kInvalid}, {"message", e}});
    if (s.op == "policy-check") return policy_check(s);
    if (s.op == "login") return run_login(s);
    if (s.op == "logout") return run_logout(s);
    if (s.op == "notify")
        return notify::run_command(
            {s.notify_config, s.notify_state_dir, s.socket, s.notify_retry_max, s.notify_status, s.json});
    if (s.op == "audit-verify") return s.fleet ? run_audit_fleet(s) : run_audit_verify(s);
    if (s.op == op_name(Op::Audit)) return run_audit(s);
    if (s.op == "run") return run_with_grant(s);
    if (s.op == op_name(Op::PolicyPush))
        if (auto e = read_policy_push(s.file, s.args); !e.empty()) return fail(s, e);
    ConfirmHooks hooks = real_confirm_hooks(s);
    const std::int64_t sent_ms = hooks.now_ms();  // the deciding command's latencies count from here
    auto reply = call_daemon(daemon_endpoint(s), s.op, s.args);
    if (!reply) return fail(s, {{"code", code::kUnreachable}, {"message", reply.error()}});
    const auto& r = *reply;
    if (!r.value("ok", false)) return fail(s, error_of(r));
    const auto& result = r.contains("result") ? r["result"] : nlohmann::json::object();
    if (s.op == op_name(Op::Request) && s.wait && result.value("state", "") == "pending") {
        if (!s.json) std::cout << render_human(s.op, result) << std::flush;
        WaitOptions o;
        o.stop = &stop_on_signals({SIGINT});  // stops waiting; the request stays
        nlohmann::json decided;
        o.decided = &decided;
        o.print_granted_json = false;
        if (const int rc = wait_for_decision(s, result, o); rc != 0) return rc;
        // Someone else decided it: its latencies count from when this wait saw that.
        hooks.stop = o.stop;
        return confirm_and_report(s, s.op, decided, hooks.now_ms(), true, hooks);
    }
    if (s.op == op_name(Op::Extend) && s.wait && result.value("state", "") == "pending") {
        if (!s.json) std::cout << render_human(s.op, result) << std::flush;
        WaitOptions o;
        o.stop = &stop_on_signals({SIGINT});  // stops waiting; the request stays
        return wait_for_decision(s, result, o);
    }
    if (s.wait &&
        (s.op == op_name(Op::Request) || s.op == op_name(Op::Approve) || s.op == op_name(Op::Revoke)))
        return confirm_and_report(s, s.op, result, sent_ms, false, hooks);
    if (s.json)
        std::cout << json_text(result) << "\n";
    else
        std::cout << render_human(s.op, result);
    return 0;
}

}  // namespace jg
