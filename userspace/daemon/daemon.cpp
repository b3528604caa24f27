#include "daemon/daemon.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <malloc.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <variant>

#include "bpf/event_ring.h"
#include "bpf/loader.h"
#include "core/audit.h"
#include "core/clock.h"
#include "core/duration.h"
#include "core/metrics.h"
#include "core/progress.h"
#include "core/protocol.h"
#include "core/service_users.h"
#include "core/text.h"
#include "core/workflow.h"
#include "daemon/audit_log.h"
#include "daemon/events.h"
#include "daemon/metrics_http.h"
#include "daemon/netlink.h"
#include "daemon/notify.h"
#include "daemon/server.h"
#include "daemon/system.h"
#include "jitgate/version.h"
#include "util/log.h"

namespace jg {

namespace {

std::string pin_dir_of(const std::string& bpffs) { return fmt::format("{}/v{}", bpffs, JG_ABI_VERSION); }

// Pin directories of other ABI versions under bpffs ("v<N>", N not ours):
// what an older (or newer) jitgate left attached.
std::vector<std::string> other_abi_dirs(const std::string& bpffs) {
    std::vector<std::string> out;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(bpffs, ec)) {
        const std::string n = e.path().filename().string();
        if (n.size() < 2 || n[0] != 'v' || n.find_first_not_of("0123456789", 1) != std::string::npos)
            continue;
        if (e.path().string() != pin_dir_of(bpffs)) out.push_back(e.path().string());
    }
    return out;
}

// Where a grant lives in the kernel: the uid map for a local user, the
// address hash for one remote host, the prefix trie for a network.
using GrantKey = std::variant<jg_uid_key, jg_addr_key, jg_net_key>;

Result<GrantKey> grant_key(const GrantRow& g) {
    if (g.src.empty()) return GrantKey{make_uid_key(g.uid, g.port, g.proto)};
    auto net = parse_source(g.src);
    if (!net) return err(fmt::format("grant {} names source {}: {}", g.id, g.src, net.error()));
    return std::visit([](const auto& k) { return GrantKey{k}; }, make_remote_key(*net, g.port, g.proto));
}

class BpfGrantSink : public GrantSink {
public:
    Kernel* k = nullptr;

    // The typed map a key of this type lives in.
    const Map<jg_uid_key, jg_grant_val>& map_of(const jg_uid_key&) const { return k->grants_uid; }
    const Map<jg_addr_key, jg_grant_val>& map_of(const jg_addr_key&) const { return k->grants_addr; }
    const Map<jg_net_key, jg_grant_val>& map_of(const jg_net_key&) const { return k->grants_net; }

    Result<bool> put(const GrantRow& g) override {
        if (!k) return err("the BPF maps are not loaded");
        auto key = grant_key(g);
        if (!key) return err(key.error());
        const auto val = make_grant_val(g.expires_boot_ns, std::uint64_t(g.id));
        const int e = std::visit([&](const auto& kk) { return map_of(kk).update(kk, val); }, *key);
        if (e == -E2BIG || e == -ENOMEM || e == -ENOSPC)
            return err(fmt::format("the grant map is full ({} grants); revoke unused grants and try again",
                                   JG_GRANT_ENTRIES));
        if (e) return err(fmt::format("write grant {} to the kernel: {}", g.id, std::strerror(-e)));
        return true;
    }
    std::uint64_t connections_cut = 0;  // since start

    std::vector<CutConnection> cut_connections() override {
        std::vector<CutConnection> out;
        if (!k || !k->can_cut()) return out;
        auto recs = k->cut_connections();
        if (!recs) {
            log(recs.error());
            return out;
        }
        for (const jg_cut_rec& r : *recs) {
            Addr16 peer;
            std::memcpy(peer.data(), r.peer, 16);
            const int e = -static_cast<std::int32_t>(r.result);
            if (e) {  // the kernel still refuses its packets; it was not reset
                log(fmt::format("could not end the TCP connection {} port {} -> port {}: {}",
                                format_addr(peer), r.pport, r.lport, std::strerror(e)));
                continue;
            }
            CutConnection c;
            c.grant_id = static_cast<std::int64_t>(r.grant_id);
            c.local = r.kind == JG_CUT_LOCAL;
            c.uid = r.uid;
            c.peer = peer;
            c.port = c.local ? r.pport : r.lport;
            out.push_back(c);
        }
        connections_cut += out.size();
        return out;
    }

    void remove(const GrantRow& g) override {
        if (!k) return;
        auto key = grant_key(g);
        if (!key) return;
        std::visit(
            [&](const auto& kk) {
                jg_grant_val v{};
                if (map_of(kk).lookup(kk, v) == 0 && v.grant_id == std::uint64_t(g.id)) map_of(kk).remove(kk);
            },
            *key);
    }
};

// Map keys have explicit zeroed padding, so equal keys are equal bytes.
template <typename T>
bool same_bytes(const T& a, const T& b) {
    return std::memcmp(&a, &b, sizeof(T)) == 0;
}

// The fields every record of a kernel decision starts with.
json decision_record(std::uint8_t verdict, std::uint16_t port, std::uint8_t proto, std::uint8_t hook) {
    json r = {
        {"type", verdict_type(verdict)}, {"port", port}, {"proto", std::string(proto_name(Proto(proto)))}};
    if (hook) r["hook"] = hook_name(hook);
    return r;
}

// A refused bind's record (rate-limit closing record): type bind_denied,
// and `audit` when the port is in audit mode (the bind went ahead).
void mark_bind_record(json& r, std::uint8_t verdict) {
    r["type"] = "bind_denied";
    if (verdict == JG_VERDICT_WOULD_DENY) r["audit"] = true;
}

// A protected port inside the ephemeral range can be handed to this host's
// own outgoing connections, whose replies would then be refused: say so.
void warn_ephemeral(const Policy& p) {
    std::ifstream range("/proc/sys/net/ipv4/ip_local_port_range");
    int lo = 0, hi = 0;
    if (!(range >> lo >> hi)) return;
    std::ifstream reserved_f("/proc/sys/net/ipv4/ip_local_reserved_ports");
    std::string reserved;
    std::getline(reserved_f, reserved);
    auto is_reserved = [&](int port) {
        std::stringstream ss(reserved);
        std::string item;
        while (std::getline(ss, item, ',')) {  // "8080" or "9000-9010"
            int a = 0, b = 0;
            const int n = std::sscanf(item.c_str(), "%d-%d", &a, &b);
            if (n == 1) b = a;
            if (n >= 1 && a <= port && port <= b) return true;
        }
        return false;
    };
    for (const auto& pp : p.ports)
        if (pp.port >= lo && pp.port <= hi && !is_reserved(pp.port))
            log(fmt::format(
                "warning: protected port {} is inside the ephemeral port range {}-{}: a connection this "
                "host makes could get it as its local port and then have its replies refused; reserve "
                "it (sysctl -w net.ipv4.ip_local_reserved_ports={}) or protect a port outside the range",
                pp.port, lo, hi, pp.port));
}

// Who may bind each protected port of `p`, groups expanded now.
BindRules service_rules(const Policy& p) {
    HostAccounts db;
    return resolve_service_users(p, read_uid_min(), db);
}

// Sockets already on a protected port whose owner may not bind it (an
// impostor, or a service_users list that misses the real service): said at
// start and reload, so that a restart of the service is not the first sign.
void warn_impostors(const Policy& p, const BindRules& rules) {
    HostAccounts db;
    for (const auto& w : impostor_warnings(p, rules, read_listeners(), db)) log("warning: " + w);
}

// Flags win over [daemon] keys, which win over the defaults.
void apply_daemon_settings(DaemonOptions& o, const DaemonSettings& d) {
    // A flag given wins, even one that names the default; then the key.
    auto pick = [&o](const char* flag, std::string& value, const std::optional<std::string>& cfg) {
        if (!o.given.count(flag) && cfg) value = *cfg;
    };
    pick("--cgroup", o.cgroup, d.cgroup);
    pick("--bpffs", o.bpffs, d.bpffs);
    pick("--socket", o.socket, d.socket);
    pick("--state-dir", o.state_dir, d.state_dir);
    pick("--audit-log", o.audit_log, d.audit_log);
    pick("--metrics-address", o.metrics_address, d.metrics_address);
}

// Records taken from the ring per turn of the main loop, so that a flood
// cannot starve the control socket and the clock.
constexpr int kRingBatch = 4096;
constexpr int kRingBatchDone = -EAGAIN;

class Daemon {
public:
    explicit Daemon(const DaemonOptions& o) : o_(o) {}
    int run();
    void on_kernel_event(const jg_event& e);
    // Counts one record taken from the ring; true when this turn's batch is full.
    // A failed audit log also ends it: the rest stays in the ring for the next start.
    bool ring_taken() { return ++ring_budget_ >= kRingBatch || audit_->failed(); }

private:
    Result<bool> prepare_kernel(Kernel& k);
    void sync_local_addrs(Kernel& k);
    // The last route dump was incomplete: the tick tries again.
    bool routes_retry_ = false;
    void reconcile_grants(Kernel& k);
    std::string handle(const Peer& p, const std::string& line);
    json status();
    json metrics();
    // Counts a kernel decision record for the metrics (1 + its suppressed).
    // A decision standing for 1 + suppressed, in the metrics.
    void count_decision(const std::string& type, std::uint16_t port, const std::string& proto,
                        std::uint64_t suppressed);
    AuditFields event_fields_;  // reused for every kernel event
    // READY=1 for systemd once every link is attached in the kernel; false
    // (with the reason logged) when enforcement cannot be verified.
    bool verify_and_notify_ready();
    void tick();
    void check_tamper(bool pins);
    std::uint64_t ticks_ = 0;
    void flush_suppressed();
    void add_principal(json& r, const jg_rl_key& k);  // uid and user, or src
    void reload();
    const std::vector<std::string>& xdp_names() const {
        return o_.xdp.empty() ? policy_->daemon.xdp_interfaces : o_.xdp;
    }
    // A uid's name for a record of a kernel decision: cached, the cache
    // dropped when /etc/passwd changes and once a minute (other NSS sources).
    std::string user_of(std::uint32_t uid);
    // A uid's name for a decision (who asks, approves, may see): looked up
    // now, never cached, since a uid can be given to another account.
    std::string name_now(std::uint32_t uid) { return dir_.user_name(uid).value_or(std::to_string(uid)); }
    // status as `c` may see it: other users' grants and denials only for sees_all.
    json scoped_status(const Caller& c);
    // /etc/passwd's identity and change times, when user_of's cache was filled.
    std::tuple<ino_t, std::int64_t, std::int64_t, off_t> passwd_stamp_{};
    void check_passwd();
    std::string audit_query(const Peer& p, std::int64_t id, const json& args);
    void publish(std::string_view line);  // a record written, to the followers it concerns
    bool sees_all(std::uint32_t uid, const std::string& user);
    void recheck_followers();  // at each tick: auditors may have left their @group
    void report_lost();
    void end_unprotected();
    // Reports connections cut that no ended grant accounts for; with `run`,
    // first ends every connection no grant covers (start, reload): how many.
    std::size_t stray_cuts(bool run);
    void record_tamper(json fields);  // a tamper_detected record (with "reason"), also logged

    struct Follower {
        std::int64_t id = 0;
        AuditFilter filter;
        bool all = false;  // root or an auditor: every record; else the caller's own
        std::uint32_t uid = 0;
        std::string user;
    };

    static constexpr std::size_t kMaxFollowers = 256;
    static constexpr std::size_t kMaxFollowersPerUid = 4;
    static constexpr int kQueriesPerSecond = 5;

    DaemonOptions o_;
    Server* server_ = nullptr;
    std::map<std::uint32_t, std::pair<std::chrono::steady_clock::time_point, int>> query_budget_;
    std::map<int, Follower> followers_;
    int ring_budget_ = 0;
    std::shared_ptr<const Policy> policy_;
    std::optional<Store> store_;
    std::unique_ptr<AuditLog> audit_;
    SystemDirectory dir_;
    SystemClock clock_;
    BpfGrantSink sink_;
    std::unique_ptr<Workflow> wf_;
    std::unique_ptr<Kernel> kernel_;
    std::string cgroup_;
    std::map<std::uint32_t, std::string> names_;
    // Accounts end_removed_accounts checks per tick (each a user database lookup).
    static constexpr int kAccountsPerTick = 64;
    // Kernel decision records since start, by (type, port, proto).
    std::map<std::tuple<std::string, std::uint16_t, std::string>, std::uint64_t> decisions_;
    std::uint64_t tampers_ = 0;  // tamper_detected records since start
    // The latest denials, one per principal, port and protocol (newest
    // first), shown by status with the command that asks for access.
    std::vector<json> recent_denials_;
    static constexpr std::size_t kRecentDenials = 8;
    void remember_denial(const json& record);
};

std::string Daemon::user_of(std::uint32_t uid) {
    auto it = names_.find(uid);
    if (it != names_.end()) return it->second;
    std::string n = dir_.user_name(uid).value_or(std::to_string(uid));
    if (names_.size() > 4096) names_.clear();
    names_[uid] = n;
    return n;
}

void Daemon::check_passwd() {
    struct stat st {};
    std::tuple<ino_t, std::int64_t, std::int64_t, off_t> now{};
    if (stat("/etc/passwd", &st) == 0)
        now = {st.st_ino, std::int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec,
               std::int64_t(st.st_ctim.tv_sec) * 1000000000 + st.st_ctim.tv_nsec, st.st_size};
    if (now != passwd_stamp_ || ticks_ % 60 == 0) names_.clear();
    passwd_stamp_ = now;
}

void Daemon::sync_local_addrs(Kernel& k) {
    std::set<Addr16> want;
    for (auto& a : current_addresses()) want.insert(a);
    std::vector<jg_addr> stale;
    k.local_addrs.for_each([&](const jg_addr& key, std::uint8_t) {
        Addr16 a;
        std::memcpy(a.data(), key.addr, 16);
        if (!want.count(a)) stale.push_back(key);
    });
    for (auto& s : stale) k.local_addrs.remove(s);
    for (auto& a : want)
        if (int e = k.local_addrs.update(make_local_addr(a), 1))
            log(fmt::format("cannot record local address {}: {}", format_addr(a), std::strerror(-e)));
    // Prefixes routed here without an interface address (AnyIP, anycast).
    auto id = [](const jg_local_net_key& key) {
        Addr16 a;
        std::memcpy(a.data(), key.addr, 16);
        return std::pair(key.prefixlen, a);
    };
    const auto routes = current_local_routes();
    if (!routes) {
        // A partial dump would drop AnyIP prefixes and let local users reach
        // them as if remote: keep the map as it is; the next change retries.
        if (!routes_retry_)
            log("cannot read the local routes (rtnetlink dump incomplete); keeping the last known ones and "
                "trying again each second");
        routes_retry_ = true;
        return;
    }
    routes_retry_ = false;
    std::map<std::pair<std::uint32_t, Addr16>, jg_local_net_key> nets;
    for (const auto& n : *routes) {
        const jg_local_net_key key = make_local_net_key(n);
        nets[id(key)] = key;
    }
    std::vector<jg_local_net_key> gone;
    k.local_nets.for_each([&](const jg_local_net_key& key, std::uint8_t) {
        if (!nets.count(id(key))) gone.push_back(key);
    });
    for (auto& g : gone) k.local_nets.remove(g);
    for (auto& [_, key] : nets)
        if (int e = k.local_nets.update(key, 1))
            log(fmt::format("cannot record a local route: {}", std::strerror(-e)));
}

// Who a grant-map key names, for the tamper record.
std::string principal_of(const jg_uid_key& k) { return fmt::format("uid {}", k.uid); }
std::string principal_of(const jg_addr_key& k) {
    Addr16 a;
    std::memcpy(a.data(), k.addr, 16);
    return format_addr(a);
}
std::string principal_of(const jg_net_key& k) {
    Addr16 a;
    std::memcpy(a.data(), k.addr, 16);
    return fmt::format("{} prefix {}", format_addr(a), k.prefixlen);
}

void Daemon::reconcile_grants(Kernel& k) {
    // The store is the truth: every active grant is in the maps, and nothing else is.
    // Read row by row (a cursor), keeping only id and key: the daemon's memory
    // must not grow with the rows of every grant.  Many grants take a while
    // to write: say how far it got, once a second.
    auto now_ms = [] {
        return std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::steady_clock::now().time_since_epoch())
            .count();
    };
    Progress progress("restoring grants", std::uint64_t(value_or_throw(store_->count_grants("active"))),
                      now_ms());
    std::vector<std::pair<std::int64_t, GrantKey>> active;
    std::uint64_t rows = 0;
    value_or_throw(store_->each_grant("active", 1 << 20, [&](const GrantRow& g) {
        if (auto r = sink_.put(g); !r) log(r.error());
        if (auto key = grant_key(g)) active.emplace_back(g.id, *key);
        if (auto line = progress.step(++rows, now_ms())) log(*line);
    }));
    if (rows != 0)
        log(fmt::format("restored {} active grant{} into the maps in {} ms", rows, rows == 1 ? "" : "s",
                        progress.elapsed_ms(now_ms())));
    std::sort(active.begin(), active.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    auto find = [&](std::int64_t id) -> const GrantKey* {
        auto it = std::lower_bound(active.begin(), active.end(), id,
                                   [](const auto& e, std::int64_t v) { return e.first < v; });
        return it == active.end() || it->first != id ? nullptr : &it->second;
    };
    // An entry is known when the store has its grant id active with this
    // very key (packed the one way keys are packed).
    auto prune = [&](const auto& map) {
        using K = typename std::decay_t<decltype(map)>::key_type;
        std::vector<std::pair<K, jg_grant_val>> unknown;
        map.for_each([&](const K& key, const jg_grant_val& v) {
            const GrantKey* known = find(std::int64_t(v.grant_id));
            const K* want = known ? std::get_if<K>(known) : nullptr;
            if (!want || !same_bytes(*want, key)) unknown.emplace_back(key, v);
        });
        for (auto& [key, v] : unknown) {
            map.remove(key);
            record_tamper({{"principal", principal_of(key)},
                           {"port", key.port},
                           {"proto", std::string(proto_name(Proto(key.proto)))},
                           {"grant_id", v.grant_id},
                           {"reason", "a grant map held an entry the state store does not know; removed"}});
        }
    };
    prune(k.grants_uid);
    prune(k.grants_addr);
    prune(k.grants_net);
}

Result<bool> Daemon::prepare_kernel(Kernel& k) {
    // Who may serve a port is in place before the port is protected.
    if (auto r = k.apply_service_users(service_rules(*policy_)); !r) return r;
    if (auto r = k.apply_ports(*policy_); !r) return r;
    auto cookie = current_netns_cookie();
    if (!cookie) return err(cookie.error());
    if (auto r = k.set_host_netns(*cookie); !r) return r;
    sync_local_addrs(k);
    sink_.k = &k;
    // Grants back in the maps before any ends: a cut pass run for one that
    // expired while no daemon ran must find every valid grant in place.
    if (const std::string why = wf_->rebase_boot(); !why.empty()) log(why);
    reconcile_grants(k);
    wf_->sweep();
    // Start-up read every grant once; hand what that took back to the system
    // (glibc keeps freed memory otherwise).
    malloc_trim(0);
    return true;
}

json Daemon::status() {
    json s;
    s["version"] = JITGATE_VERSION;
    s["abi_version"] = JG_ABI_VERSION;
    s["cgroup"] = cgroup_;
    s["pin_dir"] = pin_dir_of(o_.bpffs);
    s["programs"] = json::array();
    for (auto& l : kernel_->links())
        s["programs"].push_back({{"name", l.program}, {"link_id", l.link_id}, {"attached", l.attached}});
    s["xdp"] = json::array();
    for (auto& x : kernel_->xdp()) {
        json j = {{"interface", x.ifname}, {"attached", x.attached}};
        if (x.ifindex) j["ifindex"] = x.ifindex;
        if (!x.mode.empty()) j["mode"] = x.mode;
        if (x.link_id) j["link_id"] = x.link_id;
        if (!x.note.empty()) j["note"] = x.note;
        s["xdp"].push_back(std::move(j));
    }
    s["ports"] = json::array();
    for (auto& p : policy_->ports)
        s["ports"].push_back({{"name", p.name},
                              {"port", p.port},
                              {"proto", p.proto_text()},
                              {"mode", p.audit ? "audit" : "enforce"},
                              {"max_duration", format_duration(p.max_duration_s)},
                              {"approvers",
                               [&] {
                                   json a = json::array();
                                   for (auto& x : p.approvers) a.push_back(x.text());
                                   return a;
                               }()},
                              {"service_users",
                               [&] {
                                   json a = json::array();
                                   if (p.service_system) a.push_back("system");
                                   for (auto& x : p.service_users) a.push_back(x.text());
                                   return a;
                               }()},
                              {"approvals_required", p.approvals_required}});
    s["grants"] = json::array();
    for (auto& g : value_or_throw(store_->grants("active", 1 << 20)))
        s["grants"].push_back(wf_->grant_json(g));
    s["pending_requests"] = value_or_throw(store_->count_requests("pending"));
    s["audit"] = {{"log", audit_->path()},
                  {"seq", audit_->head().seq},
                  {"hash", audit_->head().hash},
                  {"followers", followers_.size()}};
    auto c = kernel_->counters();
    s["counters"] = {{"allow", c.v[JG_CNT_ALLOW]},
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
                     {"connections_ended", sink_.connections_cut}};
    s["recent_denials"] = recent_denials_;
    s["connections"] = {{"cut_at_grant_end", kernel_->can_cut()}};
    if (!kernel_->can_cut()) s["connections"]["note"] = kernel_->cut_note();
    return s;
}

void Daemon::remember_denial(const json& r) {
    if (r.value("type", "") != "deny") return;
    json d = {{"at", rfc3339_us(clock_.wall_us())},
              {"port", r.value("port", 0)},
              {"proto", r.value("proto", "")},
              {"to_ask", access_hint(r)}};
    for (const char* k : {"uid", "user", "src", "comm"})
        if (r.contains(k)) d[k] = r[k];
    auto same = [&](const json& o) {
        return o["port"] == d["port"] && o["proto"] == d["proto"] &&
               o.value("uid", json()) == d.value("uid", json()) &&
               o.value("src", json()) == d.value("src", json());
    };
    std::erase_if(recent_denials_, same);
    recent_denials_.insert(recent_denials_.begin(), std::move(d));
    if (recent_denials_.size() > kRecentDenials) recent_denials_.resize(kRecentDenials);
}

void Daemon::count_decision(const std::string& type, std::uint16_t port, const std::string& proto,
                            std::uint64_t suppressed) {
    decisions_[{type, port, proto}] += 1 + suppressed;
}

// `jitgate metrics` and GET /metrics: what status says, as Prometheus families.
json Daemon::metrics() {
    MetricsBuilder m;
    m.family("jitgate_info", "gauge", "jitgated's version and kernel ABI version (always 1)")
        .sample(1, {{"version", JITGATE_VERSION}, {"abi_version", std::to_string(JG_ABI_VERSION)}});
    m.family("jitgate_protected_ports", "gauge", "protected (port, protocol) pairs in the running policy");
    std::size_t pairs = 0;
    std::map<std::pair<std::uint16_t, std::string>, std::uint64_t> active;
    for (const auto& p : policy_->ports) {
        if (p.tcp) active[{p.port, "tcp"}] = 0, ++pairs;
        if (p.udp) active[{p.port, "udp"}] = 0, ++pairs;
    }
    m.sample(double(pairs));
    value_or_throw(store_->each_grant("active", 1 << 20, [&](const GrantRow& g) {
        ++active[{g.port, std::string(proto_name(g.proto))}];
    }));
    m.family("jitgate_grants_active", "gauge", "active grants by port and protocol");
    for (const auto& [k, n] : active)
        m.sample(double(n), {{"port", std::to_string(k.first)}, {"proto", k.second}});
    m.family("jitgate_requests_pending", "gauge", "requests waiting for approval")
        .sample(double(value_or_throw(store_->count_requests("pending"))));
    m.family("jitgate_decisions_total", "counter",
             "kernel decisions recorded since jitgated started, by verdict, port and protocol: allow per new "
             "connection or flow, deny and would_deny per refusal (rate-limited records count with their "
             "suppressed denials)");
    for (const auto& [k, n] : decisions_)
        m.sample(double(n), {{"verdict", std::get<0>(k)},
                             {"port", std::to_string(std::get<1>(k))},
                             {"proto", std::get<2>(k)}});
    const auto c = kernel_->counters();
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
    m.family("jitgate_tamper_detected_total", "counter", "tamper_detected records since jitgated started")
        .sample(double(tampers_));
    m.family("jitgate_connections_ended_total", "counter",
             "TCP connections ended because their grant ended or none covered them, since jitgated started")
        .sample(double(sink_.connections_cut));
    m.family("jitgate_program_attached", "gauge", "1 when the program's link is attached in the kernel");
    for (const auto& l : kernel_->links()) m.sample(l.attached ? 1 : 0, {{"program", l.program}});
    m.family("jitgate_xdp_attached", "gauge", "1 when XDP runs on the interface");
    for (const auto& x : kernel_->xdp())
        m.sample(x.attached ? 1 : 0, {{"interface", x.ifname}, {"mode", x.mode}});
    m.family("jitgate_audit_last_seq", "gauge", "seq of the last audit record written")
        .sample(double(audit_->head().seq));
    m.family("jitgate_audit_followers", "gauge", "open jitgate audit --follow streams")
        .sample(double(followers_.size()));
    return m.result();
}

bool Daemon::verify_and_notify_ready() {
    auto missing = [&] {
        std::string out;
        const auto ls = kernel_->links();
        for (const auto& l : ls)
            if (!l.attached) out += (out.empty() ? "" : ", ") + l.program;
        return ls.empty() ? std::string("no links") : out;
    };
    std::string bad = missing();
    if (!bad.empty()) {  // someone detached them as we started: attach again, then look again
        check_tamper(false);
        bad = missing();
    }
    if (!bad.empty()) {
        log(fmt::format("enforcement could not be verified: not attached in the kernel: {}; not ready", bad));
        return false;
    }
    const std::string status =
        fmt::format("enforcing {} protected ports on {}", policy_->ports.size(), cgroup_);
    if (auto r = sd_notify_send("READY=1\nSTATUS=" + status + "\n"); !r) log(r.error());
    return true;
}

std::string Daemon::handle(const Peer& p, const std::string& line) {
    if (audit_->failed()) return {};  // stopping: nothing more is done or answered
    WireError we;
    auto req = parse_request(line, &we);
    if (!req) return reply_error(we.id, code::kInvalid, we.message);
    Caller c{p.uid, p.pid, name_now(p.uid)};
    Reply r;
    try {
        if (req->op == "request")
            r = wf_->request(c, req->args);
        else if (req->op == "approve")
            r = wf_->approve(c, req->args);
        else if (req->op == "deny")
            r = wf_->deny(c, req->args);
        else if (req->op == "revoke")
            r = wf_->revoke(c, req->args);
        else if (req->op == "list")
            r = wf_->list(c, req->args);
        else if (req->op == "break_glass")
            r = wf_->break_glass(c, req->args);
        else if (req->op == "show")
            r = wf_->show(c, req->args);
        else if (req->op == "status")
            r = Reply::success(scoped_status(c));
        else if (req->op == "metrics")
            r = Reply::success(metrics());
        else if (req->op == "audit")
            return audit_->flush(), audit_query(p, req->id, req->args);
        else
            r = Reply::fail(code::kInvalid, "unknown operation");
    } catch (const std::exception& e) {
        store_->abandon();
        r = Reply::fail(code::kInternal,
                        fmt::format("jitgated could not complete {}: {}", req->op, e.what()));
    }
    // What went wrong on this side (a store error, an unanswered user
    // database) is also the operator's to know.
    if (!r.ok && r.code == code::kInternal)
        log(fmt::format("{} from uid {} failed: {}", req->op, p.uid, r.message));
    // Written and durable before anyone is told (store.h: commits are
    // fsynced here, not one by one, so that a grant reaches the map first).
    if (!audit_->flush()) return {};  // not recorded: nobody is told (run() stops)
    value_or_throw(store_->sync());
    return r.ok ? reply_ok(req->id, r.result) : reply_error(req->id, r.code, r.message);
}

bool Daemon::sees_all(std::uint32_t uid, const std::string& user) {
    return wf_->sees_all(Caller{uid, 0, user});
}

json Daemon::scoped_status(const Caller& c) {
    json s = status();
    if (wf_->sees_all(c)) return s;
    auto keep = [](json& rows, const auto& pred) {
        json kept = json::array();
        for (auto& r : rows)
            if (pred(r)) kept.push_back(std::move(r));
        rows = std::move(kept);
    };
    Workflow::ApproverCache approver_of;
    keep(s["grants"], [&](const json& g) { return wf_->concerns(c, g, &approver_of); });
    // The count too: pending requests of others say nothing to this caller.
    std::int64_t pending = 0;
    for (const auto& r : value_or_throw(store_->requests("pending", 1 << 20)))
        if (wf_->concerns(c, wf_->request_json(r), &approver_of)) ++pending;
    s["pending_requests"] = pending;
    // A denial names its user and process: the user's own only, as audit shows them.
    keep(s["recent_denials"], [&](const json& d) { return belongs_to(d, c.uid, c.user); });
    return s;
}

// `jitgate audit`: the recent records this caller may see that match the
// filters, oldest first, each as an event line; then the result line; and,
// when following, every new matching record as it is written.
std::string Daemon::audit_query(const Peer& p, std::int64_t id, const json& a) {
    auto parsed = audit_filter_from_args(a);
    if (!parsed) return reply_error(id, code::kInvalid, parsed.error());
    const AuditFilter f = *parsed;
    const bool follow = a.value("follow", false);
    std::int64_t limit = follow && !f.since_us ? 0 : 50;
    if (a.contains("limit")) {
        limit = a["limit"].get<std::int64_t>();
        if (limit < 0 || limit > 10000) return reply_error(id, code::kInvalid, "limit must be 0-10000");
    }
    const std::string user = name_now(p.uid);
    const bool all = sees_all(p.uid, user);
    if (follow) {
        std::size_t mine = 0;
        for (const auto& [conn, fl] : followers_) mine += fl.uid == p.uid ? 1 : 0;
        if (followers_.size() >= kMaxFollowers || (p.uid != 0 && mine >= kMaxFollowersPerUid))
            return reply_error(
                id, code::kRefused,
                fmt::format("too many audit streams open ({} for you, {} in all; at most {} per "
                            "user): close one and try again",
                            mine, followers_.size(), kMaxFollowersPerUid));
    }
    // Reading history costs the daemon a scan of the log: a user who sees
    // only their own records gets a few scans a second.
    if (!all && limit > 0) {
        auto& b = query_budget_[p.uid];
        const auto now = std::chrono::steady_clock::now();
        if (now - b.first >= std::chrono::seconds(1)) b = {now, 0};
        if (++b.second > kQueriesPerSecond)
            return reply_error(id, code::kRefused,
                               fmt::format("more than {} audit queries in a second; try again in a moment",
                                           kQueriesPerSecond));
        if (query_budget_.size() > 4096) query_budget_.clear();
    }
    auto keep = [&](const json& r) { return matches(f, r) && (all || belongs_to(r, p.uid, user)); };
    bool more = false;
    std::string out;
    // A caller who sees only their own records scans less, and only lines
    // that name them are parsed.
    std::vector<std::string> hints;
    if (!all) hints = {json_text(json(user)), fmt::format("\"uid\":{}", p.uid)};
    const auto history = audit_->recent(keep, std::size_t(limit), f.since_us, &more, hints,
                                        all ? AuditLog::kMaxScanBytes : AuditLog::kMaxScanBytes / 4);
    for (const auto& r : history) out += reply_event(id, r);
    json result = {{"count", history.size()}, {"following", follow}, {"scope", all ? "all" : "own"}};
    if (more)
        result["note"] = fmt::format(
            "older records are further back than this query reads ({} MiB); read "
            "the log file {}",
            (all ? AuditLog::kMaxScanBytes : AuditLog::kMaxScanBytes / 4) >> 20, audit_->path());
    out += reply_ok(id, result);
    if (follow && server_) {
        server_->follow(p.conn, id, [](std::int64_t i, std::uint64_t n) { return reply_dropped(i, n); });
        followers_[p.conn] = Follower{id, f, all, p.uid, user};
    }
    return out;
}

// An auditor removed from [daemon] auditors or from its @group keeps the
// stream open, but from now on it carries only the follower's own records.
void Daemon::recheck_followers() {
    for (auto& [conn, fl] : followers_) {
        if (!fl.all) continue;
        fl.all = sees_all(fl.uid, fl.user);
        if (!fl.all)
            log(fmt::format(
                "uid {} is no longer an auditor: its audit stream now carries only its own records", fl.uid));
    }
}

void Daemon::publish(std::string_view line) {
    if (!server_ || followers_.empty()) return;
    const json r = json::parse(line, nullptr, false);
    for (const auto& [conn, fl] : followers_)
        if (matches(fl.filter, r) && (fl.all || belongs_to(r, fl.uid, fl.user)))
            server_->push(conn, reply_event(fl.id, r));
}

void Daemon::on_kernel_event(const jg_event& e) {
    AuditFields& f = event_fields_;
    kernel_event_fields(e, is_remote_event(e) ? std::string() : user_of(e.uid), f);
    if (e.verdict == JG_VERDICT_DENY && !is_bind_event(e)) remember_denial(f.to_json());
    count_decision(is_bind_event(e) ? "bind_denied" : verdict_type(e.verdict), e.dport,
                   std::string(proto_name(Proto(e.proto))), e.suppressed);
    audit_->emit(f);
}

// Keys of the windows of a rate-limit table idle for a second at `now`
// (CLOCK_MONOTONIC_COARSE ns, the programs' clock).
template <typename K>
std::vector<K> idle_windows(const Map<K, jg_rl_val>& m, std::uint64_t now) {
    std::vector<K> idle;
    m.for_each([&](const K& k, const jg_rl_val& v) {
        if (v.window_end_ns + JG_RL_WINDOW_NS <= now) idle.push_back(k);
    });
    return idle;
}

void Daemon::add_principal(json& r, const jg_rl_key& k) {
    const RlPrincipal who = rl_principal(k);
    if (who.is_uid) {
        r["uid"] = who.uid;
        r["user"] = user_of(who.uid);
    } else {
        r["src"] = who.src;
    }
}

// Decisions counted by the kernel's rate limits after their last event, for
// principals that then went quiet: the next decision would have carried the
// count, so without this it would never be reported.  Every window idle for
// a second goes, with or without a count: the tables are not LRU (an evicted
// window would take its count with it), so they must not fill with old ones.
void Daemon::flush_suppressed() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    const std::uint64_t now = std::uint64_t(ts.tv_sec) * 1000000000ull + std::uint64_t(ts.tv_nsec);
    for (const auto& k : idle_windows(kernel_->deny_rl, now)) {
        jg_rl_val v{};
        if (kernel_->deny_rl.take(k, v) != 0 || v.suppressed == 0) continue;
        // This record is the last of those denials and stands for the rest,
        // like every deny record: each is 1 + suppressed denials.
        json r = decision_record(v.verdict == JG_VERDICT_WOULD_DENY ? JG_VERDICT_WOULD_DENY : JG_VERDICT_DENY,
                                 k.port, k.proto, v.hook);
        if (k.kind == JG_RL_BIND) mark_bind_record(r, v.verdict);
        r["reason"] = fmt::format(
            "the last {} denials for this principal and port were not recorded one by one (rate limit); "
            "this record closes them",
            v.suppressed);
        if (v.suppressed > 1) r["suppressed"] = v.suppressed - 1;
        add_principal(r, k);
        remember_denial(r);
        count_decision(r.value("type", ""), k.port, r.value("proto", ""),
                       r.value("suppressed", std::uint64_t(0)));
        audit_->emit(std::move(r));
    }
    for (const auto& k : idle_windows(kernel_->allow_rl, now)) {
        jg_rl_val v{};
        if (kernel_->allow_rl.take(k, v) != 0 || v.suppressed == 0) continue;
        // The new flows after the window's recorded one: this record stands
        // for them (count), so the counts of allow records sum to the
        // kernel's allow counter.
        json r = decision_record(JG_VERDICT_ALLOW, k.who.port, k.who.proto, v.hook);
        r["grant_id"] = k.grant_id;
        r["count"] = v.suppressed;
        r["reason"] = fmt::format(
            "the last {} new connections or flows of this principal under this grant were not recorded one "
            "by one (rate limit); this record closes them",
            v.suppressed);
        add_principal(r, k.who);
        count_decision("allow", k.who.port, r.value("proto", ""), v.suppressed - 1);
        audit_->emit(std::move(r));
    }
}

// Every kTamperEvery ticks: pins really ours (links are checked every turn
// of the main loop, at most 4 times a second: a detached hook is a hole).
constexpr int kTamperEvery = 2;
// Every kAliveEvery ticks (seconds): the wall clock recorded as last seen.
constexpr int kAliveEvery = 60;

void Daemon::check_tamper(bool pins) {
    bool xdp = false;
    for (const auto& r : kernel_->repair(pins)) {
        record_tamper({{"hook", r.object}, {"reason", r.what}, {"repaired", r.fixed}});
        xdp = xdp || r.object.rfind("xdp ", 0) == 0;
    }
    if (xdp) kernel_->sync_xdp(xdp_names());
}

void Daemon::tick() {
    if (++ticks_ % kTamperEvery == 0) check_tamper(true);
    // The wall clock seen alive, once a minute: after a crash or power loss
    // (no clean stop recorded) a clock that then reads earlier is still
    // caught by the start-up rebase as unknown.
    if (ticks_ % kAliveEvery == 0) wf_->record_stop();
    check_passwd();
    recheck_followers();
    if (routes_retry_) sync_local_addrs(*kernel_);
    wf_->sweep();
    if (const int n = wf_->end_removed_accounts(kAccountsPerTick))
        log(fmt::format("ended {} grants and pending requests of removed accounts", n));
    if (const int pruned = wf_->prune(); pruned > 0 && o_.verbose)
        log(fmt::format("deleted {} decided requests and ended grants past [daemon] retention", pruned));
    stray_cuts(false);
    flush_suppressed();
    report_lost();
    if (auto why = audit_->check_file(); !why.empty()) record_tamper({{"reason", "audit log: " + why}});
    audit_->sync();
    value_or_throw(store_->sync());
}

// Decisions not recorded one by one, counted per CPU by the programs: ring
// reserve failures and denials that found the rate-limit table full.  Any
// increase since the last report becomes one events_lost record.  The count
// reported so far is kept with the chain head, so losses while no daemon ran
// are reported at the next start.
void Daemon::report_lost() {
    const Counters c = kernel_->counters();
    const std::uint64_t total = c.v[JG_CNT_EVENTS_LOST] + c.v[JG_CNT_RL_FULL];
    std::uint64_t seen = audit_->lost_seen();
    if (total < seen) seen = 0;  // the maps were made anew (after --uninstall)
    if (total == seen) return;
    audit_->emit(
        {{"type", "events_lost"},
         {"count", total - seen},
         {"total", total},
         {"ring_full", c.v[JG_CNT_EVENTS_LOST]},
         {"rl_full", c.v[JG_CNT_RL_FULL]},
         {"reason", fmt::format("the kernel's event ring was full (ring_full), or a rate-limit table "
                                "was (rl_full: more than {} principal and port pairs denied, or "
                                "principal, grant and port triples allowed, within a second): these "
                                "decisions were enforced and counted but not recorded one by one",
                                JG_RL_ENTRIES)}});
    audit_->set_lost_seen(total);
}

void Daemon::end_unprotected() {
    if (const int ended = wf_->end_unprotected())
        log(fmt::format("ended {} grants and pending requests of ports the policy no longer protects",
                        ended));
}

std::size_t Daemon::stray_cuts(bool run) {
    auto strays = wf_->take_stray_cuts();
    if (run)
        for (auto& c : sink_.cut_connections()) strays.push_back(c);
    for (const auto& c : strays)
        log(c.local ? fmt::format("ended a TCP connection of uid {} to protected port {}: no grant covers it",
                                  c.uid, c.port)
                    : fmt::format("ended a TCP connection from {} to protected port {}: no grant covers it",
                                  format_addr(c.peer), c.port));
    return strays.size();
}

void Daemon::record_tamper(json fields) {
    ++tampers_;
    log(fields.value("reason", "tamper detected"));
    fields["type"] = "tamper_detected";
    audit_->emit(std::move(fields));
}

void Daemon::reload() {
    auto load = load_policy_file(o_.config);
    if (!load.ok()) {
        std::string why;
        for (auto& e : load.errors) why += (why.empty() ? "" : "; ") + e;
        log(fmt::format("reload refused, keeping the running policy: {}", why));
        audit_->emit({{"type", "policy_reload"}, {"ok", false}, {"reason", why}});
        return;
    }
    auto p = std::make_shared<const Policy>(std::move(load.policy));
    const BindRules rules = service_rules(*p);
    if (auto r = kernel_->apply_service_users(rules); !r) {
        log(fmt::format("reload refused, keeping the running policy: {}", r.error()));
        kernel_->apply_service_users(service_rules(*policy_));
        audit_->emit({{"type", "policy_reload"}, {"ok", false}, {"reason", r.error()}});
        return;
    }
    if (auto r = kernel_->apply_ports(*p); !r) {
        log(fmt::format("reload failed while writing the protected ports: {}", r.error()));
        kernel_->apply_service_users(service_rules(*policy_));
        kernel_->apply_ports(*policy_);
        audit_->emit({{"type", "policy_reload"}, {"ok", false}, {"reason", r.error()}});
        return;
    }
    policy_ = p;
    wf_->set_policy(p);
    // Who may read everything follows the new policy, for open streams too.
    for (auto& [conn, fl] : followers_) fl.all = sees_all(fl.uid, fl.user);

    kernel_->sync_xdp(xdp_names());
    warn_ephemeral(*p);
    for (const auto& w : unknown_principals(*p, host_knows)) log("warning: " + w);
    log(fmt::format("policy reloaded from {}: {} ports", o_.config, p->ports.size()));
    // A port that now cuts (newly protected, or no longer drain or audit)
    // ends the connections no grant covers, as an ended grant does.
    const std::size_t cut = stray_cuts(true);
    audit_->emit(
        {{"type", "policy_reload"}, {"ok", true}, {"ports", p->ports.size()}, {"connections_ended", cut}});
    end_unprotected();
    if (const int n = wf_->recheck_approvals())
        log(fmt::format("{} approvals of pending requests lapsed: their approvers no longer qualify", n));
    if (const int n = wf_->end_removed_accounts(1 << 20))
        log(fmt::format("ended {} grants and pending requests of removed accounts", n));
    // After the cut: reading /proc/net must not delay it.
    warn_impostors(*p, rules);
}

int ring_cb(void* ctx, void* data, size_t size) {
    auto* d = static_cast<Daemon*>(ctx);
    if (size >= sizeof(jg_event)) {
        jg_event e;
        std::memcpy(&e, data, sizeof(e));
        d->on_kernel_event(e);
    }
    return d->ring_taken() ? kRingBatchDone : 0;
}

int Daemon::run() {
    if (geteuid() != 0) {
        log("must run as root (it loads BPF programs and attaches them to a cgroup); run it with sudo or as "
            "the "
            "jitgated systemd service");
        return 1;
    }
    if (auto why = time_namespace_refusal()) return log(*why), 1;
    auto load = load_policy_file(o_.config);
    if (!load.ok()) {
        for (auto& e : load.errors) fmt::print(stderr, "{}\n", e);
        log(fmt::format("the policy {} is invalid: fix the lines above (check with: jitgate policy check {})",
                        o_.config, o_.config));
        return 1;
    }
    policy_ = std::make_shared<const Policy>(std::move(load.policy));
    apply_daemon_settings(o_, policy_->daemon);

    if (auto r = make_dir(o_.state_dir, 0700); !r) return log(r.error()), 1;
    const auto sock_dir = std::filesystem::absolute(o_.socket).parent_path().string();
    if (auto r = make_dir(sock_dir, 0755); !r) return log(r.error()), 1;
    // Whoever may write the socket's directory may put their own socket in
    // its place and collect approvals meant for this daemon.
    if (struct stat st{}; stat(sock_dir.c_str(), &st) == 0 && (st.st_uid != 0 || (st.st_mode & 022) != 0))
        return log(fmt::format("the control socket's directory {} must be owned by root and writable by root "
                               "only (it is owned by uid {}, mode {:o}): another user could put their own "
                               "socket in its place; use a directory such as /run/jitgate (--socket PATH)",
                               sock_dir, st.st_uid, st.st_mode & 07777)),
               1;
    // The same for the state and the audit log: another user could replace
    // the store, the chain head or the log, or name mounts for --uninstall.
    const auto audit_dir = std::filesystem::absolute(o_.audit_log).parent_path().string();
    if (auto r = make_dir(audit_dir, 0750); !r) return log(r.error()), 1;
    if (auto why = dir_not_root_only(o_.state_dir, "state directory", "/var/lib/jitgate (--state-dir DIR)"))
        return log(*why), 1;
    if (auto why =
            dir_not_root_only(audit_dir, "audit log's directory", "/var/log/jitgate (--audit-log FILE)"))
        return log(*why), 1;
    auto store = Store::open(o_.state_dir + "/state.db");
    if (!store) return log(store.error()), 1;
    store_.emplace(std::move(*store));
    auto audit = AuditLog::open({o_.audit_log, o_.state_dir + "/audit.head", !o_.quiet}, clock_);
    if (!audit) return log(audit.error()), 1;
    audit_ = std::move(*audit);
    audit_->on_record = [this](std::string_view line) { publish(line); };
    route_libbpf_log([](const std::string& m) { log(m); }, o_.verbose);

    auto cg = resolve_cgroup(o_.cgroup, o_.state_dir);
    if (!cg) return log(cg.error()), 1;
    cgroup_ = *cg;
    if (auto r = ensure_bpffs(o_.bpffs, o_.state_dir); !r) return log(r.error()), 1;

    // Everything that can be refused is checked; from here the daemon runs.
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGHUP);
    sigprocmask(SIG_BLOCK, &mask, nullptr);
    signal(SIGPIPE, SIG_IGN);

    wf_ = std::make_unique<Workflow>(*store_, dir_, sink_, *audit_, clock_, boot_id());
    wf_->set_policy(policy_);
    wf_->set_space_check([this, audit_dir] {
        return low_space({o_.state_dir, audit_dir}, policy_->daemon.limits.min_free_mb);
    });
    audit_->emit({{"type", "daemon_start"},
                  {"uid", 0},
                  {"pid", getpid()},
                  {"cgroup", cgroup_},
                  {"ports", policy_->ports.size()},
                  {"reason", fmt::format("policy {}", o_.config)}});
    if (const auto [first, last] = audit_->unwritten(); first)
        audit_->emit(
            {{"type", "events_lost"},
             {"count", last - first + 1},
             {"reason", fmt::format("jitgated was stopped after sealing audit {} and before writing {} (or, "
                                    "after such a stop, {} removed); the chain goes on from the record "
                                    "before {}",
                                    first == last ? fmt::format("record seq {}", first)
                                                  : fmt::format("records seq {}-{}", first, last),
                                    first == last ? "it" : "them", first == last ? "it was" : "they were",
                                    first == last ? "it" : "them")}});
    for (const auto& why : audit_->problems()) record_tamper({{"reason", "audit log: " + why}});
    auto k = Kernel::open({cgroup_, pin_dir_of(o_.bpffs), o_.ring_bytes},
                          [this](Kernel& kk) { return prepare_kernel(kk); });
    if (!k) {
        log(k.error());
        return 1;
    }
    kernel_ = std::move(*k);  // sink_.k was set by prepare_kernel; same object
    for (const auto& hook : kernel_->reattached())
        record_tamper({{"hook", hook},
                       {"reason", "the pinned link had been detached while its pin stayed; attached again"}});
    // An upgrade across an ABI change: our links are attached (and the grants
    // are in our maps, from the store), so the other version's links and maps
    // can go now without a moment unenforced.  XDP is the early drop only:
    // its old links go before sync_xdp attaches ours on the same interfaces.
    for (const auto& dir : other_abi_dirs(o_.bpffs)) {
        auto removed = Kernel::uninstall(dir);
        const std::string why =
            removed ? fmt::format(
                          "links and maps of another ABI version removed after ours were attached: {} "
                          "pinned objects under {}; grants carried over from the state store",
                          *removed, dir)
                    : fmt::format("links and maps of another ABI version under {} could not be removed: {}",
                                  dir, removed.error());
        log(why);
        audit_->emit(
            {{"type", "daemon_start"}, {"uid", 0}, {"pid", getpid()}, {"reason", "upgrade: " + why}});
    }
    end_unprotected();  // the policy may have changed while no daemon ran
    if (!kernel_->can_cut()) log(kernel_->cut_note());
    if (const auto n = stray_cuts(true))
        log(fmt::format("ended {} TCP connections to protected ports that no grant covers", n));
    kernel_->sync_xdp(xdp_names());
    warn_ephemeral(*policy_);
    for (const auto& w : unknown_principals(*policy_, host_knows)) log("warning: " + w);
    warn_impostors(*policy_, service_rules(*policy_));
    for (auto& x : kernel_->xdp())
        log(x.attached
                ? fmt::format("XDP on {} ({}{})", x.ifname, x.mode, x.note.empty() ? "" : "; " + x.note)
                : fmt::format("XDP not on {}: {}", x.ifname, x.note));

    // Room for every control-socket client plus our own descriptors.
    rlimit nofile{};
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < 4096) {
        nofile.rlim_cur = std::min<rlim_t>(4096, nofile.rlim_max);
        setrlimit(RLIMIT_NOFILE, &nofile);
    }
    int ep = epoll_create1(EPOLL_CLOEXEC);
    auto server = Server::listen(o_.socket, ep);
    if (!server) return log(server.error()), 1;
    server_ = &*server;
    server->on_close = [this](int conn) { followers_.erase(conn); };
    int sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    auto add = [ep](int fd) {
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.fd = fd;
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    };
    add(sfd);
    // Freed on every way out, also a start that fails after this point.
    auto opened = EventRing::open(kernel_->events_map_fd(), ring_cb, this);
    if (!opened) return log(opened.error()), 1;
    std::optional<EventRing> ring(std::move(*opened));  // freed before daemon_stop is written
    const EventRing& rb = *ring;
    const int rb_fd = rb.epoll_fd();
    add(rb_fd);
    auto watcher = AddrWatcher::open();
    if (!watcher) return log(watcher.error()), 1;
    add(watcher->fd());
    std::optional<MetricsHttp> http;
    if (!o_.metrics_address.empty()) {
        auto addr = parse_metrics_address(o_.metrics_address);
        if (!addr) return log(addr.error()), 1;
        auto h = MetricsHttp::listen(*addr, ep);
        if (!h) return log(h.error()), 1;
        http.emplace(std::move(*h));
        log(fmt::format("serving metrics at http://{}/metrics", o_.metrics_address));
    }
    auto drain_ring = [&] {
        do ring_budget_ = 0;
        while (rb.consume() == kRingBatchDone);
        report_lost();
        audit_->flush();
    };
    drain_ring();  // what the kernel said while no daemon listened
    if (audit_->failed()) return 1;

    log(fmt::format("enforcing {} protected ports on cgroup {}; control socket {}; audit log {}",
                    policy_->ports.size(), cgroup_, o_.socket, o_.audit_log));
    if (!verify_and_notify_ready()) return 1;
    auto last_tick = std::chrono::steady_clock::now();
    auto last_link_check = last_tick;
    auto last_drain = last_tick;
    bool running = true;
    while (running && !audit_->failed()) {
        // Wake when the next grant ends, so that its connections are cut
        // then, not at the next tick.
        // The kernel submits allow records without waking us (abi.h): drain
        // them every JG_RING_DRAIN_MS.
        int timeout_ms = JG_RING_DRAIN_MS;
        const auto next_end = wf_->next_expiry();
        if (next_end) {
            const std::uint64_t now_boot = clock_.boot_ns();
            timeout_ms =
                *next_end <= now_boot
                    ? 0
                    : int(std::min<std::uint64_t>(timeout_ms, (*next_end - now_boot + 999999) / 1000000));
        }
        epoll_event evs[64];
        int n = epoll_wait(ep, evs, 64, timeout_ms);
        for (int i = 0; i < n && !audit_->failed(); ++i) {
            const int fd = evs[i].data.fd;
            if (fd == rb_fd) {
                ring_budget_ = 0;
                rb.consume();  // at most kRingBatch; epoll reports the rest
            } else if (fd == sfd) {
                signalfd_siginfo si{};
                while (read(sfd, &si, sizeof(si)) == sizeof(si)) {
                    if (si.ssi_signo == SIGHUP)
                        reload();
                    else
                        running = false;
                }
            } else if (fd == watcher->fd()) {
                watcher->drain();
                sync_local_addrs(*kernel_);
                kernel_->sync_xdp(xdp_names());
            } else if (http && http->owns(fd)) {
                http->on_event(fd, evs[i].events, [this] { return render_prometheus(metrics()); });
            } else if (server->owns(fd)) {
                server->on_event(fd, evs[i].events,
                                 [this](const Peer& p, const std::string& l) { return handle(p, l); });
            }
            server->reap();  // followers whose connection failed while records went out
        }
        if (audit_->failed()) break;
        if (next_end && clock_.boot_ns() >= *next_end) {
            wf_->sweep();
            stray_cuts(false);
        }
        const auto now = std::chrono::steady_clock::now();
        if (now - last_drain >= std::chrono::milliseconds(JG_RING_DRAIN_MS)) {
            last_drain = now;
            ring_budget_ = 0;
            rb.consume();
        }
        if (now - last_link_check >= std::chrono::milliseconds(250)) {
            last_link_check = now;
            check_tamper(false);
        }
        if (now - last_tick >= std::chrono::seconds(1)) {
            last_tick = now;
            tick();
            server->reap();
            server->expire_idle();
            if (http) http->expire_idle();
        }
        // One batch for everything this turn sealed (the ring's events, the
        // sweep's records): written before the loop waits again.
        audit_->flush();
    }
    if (audit_->failed()) return 1;  // logged; no clean stop is recorded
    if (auto r = sd_notify_send("STOPPING=1\n"); !r) log(r.error());
    drain_ring();
    ring.reset();
    audit_->emit({{"type", "daemon_stop"},
                  {"uid", 0},
                  {"pid", getpid()},
                  {"reason", "signal; enforcement stays attached in the kernel"}});
    // A wall clock earlier than this at the next boot is known to be wrong.
    wf_->record_stop();
    value_or_throw(store_->sync());
    server_ = nullptr;
    followers_.clear();
    log("stopped; the programs stay attached and keep enforcing (jitgated --uninstall removes them)");
    close(sfd);
    close(ep);
    return 0;
}

}  // namespace

int run_daemon(const DaemonOptions& o) {
    Daemon d(o);
    try {
        return d.run();
    } catch (const std::exception& e) {
        log(fmt::format("fatal: {}", e.what()));
        return 1;
    }
}

int uninstall(const DaemonOptions& opts) {
    if (geteuid() != 0) {
        log("--uninstall must run as root");
        return 1;
    }
    // The same paths as the daemon: flags, then the policy's [daemon] keys
    // when the policy file can be read (a broken policy must not block removal).
    DaemonOptions o = opts;
    if (auto load = load_policy_file(o.config); load.ok()) apply_daemon_settings(o, load.policy.daemon);
    // Refuse while a daemon serves the socket: it would re-create what we remove.
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    if (o.socket.size() < sizeof(sa.sun_path)) {
        std::memcpy(sa.sun_path, o.socket.c_str(), o.socket.size() + 1);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        const bool live = fd >= 0 && connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0;
        if (fd >= 0) close(fd);
        if (live) {
            log(fmt::format("jitgated is running (socket {}): stop it first, then uninstall", o.socket));
            return 1;
        }
        unlink(o.socket.c_str());
    }
    auto removed = Kernel::uninstall(pin_dir_of(o.bpffs));
    if (!removed) return log(removed.error()), 1;
    for (const auto& dir : other_abi_dirs(o.bpffs)) {  // an older jitgate's, too
        auto more = Kernel::uninstall(dir);
        if (!more) return log(more.error()), 1;
        *removed += *more;
    }
    rmdir(o.bpffs.c_str());  // only if empty
    int unmounted = 0;
    // A state directory another user may write could name any mount point.
    std::vector<std::string> mounts;
    if (auto why = dir_not_root_only(o.state_dir, "state directory", "/var/lib/jitgate (--state-dir DIR)"))
        log(*why + "; unmounting nothing it records");
    else
        mounts = recorded_mounts(o.state_dir);
    for (auto& m : mounts) {
        if (umount2(m.c_str(), MNT_DETACH) == 0) {
            ++unmounted;
            if (m.rfind("/run/jitgate/", 0) == 0) rmdir(m.c_str());
        } else if (errno != EINVAL && errno != ENOENT) {
            log(fmt::format("unmount {}: {}", m, std::strerror(errno)));
        }
    }
    forget_mounts(o.state_dir);
    log(fmt::format("uninstalled: removed {} pinned objects under {} and {} mounts; kept {} and {}", *removed,
                    pin_dir_of(o.bpffs), unmounted, o.state_dir, o.audit_log));
    return 0;
}

}  // namespace jg
