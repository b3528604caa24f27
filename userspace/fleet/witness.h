#pragma once
// The witnessed audit of a node (design.md §7.3): when its signed audit
// head is due for publishing (in its ack and its history of heads,
// P/heads/NODE/<seq>), the heads this node published before (read back
// from etcd: what `jitgate audit verify` checks the log against), and the
// fleet-wide check of every node's heads (`jitgate audit verify --fleet`).
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/audit_witness.h"
#include "core/workflow.h"
#include "fleet/etcd_client.h"
#include "fleet/watcher.h"

namespace jg::fleet {

class Witness {
public:
    // A head is published at most this often while records flow (and once
    // at start and at a clean stop): bounded writes, not one per record.
    static constexpr std::int64_t kEveryUs = 3'000'000;

    Witness(std::string prefix, std::string node, Ed25519Key key)
        : prefix_(std::move(prefix)), node_(std::move(node)), key_(std::move(key)) {}

    const Ed25519Key& key() const { return key_; }
    // A rotated node key (jitgated --rotate-key, adopted once listed).
    void set_key(Ed25519Key k) { key_ = std::move(k); }
    // The head to publish now for the log's written head `h`, signed, or
    // nothing: it changed and the last one is kEveryUs old, or none was
    // published yet, or `force`.
    std::optional<SignedHead> due(const ChainHead& h, std::int64_t now_us, bool force);
    void published(const SignedHead& h) { last_ = h; }

    // This node's own heads in a batch from etcd (its ack's and its
    // history), those its key signed.
    void absorb(const Batch& b);
    // [{"seq","hash","time_us"}] by seq: for status (fleet.witness.heads).
    json own_heads() const;

    // Every node's published heads checked (root only): the reply of
    // `audit_fleet`.  `signers`: the [fleet] signers entries.
    Reply check_fleet(EtcdClient& etcd, const Caller& c, const std::vector<std::string>& signers) const;

private:
    void take(const KeyValue& kv);

    std::string prefix_, node_;
    Ed25519Key key_;
    std::optional<SignedHead> last_;
    // Own heads read from etcd, by seq then hash (two hashes at one seq are kept).
    std::map<std::pair<std::uint64_t, std::string>, SignedHead> own_;
};

}  // namespace jg::fleet
