#include "fleet/trust.h"

#include <fmt/format.h>

#include <algorithm>

#include "core/audit_chain.h"
#include "core/text.h"
#include "fleet/docs.h"

namespace jg::fleet {

namespace {

// The request fields a decision changes (or that are signatures): all the
// others are fixed at creation and covered by origin_sig.
const char* const kDecisionFields[] = {"state",    "decided_us", "decided_by", "decision_reason",
                                       "grant_id", "approvers",  "approvals",  "shortest_s",
                                       "signer",   "sig",        "origin_sig", kTokenGroupsField};

constexpr const char* kSigOrigin = "request-origin";
constexpr const char* kSigApproval = "approval";

std::string str_of(const json& j, const char* key) {
    auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// A name from a document, fit for a record or a log line.
std::string shown(const std::string& s) { return escape_terminal(s.substr(0, 64)); }

// What approval i signs: the request as made, who approved where, and the
// approver groups their ID token gave when they approved with one (only
// then: approvals signed before groups were carried verify as they were).
json approval_body(const json& base, const std::string& user, const std::string& node, const json* groups) {
    json body = {{"request", base}, {"approver", user}, {"node", node}};
    if (groups) body["groups"] = *groups;
    return body;
}

// Entry i of approver_token_groups (parallel to approvers), when it holds groups.
const json* token_groups_at(const json& groups, std::size_t i) {
    if (!groups.is_array() || i >= groups.size() || !groups[i].is_array()) return nullptr;
    return &groups[i];
}

}  // namespace

std::optional<std::string> signed_text(std::string_view kind, const json& doc) {
    json copy = doc;
    if (copy.is_object()) copy.erase("sig");
    try {
        return fmt::format("jitgate/v1 {}\n{}", kind,
                           copy.dump(-1, ' ', false, json::error_handler_t::strict));
    } catch (const json::exception&) {
        return std::nullopt;
    }
}

json request_base(const json& doc) {
    json base = doc;
    for (const char* f : kDecisionFields) base.erase(f);
    return base;
}

Result<std::vector<Signer>> parse_signers(const std::vector<std::string>& entries) {
    std::vector<Signer> out;
    for (const auto& e : entries) {
        auto s = parse_signer(e);
        if (!s) return err(s.error());
        out.push_back(std::move(*s));
    }
    return out;
}

void Trust::set_signers(std::vector<Signer> s) {
    signers_ = std::move(s);
    std::vector<std::string> entries;
    for (const auto& x : signers_) {
        // The node's length first: no two lists give the same bytes.
        std::string e = fmt::format("{}:{}:", x.node.size(), x.node);
        e.append(reinterpret_cast<const char*>(x.key.data()), x.key.size());
        entries.push_back(std::move(e));
    }
    std::sort(entries.begin(), entries.end());
    std::string all;
    for (const auto& e : entries) all += e;
    fingerprint_ = sha256_hex(all);
}

bool Trust::listed(const std::string& node, const Ed25519Public& pub) const {
    for (const auto& s : signers_)
        if (s.node == node && s.key == pub) return true;
    return false;
}

bool Trust::verifies(const std::string& who, const std::string& text, const std::string& sig) const {
    // A node listed with two keys (a rotation under way): either signs.
    for (const auto& s : signers_)
        if (s.node == who && ed25519_verify(s.key, text, sig)) return true;
    return false;
}

void Trust::sign(std::string_view kind, json& doc) const {
    doc["signer"] = node_;
    doc.erase("sig");
    // Our own documents hold checked text only: signed_text cannot fail here,
    // and an empty signature would verify nowhere (fail closed).
    doc["sig"] = key_.sign(signed_text(kind, doc).value_or(std::string()));
}

std::optional<std::string> Trust::refusal(std::string_view kind, const json& doc) const {
    if (!doc.is_object()) return "it is not a JSON object";
    const std::string signer = str_of(doc, "signer"), sig = str_of(doc, "sig");
    if (signer.empty() || sig.empty()) return "it is not signed (no 'signer' or 'sig')";
    bool known = false;
    for (const auto& s : signers_) known = known || s.node == signer;
    if (!known) return fmt::format("its signer '{}' is not in [fleet] signers", shown(signer));
    auto text = signed_text(kind, doc);
    if (!text) return "it holds text that is not UTF-8";
    if (!verifies(signer, *text, sig))
        return fmt::format("its signature does not verify against the keys [fleet] signers lists for '{}'",
                           shown(signer));
    return std::nullopt;
}

std::optional<std::string> ack_refusal(const Trust& trust, const std::string& node, const json& ack) {
    if (!ack.is_object()) return "it is not a JSON object";
    if (str_of(ack, "node") != node || str_of(ack, "signer") != node)
        return fmt::format("it is not signed by node '{}' itself", shown(node));
    return trust.refusal(kSigAck, ack);
}

void Trust::seal_request(json& doc, const json& prior) const {
    doc.erase("approvals");
    // Each new approval's token groups move into it, under its signature.
    const json groups = doc.contains(kTokenGroupsField) ? doc[kTokenGroupsField] : json();
    doc.erase(kTokenGroupsField);
    const json base = request_base(doc);
    std::string origin_sig = prior.is_object() ? str_of(prior, "origin_sig") : std::string();
    if (origin_sig.empty()) origin_sig = key_.sign(signed_text(kSigOrigin, base).value_or(std::string()));
    // The approvals read, by approver: kept as they were signed.
    std::map<std::string, json> had;
    if (prior.is_object() && prior.contains("approvals") && prior["approvals"].is_array())
        for (const auto& a : prior["approvals"])
            if (a.is_object()) had[str_of(a, "user")] = a;
    json approvals = json::array();
    if (doc.contains("approvers") && doc["approvers"].is_array())
        for (std::size_t i = 0; i < doc["approvers"].size(); ++i) {
            const json& u = doc["approvers"][i];
            const std::string user = u.is_string() ? u.get<std::string>() : std::string();
            if (auto it = had.find(user); it != had.end()) {
                approvals.push_back(it->second);
                continue;
            }
            const json* g = token_groups_at(groups, i);
            const json body = approval_body(base, user, node_, g);
            json a = {{"user", user}, {"node", node_}};
            if (g) a["groups"] = *g;
            a["sig"] = key_.sign(signed_text(kSigApproval, body).value_or(std::string()));
            approvals.push_back(std::move(a));
        }
    doc["approvals"] = approvals;
    doc["origin_sig"] = origin_sig;
    sign(kSigRequest, doc);
}

Result<CheckedRequest> Trust::check_request(const json& doc) const {
    if (!doc.is_object()) return err("it is not a JSON object");
    const json base = request_base(doc);
    const std::string origin = str_of(doc, "origin");
    auto base_text = signed_text(kSigOrigin, base);
    if (!base_text) return err("it holds text that is not UTF-8");
    if (!verifies(origin, *base_text, str_of(doc, "origin_sig")))
        return err(
            fmt::format("its origin's signature (origin_sig) does not verify against the keys [fleet] "
                        "signers lists for '{}'",
                        shown(origin)));
    CheckedRequest out{doc, {}, {}};
    auto whole = refusal(kSigRequest, doc);
    if (!whole) out.signer = str_of(doc, "signer");
    // Each approver counts only with an approval signed where they acted.
    std::map<std::string, json> signed_by;
    if (doc.contains("approvals") && doc["approvals"].is_array())
        for (const auto& a : doc["approvals"]) {
            if (!a.is_object()) continue;
            const std::string user = str_of(a, "user"), node = str_of(a, "node");
            // Groups added, changed or taken off by anyone but that node: it does not verify.
            auto g = a.find("groups");
            auto text =
                signed_text(kSigApproval, approval_body(base, user, node, g == a.end() ? nullptr : &*g));
            if (text && verifies(node, *text, str_of(a, "sig"))) signed_by[user] = a;
        }
    json approvers = json::array(), approvals = json::array(), groups = json::array();
    bool any_groups = false;
    std::vector<std::string> dropped;
    if (doc.contains("approvers") && doc["approvers"].is_array())
        for (const auto& u : doc["approvers"]) {
            auto it = u.is_string() ? signed_by.find(u.get<std::string>()) : signed_by.end();
            if (it == signed_by.end()) {
                dropped.push_back(u.is_string() ? shown(u.get<std::string>()) : "?");
                continue;
            }
            approvers.push_back(it->first);
            approvals.push_back(it->second);
            // The groups as that approval signed them, beside its approver.
            groups.push_back(it->second.value("groups", json()));
            any_groups = any_groups || it->second.contains("groups");
            signed_by.erase(it);  // an approver counts once
        }
    // Written by no listed signer: refused whatever it says.  Keeping what
    // the origin and the approvers' nodes signed would let an etcd writer
    // mark a decided request pending again (origin_sig and the approvals
    // still verify) and have it granted a second time, or drop an
    // approver's shorter duration (shortest_s): a spoiled request can only
    // be left undecided, which is denial of service, not access.
    if (whole) return err(*whole);
    if (!dropped.empty()) {
        std::string names;
        for (const auto& d : dropped) names += (names.empty() ? "" : ", ") + d;
        out.note += fmt::format("{}the approval{} of {} {} not signed by a listed signer and do{} not count",
                                out.note.empty() ? "" : "; ", dropped.size() == 1 ? "" : "s", names,
                                dropped.size() == 1 ? "is" : "are", dropped.size() == 1 ? "es" : "");
    }
    out.doc["approvers"] = approvers;
    out.doc["approvals"] = approvals;
    // What parse_request_json reads the approvers' token groups from: only
    // ever made here, from the approvals that verified.
    out.doc.erase(kTokenGroupsField);
    if (any_groups) out.doc[kTokenGroupsField] = groups;
    return out;
}

}  // namespace jg::fleet
