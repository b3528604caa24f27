#include "daemon/status_report.h"

#include <fmt/format.h>

#include <map>

#include "bpf/loader.h"
#include "core/duration.h"
#include "core/metrics.h"
#include "daemon/audit_feed.h"
#include "daemon/audit_log.h"
#include "daemon/kernel_records.h"
#include "daemon/notify.h"
#include "jitgate/version.h"
#include "util/log.h"

namespace jg {

namespace {

json texts(const std::vector<Principal>& list, bool system = false) {
    json a = json::array();
    if (system) a.push_back("system");
    for (auto& x : list) a.push_back(x.text());
    return a;
}

json ports_json(const Policy& policy) {
    json ports = json::array();
    for (auto& p : policy.ports)
        ports.push_back({{"name", p.name},
                         {"port", p.port},
                         {"proto", p.proto_text()},
                         {"mode", p.audit ? "audit" : "enforce"},
                         {"max_duration", format_duration(p.max_duration_s)},
                         {"approvers", texts(p.approvers)},
                         {"service_users", texts(p.service_users, p.service_system)},
                         {"approvals_required", p.approvals_required}});
    return ports;
}

// The programs and XDP as status shows them, into `s`.
void kernel_json(const Kernel& k, json& s) {
    s["programs"] = json::array();
    for (auto& l : k.links())
        s["programs"].push_back({{"name", l.program}, {"link_id", l.link_id}, {"attached", l.attached}});
    s["xdp"] = json::array();
    for (auto& x : k.xdp()) {
        json j = {{"interface", x.ifname}, {"attached", x.attached}};
        if (x.ifindex) j["ifindex"] = x.ifindex;
        if (!x.mode.empty()) j["mode"] = x.mode;
        if (x.link_id) j["link_id"] = x.link_id;
        if (!x.note.empty()) j["note"] = x.note;
        s["xdp"].push_back(std::move(j));
    }
}

json counters_json(const Counters& c, std::uint64_t connections_cut) {
    return {{"allow", c.v[JG_CNT_ALLOW]},
            {"deny", c.v[JG_CNT_DENY]},
            {"would_deny", c.v[JG_CNT_WOULD_DENY]},
            {"events_lost", c.v[JG_CNT_EVENTS_LOST] + c.v[JG_CNT_RL_FULL]},
            {"ring_full", c.v[JG_CNT_EVENTS_LOST]},
            {"rl_full", c.v[JG_CNT_RL_FULL]},
            {"egress_drop", c.v[JG_CNT_EGRESS_DROP]},
            {"xdp_drop", c.v[JG_CNT_XDP_DROP]},
            {"ingress_drop", c.v[JG_CNT_INGRESS_DROP]},
            {"guard_drop", c.v[JG_CNT_GUARD_DROP]},
            {"bind_denied", c.v[JG_CNT_BIND_DENY]},
            {"connections_ended", connections_cut}};
}

}  // namespace

Result<json> status(const StatusParts& s) {
    auto grants = s.store.grants("active", 1 << 20);
    if (!grants) return err(grants.error());
    auto pending = s.store.count_requests("pending");
    if (!pending) return err(pending.error());
    json j;
    j["version"] = JITGATE_VERSION;
    j["abi_version"] = JG_ABI_VERSION;
    j["node"] = s.node;
    if (!s.fleet.is_null()) j["fleet"] = s.fleet;
    j["cgroup"] = s.cgroup;
    j["pin_dir"] = s.pin_dir;
    kernel_json(s.kernel, j);
    j["ports"] = ports_json(s.policy);
    j["grants"] = json::array();
    for (auto& g : *grants) j["grants"].push_back(s.wf.grant_json(g));
    // What each grant map holds now, and what the policy asks (they differ
    // until the pinned maps are made anew: jitgated --uninstall).
    j["max_grants"] = s.kernel.grant_capacity();
    j["max_grants_configured"] = s.policy.daemon.max_grants;
    j["pending_requests"] = *pending;
    j["audit"] = {{"log", s.audit.path()},
                  {"seq", s.audit.head().seq},
                  {"hash", s.audit.head().hash},
                  {"followers", s.feed.followers()}};
    j["counters"] = counters_json(s.kernel.counters(), s.connections_cut);
    j["recent_denials"] = s.records.recent_denials();
    j["notify_failures"] = s.notify;
    j["connections"] = {{"cut_at_grant_end", s.kernel.can_cut()}};
    if (!s.kernel.can_cut()) j["connections"]["note"] = s.kernel.cut_note();
    return j;
}

Result<json> scoped_status(const StatusParts& s, const Caller& c) {
    auto all = status(s);
    if (!all || s.wf.sees_all(c)) return all;
    json& j = *all;
    auto requests = s.store.requests("pending", 1 << 20);
    if (!requests) return err(requests.error());
    auto keep = [](json& rows, const auto& pred) {
        json kept = json::array();
        for (auto& r : rows)
            if (pred(r)) kept.push_back(std::move(r));
        rows = std::move(kept);
    };
    Workflow::ApproverCache approver_of;
    keep(j["grants"], [&](const json& g) { return s.wf.concerns(c, g, &approver_of); });
    // The count too: pending requests of others say nothing to this caller.
    std::int64_t pending = 0;
    for (const auto& r : *requests)
        if (s.wf.concerns(c, s.wf.request_json(r), &approver_of)) ++pending;
    j["pending_requests"] = pending;
    // A denial names its user and process: the user's own only, as audit shows them.
    keep(j["recent_denials"], [&](const json& d) { return belongs_to(d, c.uid, c.user); });
    j["notify_failures"] = json::array();  // the notifier's targets are the auditors'
    return all;
}

namespace {

Result<bool> policy_metrics(const StatusParts& s, MetricsBuilder& m) {
    m.family("jitgate_protected_ports", "gauge", "protected (port, protocol) pairs in the running policy");
    std::size_t pairs = 0;
    std::map<std::pair<std::uint16_t, std::string>, std::uint64_t> active;
    for (const auto& p : s.policy.ports) {
        if (p.tcp) active[{p.port, "tcp"}] = 0, ++pairs;
        if (p.udp) active[{p.port, "udp"}] = 0, ++pairs;
    }
    m.sample(double(pairs));
    auto rows = s.store.each_grant("active", kEveryActiveGrant, [&](const GrantRow& g) {
        ++active[{g.port, std::string(proto_name(g.proto))}];
    });
    if (!rows) return err(rows.error());
    auto pending = s.store.count_requests("pending");
    if (!pending) return err(pending.error());
    m.family("jitgate_grants_active", "gauge", "active grants by port and protocol");
    for (const auto& [k, n] : active)
        m.sample(double(n), {{"port", std::to_string(k.first)}, {"proto", k.second}});
    m.family("jitgate_requests_pending", "gauge", "requests waiting for approval").sample(double(*pending));
    return true;
}

void kernel_metrics(const StatusParts& s, MetricsBuilder& m) {
    const auto c = s.kernel.counters();
    m.family("jitgate_kernel_decisions_total", "counter",
             "decisions counted by the BPF programs since the maps were created, by verdict")
        .sample(double(c.v[JG_CNT_ALLOW]), {{"verdict", "allow"}})
        .sample(double(c.v[JG_CNT_DENY]), {{"verdict", "deny"}})
        .sample(double(c.v[JG_CNT_WOULD_DENY]), {{"verdict", "would_deny"}})
        .sample(double(c.v[JG_CNT_BIND_DENY]), {{"verdict", "bind_denied"}});
    m.family("jitgate_drops_total", "counter", "packets dropped by the BPF programs, by hook")
        .sample(double(c.v[JG_CNT_EGRESS_DROP]), {{"hook", "egress"}})
        .sample(double(c.v[JG_CNT_INGRESS_DROP]), {{"hook", "ingress"}})
        .sample(double(c.v[JG_CNT_XDP_DROP]), {{"hook", "xdp"}});
    m.family("jitgate_events_lost_total", "counter",
             "kernel events that could not be written to the ring buffer (each reported as events_lost)")
        .sample(double(c.v[JG_CNT_EVENTS_LOST]));
}

}  // namespace

Result<json> metrics(const StatusParts& s) {
    MetricsBuilder m;
    m.family("jitgate_info", "gauge", "jitgated's version and kernel ABI version (always 1)")
        .sample(1, {{"version", JITGATE_VERSION}, {"abi_version", std::to_string(JG_ABI_VERSION)}});
    if (auto r = policy_metrics(s, m); !r) return err(r.error());
    m.family("jitgate_decisions_total", "counter",
             "kernel decisions recorded since jitgated started, by verdict, port and protocol: allow per new "
             "connection or flow, deny and would_deny per refusal (rate-limited records count with their "
             "suppressed denials)");
    for (const auto& [k, n] : s.records.decisions())
        m.sample(double(n), {{"verdict", std::get<0>(k)},
                             {"port", std::to_string(std::get<1>(k))},
                             {"proto", std::get<2>(k)}});
    kernel_metrics(s, m);
    m.family("jitgate_tamper_detected_total", "counter", "tamper_detected records since jitgated started")
        .sample(double(s.tampers));
    m.family("jitgate_connections_ended_total", "counter",
             "TCP connections ended because their grant ended or none covered them, since jitgated started")
        .sample(double(s.connections_cut));
    m.family("jitgate_program_attached", "gauge", "1 when the program's link is attached in the kernel");
    for (const auto& l : s.kernel.links()) m.sample(l.attached ? 1 : 0, {{"program", l.program}});
    m.family("jitgate_xdp_attached", "gauge", "1 when XDP runs on the interface");
    for (const auto& x : s.kernel.xdp())
        m.sample(x.attached ? 1 : 0, {{"interface", x.ifname}, {"mode", x.mode}});
    m.family("jitgate_audit_last_seq", "gauge", "seq of the last audit record written")
        .sample(double(s.audit.head().seq));
    m.family("jitgate_audit_followers", "gauge", "open jitgate audit --follow streams")
        .sample(double(s.feed.followers()));
    return m.result();
}

bool verify_and_notify_ready(const Kernel& k, std::size_t ports, const std::string& cgroup,
                             const std::function<void()>& repair) {
    auto missing = [&] {
        std::string out;
        const auto ls = k.links();
        for (const auto& l : ls)
            if (!l.attached) out += (out.empty() ? "" : ", ") + l.program;
        return ls.empty() ? std::string("no links") : out;
    };
    std::string bad = missing();
    if (!bad.empty()) {  // someone detached them as we started: attach again, then look again
        repair();
        bad = missing();
    }
    if (!bad.empty()) {
        log(fmt::format("enforcement could not be verified: not attached in the kernel: {}; not ready", bad));
        return false;
    }
    const std::string status = fmt::format("enforcing {} protected ports on {}", ports, cgroup);
    if (auto r = sd_notify_send("READY=1\nSTATUS=" + status + "\n"); !r) log(r.error());
    return true;
}

}  // namespace jg
