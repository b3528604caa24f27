#include "daemon/kernel_records.h"

#include <fmt/format.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstring>

#include "daemon/audit_log.h"

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

namespace {

// An address the kernel wrote (16 bytes, v4-mapped); empty when all zero.
std::string addr_text(const jg_u8 (&bytes)[16]) {
    Addr16 a;
    std::memcpy(a.data(), bytes, 16);
    return a == Addr16{} ? std::string() : format_addr(a);
}

}  // namespace

Decision decision_of(const jg_event& e) {
    Decision d;
    d.verdict = e.verdict;
    d.hook = e.hook;
    d.bind = is_bind_event(e);
    d.port = e.dport;
    d.proto = e.proto;
    d.local = !is_remote_event(e);
    d.uid = e.uid;
    d.src = addr_text(e.src);
    d.dst = addr_text(e.dst);
    d.cgroup_id = e.cgroup_id;
    d.pid = e.pid;
    d.comm = std::string_view(reinterpret_cast<const char*>(e.comm),
                              strnlen(reinterpret_cast<const char*>(e.comm), sizeof(e.comm)));
    d.sport = e.sport;
    d.grant_id = e.grant_id;
    d.stands_for = std::uint64_t(e.suppressed) + 1;
    return d;
}

Decision decision_of(const ClosedWindow& w) {
    Decision d;
    d.verdict = w.allow                              ? JG_VERDICT_ALLOW
                : w.verdict == JG_VERDICT_WOULD_DENY ? JG_VERDICT_WOULD_DENY
                                                     : JG_VERDICT_DENY;
    d.hook = w.hook;
    d.bind = !w.allow && w.bind;
    d.port = w.port;
    d.proto = std::uint8_t(w.proto);
    d.local = w.who.is_uid;
    d.uid = w.who.uid;
    if (!w.who.is_uid) d.src = w.who.src;
    d.grant_id = w.allow ? w.grant_id : 0;
    d.stands_for = w.suppressed;
    d.reason = w.allow ? fmt::format(
                             "the last {} new connections or flows of this principal under this "
                             "grant were not recorded one by one (rate limit); this record closes them",
                             w.suppressed)
                       : fmt::format(
                             "the last {} denials for this principal and port were not recorded one "
                             "by one (rate limit); this record closes them",
                             w.suppressed);
    return d;
}

void decision_fields(const Decision& d, std::string_view user, AuditFields& out) {
    out.clear();
    out.add("type", d.type()).add("port", std::uint64_t(d.port)).add("proto", proto_name(Proto(d.proto)));
    if (d.hook) out.add("hook", hook_name(d.hook));
    if (d.local) out.add("uid", std::uint64_t(d.uid)).add("user", user);
    if (d.cgroup_id) out.add("cgroup_id", d.cgroup_id);
    if (d.pid) out.add("pid", std::uint64_t(d.pid));
    if (!d.comm.empty()) out.add("comm", d.comm);
    if (!d.dst.empty()) out.add("dst", d.dst);
    if (!d.src.empty()) out.add("src", d.src);
    if (d.sport) out.add("sport", std::uint64_t(d.sport));
    if (d.grant_id) out.add("grant_id", d.grant_id);
    // An allow record stands for `count` new flows: itself and those of its
    // principal and grant the kernel's rate limit held back since the last;
    // a denial record for itself and `suppressed` more.
    if (d.verdict == JG_VERDICT_ALLOW)
        out.add("count", d.stands_for);
    else if (d.stands_for > 1)
        out.add("suppressed", d.stands_for - 1);
    // mode = "audit": the bind was let through and only reported.
    if (d.bind && d.verdict == JG_VERDICT_WOULD_DENY) out.add_json("audit", true);
    if (!d.reason.empty()) out.add("reason", d.reason);
}

void kernel_event_fields(const jg_event& e, std::string_view user, AuditFields& out) {
    decision_fields(decision_of(e), user, out);
}

void KernelRecords::on_event(const jg_event& e) { record(decision_of(e)); }

void KernelRecords::on_closed(const ClosedWindow& w) {
    // Nothing held back: the window just goes.
    if (w.suppressed != 0) record(decision_of(w));
}

void KernelRecords::record(const Decision& d) {
    const std::string user = d.local ? user_of(d.uid) : std::string();
    decision_fields(d, user, fields_);
    if (!audit_.node().empty()) fields_.add("node", audit_.node());
    if (d.is_denial()) remember_denial(d, user);
    decisions_[{d.type(), d.port, std::string(proto_name(Proto(d.proto)))}] += d.stands_for;
    audit_.emit(fields_);
}

void KernelRecords::remember_denial(const Decision& d, std::string_view user) {
    json r = {{"type", "deny"}, {"port", d.port}, {"proto", std::string(proto_name(Proto(d.proto)))}};
    if (!d.src.empty()) r["src"] = d.src;
    json k = {{"at", rfc3339_us(clock_.wall_us())},
              {"port", d.port},
              {"proto", r["proto"]},
              {"to_ask", access_hint(r)}};
    if (d.local) {
        k["uid"] = d.uid;
        k["user"] = std::string(user);
    }
    if (!d.src.empty()) k["src"] = d.src;
    if (!d.comm.empty()) k["comm"] = std::string(d.comm);
    auto same = [&](const json& o) {
        return o["port"] == k["port"] && o["proto"] == k["proto"] &&
               o.value("uid", json()) == k.value("uid", json()) &&
               o.value("src", json()) == k.value("src", json());
    };
    std::erase_if(recent_denials_, same);
    recent_denials_.insert(recent_denials_.begin(), std::move(k));
    if (recent_denials_.size() > kRecentDenials) recent_denials_.resize(kRecentDenials);
}

std::string KernelRecords::user_of(std::uint32_t uid) {
    auto it = names_.find(uid);
    if (it != names_.end()) return it->second;
    std::string n = dir_.user_name(uid).value_or(std::to_string(uid));
    if (names_.size() > 4096) names_.clear();
    names_[uid] = n;
    return n;
}

void KernelRecords::check_passwd(std::uint64_t tick) {
    struct stat st {};
    std::tuple<ino_t, std::int64_t, std::int64_t, off_t> now{};
    if (stat("/etc/passwd", &st) == 0)
        now = {st.st_ino, std::int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec,
               std::int64_t(st.st_ctim.tv_sec) * 1000000000 + st.st_ctim.tv_nsec, st.st_size};
    if (now != passwd_stamp_ || tick % 60 == 0) names_.clear();
    passwd_stamp_ = now;
}

// The count reported so far is kept with the chain head, so losses while no
// daemon ran are reported at the next start.
void KernelRecords::report_lost(std::uint64_t ring_full, std::uint64_t rl_full) {
    const std::uint64_t total = ring_full + rl_full;
    std::uint64_t seen = audit_.lost_seen();
    if (total < seen) seen = 0;  // the maps were made anew (after --uninstall)
    if (total == seen) return;
    audit_.emit({{"type", "events_lost"},
                 {"count", total - seen},
                 {"total", total},
                 {"ring_full", ring_full},
                 {"rl_full", rl_full},
                 {"reason", fmt::format("the kernel's event ring was full (ring_full), or a rate-limit table "
                                        "was (rl_full: more than {} principal and port pairs denied, or "
                                        "principal, grant and port triples allowed, within a second): these "
                                        "decisions were enforced and counted but not recorded one by one",
                                        JG_RL_ENTRIES)}});
    audit_.set_lost_seen(total);
}

}  // namespace jg
