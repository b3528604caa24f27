#include "daemon/fleet_node.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/protocol.h"
#include "core/text.h"
#include "daemon/startup.h"
#include "fleet/node_key.h"
#include "util/log.h"

namespace jg {

namespace {

// Where a node keeps the fleet policy version it runs (design.md §7: it
// restarts without etcd and enforces the same ports).
// Ticks (seconds) between sweeps of this node's ended requests and grants in etcd.
constexpr std::uint64_t kSweepEvery = 5;
// head_rejected records (forged entries in this node's history of heads), at most one per this long.
constexpr std::int64_t kForgedRecordEveryUs = 60 * 1000000LL;

std::string saved_policy_path(const std::string& state_dir) { return state_dir + "/fleet-policy.json"; }

Result<std::string> read_small_file(const std::string& path, const char* what) {
    std::ifstream in(path);
    if (!in) return err(fmt::format("cannot read the {} {}: {}", what, path, std::strerror(errno)));
    std::stringstream ss;
    ss << in.rdbuf();
    std::string s = ss.str();
    if (s.size() > (1u << 20)) return err(fmt::format("the {} {} is larger than 1 MiB", what, path));
    return s;
}

// Written whole or not at all: a torn copy would leave a node without ports.
Result<bool> write_file_atomically(const std::string& path, const std::string& text) {
    const std::string tmp = path + ".tmp";
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) return err(fmt::format("cannot write {}: {}", tmp, std::strerror(errno)));
    const bool ok =
        ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && fsync(fd) == 0;
    ::close(fd);
    if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0)
        return err(fmt::format("cannot write {}: {}", path, std::strerror(errno)));
    return true;
}

}  // namespace

std::string node_key_path(const std::string& state_dir) { return state_dir + "/node.key"; }
std::string next_key_path(const std::string& state_dir) { return state_dir + "/node.key.next"; }

int print_node_key(DaemonOptions o, bool rotate) {
    // The node's name and state dir as the daemon would have them: flags,
    // then the policy file (when there is one), then the defaults.
    FleetSettings file;
    if (access(o.config.c_str(), F_OK) == 0) {
        auto load = load_policy_file(o.config);
        if (!load.ok()) {
            for (auto& e : load.errors) fmt::print(stderr, "{}\n", e);
            fmt::print(stderr,
                       "jitgated: the policy {} is invalid: fix the lines above or give --node and "
                       "--state-dir\n",
                       o.config);
            return 1;
        }
        apply_daemon_settings(o, load.policy.daemon);
        file = load.policy.fleet;
    }
    file.etcd = {"http://unused"};  // the name is checked as a fleet node's
    auto f = effective_fleet(file, {}, o.node, {});
    if (!f) {
        fmt::print(stderr, "jitgated: {}\n", f.error());
        return 1;
    }
    if (mkdir(o.state_dir.c_str(), 0700) != 0 && errno != EEXIST) {
        fmt::print(stderr, "jitgated: cannot make the state directory {}: {}\n", o.state_dir,
                   std::strerror(errno));
        return 1;
    }
    auto key = fleet::load_or_create_key(rotate ? next_key_path(o.state_dir) : node_key_path(o.state_dir));
    if (!key) {
        fmt::print(stderr, "jitgated: {}\n", key.error());
        return 1;
    }
    fmt::print("{}\n", fleet::signer_text(f->node, *key));
    if (rotate)
        fmt::print(
            stderr,
            "jitgated: add this entry to [fleet] signers on every node (keep the old one), then reload "
            "them (SIGHUP): this node signs with the new key once its own file lists it\n");
    return 0;
}

Result<FleetSettings> effective_fleet(const FleetSettings& file, const std::vector<std::string>& etcd,
                                      const std::string& node, const std::vector<std::string>& labels) {
    FleetSettings f = file;
    if (!etcd.empty()) f.etcd = etcd;
    if (!node.empty()) f.node = node;
    if (!labels.empty()) {
        f.labels.clear();
        for (const auto& l : labels) {
            auto sel = parse_selector(l);
            if (!sel || sel->labels.size() != 1) return err(fmt::format("--label {} is not KEY=VALUE", l));
            f.labels.insert(*sel->labels.begin());
        }
    }
    if (f.node.empty()) {
        char host[256] = {};
        if (gethostname(host, sizeof(host) - 1) != 0)
            return err("cannot read the host name: give --node NAME");
        f.node = host;
        if (auto dot = f.node.find('.'); dot != std::string::npos) f.node.resize(dot);
        // A single host only names itself in its records: its host name as it is.
        if (f.enabled() && !valid_fleet_name(f.node))
            return err(fmt::format("the host name '{}' is not a node name: give --node NAME ([fleet] node)",
                                   escape_terminal(f.node)));
    }
    return f;
}

Result<std::unique_ptr<FleetNode>> FleetNode::prepare(const FleetSettings& f,
                                                      std::shared_ptr<const Policy> local,
                                                      const std::string& state_dir) {
    if (!local->ports.empty())
        return err(
            "in a fleet the protected ports come from the fleet policy: move the [[port]] tables of the "
            "policy "
            "file to a file of their own and store it with `jitgate policy push FILE`");
    std::unique_ptr<FleetNode> n(new FleetNode(f, std::move(local), state_dir));
    auto key = fleet::load_or_create_key(node_key_path(state_dir));
    if (!key) return err(key.error());
    n->trust_ = std::make_unique<fleet::Trust>(f.node, std::move(*key), std::vector<fleet::Signer>{});
    n->refresh_trust(f.signers);
    // The same key signs the audit heads (design.md §7.3).
    n->witness_ = std::make_unique<fleet::Witness>(f.prefix, f.node, n->trust_->key());
    Policy none;
    n->combine(none);
    // The version this node ran last, if it ran one.
    const std::string path = saved_policy_path(state_dir);
    if (access(path.c_str(), F_OK) == 0) {
        auto text = read_small_file(path, "saved fleet policy");
        if (!text) return err(text.error());
        auto doc = fleet::parse_policy_doc(*text);
        if (!doc)
            return err(
                fmt::format("the saved fleet policy {} is not valid ({}); remove it and the node "
                            "reads the fleet's from etcd",
                            path, doc.error()));
        PolicyLoad load = parse_fleet_policy(doc->text, path);
        if (!load.ok())
            return err(fmt::format("the saved fleet policy {} is not valid: {}", path, load.errors[0]));
        n->combine(load.policy);
        n->saved_version_ = doc->version;
        if (json j = parse_json_bounded(*text); j.is_object() && j.contains("sig"))
            n->saved_signed_ = std::move(j);
    }
    return n;
}

void FleetNode::combine(const Policy& ports) {
    ports_ = ports;
    auto node = std::make_shared<Policy>(*local_);
    auto all = std::make_shared<Policy>(*local_);
    node->ports.clear();
    all->ports = ports.ports;
    for (const auto& p : ports.ports)
        if (labels_match(p.hosts, f_.labels)) node->ports.push_back(p);
    node_ = node;
    all_ = all;
}

void FleetNode::refresh_trust(const std::vector<std::string>& signers) {
    auto parsed = fleet::parse_signers(signers);  // checked when the file was read: cannot fail
    trust_->set_signers(parsed ? std::move(*parsed) : std::vector<fleet::Signer>{});
    const std::string next = next_key_path(state_dir_);
    if (access(next.c_str(), F_OK) == 0) {
        auto k = fleet::load_key(next);
        if (!k) {
            log(fmt::format("fleet: the next key is not used: {}", k.error()));
        } else if (trust_->listed(f_.node, k->public_key())) {
            // Listed: sign with it from now on; the old file goes (its key
            // verifies for as long as the operators keep it in signers).
            if (std::rename(next.c_str(), node_key_path(state_dir_).c_str()) != 0)
                log(fmt::format("fleet: cannot make {} the node key: {}; still signing with the old one",
                                next, std::strerror(errno)));
            else {
                trust_->set_key(std::move(*k));
                if (witness_) witness_->set_key(trust_->key());
                log(
                    fmt::format("fleet: signing with the new key {}: the old key is retired, remove it from "
                                "[fleet] signers on every node once they all list the new one",
                                fleet::signer_text(f_.node, trust_->key())));
            }
        }
    }
    if (!trust_->own_key_listed())
        log(
            fmt::format("fleet: warning: this node's key is not in [fleet] signers, so every node (this one "
                        "too) refuses the documents it writes; add \"{}\" to [fleet] signers on every node",
                        fleet::signer_text(f_.node, trust_->key())));
}

std::shared_ptr<const Policy> FleetNode::with_local(std::shared_ptr<const Policy> local) {
    const bool signers_changed = local->fleet.signers != local_->fleet.signers;
    local_ = std::move(local);
    refresh_trust(local_->fleet.signers);
    if (signers_changed && agent_) {
        // What is held was verified against the old list: verified again,
        // in full, before anything new is applied (fleet/agent_trust.cpp).
        log("fleet: [fleet] signers changed: every document in etcd is verified again");
        agent_->signers_changed();
        watcher_->resync();
    }
    if (watcher_) watcher_->set_head_keys(own_head_keys());
    combine(ports_);
    if (ledger_) ledger_->set_policy(all_);
    return node_;
}

std::vector<Ed25519Public> FleetNode::own_head_keys() const {
    std::vector<Ed25519Public> keys{trust_->key().public_key()};
    if (auto listed = fleet::parse_signers(local_->fleet.signers))
        for (const auto& s : *listed)
            if (s.node == f_.node) keys.push_back(s.key);
    return keys;
}

bool FleetNode::on_policy(const fleet::PolicyDoc& doc, const Policy& ports, const json& signed_doc) {
    const Policy before = ports_;
    auto old_node = node_, old_all = all_;
    combine(ports);
    if (!adopt_(node_)) {
        ports_ = before;
        node_ = old_node;
        all_ = old_all;
        return false;
    }
    ledger_->set_policy(all_);
    if (auto w = write_file_atomically(saved_policy_path(state_dir_), signed_doc.dump()); !w)
        log(fmt::format("fleet: {}: a restart without etcd would run the previous version", w.error()));
    log(fmt::format("fleet: policy version {} from {} adopted: {} of its {} ports are for this node",
                    doc.version, doc.pushed_by, node_->ports.size(), ports.ports.size()));
    return true;
}

Result<bool> FleetNode::start(Parts p, Adopt adopt) {
    adopt_ = std::move(adopt);
    audit_ = &p.audit;
    clock_ = &p.clock;
    fleet::EtcdOptions o;
    o.endpoints = f_.etcd;
    o.ca_file = f_.ca_file;
    o.cert_file = f_.cert_file;
    o.key_file = f_.key_file;
    o.user = f_.user;
    if (!f_.password_file.empty()) {
        auto pw = read_small_file(f_.password_file, "etcd password file");
        if (!pw) return err(pw.error());
        while (!pw->empty() && (pw->back() == '\n' || pw->back() == '\r')) pw->pop_back();
        o.password = *pw;
    }
    auto etcd = fleet::EtcdClient::open(o);
    if (!etcd) return err(fmt::format("[fleet] etcd: {}", etcd.error()));
    etcd_ = std::move(*etcd);
    agent_ = std::make_unique<fleet::Agent>(
        fleet::Agent::Config{f_.prefix, f_.node, f_.labels, f_.grace_s, p.boot_id}, *trust_, p.wf, p.store,
        p.audit, p.clock, p.dir,
        [this](const fleet::PolicyDoc& d, const Policy& ports, const json& signed_doc) {
            return on_policy(d, ports, signed_doc);
        });
    agent_->set_policy_version(saved_version_, saved_signed_);
    // The signers may have changed while the node was stopped: the version
    // it saved is judged against them as a SIGHUP would judge it.
    agent_->signers_changed();
    ledger_ = std::make_unique<fleet::Ledger>(fleet::Ledger::Config{f_.prefix, f_.node, p.boot_id}, *etcd_,
                                              agent_->view(), *trust_, p.dir, p.clock, p.audit);
    ledger_->set_policy(all_);
    json labels = json::object();
    for (const auto& [k, v] : f_.labels) labels[k] = v;
    const std::string reg = json{{"node", f_.node},
                                 {"labels", labels},
                                 {"started_us", p.clock.wall_us()},
                                 {"key", witness_->key().public_base64()}}
                                .dump();
    auto w = fleet::Watcher::start({o, f_.prefix, f_.node, reg});
    if (!w) return err(fmt::format("[fleet] etcd: {}", w.error()));
    watcher_ = std::move(*w);
    watcher_->set_head_keys(own_head_keys());
    log(fmt::format("fleet: node {} ({}) of {} under {}", f_.node, labels_text(f_.labels), f_.etcd.front(),
                    f_.prefix));
    return true;
}

void FleetNode::send_ack() {
    if (auto ack = agent_->take_ack()) watcher_->publish_ack(std::move(*ack));
}

void FleetNode::on_ready() {
    for (auto& b : watcher_->take()) {
        const auto t0 = std::chrono::steady_clock::now();
        const std::uint64_t checked0 = agent_->signatures_checked(), spared0 = agent_->signatures_spared();
        witness_->absorb(b);
        agent_->on_batch(b);
        if (b.snapshot || verbose_)
            log(fmt::format(
                "fleet: {} at revision {}: {} keys applied in {} ms ({} grant signatures checked, {} spared "
                "by "
                "earlier checks)",
                b.snapshot ? "full read" : "changes", b.revision, b.puts.size() + b.deletes.size(),
                std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
                    .count(),
                agent_->signatures_checked() - checked0, agent_->signatures_spared() - spared0));
    }
    send_ack();
}

void FleetNode::tick() {
    const auto [up, outage] = watcher_->link();
    agent_->tick(up, watcher_->last_error(), outage);
    if (up && ++ticks_ % kSweepEvery == 0) ledger_->sweep();
    send_ack();
}

json FleetNode::status() const {
    json labels = json::object();
    for (const auto& [k, v] : f_.labels) labels[k] = v;
    json j = {{"node", f_.node},
              {"labels", labels},
              {"etcd", f_.etcd},
              {"prefix", f_.prefix},
              {"grace_s", f_.grace_s},
              {"connected", watcher_ && watcher_->connected()},
              {"policy_version", agent_ ? agent_->policy_version() : saved_version_},
              {"revision", agent_ ? agent_->view().revision : 0}};
    if (watcher_ && !watcher_->connected()) j["error"] = watcher_->last_error();
    j["witness"] = {{"heads", witness_->own_heads()}, {"read", agent_ && agent_->view().revision > 0}};
    return j;
}

void FleetNode::set_opened_head(const ChainHead& head, std::int64_t now_us) {
    opened_ = head_json(sign_head(witness_->key(), f_.node, head, now_us));
}

json FleetNode::heads_fields(const SignedHead& h) const {
    json f = {{"audit_head", head_json(h)}};
    if (!opened_.is_null()) f["audit_open"] = opened_;
    return f;
}

void FleetNode::witness(const ChainHead& head) {
    if (!agent_) return;
    for (const auto& c : watcher_->take_head_conflicts()) {
        if (c.forged) {
            // Not signed by this node: someone who can write etcd wrote it.
            // Named as such, never as this log's tamper (an etcd writer
            // could otherwise raise false alarms at will).
            const std::string why = fmt::format(
                "not applied: etcd holds an audit head at {} that this node's key did not sign (written "
                "by someone else); `jitgate audit verify --fleet` names it, delete it with etcdctl",
                escape_terminal(c.key));
            log(fmt::format("fleet: {}", why));
            // One record a minute at most: each record moves the head, and
            // the next head may meet the next forged entry (no record loop).
            const std::int64_t now = clock_->wall_us();
            if (now - forged_recorded_us_ < kForgedRecordEveryUs) {
                ++forged_suppressed_;
                continue;
            }
            json ev = {{"type", "head_rejected"}, {"key", escape_terminal(c.key)}, {"reason", why}};
            if (forged_suppressed_ > 0) ev["suppressed"] = std::exchange(forged_suppressed_, 0);
            forged_recorded_us_ = now;
            audit_->emit(std::move(ev));
            continue;
        }
        // Signed by this node, written once: another hash there means this
        // log went back below a head it had published.
        const std::string why = fmt::format(
            "audit log: etcd holds another audit head at {}, signed by this node, than this node's log "
            "has at that seq: the log was cut or rewritten below a head this node had published",
            c.key);
        log(why);
        audit_->emit({{"type", "tamper_detected"}, {"reason", why}});
    }
    auto h = witness_->due(head, clock_->wall_us(), false);
    if (!h) return;
    agent_->set_audit_heads(heads_fields(*h));
    auto ack = agent_->take_ack();
    if (!ack) return;  // nothing read from etcd yet: published once it is
    watcher_->publish_ack(
        std::move(*ack),
        fleet::Watcher::HeadWrite{fleet::head_key(f_.prefix, f_.node, h->seq), head_json(*h).dump()});
    witness_->published(*h);
}

void FleetNode::witness_stop(const ChainHead& head) {
    if (!agent_) return;
    auto h = witness_->due(head, clock_->wall_us(), true);
    agent_->set_audit_heads(heads_fields(*h));
    auto ack = agent_->take_ack();
    if (!ack) return;
    if (!watcher_->publish_ack_and_wait(
            std::move(*ack),
            fleet::Watcher::HeadWrite{fleet::head_key(f_.prefix, f_.node, h->seq), head_json(*h).dump()},
            std::chrono::seconds(2)))
        log(fmt::format("fleet: the last audit head (seq {}) could not be written to etcd: {}", h->seq,
                        watcher_->last_error()));
}

std::optional<Reply> FleetNode::handle(Op op, const Caller& c, const OpArgs& a) {
    // Nothing new is decided under a policy version no listed signer vouches
    // for (its approvers and auto_approve rules may be anyone's; an extension
    // is more access too); ending access still works.
    if ((op == Op::Request || op == Op::Approve || op == Op::BreakGlass || op == Op::Extend) && agent_ &&
        !agent_->policy_distrust().empty())
        return Reply::fail(code::kRefused, fmt::format("jitgated refused it: {}", agent_->policy_distrust()));
    switch (op) {
        case Op::Request: return ledger_->request(c, std::get<RequestArgs>(a));
        case Op::Approve: return ledger_->approve(c, std::get<ApproveArgs>(a));
        case Op::Deny: return ledger_->deny(c, std::get<DenyArgs>(a));
        case Op::Revoke: return ledger_->revoke(c, std::get<RevokeArgs>(a));
        case Op::BreakGlass: return ledger_->break_glass(c, std::get<BreakGlassArgs>(a));
        case Op::List: return ledger_->list(c, std::get<ListArgs>(a));
        case Op::Show: return ledger_->show(c, std::get<ShowArgs>(a));
        case Op::Confirm: return ledger_->confirm(c, std::get<ConfirmArgs>(a));
        case Op::Nodes: return ledger_->nodes(c);
        case Op::PolicyPush: return ledger_->policy_push(c, std::get<PolicyPushArgs>(a));
        case Op::PolicyShow: return ledger_->policy_show(c);
        case Op::Extend: return ledger_->extend(c, std::get<ExtendArgs>(a));
        case Op::AuditFleet: return witness_->check_fleet(*etcd_, c, local_->fleet.signers);
        default: return std::nullopt;  // status, metrics, audit: this node's own
    }
}

}  // namespace jg
