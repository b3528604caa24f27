#include "fleet/docs.h"

#include <fmt/format.h>

#include <cctype>
#include <cstdint>
#include <limits>

#include "core/duration.h"
#include "core/keys.h"
#include "core/protocol.h"
#include "core/text.h"

namespace jg::fleet {

namespace {

constexpr std::int64_t kMaxId = std::int64_t(1) << 53;  // exact in every JSON reader
constexpr std::int64_t kMaxUs = std::int64_t(1) << 62;
constexpr std::size_t kMaxApprovers = 16;
// The longest selector text parse_selector accepts: 16 labels of 63-byte
// names and values, with '=' and ','.  A shorter limit here would refuse
// on every node a grant the ledger accepted.
constexpr std::size_t kMaxOnBytes = 16 * (63 + 1 + 63) + 15;

// An approvers entry: a user's name, or the auto_approve rule that stood
// in for one, as the workflow writes it ("auto_approve:NAME" or
// "auto_approve:@GROUP"): without it, no node would apply a grant (or an
// extension) an auto_approve rule made.
bool valid_approver(std::string_view s) {
    constexpr std::string_view kRule = "auto_approve:";
    if (s.substr(0, kRule.size()) != kRule) return valid_user_name(s);
    s.remove_prefix(kRule.size());
    if (!s.empty() && s.front() == '@') s.remove_prefix(1);
    return valid_user_name(s);
}

// Reads one document's fields, each checked; the first problem is kept.
class Reader {
public:
    explicit Reader(const json& j) : j_(j) {}
    std::int64_t num(const char* k, std::int64_t lo, std::int64_t hi) {
        auto it = j_.find(k);
        if (it == j_.end() || !it->is_number_integer())
            return fail(fmt::format("'{}' is not a whole number", k)), lo;
        if (it->is_number_unsigned() && it->get<std::uint64_t>() > std::uint64_t(hi))
            return fail(fmt::format("'{}' is out of range", k)), lo;
        const std::int64_t v = it->get<std::int64_t>();
        if (v < lo || v > hi) return fail(fmt::format("'{}' is out of range", k)), lo;
        return v;
    }
    // Printable one-line text of at most max bytes (reasons reach terminals).
    std::string text(const char* k, std::size_t max) {
        auto it = j_.find(k);
        if (it == j_.end() || !it->is_string())
            return fail(fmt::format("'{}' is not text", k)), std::string();
        std::string v = it->get<std::string>();
        if (v.size() > max) return fail(fmt::format("'{}' is longer than {} bytes", k, max)), std::string();
        if (!v.empty() && text_refusal(k, v))
            return fail(fmt::format("'{}' holds unprintable characters", k)), std::string();
        return v;
    }
    std::string user(const char* k) {
        std::string v = text(k, kMaxUserName);
        if (ok() && !valid_user_name(v)) fail(fmt::format("'{}' is not a user name", k));
        return v;
    }
    std::string one_of(const char* k, std::initializer_list<const char*> allowed) {
        std::string v = text(k, 32);
        for (const char* a : allowed)
            if (v == a) return v;
        if (ok()) fail(fmt::format("'{}' has an unknown value", k));
        return v;
    }
    std::vector<std::string> users(const char* k) {
        std::vector<std::string> out;
        auto it = j_.find(k);
        if (it == j_.end() || !it->is_array() || it->size() > kMaxApprovers)
            return fail(fmt::format("'{}' is not a list of at most {} user names", k, kMaxApprovers)), out;
        for (const auto& e : *it) {
            if (!e.is_string() || !valid_approver(e.get<std::string>()))
                return fail(fmt::format("'{}' is not a list of user names", k)), out;
            out.push_back(e.get<std::string>());
        }
        return out;
    }
    // approver_token_groups, parallel to `approvers`: each null or a list of
    // group names.
    std::vector<std::optional<std::vector<std::string>>> token_groups(std::size_t approvers) {
        std::vector<std::optional<std::vector<std::string>>> out;
        auto it = j_.find(kTokenGroupsField);
        if (it == j_.end()) return out;
        if (!it->is_array() || it->size() != approvers)
            return fail(fmt::format("'{}' is not a list beside 'approvers'", kTokenGroupsField)), out;
        for (const auto& e : *it) {
            if (e.is_null()) {
                out.emplace_back();
                continue;
            }
            std::vector<std::string> groups;
            if (e.is_array() && e.size() <= kMaxTokenGroups)
                for (const auto& g : e) {
                    if (!g.is_string() || g.get<std::string>().size() > kMaxTokenGroupBytes ||
                        text_refusal("group", g.get<std::string>()))
                        break;
                    groups.push_back(g.get<std::string>());
                }
            if (!e.is_array() || groups.size() != e.size())
                return fail(fmt::format("'{}' holds an entry that is not a list of at most {} group names of "
                                        "at most {} printable bytes",
                                        kTokenGroupsField, kMaxTokenGroups, kMaxTokenGroupBytes)),
                       out;
            out.emplace_back(std::move(groups));
        }
        return out;
    }
    Proto proto() {
        auto p = parse_proto(text("proto", 8));
        if (!p) return fail("'proto' is not tcp or udp"), Proto::Tcp;
        return *p;
    }
    std::string src() {
        std::string s = text("src", 64);
        if (ok() && !s.empty()) {
            auto net = parse_source(s);
            if (!net || format_source(*net) != s) fail("'src' is not an address or network");
        }
        return s;
    }
    Extras extras() {
        Extras x;
        x.on = text("on", kMaxOnBytes);
        if (ok() && !parse_selector(x.on)) fail("'on' is not a selector");
        x.origin = text("origin", 63);
        if (ok() && !valid_fleet_name(x.origin)) fail("'origin' is not a node name");
        return x;
    }
    void fail(std::string why) {
        if (why_.empty()) why_ = std::move(why);
    }
    bool ok() const { return why_.empty(); }
    const std::string& why() const { return why_; }

private:
    const json& j_;
    std::string why_;
};

}  // namespace

std::string printable_key(const std::string& key) {
    std::string out;
    for (unsigned char c : key.substr(0, 256)) {
        if (c >= 0x20 && c < 0x7f && c != '\\')
            out += char(c);
        else
            out += fmt::format("\\x{:02x}", c);
    }
    return out;
}

Result<json> parse_object(std::string_view text, const char* what) {
    if (text.size() > kMaxDocBytes)
        return err(fmt::format("the {} is larger than {} bytes", what, kMaxDocBytes));
    // Bounded depth: a document nested thousands deep would otherwise crash
    // the copies and dumps that recurse (the signature's text), on a thread.
    bool too_deep = false;
    json j = parse_json_bounded(text, &too_deep);
    if (too_deep) return err(fmt::format("the {} nests deeper than {} levels", what, kMaxJsonDepth));
    if (j.is_discarded() || !j.is_object()) return err(fmt::format("the {} is not a JSON object", what));
    return j;
}

namespace {

std::string padded(std::int64_t id) { return fmt::format("{:012d}", id); }

}  // namespace

bool valid_user_name(std::string_view s) {
    // What NSS names look like, directory services' (alice@corp.example) included.
    if (s.empty() || s.size() > kMaxUserName) return false;
    for (char c : s)
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-' && c != '.' && c != '$' &&
            c != '@')
            return false;
    return true;
}

json request_doc(const RequestRow& r, const Extras& x) {
    json j = {{"id", r.id},
              {"user", r.user},
              {"port", r.port},
              {"proto", proto_name(r.proto)},
              {"duration_s", r.duration_s},
              {"reason", r.reason},
              {"ticket", r.ticket},
              {"state", r.state},
              {"created_us", r.created_us},
              {"deadline_us", r.deadline_us},
              {"decided_us", r.decided_us},
              {"decided_by", r.decided_by},
              {"decision_reason", r.decision_reason},
              {"grant_id", r.grant_id},
              {"approvers", r.approvers},
              {"shortest_s", r.shortest_s},
              {"src", r.src},
              {"kind", r.kind},
              {"on", x.on},
              {"origin", x.origin}};
    // Only on an extension (jitgate extend): the documents of other requests
    // stay as nodes without extensions write and read them.
    if (r.extends) j["extends"] = r.extends;
    // Only when an approver used an ID token, likewise; seal_request moves
    // each entry into its approval, under that approval's signature.
    json groups = json::array();
    bool any = false;
    for (std::size_t i = 0; i < r.approvers.size(); ++i) {
        const bool has = i < r.approver_token_groups.size() && r.approver_token_groups[i];
        json g = has ? json(*r.approver_token_groups[i]) : json();
        // As many as every node reads (policy group names are short): one
        // group is enough for the approval to stand, fewer never count more.
        if (has && g.size() > kMaxTokenGroups) g.erase(g.begin() + kMaxTokenGroups, g.end());
        groups.push_back(std::move(g));
        any = any || has;
    }
    if (any) j[kTokenGroupsField] = groups;
    return j;
}

json grant_doc(const GrantRow& g, const Extras& x) {
    return {{"id", g.id},
            {"request_id", g.request_id},
            {"user", g.user},
            {"port", g.port},
            {"proto", proto_name(g.proto)},
            {"start_us", g.start_us},
            {"expires_us", g.expires_us},
            {"state", g.state},
            {"ended_us", g.ended_us},
            {"ended_by", g.ended_by},
            {"reason", g.reason},
            {"ticket", g.ticket},
            {"approvers", g.approvers},
            {"src", g.src},
            {"kind", g.kind},
            {"on", x.on},
            {"origin", x.origin}};
}

json policy_doc(const PolicyDoc& p) {
    return {{"version", p.version},
            {"text", p.text},
            {"file", p.file},
            {"pushed_by", p.pushed_by},
            {"pushed_at_us", p.pushed_at_us}};
}

Result<RequestDoc> parse_request_doc(std::string_view text) {
    auto j = parse_object(text, "request document");
    if (!j) return err(j.error());
    return parse_request_json(*j);
}

Result<RequestDoc> parse_request_json(const json& j) {
    if (!j.is_object()) return err("the request document is not a JSON object");
    Reader rd(j);
    RequestDoc d;
    RequestRow& r = d.row;
    r.id = rd.num("id", 1, kMaxId);
    r.user = rd.user("user");
    r.port = static_cast<std::uint16_t>(rd.num("port", 1, 65535));
    r.proto = rd.proto();
    r.duration_s = rd.num("duration_s", 1, kMaxDurationSeconds);
    r.reason = rd.text("reason", kMaxReasonBytes);
    r.ticket = rd.text("ticket", kMaxTicketBytes);
    r.state = rd.one_of("state", {"pending", "granted", "rejected", "expired"});
    r.created_us = rd.num("created_us", 0, kMaxUs);
    r.deadline_us = rd.num("deadline_us", 0, kMaxUs);
    r.decided_us = rd.num("decided_us", 0, kMaxUs);
    r.decided_by = rd.text("decided_by", 64);
    r.decision_reason = rd.text("decision_reason", kMaxReasonBytes);
    r.grant_id = rd.num("grant_id", 0, kMaxId);
    r.approvers = rd.users("approvers");
    if (rd.ok()) r.approver_token_groups = rd.token_groups(r.approvers.size());
    r.shortest_s = rd.num("shortest_s", 0, kMaxDurationSeconds);
    r.src = rd.src();
    r.kind = rd.one_of("kind", {"", kBreakGlass});
    // The grant an extension asks more time on (absent: a request for new access).
    if (j.contains("extends")) r.extends = rd.num("extends", 1, kMaxId);
    d.x = rd.extras();
    if (!rd.ok()) return err(rd.why());
    return d;
}

Result<GrantDoc> parse_grant_doc(std::string_view text) {
    auto j = parse_object(text, "grant document");
    if (!j) return err(j.error());
    return parse_grant_json(*j);
}

Result<GrantDoc> parse_grant_json(const json& j) {
    if (!j.is_object()) return err("the grant document is not a JSON object");
    Reader rd(j);
    GrantDoc d;
    GrantRow& g = d.row;
    g.id = rd.num("id", 1, kMaxId);
    g.request_id = rd.num("request_id", 0, kMaxId);
    g.user = rd.user("user");
    g.port = static_cast<std::uint16_t>(rd.num("port", 1, 65535));
    g.proto = rd.proto();
    g.start_us = rd.num("start_us", 0, kMaxUs);
    g.expires_us = rd.num("expires_us", 0, kMaxUs);
    g.state = rd.one_of("state", {"active", "expired", "revoked", "replaced"});
    g.ended_us = rd.num("ended_us", 0, kMaxUs);
    g.ended_by = rd.text("ended_by", 64);
    g.reason = rd.text("reason", kMaxReasonBytes);
    g.ticket = rd.text("ticket", kMaxTicketBytes);
    g.approvers = rd.users("approvers");
    g.src = rd.src();
    g.kind = rd.one_of("kind", {"", kBreakGlass});
    d.x = rd.extras();
    if (rd.ok() && (g.expires_us <= g.start_us || g.expires_us - g.start_us > kMaxDurationSeconds * 1000000))
        rd.fail("'expires_us' is not after 'start_us' by at most a year");
    if (!rd.ok()) return err(rd.why());
    return d;
}

Result<PolicyDoc> parse_policy_doc(std::string_view text) {
    auto j = parse_object(text, "policy document");
    if (!j) return err(j.error());
    return parse_policy_json(*j);
}

Result<PolicyDoc> parse_policy_json(const json& j) {
    if (!j.is_object()) return err("the policy document is not a JSON object");
    Reader rd(j);
    PolicyDoc p;
    p.version = rd.num("version", 1, kMaxId);
    p.pushed_at_us = rd.num("pushed_at_us", 0, kMaxUs);
    p.pushed_by = rd.text("pushed_by", 64);
    p.file = rd.text("file", 4096);
    if (!rd.ok()) return err(rd.why());
    auto t = j.find("text");
    if (t == j.end() || !t->is_string()) return err("'text' is not text");
    p.text = t->get<std::string>();
    return p;
}

std::string ids_key(const std::string& prefix) { return prefix + "/ids"; }
std::string policy_key(const std::string& prefix) { return prefix + "/policy"; }
std::string request_key(const std::string& prefix, std::int64_t id) {
    return prefix + "/requests/" + padded(id);
}
std::string grant_key(const std::string& prefix, std::int64_t id) { return prefix + "/grants/" + padded(id); }
std::string node_key(const std::string& prefix, const std::string& node) { return prefix + "/nodes/" + node; }
std::string ack_key(const std::string& prefix, const std::string& node) { return prefix + "/acks/" + node; }
std::string heads_prefix(const std::string& prefix, const std::string& node) {
    return prefix + "/heads/" + node + "/";
}
std::string head_key(const std::string& prefix, const std::string& node, std::uint64_t seq) {
    return heads_prefix(prefix, node) + fmt::format("{:020}", seq);
}

KeyName parse_key(const std::string& prefix, std::string_view key) {
    KeyName k;
    if (key.size() <= prefix.size() + 1 || key.substr(0, prefix.size()) != prefix ||
        key[prefix.size()] != '/')
        return k;
    std::string_view rest = key.substr(prefix.size() + 1);
    if (rest == "ids" || rest == "policy") {
        k.kind = std::string(rest);
        return k;
    }
    const auto slash = rest.find('/');
    if (slash == std::string_view::npos) return k;
    const std::string_view kind = rest.substr(0, slash), name = rest.substr(slash + 1);
    if (kind == "requests" || kind == "grants") {
        if (name.size() != 12) return k;
        std::int64_t id = 0;
        for (char c : name) {
            if (!std::isdigit(static_cast<unsigned char>(c))) return k;
            id = id * 10 + (c - '0');
        }
        if (id < 1) return k;
        k.kind = std::string(kind);
        k.id = id;
    } else if ((kind == "nodes" || kind == "acks") && valid_fleet_name(name)) {
        k.kind = std::string(kind);
        k.node = std::string(name);
    } else if (kind == "heads") {
        // heads/<node>/<20-digit seq>
        const auto cut = name.find('/');
        if (cut == std::string_view::npos || !valid_fleet_name(name.substr(0, cut))) return k;
        const std::string_view digits = name.substr(cut + 1);
        std::uint64_t seq = 0;
        if (digits.size() != 20) return k;
        for (char c : digits) {
            if (!std::isdigit(static_cast<unsigned char>(c)) || seq > (UINT64_MAX - 9) / 10) return k;
            seq = seq * 10 + std::uint64_t(c - '0');
        }
        k.kind = "heads";
        k.node = std::string(name.substr(0, cut));
        k.seq = seq;
    }
    return k;
}

}  // namespace jg::fleet
