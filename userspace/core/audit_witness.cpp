#include "core/audit_witness.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>

#include "core/clock.h"
#include "core/protocol.h"
#include "core/selector.h"

namespace jg {

namespace {

using nlohmann::json;

// A node's problems listed, at most (a flood of forged entries is one story).
constexpr std::size_t kMaxProblems = 10;
constexpr std::size_t kMaxSigBytes = 128;

bool is_hex64(const std::string& s) {
    return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
               return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
           });
}

std::string short_hash(const std::string& h) { return h.substr(0, 12); }

std::string when(std::int64_t us) { return us > 0 ? rfc3339_us(us) : std::string("an unknown time"); }

class Report {
public:
    explicit Report(WitnessReport& r) : r_(r) {}
    void add(std::string p) {
        if (r_.problems.size() < kMaxProblems) r_.problems.push_back(std::move(p));
    }
    void unverified(std::string p) {
        ++r_.unverified_count;
        if (r_.unverified.size() < kMaxProblems) r_.unverified.push_back(std::move(p));
    }

private:
    WitnessReport& r_;
};

// The ack's head `field` ("audit_head", "audit_open"), verified; a
// problem otherwise (a missing audit_open is none: an older node).
std::optional<SignedHead> ack_head(const std::string& node, const json& j, const char* field,
                                   const std::vector<Ed25519Public>& key, Report& rep) {
    const std::string what = fmt::format("the {} in its ack", field);
    if (!j.is_object() || !j.contains(field)) {
        if (std::string(field) == "audit_head") rep.add("its ack carries no signed audit head");
        return std::nullopt;
    }
    auto h = parse_head(j[field]);
    if (!h) {
        rep.add(fmt::format("{} is not valid: {}", what, h.error()));
        return std::nullopt;
    }
    if (h->node != node) {
        rep.add(fmt::format("{} is node {}'s", what, h->node));
        return std::nullopt;
    }
    if (!verify_head(key, *h)) {
        rep.add(fmt::format("{} (seq {}) is not signed by its key: it is forged", what, h->seq));
        return std::nullopt;
    }
    return std::move(*h);
}

// The log as the daemon opened it at its start must hold every head
// published before: else it was cut while no daemon ran.
void open_holds_history(const std::vector<SignedHead>& hist, const SignedHead& open, Report& rep) {
    const SignedHead* top = nullptr;
    for (const auto& h : hist)
        // Signed at the start, on the clock the earlier heads were: no slack
        // (a clock set back since hides a cut, it does not invent one).
        if (h.time_us < open.time_us && h.seq > open.seq && (!top || h.seq > top->seq)) top = &h;
    if (top)
        rep.add(
            fmt::format("when its jitgated started ({}) its log ended at seq {}, below seq {} it had "
                        "published ({}): its log was cut while jitgated was stopped",
                        when(open.time_us), open.seq, top->seq, when(top->time_us)));
}

// The history entries that verify; a problem for each that does not.
std::vector<SignedHead> good_history(const std::string& node, const std::vector<HeadEntry>& history,
                                     const std::vector<Ed25519Public>& key, Report& rep) {
    std::vector<SignedHead> good;
    for (const auto& e : history) {
        const std::string where = fmt::format("the history entry heads/{}/{:020}", node, e.key_seq);
        auto h = parse_head(parse_json_bounded(e.value));
        if (!h) {
            rep.add(fmt::format("{} is not a valid head: {}", where, h.error()));
            continue;
        }
        if (h->node != node || h->seq != e.key_seq) {
            rep.add(fmt::format("{} holds node {}'s head of seq {}: it was copied there", where, h->node,
                                h->seq));
            continue;
        }
        if (!verify_head(key, *h)) {
            rep.unverified(
                fmt::format("{} is signed by no key listed for {} (forged, or signed by a key "
                            "since removed): not counted",
                            where, node));
            continue;
        }
        // Heads are written once (create-only): a second version replaced one.
        if (e.version > 1)
            rep.add(fmt::format("{} was written over ({} versions): a published head was replaced", where,
                                e.version));
        good.push_back(std::move(*h));
    }
    return good;
}

// One hash per seq, across the ack and the history.
void one_hash_per_seq(const std::vector<SignedHead>& all, Report& rep) {
    std::map<std::uint64_t, const SignedHead*> first;
    for (const auto& h : all) {
        auto [it, fresh] = first.emplace(h.seq, &h);
        if (!fresh && it->second->hash != h.hash)
            rep.add(
                fmt::format("seq {} was published with two hashes ({}... at {}, {}... at {}): its log was "
                            "rewritten from seq {} on",
                            h.seq, short_hash(it->second->hash), when(it->second->time_us),
                            short_hash(h.hash), when(h.time_us), h.seq));
    }
}

// In the order they were published, seqs never go down.
void never_backwards(std::vector<SignedHead> hist, const std::optional<SignedHead>& ack, Report& rep) {
    if (ack && !hist.empty()) {
        const auto top = std::max_element(hist.begin(), hist.end(),
                                          [](const auto& a, const auto& b) { return a.seq < b.seq; });
        if (top->seq > ack->seq)
            rep.add(
                fmt::format("its ack says seq {} (published {}) but it had published seq {} ({}): its head "
                            "went backwards (its log was cut or rolled back)",
                            ack->seq, when(ack->time_us), top->seq, when(top->time_us)));
        const auto last = std::max_element(
            hist.begin(), hist.end(), [](const auto& a, const auto& b) { return a.time_us < b.time_us; });
        if (last->time_us > ack->time_us + kHeadClockSlackUs)
            rep.add(
                fmt::format("its ack (seq {}, published {}) is older than its history (seq {}, published "
                            "{}): an old head was put back",
                            ack->seq, when(ack->time_us), last->seq, when(last->time_us)));
    }
    std::sort(hist.begin(), hist.end(), [](const auto& a, const auto& b) { return a.time_us < b.time_us; });
    const SignedHead* high = nullptr;
    for (const auto& h : hist) {
        if (high && h.seq < high->seq && h.time_us > high->time_us + kHeadClockSlackUs) {
            rep.add(
                fmt::format("seq {} was published ({}) after seq {} ({}): its head went backwards (its log "
                            "was cut or rolled back)",
                            h.seq, when(h.time_us), high->seq, when(high->time_us)));
            return;  // once: what follows repeats it
        }
        if (!high || h.seq > high->seq) high = &h;
    }
}

}  // namespace

std::string head_message(const SignedHead& h) {
    const json body = {{"node", h.node}, {"seq", h.seq}, {"hash", h.hash}, {"time_us", h.time_us}};
    return "jitgate audit head v1\n" + body.dump(-1, ' ', false, json::error_handler_t::replace);
}

SignedHead sign_head(const Ed25519Key& key, const std::string& node, const ChainHead& head,
                     std::int64_t time_us) {
    SignedHead h{node, head.seq, head.hash, time_us, {}};
    h.sig = key.sign(head_message(h));
    return h;
}

bool verify_head(const Ed25519Public& key, const SignedHead& h) {
    return ed25519_verify(key, head_message(h), h.sig);
}

bool verify_head(const std::vector<Ed25519Public>& keys, const SignedHead& h) {
    const std::string m = head_message(h);
    return std::any_of(keys.begin(), keys.end(), [&](const auto& k) { return ed25519_verify(k, m, h.sig); });
}

json head_json(const SignedHead& h) {
    return {{"node", h.node}, {"seq", h.seq}, {"hash", h.hash}, {"time_us", h.time_us}, {"sig", h.sig}};
}

Result<SignedHead> parse_head(const json& j) {
    if (!j.is_object()) return err("it is not a JSON object");
    SignedHead h;
    auto str = [&](const char* k, std::string& out, std::size_t max) {
        auto it = j.find(k);
        if (it == j.end() || !it->is_string() || it->get_ref<const std::string&>().size() > max) return false;
        out = it->get<std::string>();
        return true;
    };
    if (!str("node", h.node, 63) || !valid_fleet_name(h.node)) return err("'node' is not a node name");
    auto seq = j.find("seq");
    if (seq == j.end() || !seq->is_number_unsigned()) return err("'seq' is not a whole number");
    h.seq = seq->get<std::uint64_t>();
    if (!str("hash", h.hash, 64) || !is_hex64(h.hash)) return err("'hash' is not 64 hex digits");
    auto t = j.find("time_us");
    if (t == j.end() || !t->is_number_integer() ||
        (t->is_number_unsigned() && t->get<std::uint64_t>() > (1ull << 62)))
        return err("'time_us' is not a whole number");
    h.time_us = t->get<std::int64_t>();
    if (!str("sig", h.sig, kMaxSigBytes)) return err("'sig' is not a signature");
    return h;
}

WitnessReport check_heads(const std::string& node, const std::optional<std::string>& ack,
                          const std::vector<HeadEntry>& history, const std::vector<Ed25519Public>& key) {
    WitnessReport r;
    r.node = node;
    Report rep(r);
    if (key.empty()) {
        rep.add(
            "no key is known for it (it is not in [fleet] signers; the key in its registration is not "
            "trusted, anyone who can write etcd can write one): its heads cannot be checked");
        return r;
    }
    if (!ack)
        rep.add(history.empty() ? "it has published no audit head" : "it has a history of heads but no ack");
    if (ack) {
        const json j = parse_json_bounded(*ack);
        r.head = ack_head(node, j, "audit_head", key, rep);
        r.open = ack_head(node, j, "audit_open", key, rep);
    }
    const std::vector<SignedHead> hist = good_history(node, history, key, rep);
    r.history = hist.size();
    std::vector<SignedHead> all = hist;
    if (r.head) all.push_back(*r.head);
    if (r.open) all.push_back(*r.open);
    one_hash_per_seq(all, rep);
    never_backwards(hist, r.head, rep);
    if (r.open) open_holds_history(hist, *r.open, rep);
    return r;
}

}  // namespace jg
