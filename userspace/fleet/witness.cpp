#include "fleet/witness.h"

#include <fmt/format.h>

#include "core/protocol.h"
#include "fleet/docs.h"
#include "fleet/node_key.h"

namespace jg::fleet {

namespace {

// Own heads remembered for audit verify, at most (the history keeps fewer).
constexpr std::size_t kMaxOwnHeads = 4 * Watcher::kKeepHeads;

Reply fleet_down(const std::string& why) {
    return Reply::fail(code::kFleetDown,
                       fmt::format("jitgated could not read the audit heads from etcd: {}; try again once "
                                   "etcd answers",
                                   why));
}

// What the fleet check knows of one node.
struct NodeHeads {
    std::optional<std::string> ack;
    std::vector<HeadEntry> history;
    std::vector<Ed25519Public> keys;
    std::string key_from;  // signers, this node
};

}  // namespace

std::optional<SignedHead> Witness::due(const ChainHead& h, std::int64_t now_us, bool force) {
    if (!force && last_ && (last_->seq == h.seq || now_us - last_->time_us < kEveryUs)) return std::nullopt;
    return sign_head(key_, node_, h, now_us);
}

void Witness::take(const KeyValue& kv) {
    const KeyName k = parse_key(prefix_, kv.key);
    if (k.node != node_ || (k.kind != "heads" && k.kind != "acks")) return;
    json j = parse_json_bounded(kv.value);
    if (k.kind == "acks") j = j.is_object() && j.contains("audit_head") ? j["audit_head"] : json();
    auto h = parse_head(j);
    // Only what this node signed witnesses its log: anyone can write etcd.
    if (!h || h->node != node_ || (k.kind == "heads" && h->seq != k.seq) ||
        !verify_head(key_.public_key(), *h))
        return;
    own_[{h->seq, h->hash}] = std::move(*h);
    if (own_.size() > kMaxOwnHeads) own_.erase(own_.begin());
}

void Witness::absorb(const Batch& b) {
    if (b.snapshot) own_.clear();
    for (const auto& kv : b.puts) take(kv);
    for (const auto& kv : b.deletes) {
        const KeyName k = parse_key(prefix_, kv.key);
        if (k.kind != "heads" || k.node != node_) continue;
        // Pruned (the oldest): its seq is no longer witnessed.
        for (auto it = own_.lower_bound({k.seq, ""}); it != own_.end() && it->first.first == k.seq;)
            it = own_.erase(it);
    }
}

json Witness::own_heads() const {
    json out = json::array();
    for (const auto& [k, h] : own_) out.push_back({{"seq", h.seq}, {"hash", h.hash}, {"time_us", h.time_us}});
    return out;
}

Reply Witness::check_fleet(EtcdClient& etcd, const Caller& c, const std::vector<std::string>& signers) const {
    if (c.uid != 0)
        return Reply::fail(code::kForbidden,
                           "only root on a node of the fleet may check every node's audit heads (run it with "
                           "sudo)");
    auto acks = etcd.get_prefix(prefix_ + "/acks/");
    if (!acks) return fleet_down(acks.error());
    auto heads = etcd.get_prefix(prefix_ + "/heads/", acks->revision);
    if (!heads) return fleet_down(heads.error());

    std::map<std::string, NodeHeads> nodes;
    json stray = json::array();
    for (const auto& kv : acks->kvs)
        if (KeyName k = parse_key(prefix_, kv.key); k.kind == "acks") nodes[k.node].ack = kv.value;
    for (const auto& kv : heads->kvs) {
        const KeyName k = parse_key(prefix_, kv.key);
        if (k.kind == "heads")
            nodes[k.node].history.push_back({k.seq, kv.version, kv.value});
        else if (stray.size() < 10)
            stray.push_back(kv.key);  // not a key jitgate writes: someone else wrote it
    }
    // The keys: the node's signers entries, or this node's own.  Never the
    // key in a registration: anyone who can write etcd can write one, and
    // sign heads with it.
    for (const auto& e : signers)
        if (auto s = parse_signer(e); s && nodes.count(s->node)) {
            nodes[s->node].keys.push_back(s->key);
            nodes[s->node].key_from = "signers";
        }
    if (auto it = nodes.find(node_); it != nodes.end() && it->second.keys.empty()) {
        it->second.keys.push_back(key_.public_key());
        it->second.key_from = "this node";
    }

    bool ok = stray.empty();
    json out = json::array();
    for (const auto& [name, n] : nodes) {
        const WitnessReport r = check_heads(name, n.ack, n.history, n.keys);
        ok = ok && r.problems.empty();
        json j = {{"node", name},
                  {"ok", r.problems.empty()},
                  {"key", n.key_from.empty() ? json(nullptr) : json(n.key_from)},
                  {"history", r.history},
                  {"problems", r.problems},
                  {"unverified", r.unverified},
                  {"unverified_count", r.unverified_count}};
        j["head"] = r.head ? json{{"seq", r.head->seq}, {"hash", r.head->hash}, {"time_us", r.head->time_us}}
                           : json(nullptr);
        out.push_back(std::move(j));
    }
    return Reply::success({{"ok", ok}, {"nodes", out}, {"stray", stray}, {"revision", acks->revision}});
}

}  // namespace jg::fleet
