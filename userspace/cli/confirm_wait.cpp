#include "cli/confirm_wait.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <thread>

#include "cli/client.h"
#include "cli/render.h"
#include "core/duration.h"
#include "core/operations.h"
#include "core/protocol.h"
#include "core/text.h"

namespace jg {

namespace {

using nlohmann::json;

constexpr const char* kApplied = "applied";
constexpr const char* kPending = "pending";
constexpr const char* kUnresolved = "unresolved";

// The names of `nodes` in `state`, escaped, joined by ", ".
std::string names_in(const std::vector<NodeOutcome>& nodes, const std::string& state) {
    std::string out;
    for (const auto& n : nodes)
        if (n.state == state) out += (out.empty() ? "" : ", ") + escape_terminal(n.node);
    return out;
}

bool any_in(const std::vector<NodeOutcome>& nodes, const std::string& state) {
    return std::any_of(nodes.begin(), nodes.end(), [&](const NodeOutcome& n) { return n.state == state; });
}

// A node's state as confirm reports it; anything else counts as pending
// (not confirmed), never as applied.
std::string state_of(const json& n) {
    const auto st = n.find("state");
    if (st != n.end() && st->is_string() && (*st == kApplied || *st == kUnresolved)) return *st;
    return kPending;
}

// Takes one confirm result into `o`: each node's state, its latency when
// first seen applied (`since_ms` after the deciding command), and one
// progress line per node that reached a final state.
void take_result(const json& r, std::int64_t since_ms, bool progress, ConfirmOutcome& o) {
    const auto nodes = r.find("nodes");
    if (nodes == r.end() || !nodes->is_array()) return;
    std::vector<NodeOutcome> next;
    for (const auto& n : *nodes) {
        if (!n.is_object() || !n.contains("node") || !n["node"].is_string()) continue;
        NodeOutcome cur{n["node"].get<std::string>(), state_of(n), std::nullopt};
        const auto was = std::find_if(o.nodes.begin(), o.nodes.end(),
                                      [&](const NodeOutcome& p) { return p.node == cur.node; });
        const bool new_state = was == o.nodes.end() || was->state != cur.state;
        if (cur.state == kApplied)
            cur.latency_ms = was != o.nodes.end() && was->latency_ms ? *was->latency_ms : since_ms;
        if (progress && new_state && cur.state == kApplied)
            std::cerr << fmt::format("  {} applied in {} ms\n", escape_terminal(cur.node), *cur.latency_ms);
        if (progress && new_state && cur.state == kUnresolved)
            std::cerr << fmt::format("  {} unresolved: the user is unknown there\n",
                                     escape_terminal(cur.node));
        next.push_back(std::move(cur));
    }
    o.nodes = std::move(next);
    // The daemon's word, or every node it named in a final state.
    o.complete = r.value("complete", false) || (!o.nodes.empty() && !any_in(o.nodes, kPending));
}

}  // namespace

ConfirmOutcome wait_for_targets(std::int64_t grant_id, std::int64_t revision,
                                const std::vector<std::string>& targets, std::int64_t sent_ms,
                                std::int64_t timeout_ms, const ConfirmHooks& h) {
    ConfirmOutcome o;
    for (const auto& t : targets) o.nodes.push_back({t, kPending, std::nullopt});
    const std::int64_t deadline = sent_ms + timeout_ms;
    if (h.progress)
        std::cerr << fmt::format(
            "waiting up to {} for {} to apply revision {}\n", format_duration((timeout_ms + 999) / 1000),
            targets.empty() ? std::string("the target nodes") : names_in(o.nodes, kPending), revision);
    for (;;) {
        if (h.stop && h.stop->load()) {
            o.stopped = true;
            return o;
        }
        const std::int64_t left = std::max<std::int64_t>(deadline - h.now_ms(), 0);
        auto reply = h.ask(grant_id, revision, left);
        const std::int64_t seen = h.now_ms();
        o.etcd_down.clear();
        o.daemon_down.clear();
        if (!reply) {
            o.daemon_down = reply.error();
        } else if (!reply->value("ok", false)) {
            json e = error_of(*reply);
            if (e.value("code", "") != code::kFleetDown) {
                o.error = e;
                return o;
            }
            o.etcd_down = e.value("message", "");
        } else if (reply->contains("result") && (*reply)["result"].is_object()) {
            take_result((*reply)["result"], seen - sent_ms, h.progress, o);
            if (o.complete) return o;
        }
        const std::int64_t now = h.now_ms();
        if (now >= deadline) return o;
        h.sleep_ms(std::min(h.poll_ms, deadline - now));
    }
}

ConfirmHooks real_confirm_hooks(const CliState& s) {
    using Clock = std::chrono::steady_clock;
    ConfirmHooks h;
    const Endpoint to = daemon_endpoint(s);
    h.ask = [to](std::int64_t id, std::int64_t revision, std::int64_t budget_ms) {
        // A look may take a little past the deadline, never 30 s past it.
        const int wait = static_cast<int>(std::clamp<std::int64_t>(budget_ms, 500, 30000));
        return call_daemon(to, op_name(Op::Confirm), {{"id", id}, {"revision", revision}}, wait);
    };
    h.now_ms = [] {
        return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch()).count();
    };
    h.progress = isatty(STDERR_FILENO) == 1;
    h.sleep_ms = [](std::int64_t ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); };
    return h;
}

std::string render_node_states(const std::vector<NodeOutcome>& nodes) {
    std::size_t width = 0;
    for (const auto& n : nodes) width = std::max(width, escape_terminal(n.node).size());
    std::string out;
    for (const auto& n : nodes) {
        const std::string name = escape_terminal(n.node);
        std::string line = name + std::string(width - name.size() + 2, ' ') + n.state;
        if (n.latency_ms) line += std::string(12 - n.state.size(), ' ') + fmt::format("{} ms", *n.latency_ms);
        out += line + "\n";
    }
    return out;
}

namespace {

// The hosts's own name, for a reply that names no node (an older jitgated).
std::string this_host() {
    char name[256] = {};
    if (gethostname(name, sizeof(name) - 1) != 0 || name[0] == '\0') return "localhost";
    return name;
}

std::vector<std::string> targets_of(const json& result) {
    std::vector<std::string> out;
    const auto t = result.find("targets");
    if (t == result.end() || !t->is_array()) return out;
    for (const auto& n : *t)
        if (n.is_string()) out.push_back(n.get<std::string>());
    return out;
}

// Whether `result` of op put something in force that nodes apply: a grant
// (request or approve) or a revocation.  A request still pending after one
// approval of two has nothing to confirm yet.
bool decided(const std::string& op, const json& result) {
    if (op == op_name(Op::Revoke)) return true;
    return result.value("state", "") == "granted";
}

// The sentence of exit 5: who has not applied it, and the likely why.
std::string not_confirmed(const ConfirmOutcome& o, std::int64_t timeout_ms) {
    const std::string pending = names_in(o.nodes, kPending);
    std::string s = fmt::format("not confirmed within {} by {}", format_duration((timeout_ms + 999) / 1000),
                                pending.empty() ? std::string("the target nodes") : pending);
    if (!o.etcd_down.empty())
        return s + fmt::format(
                       ": etcd was unreachable ({}); `jitgate nodes` shows their last ack once it is back",
                       escape_terminal(o.etcd_down));
    if (!o.daemon_down.empty())
        return s + fmt::format(": jitgated could not be asked ({})", escape_terminal(o.daemon_down));
    return s + ": they may be down or cut off from etcd; `jitgate nodes` shows their last ack";
}

}  // namespace

int confirm_and_report(const CliState& s, const std::string& op, const json& result, std::int64_t sent_ms,
                       bool result_shown, const ConfirmHooks& h) {
    ConfirmOutcome o;
    const auto rev = result.find("revision");
    const auto grant_id = result.value("grant_id", std::int64_t(0));
    if (!decided(op, result)) {
        o.complete = true;  // nothing in force yet: nothing to wait for
        if (!s.json)
            std::cerr << fmt::format(
                "jitgate: request {} is not granted yet: no node has anything to apply\n",
                result.value("request_id", std::int64_t(0)));
    } else if (rev != result.end() && rev->is_number_integer()) {
        o = wait_for_targets(grant_id, rev->get<std::int64_t>(), targets_of(result), sent_ms,
                             s.wait_timeout_ms, h);
    } else {
        const auto node = result.find("node");
        o.nodes.push_back({node != result.end() && node->is_string() ? node->get<std::string>() : this_host(),
                           kApplied, std::max<std::int64_t>(h.now_ms() - sent_ms, 0)});
        o.complete = true;
    }
    if (o.error) {
        json e = *o.error;
        e["message"] = fmt::format("{} is decided (grant {}), but confirming it failed: {}", op, grant_id,
                                   e.value("message", "no reason given"));
        return fail(s, e);
    }
    if (s.json) {
        json out = result;
        out["nodes"] = json::array();
        for (const auto& n : o.nodes)
            out["nodes"].push_back({{"node", n.node},
                                    {"state", n.state},
                                    {"latency_ms", n.latency_ms ? json(*n.latency_ms) : json(nullptr)}});
        std::cout << json_text(out) << "\n";
    } else {
        if (!result_shown) std::cout << render_human(op, result);
        std::cout << render_node_states(o.nodes);
    }
    if (op != op_name(Op::Revoke) && any_in(o.nodes, kUnresolved))
        std::cerr << fmt::format(
            "jitgate: warning: user {} is unknown on {}: the grant does not apply there\n",
            escape_terminal(result.value("user", "?")), names_in(o.nodes, kUnresolved));
    if (o.stopped && any_in(o.nodes, kPending)) {
        std::cerr << fmt::format("jitgate: stopped waiting; not yet confirmed by {}\n",
                                 names_in(o.nodes, kPending));
        return 130;
    }
    if (any_in(o.nodes, kPending) || !o.complete) {
        std::cerr << "jitgate: " << not_confirmed(o, s.wait_timeout_ms) << "\n";
        return 5;
    }
    return 0;
}

}  // namespace jg
