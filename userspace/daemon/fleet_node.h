#pragma once
// jitgated as a node of a fleet (design.md §7): the etcd clients, the
// ledger that decides operations, the watcher threads and the agent that
// applies what etcd says, and the fleet policy combined with the node's
// own file.  The daemon owns one when [fleet] etcd (or --etcd) is set.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "core/operations.h"
#include "core/policy.h"
#include "core/workflow.h"
#include "daemon/daemon.h"
#include "fleet/agent.h"
#include "fleet/etcd_client.h"
#include "fleet/ledger.h"
#include "fleet/trust.h"
#include "fleet/watcher.h"
#include "fleet/witness.h"

namespace jg {

class FleetNode {
public:
    // Before the kernel: the node's settings and the fleet policy it ran
    // last (saved in the state dir), so that a node that starts while etcd
    // is down enforces what it enforced.  `local`: the node's own file.
    static Result<std::unique_ptr<FleetNode>> prepare(const FleetSettings& f,
                                                      std::shared_ptr<const Policy> local,
                                                      const std::string& state_dir);

    // The policy this node enforces: its own file's settings, the fleet
    // policy's ports whose hosts match its labels.
    std::shared_ptr<const Policy> node_policy() const { return node_; }
    const std::string& name() const { return f_.node; }

    struct Parts {
        Workflow& wf;
        Store& store;
        AuditSink& audit;
        Clock& clock;
        Directory& dir;
        std::string boot_id;
    };
    // Adopts a node policy (the daemon's reload without the file): false
    // when the kernel refused it (the old one stays).
    using Adopt = std::function<bool(std::shared_ptr<const Policy>)>;
    // Once the kernel holds the mirror's grants: connects and starts
    // watching.  An unreachable etcd is not an error (the node runs on
    // what it holds, fleet_disconnected); bad TLS or password files are.
    Result<bool> start(Parts p, Adopt adopt);

    int fd() const { return watcher_->fd(); }
    void on_ready();  // the watcher's batches
    void tick();
    // The node's own file again (SIGHUP): the same fleet ports, its new
    // settings, its new [fleet] signers (and a rotated key adopted once listed).
    std::shared_ptr<const Policy> with_local(std::shared_ptr<const Policy> local);
    std::optional<Reply> handle(Op op, const Caller& c, const OpArgs& a);
    // For status: etcd, labels, whether it answers, what the node applied,
    // and the audit heads it published (fleet.witness.heads).
    json status() const;
    // The audit log's head, written and synced: published (signed, in the
    // ack and the history of heads) when due (fleet/witness.h).
    void witness(const ChainHead& head);
    // The audit log's head as the daemon opened it, before this start's
    // records: every ack carries it signed ("audit_open"), so that a log
    // cut while no daemon ran shows against the heads published before.
    void set_opened_head(const ChainHead& head, std::int64_t now_us);
    // A clean stop's last head (after daemon_stop), written before the
    // daemon goes (waits a moment for etcd).
    void witness_stop(const ChainHead& head);

private:
    FleetNode(FleetSettings f, std::shared_ptr<const Policy> local, std::string state_dir)
        : f_(std::move(f)), local_(std::move(local)), state_dir_(std::move(state_dir)) {}
    // The node's and the ledger's policies from the fleet's ports.
    void combine(const Policy& ports);
    bool on_policy(const fleet::PolicyDoc& doc, const Policy& ports, const json& signed_doc);
    // The keys this node's audit heads may be signed with: its own, and
    // those its [fleet] signers list for it (a rotation under way).
    std::vector<Ed25519Public> own_head_keys() const;
    void send_ack();
    json heads_fields(const SignedHead& h) const;  // the ack's audit_head and audit_open
    // The signers of the node's file; a next key (jitgated --rotate-key)
    // adopted once they list it; a warning when this node's own key is not listed.
    void refresh_trust(const std::vector<std::string>& signers);

    FleetSettings f_;
    std::shared_ptr<const Policy> local_, node_, all_;
    Policy ports_;  // the fleet policy's ports, all of them
    std::string state_dir_;
    std::int64_t saved_version_ = 0;
    json saved_signed_;  // the saved version's document with its signature (null: saved without)
    Adopt adopt_;
    std::uint64_t ticks_ = 0;
    bool verbose_ = false;
    std::unique_ptr<fleet::Trust> trust_;
    std::unique_ptr<fleet::EtcdClient> etcd_;
    std::unique_ptr<fleet::Ledger> ledger_;
    std::unique_ptr<fleet::Agent> agent_;
    std::unique_ptr<fleet::Watcher> watcher_;
    std::unique_ptr<fleet::Witness> witness_;
    json opened_;  // the signed audit_open
    // head_rejected: when the last was written, and the forged entries met since (told in the next).
    std::int64_t forged_recorded_us_ = 0;
    std::int64_t forged_suppressed_ = 0;
    AuditSink* audit_ = nullptr;
    Clock* clock_ = nullptr;
};

// The node's [fleet] settings with the command line's --etcd, --node and
// --label over them, the node's name defaulting to the host name.
// The node's key files in its state dir (design.md §7.3): the one it signs
// with, and the next one `jitgated --rotate-key` made.
std::string node_key_path(const std::string& state_dir);
std::string next_key_path(const std::string& state_dir);
// jitgated --print-key / --rotate-key: the node's key (created when
// missing) or its next one, printed as a signers entry; the exit code.
int print_node_key(DaemonOptions o, bool rotate);

Result<FleetSettings> effective_fleet(const FleetSettings& file, const std::vector<std::string>& etcd,
                                      const std::string& node, const std::vector<std::string>& labels);

}  // namespace jg
