#include "fleet/agent.h"

#include <fmt/format.h>

#include <algorithm>
#include <thread>

#include "core/audit_chain.h"
#include "core/clock.h"
#include "core/keys.h"
#include "core/protocol.h"
#include "core/text.h"
#include "util/log.h"

namespace jg::fleet {

namespace {

// The unresolved grants an ack lists, at most.
constexpr std::size_t kMaxUnresolved = 1000;
// An ack is written again after this long even when nothing changed: its
// time says the node is still applying.
constexpr std::int64_t kAckRefreshUs = 30 * 1000000LL;
// How long a starting node waits for its first read before it counts as cut off.
constexpr std::int64_t kFirstReadUs = 3 * 1000000LL;
// How far the deciding node's clock may be ahead of this one's.
constexpr std::int64_t kClockSkewUs = 60 * 1000000LL;
Labels labels_in(const json& j) {
    Labels l;
    if (!j.is_object() || !j.contains("labels") || !j["labels"].is_object()) return l;
    for (auto& [k, v] : j["labels"].items())
        if (valid_fleet_name(k) && v.is_string() && valid_fleet_name(v.get<std::string>()))
            l[k] = v.get<std::string>();
    return l;
}

// What no decision under this node's policy could have granted: a grant
// longer than the port allows, or for a wider network than its
// allow_prefix.  Such a document was not written by a node's ledger.
std::optional<std::string> beyond_policy(const GrantRow& g, const PortPolicy& p, std::int64_t now_us) {
    const std::int64_t longest = g.kind == kBreakGlass ? p.break_glass_max_s : p.max_duration_s;
    // Its start and its time left both: a start written in the future would
    // otherwise stretch what is left beyond the port's longest.
    if (g.start_us > now_us + kClockSkewUs) return "it starts in the future";
    if (g.expires_us - g.start_us > longest * 1000000 ||
        g.expires_us - now_us > longest * 1000000 + kClockSkewUs)
        return fmt::format("it lasts longer than port '{}' allows", p.name);
    if (g.src.empty()) return std::nullopt;
    auto net = parse_source(g.src);
    if (!net) return "its source is not an address";
    if (is_host(*net)) return std::nullopt;
    const std::optional<int>& allowed = is_v4(*net) ? p.allow_prefix_v4 : p.allow_prefix_v6;
    if (!allowed || net->prefix < *allowed)
        return fmt::format("its source {} is wider than port '{}' allows", g.src, p.name);
    return std::nullopt;
}

}  // namespace

void Agent::node_info(const std::string& node, const std::string& kind, const KeyValue* kv) {
    NodeInfo& n = view_.nodes[node];
    if (kind == "nodes") {
        n.alive = kv != nullptr;
        // The registration is not signed: its labels stand in only until the
        // node's signed ack names them.
        if (kv && !n.ack) n.labels = labels_in(parse_json_bounded(kv->value));
    } else if (json j = kv ? parse_json_bounded(kv->value) : json(); ack_refusal(trust_, node, j)) {
        // None, or not this node's own (anyone can write etcd): nothing
        // applied is taken from it.
        n.ack.reset();
        n.applied_revision = 0;
    } else {
        n.labels = labels_in(j);
        n.applied_revision = j.value("applied_revision", json()).is_number_integer()
                                 ? j["applied_revision"].get<std::int64_t>()
                                 : 0;
        n.ack = std::move(j);
    }
    if (!n.alive && !n.ack) view_.nodes.erase(node);
}

void Agent::absorb_put(const KeyValue& kv, std::set<std::int64_t>& dirty, bool& relevant) {
    const KeyName k = parse_key(c_.prefix, kv.key);
    if (k.kind == "grants") {
        relevant = true;
        // A full read brings the versions held already: taken as held unless
        // the signers changed since (then all are checked again).
        if (held_as_is(k.id, kv)) {
            // Kept as checked only when these very bytes verified: a held
            // version may be one kept unverified (applied here before), and
            // the same revision may hold other bytes (etcd restored).
            if (const auto key = VerifiedDocs::key_of(trust_, kSigGrant, kv.value); verified_.known(key))
                verified_.add(key);
            const auto& p = prev_grants_.at(k.id);
            if (p.doc.row.state == "active") dirty.insert(k.id);
            view_.grants[k.id] = p;
            return;
        }
        // What this node held of it before (in a full read: before the read).
        std::optional<Held<GrantDoc>> held;
        if (auto p = prev_grants_.find(k.id); p != prev_grants_.end())
            held = p->second;
        else if (auto v = view_.grants.find(k.id); v != view_.grants.end())
            held = v->second;
        CheckedDoc c = checked(kv);
        auto& j = c.doc;
        const std::optional<std::string>& untrusted = c.untrusted;
        auto d = j ? parse_grant_json(*j) : Result<GrantDoc>(err(j.error()));
        // The last version that verified is what a revocation is written from.
        if (held && (untrusted || !d || d->row.id != k.id) && !view_.spoiled.count(k.id)) {
            if (view_.spoiled.size() >= kMaxRejectedRemembered) view_.spoiled.erase(view_.spoiled.begin());
            view_.spoiled[k.id] = *held;
        }
        if (d && d->row.id == k.id && untrusted && applied_as(d->row)) {
            // Signed by a key no longer listed (or spoiled since), and applied
            // here before: the grant keeps its deadline (nothing new opens).
            reject("grant_rejected", kv, *untrusted + "; applied here before, it keeps its deadline", &*j);
            view_.grants[k.id] = Held<GrantDoc>{std::move(*d), kv.mod_revision};
            return;
        }
        if (!d || d->row.id != k.id || untrusted) {
            // What it replaced is no longer what etcd says: the grant ends
            // here (as a full read would end it), nothing new is applied.
            if (view_.grants.erase(k.id)) dirty.insert(k.id);
            return reject("grant_rejected", kv,
                          untrusted ? *untrusted
                          : d       ? "its id is not its key's"
                                    : d.error(),
                          j ? &*j : nullptr);
        }
        if (auto why = replayed(*d, held ? &*held : nullptr)) {
            view_.grants[k.id] = *held;  // what it saw stays
            return reject("grant_rejected", kv, *why, &*j);
        }
        // Seen ended before its document was deleted or refused: the same.
        if (auto why = view_.replay_of(d->row)) {
            if (view_.grants.erase(k.id)) dirty.insert(k.id);
            return reject("grant_rejected", kv, *why, &*j);
        }
        view_.spoiled.erase(k.id);
        // Judged again if it is active, or was (the mirror's active grants
        // are judged at every full read as well): ended history is not.
        if (d->row.state == "active" || (held && held->doc.row.state == "active")) dirty.insert(k.id);
        view_.remember(d->row);
        view_.grants[k.id] = Held<GrantDoc>{std::move(*d), kv.mod_revision};
    } else if (k.kind == "requests") {
        auto j = parse_object(kv.value, "request document");
        if (!j) return reject("grant_rejected", kv, j.error());
        // Only what the origin and the approvers' nodes signed counts.
        auto checked = trust_.check_request(*j);
        if (!checked) {
            view_.requests.erase(k.id);
            return reject("grant_rejected", kv, checked.error(), &*j);
        }
        if (!checked->note.empty()) reject("grant_rejected", kv, checked->note, &*j);
        auto d = parse_request_json(checked->doc);
        if (!d || d->row.id != k.id)
            return reject("grant_rejected", kv, d ? "its id is not its key's" : d.error(), &*j);
        // A decided request is never pending again: an old version written back.
        std::optional<Held<RequestDoc>> seen;
        if (auto p = prev_requests_.find(k.id); p != prev_requests_.end())
            seen = p->second;
        else if (auto v = view_.requests.find(k.id); v != view_.requests.end())
            seen = v->second;
        if (auto why = seen ? reopened(seen->doc.row, d->row) : std::nullopt) {
            view_.requests[k.id] = *seen;  // what it saw stays
            return reject("grant_rejected", kv, *why, &*j);
        }
        if (auto why = view_.replay_of(d->row)) {
            view_.requests.erase(k.id);
            return reject("grant_rejected", kv, *why, &*j);
        }
        view_.remember(d->row);
        view_.requests[k.id] = Held<RequestDoc>{std::move(*d), kv.mod_revision};
    } else if (k.kind == "nodes" || k.kind == "acks") {
        node_info(k.node, k.kind, &kv);
    } else if (k.kind == "policy") {
        relevant = true;
        adopt_policy(kv);
    } else if (k.kind == "heads") {
        // Audit heads are the witness's (daemon/fleet_node): nothing to apply.
    } else if (k.kind.empty()) {
        // Everything under the prefix is jitgate's: a key of no known form
        // was written by someone else.
        reject("grant_rejected", kv, "the key is not one jitgate writes");
    }
}

void Agent::absorb_delete(const KeyValue& kv, std::set<std::int64_t>& dirty, bool& relevant) {
    const KeyName k = parse_key(c_.prefix, kv.key);
    if (k.kind == "grants") {
        relevant = true;
        view_.spoiled.erase(k.id);
        if (view_.grants.erase(k.id)) deleted_.insert(k.id);
        dirty.insert(k.id);
    } else if (k.kind == "requests") {
        view_.requests.erase(k.id);
    } else if (k.kind == "nodes" || k.kind == "acks") {
        node_info(k.node, k.kind, nullptr);
    }
}

bool Agent::applied_as(const GrantRow& g) const {
    auto here = mirror_.grant(g.id);
    if (!here || !*here) return false;
    const GrantRow& h = **here;
    return h.state == "active" && g.state == "active" && h.user == g.user && h.port == g.port &&
           h.proto == g.proto && h.src == g.src && h.start_us == g.start_us && h.expires_us == g.expires_us;
}

std::optional<std::uint32_t> Agent::uid_of(const std::string& user) const {
    auto it = uids_.find(user);
    if (it == uids_.end()) it = uids_.emplace(user, dir_.uid_of(user)).first;
    return it->second;
}

bool Agent::held_as_is(std::int64_t id, const KeyValue& kv) const {
    auto p = prev_grants_.find(id);
    return !reverify_ && p != prev_grants_.end() && p->second.mod_revision == kv.mod_revision;
}

void Agent::precheck_grants(const Batch& b) {
    // Below this many, threads cost more than they save.
    constexpr std::size_t kPrecheckFrom = 64;
    std::vector<const KeyValue*> todo;
    for (const auto& kv : b.puts)
        if (const KeyName k = parse_key(c_.prefix, kv.key); k.kind == "grants" && !held_as_is(k.id, kv))
            todo.push_back(&kv);
    if (todo.size() < kPrecheckFrom) return;
    std::vector<std::string> keys;
    std::vector<bool> known;
    for (const KeyValue* kv : todo) {
        keys.push_back(VerifiedDocs::key_of(trust_, kSigGrant, kv->value));
        known.push_back(verified_.known(keys.back()));
    }
    auto done =
        check_documents(trust_, kSigGrant, todo, std::max(1U, std::thread::hardware_concurrency()), known);
    for (std::size_t i = 0; i < todo.size(); ++i) {
        if (!done[i]) continue;
        if (done[i]->doc) ++(known[i] ? signatures_spared_ : signatures_checked_);
        if (done[i]->doc && !done[i]->untrusted) verified_.add(keys[i]);
        checked_.emplace(todo[i], std::move(*done[i]));
    }
}

CheckedDoc Agent::checked(const KeyValue& kv) {
    if (auto it = checked_.find(&kv); it != checked_.end()) {
        CheckedDoc c = std::move(it->second);
        checked_.erase(it);
        return c;
    }
    auto j = parse_object(kv.value, "grant document");
    std::optional<std::string> untrusted;
    if (j) {
        const std::string key = VerifiedDocs::key_of(trust_, kSigGrant, kv.value);
        if (verified_.known(key)) {
            ++signatures_spared_;
        } else {
            ++signatures_checked_;
            untrusted = trust_.refusal(kSigGrant, *j);
        }
        if (!untrusted) verified_.add(key);
    }
    return CheckedDoc{std::move(j), std::move(untrusted)};
}

// Said once, and again when it recovers.
void Agent::save_verified() {
    const auto saved = verified_.save(mirror_);
    if (!saved && !verified_failing_)
        log(fmt::format("fleet: cannot keep the signatures checked (a restart checks them again): {}",
                        saved.error()));
    if (saved && verified_failing_) log("fleet: the signatures checked are kept again");
    verified_failing_ = !saved;
}

void Agent::on_batch(Batch& b) {
    // Names are looked up once per batch (a full read names thousands of
    // grants, mostly of a few users), and afresh for the next.
    uids_.clear();
    batch_rejects_ = 0;
    // Left over only by a batch that threw: its addresses mean nothing now.
    checked_.clear();
    std::set<std::int64_t> dirty;
    bool relevant = b.snapshot;
    if (b.snapshot && !seeded_) {
        // What this node ended before it (re)started is remembered as ended:
        // the memory of ends would otherwise start empty at every start.
        seeded_ = true;
        value_or_throw(mirror_.each_grant("all", static_cast<int>(FleetView::kMaxFinal), [&](GrantRow& g) {
            if (g.state != "active") view_.remember(g);
        }));
        if (auto loaded = verified_.load(mirror_); !loaded)
            log(
                fmt::format("fleet: cannot read the signatures checked before (every one is checked "
                            "again): {}",
                            loaded.error()));
    }
    if (b.snapshot) {
        verified_.begin_full_read();
        // The whole prefix at one revision: what is not in it is gone.
        for (const auto& [id, h] : view_.grants)
            if (h.doc.row.state == "active") dirty.insert(id);
        prev_grants_ = std::exchange(view_.grants, {});
        prev_requests_ = std::exchange(view_.requests, {});
        view_.nodes.clear();
        value_or_throw(
            mirror_.each_grant("active", kEveryActiveGrant, [&](GrantRow& g) { dirty.insert(g.id); }));
    }
    precheck_grants(b);
    // The policy first: whether a grant is for this node depends on it.
    for (const auto& kv : b.puts)
        if (parse_key(c_.prefix, kv.key).kind == "policy") absorb_put(kv, dirty, relevant);
    for (const auto& kv : b.puts)
        if (parse_key(c_.prefix, kv.key).kind != "policy") absorb_put(kv, dirty, relevant);
    for (const auto& kv : b.deletes) absorb_delete(kv, dirty, relevant);
    if (b.snapshot) {
        verified_.end_full_read();
        // Held before this full read and not in it: deleted meanwhile.
        for (const auto& kv : b.puts)
            if (auto k = parse_key(c_.prefix, kv.key); k.kind == "grants") prev_grants_.erase(k.id);
        for (const auto& [id, h] : prev_grants_) deleted_.insert(id);
    }
    prev_grants_.clear();
    prev_requests_.clear();
    checked_.clear();
    if (b.snapshot && reverify_) {
        // Every document verified against the signers as they are now.
        reverify_ = false;
        judge_running_policy();
        log("fleet: every document in etcd verified against [fleet] signers as they are now");
    }
    view_.revision = std::max(view_.revision, b.revision);
    if (recheck_all_) {
        recheck_all_ = false;
        for (const auto& [id, h] : view_.grants)
            if (h.doc.row.state == "active") dirty.insert(id);
        value_or_throw(
            mirror_.each_grant("active", kEveryActiveGrant, [&](GrantRow& g) { dirty.insert(g.id); }));
    }
    for (std::int64_t id : dirty) reconcile(id);
    deleted_.clear();
    close_rejects();
    // Only what concerns the maps moves the ack: acks and registrations of
    // other nodes must not make every node write its own again.  Nor does
    // a batch read while what is held waits to be verified again.
    if (relevant && !reverify_) {
        view_.changed_revision = b.revision;
        applied_revision_ = view_.revision;
        ack_dirty_ = true;
    }
}

std::string Agent::not_here(const GrantDoc& g, bool& unresolved, bool& refused) const {
    unresolved = false;
    refused = false;
    if (g.row.state != "active") return g.row.state;
    if (g.row.expires_us <= clock_.wall_us()) return "expired";
    auto sel = parse_selector(g.x.on);
    if (!sel || !sel->matches(c_.node, c_.labels)) return "not for this node";
    const PortPolicy* p = local_.policy().find(g.row.port, g.row.proto);
    // From here the grant is meant for this node: what stops it is told in
    // the ack (unresolved), so that no --wait reads it as applied.
    unresolved = true;
    if (!p) return "its port is not protected on this node";
    if (auto why = beyond_policy(g.row, *p, clock_.wall_us())) {
        refused = true;
        return *why;
    }
    // A remote peer's grant too: its requester is an account of the node
    // (the local workflow ends grants of removed accounts).
    if (!uid_of(g.row.user)) return fmt::format("user {} is not known on this node", g.row.user);
    unresolved = false;
    return {};
}

void Agent::end_here(GrantRow& row, const std::string& state, const std::string& by, std::int64_t decided_us,
                     const std::string& reason) {
    std::vector<GrantRow> one{row};
    const std::int64_t now = clock_.wall_us();
    value_or_throw(local_.end_fleet_grants(one, state, by, "revoke_applied", [&](const GrantRow&, json& ev) {
        if (decided_us > 0) ev["latency_ms"] = std::max<std::int64_t>(0, (now - decided_us) / 1000);
        if (!reason.empty()) ev["reason"] = reason;
    }));
    audit_.flush();  // as for grant_applied: a restart finds the mirror in step
}

void Agent::reconcile(std::int64_t id) {
    auto found = mirror_.grant(id);
    if (!found) throw std::runtime_error(found.error());
    std::optional<GrantRow> here = std::move(*found);
    auto it = view_.grants.find(id);
    bool unresolved = false, refused = false;
    std::string why =
        it == view_.grants.end() ? "deleted from etcd" : not_here(it->second.doc, unresolved, refused);
    if (refused)
        reject("grant_rejected", {grant_key(c_.prefix, id), {}, 0, it->second.mod_revision, 0, 0}, why);
    if (unresolved && unresolved_.insert(id).second && !refused) {
        ack_dirty_ = true;
        audit_.emit({{"type", "grant_rejected"},
                     {"grant_id", id},
                     {"user", it->second.doc.row.user},
                     {"port", it->second.doc.row.port},
                     {"reason", why}});
    } else if (!unresolved && policy_distrust_.empty() && unresolved_.erase(id)) {
        ack_dirty_ = true;
    }
    if (refused || unresolved) ack_dirty_ = true;
    if (!why.empty()) {
        if (here && here->state == "active") {
            const bool revoked = it != view_.grants.end() && it->second.doc.row.state != "active";
            const std::int64_t decided = revoked ? it->second.doc.row.ended_us : 0;
            const std::string by =
                revoked && !it->second.doc.row.ended_by.empty() ? it->second.doc.row.ended_by : "fleet";
            // A key deleted with no signed revocation: fail closed, and say so.
            const bool deleted = it == view_.grants.end() && deleted_.count(id);
            if (deleted)
                log(
                    fmt::format("fleet: grant {} was deleted from etcd without a signed revocation: ended "
                                "here (fail closed)",
                                id));
            end_here(*here, revoked && it->second.doc.row.state == "expired" ? "expired" : "revoked", by,
                     decided,
                     deleted ? "its key was deleted from etcd without a signed revocation" : std::string());
            ack_dirty_ = true;
        }
        return;
    }
    GrantRow g = it->second.doc.row;
    // Applied already, or ended here: never put back.  A row of this id that
    // is another grant (the store held single-host grants before the node
    // joined the fleet, or the fleet's ids started again) is not this one.
    if (here && here->user == g.user && here->port == g.port && here->proto == g.proto &&
        here->src == g.src && here->start_us == g.start_us) {
        // Its end moved in etcd (jitgate extend): here too, in place; held,
        // as a new grant is, while signers are verified again or the policy
        // is not trusted (a later full read moves it).
        if (here->state == "active" && here->expires_us != g.expires_us && !reverify_ &&
            policy_distrust_.empty())
            move_end(*here, it->second);
        return;
    }
    if (reverify_) return;  // the full read after a change of signers decides
    if (!policy_distrust_.empty()) {
        // Held, told in the ack: the policy it would be judged by is not trusted.
        if (unresolved_.insert(id).second)
            audit_.emit({{"type", "grant_rejected"},
                         {"grant_id", id},
                         {"user", g.user},
                         {"port", g.port},
                         {"reason", fmt::format("not applied: {}", policy_distrust_)}});
        ack_dirty_ = true;
        return;
    }
    if (here && here->state == "active") end_here(*here, "revoked", "fleet_id_reused", 0);
    const std::int64_t now = clock_.wall_us();
    const auto uid = uid_of(g.user);
    if (!uid) return;  // gone since not_here asked: unresolved at the next look
    g.uid = *uid;
    g.boot_id = c_.boot_id;
    g.expires_boot_ns = clock_.boot_ns() + std::uint64_t(g.expires_us - now) * 1000;
    if (auto applied = local_.apply_fleet_grant(g); !applied) {
        audit_.emit(
            {{"type", "grant_rejected"}, {"grant_id", id}, {"port", g.port}, {"reason", applied.error()}});
        unresolved_.insert(id);  // told in the ack: not applied here
        ack_dirty_ = true;
        return;
    }
    ack_dirty_ = true;
    json ev = {{"type", "grant_applied"},
               {"grant_id", g.id},
               {"request_id", g.request_id},
               {"uid", g.uid},
               {"user", g.user},
               {"port", g.port},
               {"proto", proto_name(g.proto)},
               {"expires_at", rfc3339_us(g.expires_us)},
               {"latency_ms", std::max<std::int64_t>(0, (now - g.start_us) / 1000)}};
    if (!g.src.empty()) ev["src"] = g.src;
    audit_.emit(ev);
    // Written now, not at the end of the batch: after a kill the mirror is
    // in step with the map, so a restart would write no record of it.
    audit_.flush();
}

void Agent::cut_strict_ports() {
    std::vector<GrantRow> cut;
    value_or_throw(mirror_.each_grant("active", kEveryActiveGrant, [&](GrantRow& g) {
        const PortPolicy* p = local_.policy().find(g.port, g.proto);
        if (p && p->strict) cut.push_back(g);
    }));
    if (cut.empty()) return;
    log(fmt::format("fleet: etcd unreachable for more than {}s: ending {} grants of strict ports", c_.grace_s,
                    cut.size()));
    value_or_throw(local_.end_fleet_grants(cut, "revoked", "fleet_partition", "revoke", {}));
    audit_.flush();
    ack_dirty_ = true;
}

void Agent::tick(bool connected, const std::string& why, std::uint64_t outage) {
    save_verified();
    const std::int64_t now = clock_.wall_us();
    if (!started_us_) started_us_ = now;
    // Up now, or up for a while since the last tick (another outage since):
    // the outage counted so far is over.
    if (down_since_us_ && (connected || outage != down_outage_)) {
        audit_.emit({{"type", "fleet_reconnected"}, {"down_s", (now - *down_since_us_) / 1000000}});
        down_since_us_.reset();
        strict_cut_ = false;
    }
    if (connected) {
        ever_connected_ = true;
        return;
    }
    // At start the first full read takes a moment: not a partition yet.
    if (!ever_connected_ && now - *started_us_ < kFirstReadUs) return;
    if (!down_since_us_) {
        down_since_us_ = now;
        down_outage_ = outage;
        log(fmt::format("fleet: etcd is unreachable: {}", why));
        audit_.emit({{"type", "fleet_disconnected"}, {"reason", why.substr(0, 512)}});
    }
    if (!strict_cut_ && now - *down_since_us_ >= c_.grace_s * 1000000) {
        strict_cut_ = true;
        cut_strict_ports();
    }
}

std::optional<std::string> Agent::take_ack() {
    const std::int64_t now = clock_.wall_us();
    if (!ack_dirty_ && now - ack_written_us_ < kAckRefreshUs) return std::nullopt;
    if (view_.revision == 0) return std::nullopt;  // nothing read from etcd yet
    ack_dirty_ = false;
    ack_written_us_ = now;
    // The digest: SHA-256 over "id:expires_us\n" of every active grant, by id.
    std::string lines;
    std::int64_t count = 0;
    value_or_throw(mirror_.each_grant("active", kEveryActiveGrant, [&](GrantRow& g) {
        lines += fmt::format("{}:{}\n", g.id, g.expires_us);
        ++count;
    }));
    json unresolved = json::array();
    for (std::int64_t id : unresolved_) {
        if (unresolved.size() >= kMaxUnresolved) break;
        unresolved.push_back(id);
    }
    json labels = json::object();
    for (const auto& [k, v] : c_.labels) labels[k] = v;
    json ack = {{"node", c_.node},
                {"labels", labels},
                {"applied_revision", applied_revision_},
                {"digest", sha256_hex(lines)},
                {"grants", count},
                {"policy_version", policy_version_},
                {"unresolved", unresolved},
                {"rejected", rejected_count_},
                {"time_us", now}};
    if (audit_heads_.is_object()) ack.update(audit_heads_);
    // Signed whole: anyone who can write etcd could otherwise claim this
    // node applied a revocation it never saw (`--wait` reads applied_revision).
    trust_.sign(kSigAck, ack);
    return ack.dump();
}

}  // namespace jg::fleet
