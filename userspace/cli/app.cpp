#include "cli/app.h"

#include <fmt/format.h>

#include <iostream>

#include "cli/client.h"
#include "cli/render.h"
#include "core/duration.h"
#include "core/keys.h"
#include "core/policy.h"
#include "core/protocol.h"

namespace jg {

std::unique_ptr<CLI::App> build_app(CliState& s) {
    auto app = std::make_unique<CLI::App>(
        "jitgate: ask for, approve and watch just-in-time access to protected ports");
    app->require_subcommand(1);
    app->fallthrough();
    app->add_option("--socket", s.socket, "jitgated control socket")->capture_default_str();
    app->add_flag("--json", s.json, "print one JSON object");

    auto* req = app->add_subcommand("request", "ask for access to a protected port");
    req->add_option("PORT", s.port_spec, "PORT or PORT/PROTO (tcp, udp)")->required();
    req->add_option("--for", s.duration, "how long, e.g. 30m or 1h30m")->required();
    req->add_option("--reason", s.reason, "why you need it (recorded)");
    req->add_option("--ticket", s.ticket, "a ticket id (recorded)");
    req->add_option("--from", s.from,
                    "for a remote peer: its source address, or ADDR/PREFIX where the port's policy "
                    "allow_prefix permits")
        ->type_name("ADDR");
    req->callback([&s] { s.op = "request"; });

    auto* appr = app->add_subcommand("approve", "approve a pending request");
    appr->add_option("ID", s.id, "request id")->required();
    appr->add_option("--for", s.approve_for, "shorten the grant to this duration");
    appr->callback([&s] { s.op = "approve"; });

    auto* deny = app->add_subcommand("deny", "reject a pending request (or withdraw your own)");
    deny->add_option("ID", s.id, "request id")->required();
    deny->add_option("--reason", s.reason, "why (recorded)");
    deny->callback([&s] { s.op = "deny"; });

    auto* rev = app->add_subcommand("revoke", "end a grant now");
    rev->add_option("ID", s.id, "grant id, or the id of the request that led to it")->required();
    rev->callback([&s] { s.op = "revoke"; });

    auto* list = app->add_subcommand("list", "show requests and grants (default: pending and active)");
    auto* g = list->add_option_group("filter");
    g->add_flag("--pending", s.pending, "pending requests");
    g->add_flag("--active", s.active, "active grants");
    g->add_flag("--all", s.all, "recent requests and grants, whatever their state");
    g->require_option(0, 1);
    list->callback([&s] { s.op = "list"; });

    auto* st = app->add_subcommand("status", "programs, protected ports, grants and counters");
    st->callback([&s] { s.op = "status"; });

    auto* pol = app->add_subcommand("policy", "policy file tools");
    pol->require_subcommand(1);
    auto* chk = pol->add_subcommand("check", "validate a policy file and name every problem with its line");
    chk->add_option("FILE", s.file, "policy file")->required();
    chk->callback([&s] { s.op = "policy-check"; });
    return app;
}

std::string finish(CliState& s) {
    s.args = nlohmann::json::object();
    if (s.op == "request") {
        auto spec = parse_port_spec(s.port_spec);
        if (!spec) return spec.error();
        auto d = parse_duration(s.duration);
        if (!d) return d.error();
        if (s.reason.size() > kMaxReasonBytes)
            return fmt::format("--reason is longer than {} bytes", kMaxReasonBytes);
        if (s.ticket.size() > kMaxTicketBytes)
            return fmt::format("--ticket is longer than {} bytes", kMaxTicketBytes);
        s.args = {{"port", spec->port}, {"proto", std::string(proto_name(spec->proto))}, {"duration_s", *d}};
        if (!s.reason.empty()) s.args["reason"] = s.reason;
        if (!s.ticket.empty()) s.args["ticket"] = s.ticket;
        if (s.from) {
            auto src = parse_source(*s.from);
            if (!src) return src.error();
            s.args["from"] = format_source(*src);
        }
    } else if (s.op == "approve") {
        if (s.id <= 0) return "ID must be a positive request id";
        s.args = {{"id", s.id}};
        if (!s.approve_for.empty()) {
            auto d = parse_duration(s.approve_for);
            if (!d) return d.error();
            s.args["duration_s"] = *d;
        }
    } else if (s.op == "deny" || s.op == "revoke") {
        if (s.id <= 0) return "ID must be a positive id";
        s.args = {{"id", s.id}};
        if (s.op == "deny" && !s.reason.empty()) s.args["reason"] = s.reason;
    } else if (s.op == "list") {
        s.args = {{"filter", s.pending ? "pending" : s.active ? "active" : s.all ? "all" : "default"}};
    }
    return {};
}

namespace {

int policy_check(const CliState& s) {
    auto load = load_policy_file(s.file);
    if (s.json) {
        std::cout << nlohmann::json{{"ok", load.ok()},
                                    {"file", s.file},
                                    {"errors", load.errors},
                                    {"ports", load.policy.ports.size()}}
                         .dump()
                  << "\n";
    } else if (load.ok()) {
        std::cout << fmt::format("{}: valid, {} protected ports\n", s.file, load.policy.ports.size());
    } else {
        for (auto& e : load.errors) std::cerr << e << "\n";
    }
    return load.ok() ? 0 : 1;
}

}  // namespace

int run_cli(int argc, const char* const* argv) {
    CliState s;
    auto app = build_app(s);
    try {
        app->parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app->exit(e) == 0 ? 0 : 2;
    }
    if (auto e = finish(s); !e.empty()) {
        if (s.json)
            std::cout
                << nlohmann::json{{"ok", false}, {"error", {{"code", code::kInvalid}, {"message", e}}}}.dump()
                << "\n";
        std::cerr << "jitgate: " << e << "\n";
        return 2;
    }
    if (s.op == "policy-check") return policy_check(s);
    auto reply = call_daemon(s.socket, s.op, s.args);
    if (!reply) {
        if (s.json)
            std::cout << nlohmann::json{{"ok", false},
                                        {"error", {{"code", "unreachable"}, {"message", reply.error()}}}}
                             .dump()
                      << "\n";
        std::cerr << "jitgate: " << reply.error() << "\n";
        return 4;
    }
    const auto& r = *reply;
    if (!r.value("ok", false)) {
        const auto& e = r.contains("error") && r["error"].is_object() ? r["error"] : nlohmann::json::object();
        const std::string c = e.value("code", "internal");
        if (s.json) std::cout << nlohmann::json{{"ok", false}, {"error", e}}.dump() << "\n";
        std::cerr << "jitgate: " << e.value("message", "the daemon refused without a reason") << "\n";
        return exit_code_for(c);
    }
    const auto& result = r.contains("result") ? r["result"] : nlohmann::json::object();
    if (s.json)
        std::cout << result.dump() << "\n";
    else
        std::cout << render_human(s.op, result);
    return 0;
}

}  // namespace jg
