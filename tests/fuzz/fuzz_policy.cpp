// libFuzzer: the TOML policy (core/policy.h: parse_policy, what `jitgate
// policy check` and jitgated's start and reload run) on arbitrary text.
// Every problem is reported as "FILE:LINE: message"; a policy that loads
// without problems holds only values the daemon can enforce.
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <utility>

#include "check.h"
#include "core/duration.h"
#include "core/policy.h"

using namespace jg;

namespace {

constexpr std::string_view kFile = "fuzz.toml";

void error_form(std::string_view in, const std::string& e) {
    // FILE:LINE: message, LINE a number from 1.
    bool ok = e.size() > kFile.size() + 1 && e.compare(0, kFile.size(), kFile) == 0 && e[kFile.size()] == ':';
    std::size_t i = kFile.size() + 1;
    const std::size_t digits_from = i;
    while (ok && i < e.size() && std::isdigit(static_cast<unsigned char>(e[i]))) ++i;
    ok = ok && i > digits_from && e[digits_from] != '0' && e.compare(i, 2, ": ") == 0 && e.size() > i + 2;
    JG_CHECK(ok, in, "a problem reads FILE:LINE: message, got: " + fuzz::shown(e));
}

void principal_ok(std::string_view in, const Principal& p, const char* where) {
    JG_CHECK(!p.name.empty() && p.name.size() <= 32 && p.name[0] != '@', in,
             std::string(where) + ": a principal is a name of 1-32 characters: " + fuzz::shown(p.name));
}

void port_ok(std::string_view in, const PortPolicy& p) {
    const std::string where = "port '" + fuzz::shown(p.name) + "'";
    JG_CHECK(p.port >= 1, in, where + ": a port number from 1");
    JG_CHECK(p.tcp || p.udp, in, where + ": a port covers tcp, udp or both");
    JG_CHECK(p.max_duration_s > 0 && p.max_duration_s <= kMaxDurationSeconds, in, where + ": max_duration");
    JG_CHECK(p.request_ttl_s > 0 && p.request_ttl_s <= kMaxDurationSeconds, in, where + ": request_ttl");
    JG_CHECK(p.approvals_required >= 1 && p.approvals_required <= 16, in, where + ": approvals_required");
    JG_CHECK(p.break_glass_max_s >= 0 && p.break_glass_max_s <= p.max_duration_s, in,
             where + ": break_glass_max within max_duration");
    JG_CHECK(!p.approvers.empty() || !p.auto_approve.empty(), in, where + ": someone can approve");
    std::set<std::string> distinct;
    bool any_group = false;
    for (const auto& a : p.approvers) {
        principal_ok(in, a, "approvers");
        JG_CHECK(distinct.insert(a.text()).second, in, where + ": approvers are distinct");
        any_group = any_group || a.is_group;
    }
    JG_CHECK(any_group || p.approvers.empty() || p.approvals_required <= int(p.approvers.size()), in,
             where + ": enough approvers for approvals_required");
    for (const auto& r : p.auto_approve) {
        principal_ok(in, r.who, "auto_approve");
        JG_CHECK(r.max_duration_s > 0 && r.max_duration_s <= p.max_duration_s, in,
                 where + ": auto_approve max_duration within the port's");
    }
    if (p.allow_prefix_v4) JG_CHECK(*p.allow_prefix_v4 >= 1 && *p.allow_prefix_v4 <= 32, in, where);
    if (p.allow_prefix_v6) JG_CHECK(*p.allow_prefix_v6 >= 1 && *p.allow_prefix_v6 <= 128, in, where);
    if (p.break_glass)
        for (const auto& a : *p.break_glass) principal_ok(in, a, "break_glass");
}

void policy_ok(std::string_view in, const Policy& policy) {
    std::set<std::pair<int, Proto>> claimed;
    std::set<std::string> names;
    for (const auto& p : policy.ports) {
        port_ok(in, p);
        JG_CHECK(names.insert(p.name).second, in, "port names are distinct");
        for (Proto pr : {Proto::Tcp, Proto::Udp}) {
            if (!p.covers(pr)) continue;
            JG_CHECK(claimed.insert({p.port, pr}).second, in, "one [[port]] per port and protocol");
            JG_CHECK(policy.find(p.port, pr) == &p, in, "find() returns the port that claims it");
        }
    }
    std::set<std::string> ifaces;
    for (const auto& i : policy.daemon.xdp_interfaces) {
        JG_CHECK(valid_ifname(i) && i != "lo", in, "an XDP interface name: " + fuzz::shown(i));
        JG_CHECK(ifaces.insert(i).second, in, "XDP interfaces are distinct");
    }
    std::set<std::string> auditors;
    for (const auto& a : policy.daemon.auditors) {
        principal_ok(in, a, "auditors");
        JG_CHECK(auditors.insert(a.text()).second, in, "auditors are distinct");
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view in(reinterpret_cast<const char*>(data), size);
    const PolicyLoad load = parse_policy(in, kFile);
    for (const auto& e : load.errors) error_form(in, e);
    if (load.ok()) policy_ok(in, load.policy);
    return 0;
}
