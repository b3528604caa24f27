#include "fleet/ledger.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <optional>

#include "core/protocol.h"
#include "core/text.h"

namespace jg::fleet {

namespace {

// The uid a name gets on a node where it names no account: no caller has
// it, so it never passes for anybody (and is never written to a map here).
constexpr std::uint32_t kUnresolvedUid = 0xFFFFFFFEu;
// Transactions an operation tries before it gives up on a busy document.
constexpr int kAttempts = 8;
// Documents one sweep() marks at most.
constexpr std::size_t kSweepBudget = 4;

class CaptureAudit : public AuditSink {
public:
    std::vector<json> records;
    void emit(json r) override { records.push_back(std::move(r)); }
};

// The maps are the target nodes' business (fleet/agent): nothing here.
class NoMaps : public GrantSink {
public:
    Result<bool> put(const KernelGrant&) override { return true; }
    void remove(const KernelGrant&) override {}
};

// This node's directory, except that a requester whose name is unknown
// here is not "removed": whether the name resolves is each target's to say.
class FleetDirectory : public Directory {
public:
    explicit FleetDirectory(Directory& d) : d_(d) {}
    std::optional<std::string> user_name(std::uint32_t uid) override { return d_.user_name(uid); }
    std::optional<std::uint32_t> uid_of(const std::string& u) override { return d_.uid_of(u); }
    bool in_group(std::uint32_t uid, const std::string& user, const std::string& group) override {
        return uid != kUnresolvedUid && d_.in_group(uid, user, group);
    }
    std::optional<bool> is_account(std::uint32_t uid, const std::string& user) override {
        if (uid == kUnresolvedUid) return true;
        return d_.is_account(uid, user);
    }

private:
    Directory& d_;
};

std::int64_t boot_left_ns(std::int64_t until_us, std::int64_t now_us) {
    return until_us > now_us ? (until_us - now_us) * 1000 : 0;
}

// A caller whose name the documents could not carry (every node would
// refuse them): refused before anything is written.
std::optional<Reply> name_refusal(const Caller& c) {
    if (valid_user_name(c.user)) return std::nullopt;
    return Reply::fail(
        code::kRefused,
        fmt::format("the user name '{}' cannot be carried across the fleet: its nodes know users by "
                    "names of letters, digits, '_', '-', '.', '$' and '@', at most {} long",
                    escape_terminal(c.user), kMaxUserName));
}

}  // namespace

// One operation's scratch world.
struct Ledger::Scratch {
    Store store;
    CaptureAudit audit;
    NoMaps maps;
    FleetDirectory dir;
    Workflow wf;
    struct Read {
        std::string key;
        std::int64_t mod_revision = 0;  // 0: absent when read
        json doc;                       // as read, without signatures (null when absent)
        json signed_doc;                // as read and checked (a request's signatures are kept)
    };
    std::map<std::string, Read> reads;  // by key
    std::map<std::int64_t, Extras> extras;
    std::int64_t counter = 0, counter_rev = 0;
    // A document read that no listed signer wrote: the operation's answer.
    std::optional<Reply> refused;
    // A revocation: a grant whose document no listed signer wrote is read
    // as its last version that verified (FleetView::spoiled), when known.
    bool revoking = false;

    Scratch(Store s, Directory& d, Clock& clock, const std::string& boot_id)
        : store(std::move(s)), dir(d), wf(store, dir, maps, audit, clock, boot_id) {}
};

Result<bool> Ledger::distrust(Scratch& s, const KeyValue& kv, const std::string& what, const json& doc,
                              const std::string& why) {
    const std::string signer =
        doc.is_object() && doc.value("signer", json()).is_string() ? doc["signer"].get<std::string>() : "";
    audit_.emit({{"type", "grant_rejected"},
                 {"key", kv.key},
                 {"revision", kv.mod_revision},
                 {"signer", signer.substr(0, 64)},
                 {"reason", fmt::format("not used: {}", why)}});
    s.refused =
        Reply::fail(code::kRefused,
                    fmt::format("{}'s document in etcd is not signed by a node [fleet] signers lists ({}); "
                                "nothing was changed: ask an administrator to check etcd and the "
                                "signers lists",
                                what, why));
    return err(why);
}

Reply Ledger::unreachable(const char* op, const std::string& why) const {
    std::string w = why;
    while (!w.empty() && (w.back() == '.' || w.back() == ' ')) w.pop_back();
    return Reply::fail(
        code::kFleetDown,
        fmt::format("jitgated could not complete {}: {}; nothing was changed, try again once etcd "
                    "answers",
                    op, w));
}

Result<std::optional<KeyValue>> Ledger::fetch(Scratch& s, const std::string& key) {
    if (s.reads.count(key)) return std::optional<KeyValue>();  // read already
    auto kv = etcd_.get(key);
    if (!kv) return err(kv.error());
    if (!*kv) s.reads[key] = {key, 0, nullptr, nullptr};  // absent when read: its creation is compared
    return std::move(*kv);
}

Result<bool> Ledger::load_request(Scratch& s, std::int64_t id) {
    const std::string key = request_key(c_.prefix, id);
    auto kv = fetch(s, key);
    if (!kv) return err(kv.error());
    if (!*kv) return true;
    auto j = parse_object((*kv)->value, "request document");
    if (!j) return err(fmt::format("request {}'s document in etcd is not valid: {}", id, j.error()));
    auto checked = trust_.check_request(*j);
    if (!checked) return distrust(s, **kv, fmt::format("request {}", id), *j, checked.error());
    auto d = parse_request_json(checked->doc);
    if (!d || d->row.id != id)
        return err(
            fmt::format("request {}'s document in etcd is not valid{}", id, d ? "" : ": " + d.error()));
    std::optional<std::string> replay;
    if (auto v = view_.requests.find(id); v != view_.requests.end())
        replay = reopened(v->second.doc.row, d->row);
    // Seen decided, though its document was deleted or refused since.
    if (!replay) replay = view_.replay_of(d->row);
    if (replay) {
        auto refused = distrust(s, **kv, fmt::format("request {}", id), *j, *replay);
        s.refused = Reply::fail(
            code::kRefused, fmt::format("request {} was decided already: its document in etcd is an older "
                                        "version written back ({}); nothing was changed: ask an "
                                        "administrator to check etcd",
                                        id, *replay));
        return refused;
    }
    RequestRow& r = d->row;
    const std::int64_t now = clock_.wall_us();
    r.uid = dir_.uid_of(r.user).value_or(kUnresolvedUid);
    for (const auto& a : r.approvers) r.approver_uids.push_back(dir_.uid_of(a).value_or(kUnresolvedUid));
    r.boot_id = c_.boot_id;
    r.deadline_boot_ns = clock_.boot_ns() + boot_left_ns(r.deadline_us, now);
    if (auto put = s.store.put_request(r); !put) return put;
    s.reads[key] = {key, (*kv)->mod_revision, request_doc(d->row, d->x), std::move(checked->doc)};
    s.extras[id] = d->x;
    if (r.grant_id)
        if (auto g = load_grant(s, r.grant_id); !g) return g;
    // An extension is decided on the grant it names: its end moves with it.
    if (r.extends) return load_grant(s, r.extends);
    return true;
}

Result<bool> Ledger::load_grant(Scratch& s, std::int64_t id) {
    const std::string key = grant_key(c_.prefix, id);
    auto kv = fetch(s, key);
    if (!kv) return err(kv.error());
    if (!*kv) return true;
    auto j = parse_object((*kv)->value, "grant document");
    Result<GrantDoc> d = err("");
    if (auto why = j ? trust_.refusal(kSigGrant, *j) : std::nullopt) {
        auto last = view_.spoiled.find(id);
        if (!s.revoking || last == view_.spoiled.end())
            return distrust(s, **kv, fmt::format("grant {}", id), *j, *why);
        // Revoked from the last version that verified: a spoiled document
        // must not make a grant unrevocable (the revocation is signed here).
        // Recorded with the revocation (nothing written, nothing recorded).
        s.audit.emit({{"type", "grant_rejected"},
                      {"key", (*kv)->key},
                      {"revision", (*kv)->mod_revision},
                      {"reason", fmt::format("not used: {}; revoked from its last version that verified "
                                             "(revision {})",
                                             *why, last->second.mod_revision)}});
        d = last->second.doc;
        j = grant_doc(d->row, d->x);
    } else {
        if (!j) return err(fmt::format("grant {}'s document in etcd is not valid: {}", id, j.error()));
        d = parse_grant_json(*j);
    }
    if (!d || d->row.id != id)
        return err(fmt::format("grant {}'s document in etcd is not valid{}", id, d ? "" : ": " + d.error()));
    // An ended grant's older, active version written back is never decided
    // on (an extension would sign it active again); a revocation may still
    // be written over it.
    if (auto why = s.revoking ? std::nullopt : view_.replay_of(d->row)) {
        auto refused = distrust(s, **kv, fmt::format("grant {}", id), *j, *why);
        s.refused = Reply::fail(code::kRefused,
                                fmt::format("grant {} has ended: its document in etcd is an older version "
                                            "written back ({}); nothing was changed: ask an administrator to "
                                            "check etcd",
                                            id, *why));
        return refused;
    }
    GrantRow& g = d->row;
    g.uid = dir_.uid_of(g.user).value_or(kUnresolvedUid);
    g.boot_id = c_.boot_id;
    g.expires_boot_ns = clock_.boot_ns() + boot_left_ns(g.expires_us, clock_.wall_us());
    if (auto put = s.store.put_grant(g); !put) return put;
    s.reads[key] = {key, (*kv)->mod_revision, grant_doc(d->row, d->x), *j};
    s.extras[id] = d->x;
    return true;
}

Result<bool> Ledger::load_own(Scratch& s, const std::string& user, std::uint16_t port,
                              const std::string& on) {
    for (const auto& [id, h] : view_.requests)
        if (h.doc.row.user == user && h.doc.row.state == "pending")
            if (auto r = load_request(s, id); !r) return r;
    // One active grant per principal, port and selector: a new one replaces it.
    for (const auto& [id, h] : view_.grants)
        if (h.doc.row.user == user && h.doc.row.state == "active" && h.doc.row.port == port &&
            h.doc.x.on == on)
            if (auto r = load_grant(s, id); !r) return r;
    return true;
}

Reply Ledger::decide(const char* op, const Load& load, const Run& run, const Extras& fresh, bool writes) {
    for (int attempt = 0; attempt < kAttempts; ++attempt) {
        auto store = Store::open(":memory:");
        if (!store) return Reply::fail(code::kInternal, store.error());
        Scratch s(std::move(*store), dir_, clock_, c_.boot_id);
        s.wf.set_policy(policy_);
        s.wf.share_rate(rate_);
        // A read-only operation (list, show) needs no counter.
        auto counter = writes ? etcd_.get(ids_key(c_.prefix)) : Result<std::optional<KeyValue>>(std::nullopt);
        if (!counter) return unreachable(op, counter.error());
        if (*counter) {
            try {
                s.counter = std::stoll((*counter)->value);
            } catch (...) {
                return Reply::fail(code::kInternal, "the fleet's id counter in etcd is not a number");
            }
            s.counter_rev = (*counter)->mod_revision;
        }
        if (auto loaded = load(s); !loaded) return s.refused ? *s.refused : unreachable(op, loaded.error());
        value_or_throw(s.store.set_meta("next_id", s.counter + 1));
        Reply reply = run(s.wf);
        if (!writes) {
            for (auto& r : s.audit.records) audit_.emit(std::move(r));
            // A granted request shown: what a --wait for it waits on.
            if (reply.ok && reply.result.is_object() &&
                reply.result.value("grant_id", json()).is_number_integer()) {
                const std::int64_t gid = reply.result["grant_id"].get<std::int64_t>();
                auto read = s.reads.find(grant_key(c_.prefix, gid));
                if (read != s.reads.end() && read->second.mod_revision > 0 && s.extras.count(gid)) {
                    GrantDoc g{value_or_throw(s.store.grant(gid)).value_or(GrantRow{}), s.extras[gid]};
                    reply.result["revision"] = read->second.mod_revision;
                    reply.result["targets"] = targets_of(g);
                    reply.result["on"] = g.x.on;
                }
                reply.result["node"] = c_.node;
            }
            return reply;
        }
        // What the workflow changed, as documents.
        std::vector<Compare> cmp;
        std::vector<TxnOp> puts;
        std::optional<GrantDoc> granted;  // a grant made or ended by this decision
        // Each document written is signed by this node (design.md §7.3).
        auto changed = [&](const std::string& key, json doc, bool request) -> bool {
            auto it = s.reads.find(key);
            if (it != s.reads.end() && it->second.doc == doc) return false;
            cmp.push_back({key,
                           it == s.reads.end() ? Compare::Target::Create : Compare::Target::Mod,
                           it == s.reads.end() ? 0 : it->second.mod_revision,
                           {}});
            if (request)
                trust_.seal_request(doc, it == s.reads.end() ? json() : it->second.signed_doc);
            else
                trust_.sign(kSigGrant, doc);
            puts.push_back({TxnOp::Kind::Put, key, doc.dump(), 0});
            return true;
        };
        const std::int64_t next = value_or_throw(s.store.meta("next_id")).value_or(s.counter + 1);
        for (auto& r : value_or_throw(s.store.requests("all", 1 << 20))) {
            if (!s.extras.count(r.id)) s.extras[r.id] = fresh;
            changed(request_key(c_.prefix, r.id), request_doc(r, s.extras[r.id]), true);
        }
        value_or_throw(s.store.each_grant("all", 1 << 20, [&](GrantRow& g) {
            // A new grant carries its request's selector and origin.
            if (!s.extras.count(g.id))
                s.extras[g.id] = s.extras.count(g.request_id) ? s.extras[g.request_id] : fresh;
            if (changed(grant_key(c_.prefix, g.id), grant_doc(g, s.extras[g.id]), false))
                granted = GrantDoc{g, s.extras[g.id]};
        }));
        if (puts.empty() && next == s.counter + 1) {
            for (auto& r : s.audit.records) audit_.emit(std::move(r));
            return reply;
        }
        if (next != s.counter + 1) {
            cmp.push_back({ids_key(c_.prefix), Compare::Target::Mod, s.counter_rev, {}});
            puts.push_back({TxnOp::Kind::Put, ids_key(c_.prefix), std::to_string(next - 1), 0});
        }
        auto txn = etcd_.txn(cmp, puts);
        if (!txn) return unreachable(op, txn.error());
        if (!txn->succeeded) continue;  // someone else wrote first: read again
        for (auto& r : s.audit.records) {
            // The connections a grant's end cut are counted where it is
            // applied (revoke_applied); none are cut here.
            r.erase("connections_ended");
            audit_.emit(std::move(r));
        }
        if (reply.ok && reply.result.is_object()) {
            reply.result["node"] = c_.node;
            if (granted) {
                reply.result["on"] = granted->x.on;
                reply.result["revision"] = txn->revision;
                reply.result["targets"] = targets_of(*granted);
            } else if (!fresh.on.empty()) {
                reply.result["on"] = fresh.on;
            }
        }
        return reply;
    }
    return Reply::fail(
        code::kConflict,
        fmt::format("{} could not be completed: the documents it changes were changed by other "
                    "nodes {} times in a row; try again",
                    op, kAttempts));
}

std::vector<std::string> Ledger::targets_of(const GrantDoc& g) const {
    auto sel = parse_selector(g.x.on);
    if (!sel) return {};
    const PortPolicy* p = policy_->find(g.row.port, g.row.proto);
    return view_.targets(*sel, p ? p->hosts : Labels{});
}

Result<std::map<std::string, Labels>> Ledger::roster(bool fresh) {
    std::map<std::string, Labels> out;
    if (!fresh) {
        for (const auto& [name, n] : view_.nodes) out[name] = n.labels;
        return out;
    }
    for (const char* dir : {"/acks/", "/nodes/"}) {
        auto kvs = etcd_.get_prefix(c_.prefix + dir);
        if (!kvs) return err(kvs.error());
        for (const auto& kv : kvs->kvs) {
            const KeyName k = parse_key(c_.prefix, kv.key);
            json j = parse_json_bounded(kv.value);
            if (k.node.empty() || !j.is_object() || !j.contains("labels") || !j["labels"].is_object())
                continue;
            Labels l;
            for (auto& [key, v] : j["labels"].items())
                if (valid_fleet_name(key) && v.is_string() && valid_fleet_name(v.get<std::string>()))
                    l[key] = v.get<std::string>();
            out[k.node] = l;
        }
    }
    return out;
}

std::optional<Reply> Ledger::target_refusal(const std::optional<Selector>& on, std::uint16_t port,
                                            Proto proto, Selector& out) {
    out = on.value_or(Selector{c_.node, {}});
    const PortPolicy* p = policy_->find(port, proto);
    if (!p) return std::nullopt;  // the workflow refuses an unprotected port in its own words
    auto count = [&](const std::map<std::string, Labels>& nodes, const Labels& hosts) {
        int n = 0;
        for (const auto& [name, labels] : nodes)
            n += out.matches(name, labels) && labels_match(hosts, labels);
        return n;
    };
    auto nodes = roster(false);
    // The view may be behind (a node that just joined) or empty (started
    // while etcd was down): what etcd says now decides a refusal.
    if (count(*nodes, {}) == 0 || count(*nodes, p->hosts) == 0) nodes = roster(true);
    if (!nodes) return unreachable("request", nodes.error());
    if (count(*nodes, {}) == 0)
        return Reply::fail(code::kRefused,
                           fmt::format("--on {}: no node of the fleet {}; `jitgate nodes` lists them",
                                       out.text(), out.node.empty() ? "has these labels" : "has this name"));
    if (count(*nodes, p->hosts) == 0)
        return Reply::fail(code::kRefused,
                           fmt::format("--on {}: port '{}' is not protected on any of those nodes (the fleet "
                                       "policy gives it hosts = {{ {} }})",
                                       out.text(), p->name, labels_text(p->hosts)));
    return std::nullopt;
}

Reply Ledger::ask(const char* op, const Caller& c, const AskArgs& ask, const std::optional<Selector>& on,
                  const Run& run) {
    if (auto refused = name_refusal(c)) return *refused;
    Selector targets;
    if (auto refused = target_refusal(on, ask.port, ask.proto, targets)) return *refused;
    const Extras fresh{targets.text(), c_.node};
    return decide(
        op, [&](Scratch& s) { return load_own(s, c.user, ask.port, fresh.on); }, run, fresh);
}

Reply Ledger::request(const Caller& c, const RequestArgs& a) {
    return ask("request", c, a.ask, a.on, [&](Workflow& wf) { return wf.request(c, a); });
}

Reply Ledger::break_glass(const Caller& c, const BreakGlassArgs& a) {
    return ask("break_glass", c, a.ask, a.on, [&](Workflow& wf) { return wf.break_glass(c, a); });
}

Reply Ledger::approve(const Caller& c, const ApproveArgs& a) {
    if (auto refused = name_refusal(c)) return *refused;
    return decide(
        "approve",
        [&](Scratch& s) -> Result<bool> {
            if (auto r = load_request(s, a.id); !r) return r;
            // The requester's grant for the same port and targets is replaced
            // by the one this approval may make.
            auto row = s.store.request(a.id);
            if (!row) return err(row.error());
            if (!*row || !s.extras.count(a.id)) return true;
            return load_own(s, (*row)->user, (*row)->port, s.extras[a.id].on);
        },
        [&](Workflow& wf) { return wf.approve(c, a); }, Extras{});
}

Reply Ledger::deny(const Caller& c, const DenyArgs& a) {
    if (auto refused = name_refusal(c)) return *refused;
    return decide(
        "deny", [&](Scratch& s) { return load_request(s, a.id); },
        [&](Workflow& wf) { return wf.deny(c, a); }, Extras{});
}

Reply Ledger::revoke(const Caller& c, const RevokeArgs& a) {
    if (auto refused = name_refusal(c)) return *refused;
    // The id is a grant's or the request's that led to one.
    return decide(
        "revoke",
        [&](Scratch& s) -> Result<bool> {
            s.revoking = true;
            if (auto r = load_grant(s, a.id); !r) return r;
            if (auto r = load_request(s, a.id); !r) return r;
            for (auto& [key, read] : s.reads)
                if (read.doc.is_object() && read.doc.contains("request_id"))
                    if (auto r = load_request(s, read.doc["request_id"].get<std::int64_t>()); !r) return r;
            return true;
        },
        [&](Workflow& wf) { return wf.revoke(c, a); }, Extras{});
}

Reply Ledger::extend(const Caller& c, const ExtendArgs& a) {
    if (auto refused = name_refusal(c)) return *refused;
    // The extension goes to the grant's nodes, and this node sweeps it when
    // its request_ttl runs out (its origin).
    Extras fresh{{}, c_.node};
    return decide(
        "extend",
        [&](Scratch& s) -> Result<bool> {
            // The id is a grant's or the request's that led to one (or an extension's).
            if (auto r = load_grant(s, a.id); !r) return r;
            if (auto r = load_request(s, a.id); !r) return r;
            auto g = s.store.grant(a.id);
            if (!g) return err(g.error());
            std::int64_t gid = *g ? a.id : 0;
            if (!gid)
                if (auto r = s.store.request(a.id); r && *r)
                    gid = (*r)->extends ? (*r)->extends : (*r)->grant_id;
            auto read = gid ? s.store.grant(gid) : Result<std::optional<GrantRow>>(std::nullopt);
            if (!read) return err(read.error());
            // No such grant: the workflow says so in its own words.
            if (!*read || !s.extras.count(gid)) return true;
            fresh.on = s.extras[gid].on;
            // The caller's pending requests: the caps an extension counts against.
            return load_own(s, c.user, (*read)->port, fresh.on);
        },
        [&](Workflow& wf) { return wf.extend(c, a); }, fresh);
}

Reply Ledger::show(const Caller& c, const ShowArgs& a) {
    return decide(
        "show", [&](Scratch& s) { return load_request(s, a.id); },
        [&](Workflow& wf) { return wf.show(c, a); }, Extras{}, false);
}

Reply Ledger::list(const Caller& c, const ListArgs& a) {
    // From this node's view of the fleet (as of its last watch event).
    return decide(
        "list",
        [&](Scratch& s) -> Result<bool> {
            const std::int64_t now = clock_.wall_us();
            for (const auto& [id, h] : view_.requests) {
                RequestRow r = h.doc.row;
                r.uid = dir_.uid_of(r.user).value_or(kUnresolvedUid);
                r.boot_id = c_.boot_id;
                r.deadline_boot_ns = clock_.boot_ns() + boot_left_ns(r.deadline_us, now);
                if (auto put = s.store.put_request(r); !put) return put;
            }
            for (const auto& [id, h] : view_.grants) {
                GrantRow g = h.doc.row;
                g.uid = dir_.uid_of(g.user).value_or(kUnresolvedUid);
                g.boot_id = c_.boot_id;
                g.expires_boot_ns = clock_.boot_ns() + boot_left_ns(g.expires_us, now);
                if (auto put = s.store.put_grant(g); !put) return put;
            }
            return true;
        },
        [&](Workflow& wf) { return wf.list(c, a); }, Extras{}, false);
}

int Ledger::sweep() {
    // Each node sweeps what it took (origin): one writer per document.
    const std::int64_t now = clock_.wall_us();
    std::vector<std::int64_t> due_requests, due_grants;
    for (const auto& [id, h] : view_.requests)
        if (h.doc.x.origin == c_.node && h.doc.row.state == "pending" && h.doc.row.deadline_us <= now)
            due_requests.push_back(id);
    for (const auto& [id, h] : view_.grants)
        if (h.doc.x.origin == c_.node && h.doc.row.state == "active" && h.doc.row.expires_us <= now)
            due_grants.push_back(id);
    int n = 0;
    auto sweep_one = [&](bool grant, std::int64_t id) -> bool {
        const Reply r = decide(
            "sweep", [&](Scratch& s) { return grant ? load_grant(s, id) : load_request(s, id); },
            [&](Workflow& wf) {
                json out = {{"ended", wf.sweep()}};
                return Reply::success(out);
            },
            Extras{});
        n += r.ok;
        return r.code != code::kFleetDown;
    };
    // A bounded share per call: each is a transaction, on the daemon's loop.
    std::size_t budget = kSweepBudget;
    for (std::int64_t id : due_requests) {
        if (budget == 0) return n;
        --budget;
        if (!sweep_one(false, id)) return n;  // etcd did not answer: the next tick tries again
    }
    for (std::int64_t id : due_grants) {
        if (budget == 0) return n;
        --budget;
        if (!sweep_one(true, id)) return n;
    }
    return n;
}

}  // namespace jg::fleet
