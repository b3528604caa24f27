#include "daemon/events.h"

#include <cstring>

#include "core/keys.h"

namespace jg {

const char* hook_name(std::uint8_t h) {
    switch (h) {
        case JG_HOOK_CONNECT4: return "connect4";
        case JG_HOOK_CONNECT6: return "connect6";
        case JG_HOOK_SENDMSG4: return "sendmsg4";
        case JG_HOOK_SENDMSG6: return "sendmsg6";
        case JG_HOOK_EGRESS: return "egress";
        case JG_HOOK_INGRESS: return "ingress";
        case JG_HOOK_XDP: return "xdp";
        case JG_HOOK_BIND4: return "bind4";
        case JG_HOOK_BIND6: return "bind6";
    }
    return "unknown";
}

const char* verdict_type(std::uint8_t verdict) {
    return verdict == JG_VERDICT_ALLOW ? "allow" : verdict == JG_VERDICT_WOULD_DENY ? "would_deny" : "deny";
}

void kernel_event_fields(const jg_event& e, std::string_view user, AuditFields& out) {
    out.clear();
    out.add("type", is_bind_event(e) ? "bind_denied" : verdict_type(e.verdict))
        .add("port", std::uint64_t(e.dport))
        .add("proto", proto_name(Proto(e.proto)));
    if (e.hook) out.add("hook", hook_name(e.hook));
    if (!is_remote_event(e)) out.add("uid", std::uint64_t(e.uid)).add("user", user);
    if (e.cgroup_id) out.add("cgroup_id", std::uint64_t(e.cgroup_id));
    if (e.pid) out.add("pid", std::uint64_t(e.pid));
    const std::string_view comm(reinterpret_cast<const char*>(e.comm),
                                strnlen(reinterpret_cast<const char*>(e.comm), sizeof(e.comm)));
    if (!comm.empty()) out.add("comm", comm);
    Addr16 a;
    std::memcpy(a.data(), e.dst, 16);
    if (a != Addr16{}) out.add("dst", format_addr(a));
    std::memcpy(a.data(), e.src, 16);
    if (a != Addr16{}) out.add("src", format_addr(a));
    if (e.sport) out.add("sport", std::uint64_t(e.sport));
    if (e.grant_id) out.add("grant_id", std::uint64_t(e.grant_id));
    // An allow record stands for `count` new flows: itself and those of its
    // principal and grant the kernel's rate limit held back since the last.
    if (e.verdict == JG_VERDICT_ALLOW)
        out.add("count", std::uint64_t(e.suppressed) + 1);
    else if (e.suppressed)
        out.add("suppressed", std::uint64_t(e.suppressed));
    // mode = "audit": the bind was let through and only reported.
    if (is_bind_event(e) && e.verdict == JG_VERDICT_WOULD_DENY) out.add_json("audit", true);
}

}  // namespace jg
