// jitgated: the start-up sequence, the main loop and reload.  The parts
// it wires together own their jobs: daemon/startup.h (checks and
// warnings), daemon/kernel_records.h (records of kernel decisions),
// daemon/audit_feed.h (who reads which records, followers),
// daemon/status_report.h (status and metrics), daemon/control.h (the
// socket's operations), daemon/kernel_sync.h (the maps kept in step),
// daemon/event_loop.h (what the loop waits on), bpf/ (the kernel).
#include "daemon/daemon.h"

#include <fmt/format.h>
#include <malloc.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>

#include "bpf/event_ring.h"
#include "bpf/loader.h"
#include "core/clock.h"
#include "core/metrics.h"
#include "core/workflow.h"
#include "daemon/audit_feed.h"
#include "daemon/audit_log.h"
#include "daemon/control.h"
#include "daemon/event_loop.h"
#include "daemon/fleet_node.h"
#include "daemon/kernel_records.h"
#include "daemon/kernel_sync.h"
#include "daemon/notify.h"
#include "daemon/startup.h"
#include "daemon/status_report.h"
#include "daemon/system.h"
#include "daemon/token_gate.h"
#include "util/log.h"

namespace jg {

namespace {

class Daemon {
public:
    explicit Daemon(const DaemonOptions& o) : o_(o) {}
    int run();

private:
    // The start-up sequence.
    Result<bool> open_state();  // policy, directories, store, audit log
    void start_workflow();
    Result<bool> start_kernel();  // load, attach, restore the grants, end what no grant covers
    Result<bool> open_loop(Loop& l, const sigset_t& signals);
    int serve(Loop& l);  // until a signal ends it
    void stop(Loop& l);

    Result<bool> prepare_kernel(Kernel& k);
    std::string handle(const Peer& p, const std::string& line);
    StatusParts parts() {
        return {cgroup_,
                pin_dir_of(o_.bpffs),
                *policy_,
                *store_,
                *wf_,
                *audit_,
                *kernel_,
                *records_,
                *feed_,
                sync_->connections_cut(),
                tampers_,
                node_name_,
                fleet_ ? fleet_->status() : json(nullptr),
                notify_failures_json()};
    }
    // jitgate notify's targets that failed too long (design.md §9): each
    // one's last notify_failed record since this daemon started.
    std::map<std::string, json> notify_failures_;
    json notify_failures_json() const {
        json a = json::array();
        for (const auto& [target, r] : notify_failures_) a.push_back(r);
        return a;
    }
    // One descriptor epoll reported; false when a signal says stop.
    bool on_ready(Loop& l, const epoll_event& ev);
    void tick();
    void check_tamper(bool pins);
    std::uint64_t ticks_ = 0;
    bool checkpoint_failing_ = false;  // said once (checkpoint_store)
    void checkpoint_store();
    void drain_ring(const EventRing& rb);  // every record waiting, then what was lost
    void report_lost();
    void reload();
    // Makes p the running policy (the kernel's ports and who may bind them
    // first): false, with a policy_reload record saying why, when the kernel
    // refused it and the old one stays.
    bool adopt(std::shared_ptr<const Policy> p, const std::string& source);
    const std::vector<std::string>& xdp_names() const {
        return o_.xdp.empty() ? policy_->daemon.xdp_interfaces : o_.xdp;
    }
    // A uid's name for a decision (who asks, approves, may see): looked up
    // now, never cached, since a uid can be given to another account.
    std::string name_now(std::uint32_t uid) { return dir_.user_name(uid).value_or(std::to_string(uid)); }
    void end_unprotected();
    // Reports connections cut that no ended grant accounts for; with `run`,
    // first ends every connection no grant covers (start, reload): how many.
    std::size_t stray_cuts(bool run);
    void record_tamper(json fields);  // a tamper_detected record (with "reason"), also logged

    DaemonOptions o_;
    std::string audit_dir_;
    std::shared_ptr<const Policy> policy_;
    std::optional<Store> store_;
    SystemDirectory dir_;
    SystemClock clock_;
    // Before the log: the log hands its last records to the feed as it closes.
    std::optional<AuditFeed> feed_;
    std::unique_ptr<AuditLog> audit_;
    std::optional<KernelRecords> records_;
    std::optional<KernelSync> sync_;
    std::unique_ptr<Workflow> wf_;
    std::unique_ptr<Kernel> kernel_;
    std::string cgroup_;
    // Accounts end_removed_accounts checks per tick (each a user database lookup).
    static constexpr int kAccountsPerTick = 64;
    std::uint64_t tampers_ = 0;  // tamper_detected records since start
    // A node of a fleet (design.md §7), or nothing on a single host.
    std::unique_ptr<FleetNode> fleet_;
    std::string node_name_;
    // ID tokens: their verifier and the budget of records of refused ones.
    TokenGate tokens_{clock_};
};

Result<bool> Daemon::prepare_kernel(Kernel& k) {
    // Who may serve a port is in place before the port is protected.
    if (auto r = k.apply_service_users(service_rules(*policy_)); !r) return r;
    if (auto r = k.apply_ports(*policy_); !r) return r;
    auto cookie = current_netns_cookie();
    if (!cookie) return err(cookie.error());
    if (auto r = k.set_host_netns(*cookie); !r) return r;
    sync_->attach(k);
    sync_->sync_local_addrs();
    // Grants back in the maps before any ends: a cut pass run for one that
    // expired while no daemon ran must find every valid grant in place.
    if (const std::string why = wf_->rebase_boot(); !why.empty()) log(why);
    if (auto r = sync_->reconcile_grants(*store_); !r) return r;
    wf_->sweep();
    // Start-up read every grant once; hand what that took back to the system
    // (glibc keeps freed memory otherwise).
    malloc_trim(0);
    return true;
}

std::string Daemon::handle(const Peer& p, const std::string& line) {
    if (audit_->failed()) return {};  // stopping: nothing more is done or answered
    const ControlTarget t{
        *wf_,
        *store_,
        *audit_,
        [this](std::uint32_t uid) { return name_now(uid); },
        [this](const Caller& c) { return scoped_status(parts(), c); },
        [this] { return metrics(parts()); },
        [this](const Peer& peer, const Caller& c, std::int64_t id, const AuditArgs& a) {
            return feed_->query(peer, c, id, a);
        },
        fleet_ ? std::function<std::optional<Reply>(Op, const Caller&, const OpArgs&)>(
                     [this](Op op, const Caller& c, const OpArgs& a) { return fleet_->handle(op, c, a); })
               : nullptr,
        node_name_,
        tokens_.enabled() ? std::function<Result<TokenUser>(const std::string&)>(
                                [this](const std::string& token) { return tokens_.verify(token); })
                          : nullptr,
        [this](const std::string& user) { return dir_.uid_of(user); },
        [this](const json& r) {
            json last = r;
            last["ts_us"] = wall_us();
            if (notify_failures_.size() < 256 || notify_failures_.count(r.value("target", "")))
                notify_failures_[r.value("target", "")] = std::move(last);
        },
        [this](std::uint32_t uid) { return tokens_.record_refusal(uid, *audit_); }};
    return control_handle(t, p, line);
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
    records_->check_passwd(ticks_);
    feed_->recheck_followers();
    if (sync_->routes_retry()) sync_->sync_local_addrs();
    wf_->sweep();
    wf_->warn_expiring();
    if (const int n = wf_->end_removed_accounts(kAccountsPerTick))
        log(fmt::format("ended {} grants and pending requests of removed accounts", n));
    if (const int pruned = wf_->prune(); pruned > 0 && o_.verbose)
        log(fmt::format("deleted {} decided requests and ended grants past [daemon] retention", pruned));
    stray_cuts(false);
    sync_->close_idle_windows();
    sync_->refresh_bloom();
    if (fleet_) fleet_->tick();
    report_lost();
    tokens_.close_refusals(*audit_);
    if (auto why = audit_->check_file(); !why.empty()) record_tamper({{"reason", "audit log: " + why}});
    audit_->sync();
    // What is written and synced is what the fleet witnesses (design.md §7.3).
    if (fleet_) fleet_->witness(audit_->head());
    value_or_throw(store_->sync());
    checkpoint_store();
}

// Here rather than in a commit (store_wal.cpp).  A log that cannot be
// checkpointed only grows: said once, and again when it recovers.
void Daemon::checkpoint_store() {
    auto done = store_->checkpoint();
    if (!done && !checkpoint_failing_) log(done.error());
    if (done && checkpoint_failing_) log("the state database's write-ahead log is checkpointed again");
    checkpoint_failing_ = !done;
}

// Decisions not recorded one by one, counted per CPU by the programs: ring
// reserve failures and denials that found the rate-limit table full.
void Daemon::report_lost() {
    const Counters c = kernel_->counters();
    records_->report_lost(c.v[JG_CNT_EVENTS_LOST], c.v[JG_CNT_RL_FULL]);
}

void Daemon::end_unprotected() {
    if (const int ended = wf_->end_unprotected())
        log(fmt::format("ended {} grants and pending requests of ports the policy no longer protects",
                        ended));
}

std::size_t Daemon::stray_cuts(bool run) {
    auto strays = wf_->take_stray_cuts();
    if (run)
        for (auto& c : sync_->sink().cut_connections()) strays.push_back(c);
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
    if (fleet_) {
        if (!p->ports.empty()) {
            const std::string why =
                "in a fleet the protected ports come from the fleet policy (jitgate policy push); "
                "remove the [[port]] tables from " +
                o_.config;
            log(fmt::format("reload refused, keeping the running policy: {}", why));
            audit_->emit({{"type", "policy_reload"}, {"ok", false}, {"reason", why}});
            return;
        }
        p = fleet_->with_local(p);
    }
    adopt(p, o_.config);
}

bool Daemon::adopt(std::shared_ptr<const Policy> p, const std::string& source) {
    const BindRules rules = service_rules(*p);
    if (auto r = kernel_->apply_service_users(rules); !r) {
        log(fmt::format("reload refused, keeping the running policy: {}", r.error()));
        kernel_->apply_service_users(service_rules(*policy_));
        audit_->emit({{"type", "policy_reload"}, {"ok", false}, {"reason", r.error()}});
        return false;
    }
    if (auto r = kernel_->apply_ports(*p); !r) {
        log(fmt::format("reload failed while writing the protected ports: {}", r.error()));
        kernel_->apply_service_users(service_rules(*policy_));
        kernel_->apply_ports(*policy_);
        audit_->emit({{"type", "policy_reload"}, {"ok", false}, {"reason", r.error()}});
        return false;
    }
    policy_ = p;
    wf_->set_policy(p);
    tokens_.use(p->oidc);
    // Who may read everything follows the new policy, for open streams too.
    feed_->policy_changed();

    kernel_->sync_xdp(xdp_names());
    warn_ephemeral(*p);
    warn_unknown_principals(*p);
    if (auto note = max_grants_note(kernel_->grant_capacity(), p->daemon.max_grants); !note.empty())
        log(note);
    log(fmt::format("policy reloaded from {}: {} ports", source, p->ports.size()));
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
    return true;
}

Result<bool> Daemon::open_state() {
    auto policy = load_start_policy(o_.config);
    if (!policy) return err(policy.error());
    policy_ = *policy;
    apply_daemon_settings(o_, policy_->daemon);
    auto fleet = effective_fleet(policy_->fleet, o_.etcd, o_.node, o_.labels);
    if (!fleet) return err(fleet.error());
    node_name_ = fleet->node;
    auto dirs = prepare_dirs(o_);
    if (!dirs) return err(dirs.error());
    audit_dir_ = *dirs;
    if (fleet->enabled()) {
        auto node = FleetNode::prepare(*fleet, policy_, o_.state_dir);
        if (!node) return err(node.error());
        fleet_ = std::move(*node);
        policy_ = fleet_->node_policy();
    }
    auto store = Store::open(o_.state_dir + "/state.db");
    if (!store) return err(store.error());
    store_.emplace(std::move(*store));
    auto audit = AuditLog::open({o_.audit_log, o_.state_dir + "/audit.head", !o_.quiet, node_name_}, clock_);
    if (!audit) return err(audit.error());
    audit_ = std::move(*audit);
    if (fleet_) fleet_->set_opened_head(audit_->head(), clock_.wall_us());
    feed_.emplace(*audit_, clock_, [this](const Caller& c) { return wf_->sees_all(c); });
    records_.emplace(*audit_, dir_, clock_);
    sync_.emplace(*records_, [this](json fields) { record_tamper(std::move(fields)); });
    // Followers get each record written as it is, not its line parsed back.
    audit_->wants_records = [this] { return feed_->listening(); };
    audit_->on_record = [this](const json& r) { feed_->on_record(r); };
    route_libbpf_log(o_.verbose);

    auto cg = resolve_cgroup(o_.cgroup, o_.state_dir);
    if (!cg) return err(cg.error());
    cgroup_ = *cg;
    return ensure_bpffs(o_.bpffs, o_.state_dir);
}

void Daemon::start_workflow() {
    wf_ = std::make_unique<Workflow>(*store_, dir_, sync_->sink(), *audit_, clock_, boot_id());
    wf_->set_policy(policy_);
    wf_->set_space_check([this] {
        return low_space({o_.state_dir, audit_dir_}, policy_->daemon.limits.min_free_mb);
    });
    tokens_.use(policy_->oidc);
    record_start(*audit_, cgroup_, policy_->ports.size(), o_.config);
    for (const auto& why : audit_->problems()) record_tamper({{"reason", "audit log: " + why}});
}

Result<bool> Daemon::start_kernel() {
    auto k = Kernel::open({cgroup_, pin_dir_of(o_.bpffs), o_.ring_bytes, policy_->daemon.max_grants},
                          [this](Kernel& kk) { return prepare_kernel(kk); });
    if (!k) return err(k.error());
    kernel_ = std::move(*k);  // the one prepare_kernel attached
    for (const auto& hook : kernel_->reattached())
        record_tamper({{"hook", hook},
                       {"reason", "the pinned link had been detached while its pin stayed; attached again"}});
    remove_other_abis(o_.bpffs, *audit_);
    end_unprotected();  // the policy may have changed while no daemon ran
    if (!kernel_->can_cut()) log(kernel_->cut_note());
    if (auto note = max_grants_note(kernel_->grant_capacity(), policy_->daemon.max_grants); !note.empty())
        log(note);
    if (const auto n = stray_cuts(true))
        log(fmt::format("ended {} TCP connections to protected ports that no grant covers", n));
    kernel_->sync_xdp(xdp_names());
    warn_ephemeral(*policy_);
    warn_unknown_principals(*policy_);
    warn_impostors(*policy_, service_rules(*policy_));
    log_xdp(kernel_->xdp());
    return true;
}

Result<bool> Daemon::open_loop(Loop& l, const sigset_t& signals) {
    // A failed audit log stops the ring's taking: the rest stays in the ring for the next start.
    auto opened =
        Loop::open(l, {o_.socket, o_.metrics_address}, signals, *kernel_, [this](const jg_event& e) {
            records_->on_event(e);
            return !audit_->failed();
        });
    if (!opened) return opened;
    feed_->set_output(&*l.out);
    l.server->on_close = [this](int conn) { feed_->closed(conn); };
    if (fleet_) {
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.fd = fleet_->fd();
        if (epoll_ctl(l.ep.get(), EPOLL_CTL_ADD, fleet_->fd(), &ev) != 0)
            return err(fmt::format("epoll: {}", std::strerror(errno)));
    }
    return true;
}

void Daemon::drain_ring(const EventRing& rb) {
    rb.drain();
    report_lost();
    audit_->flush();
}

bool Daemon::on_ready(Loop& l, const epoll_event& ev) {
    const int fd = ev.data.fd;
    bool running = true;
    if (fd == l.ring->epoll_fd()) {
        l.ring->poll();  // at most kRingBatch; epoll reports the rest
    } else if (fd == l.sfd.get()) {
        signalfd_siginfo si{};
        while (read(l.sfd.get(), &si, sizeof(si)) == sizeof(si)) {
            if (si.ssi_signo == SIGHUP)
                reload();
            else
                running = false;
        }
    } else if (fd == l.watcher->fd()) {
        l.watcher->drain();
        sync_->sync_local_addrs();
        kernel_->sync_xdp(xdp_names());
    } else if (l.http && l.http->owns(fd)) {
        l.http->on_event(fd, ev.events, [this]() -> Result<std::string> {
            auto m = metrics(parts());
            if (!m) return err(fmt::format("jitgated could not read its state store: {}", m.error()));
            return render_prometheus(*m);
        });
    } else if (fleet_ && fd == fleet_->fd()) {
        fleet_->on_ready();
    } else if (l.server->owns(fd)) {
        l.server->on_event(fd, ev.events,
                           [this](const Peer& p, const std::string& line) { return handle(p, line); });
    }
    l.server->reap();  // followers whose connection failed while records went out
    return running;
}

int Daemon::serve(Loop& l) {
    drain_ring(*l.ring);  // what the kernel said while no daemon listened
    if (audit_->failed()) return 1;
    log(fmt::format("enforcing {} protected ports on cgroup {}; control socket {}; audit log {}",
                    policy_->ports.size(), cgroup_, o_.socket, o_.audit_log));
    if (!verify_and_notify_ready(*kernel_, policy_->ports.size(), cgroup_, [this] { check_tamper(false); }))
        return 1;
    using std::chrono::steady_clock;
    auto last_tick = steady_clock::now(), last_link_check = last_tick, last_drain = last_tick;
    // Busy at first: a record of the start whose wake-up the kernel held
    // back (a gap begun before this daemon ran) is read within a millisecond.
    auto last_record = last_tick;
    const auto ring_busy = [&](steady_clock::time_point at) {
        return at - last_record < std::chrono::milliseconds(kRingBusyMs);
    };
    for (bool running = true; running && !audit_->failed();) {
        const auto next_end = wf_->next_expiry();
        epoll_event evs[64];
        const int n = epoll_wait(l.ep.get(), evs, 64,
                                 loop_wait_ms(next_end, clock_.boot_ns(), ring_busy(steady_clock::now())));
        for (int i = 0; i < n && !audit_->failed(); ++i) {
            running = on_ready(l, evs[i]) && running;
            if (evs[i].data.fd == l.ring->epoll_fd() && l.ring->last_taken() > 0)
                last_record = steady_clock::now();
        }
        if (audit_->failed()) break;
        if (next_end && clock_.boot_ns() >= *next_end) {
            wf_->sweep();
            stray_cuts(false);
        }
        const auto now = steady_clock::now();
        // Busy as of now: records this turn took count, whatever woke it.
        if (now - last_drain >=
            std::chrono::milliseconds(ring_busy(now) ? kRingBusyWaitMs : JG_RING_DRAIN_MS)) {
            last_drain = now;
            l.ring->poll();
            if (l.ring->last_taken() > 0) last_record = now;
        }
        if (now - last_link_check >= std::chrono::milliseconds(250)) {
            last_link_check = now;
            check_tamper(false);
        }
        if (now - last_tick >= std::chrono::seconds(1)) {
            last_tick = now;
            tick();
            l.server->reap();
            l.server->expire_idle();
            if (l.http) l.http->expire_idle();
        }
        // One batch for everything this turn sealed (the ring's events, the
        // sweep's records): written before the loop waits again.
        audit_->flush();
    }
    if (audit_->failed()) return 1;  // logged; no clean stop is recorded
    stop(l);
    return 0;
}

void Daemon::stop(Loop& l) {
    if (auto r = sd_notify_send("STOPPING=1\n"); !r) log(r.error());
    drain_ring(*l.ring);
    l.ring.reset();
    audit_->emit({{"type", "daemon_stop"},
                  {"uid", 0},
                  {"pid", getpid()},
                  {"reason", "signal; enforcement stays attached in the kernel"}});
    audit_->sync();
    if (fleet_) fleet_->witness_stop(audit_->head());
    // A wall clock earlier than this at the next boot is known to be wrong.
    wf_->record_stop();
    value_or_throw(store_->sync());
    log("stopped; the programs stay attached and keep enforcing (jitgated --uninstall removes them)");
}

int Daemon::run() {
    if (auto why = start_refusal()) return log(*why), 1;
    if (auto r = open_state(); !r) return log(r.error()), 1;
    // Everything that can be refused is checked; from here the daemon runs.
    const sigset_t signals = block_signals();
    start_workflow();
    // The fleet's first full read runs while the kernel is loaded and the
    // mirror's grants restored; its batches are applied from the loop.
    if (fleet_)
        if (auto r = fleet_->start(
                {*wf_, *store_, *audit_, clock_, dir_, boot_id()},
                [this](std::shared_ptr<const Policy> p) { return adopt(p, "the fleet policy"); });
            !r)
            return log(r.error()), 1;
    if (auto r = start_kernel(); !r) return log(r.error()), 1;
    Loop l;
    // The server goes with the loop, also when serve() throws (a broken
    // store is fatal): the log's last records must not reach it after.
    struct Unhook {
        AuditFeed& feed;
        ~Unhook() { feed.set_output(nullptr); }
    } unhook{*feed_};
    if (auto r = open_loop(l, signals); !r) return log(r.error()), 1;
    return serve(l);
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

}  // namespace jg
