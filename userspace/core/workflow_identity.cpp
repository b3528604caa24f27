// Who someone is and what they may see, as the workflow checks it when it
// matters, not as it was when recorded: approvals whose approver no longer
// qualifies, accounts whose uid was removed or given to someone else, and
// the scope of list, show and status.
#include <fmt/format.h>

#include <algorithm>

#include "core/audit.h"
#include "core/protocol.h"
#include "core/workflow.h"

namespace jg {

bool Workflow::sees_all(const Caller& c) {
    if (c.uid == 0) return true;
    for (const auto& a : policy_->daemon.auditors)
        if (matches(c, a)) return true;
    return false;
}

bool Workflow::concerns(const Caller& c, const json& row, ApproverCache* cache) {
    if (belongs_to(row, c.uid, c.user)) return true;
    const auto port = row.value("port", 0);
    const std::string proto_text = row.value("proto", "");
    auto proto = parse_proto(proto_text);
    if (port <= 0 || port > 65535 || !proto) return false;
    const std::pair<std::uint16_t, std::string> key{static_cast<std::uint16_t>(port), proto_text};
    if (cache)
        if (auto it = cache->find(key); it != cache->end()) return it->second;
    const PortPolicy* p = policy_->find(key.first, *proto);
    const bool approves = p && is_approver(c, *p);
    if (cache) (*cache)[key] = approves;
    return approves;
}

std::optional<std::vector<std::string>> Workflow::token_approver_groups(const Caller& c,
                                                                        const PortPolicy& p) {
    if (!c.token) return std::nullopt;
    std::vector<std::string> out;
    for (const auto& a : p.approvers)
        if (a.is_group && matches(c, a)) out.push_back(a.name);
    return out;
}

int Workflow::drop_lapsed(RequestRow& r, const PortPolicy& p, const Caller* current) {
    r.approver_uids.resize(r.approvers.size(), kNoUid);
    r.approver_token_groups.resize(r.approvers.size());
    std::vector<std::string> kept_names;
    std::vector<std::uint32_t> kept_uids;
    std::vector<std::optional<std::vector<std::string>>> kept_groups;
    std::vector<json> lapsed;
    for (std::size_t i = 0; i < r.approvers.size(); ++i) {
        const std::string& name = r.approvers[i];
        const std::uint32_t uid = r.approver_uids[i];
        // Approved with an ID token: in the approver groups the token gave
        // then (the host's groups may not hold a token's user at all).
        Caller then{uid, 0, name};
        if (const auto& g = r.approver_token_groups[i]) then.token = TokenAuth{{}, {}, *g};
        std::string why;
        if (uid == kNoUid) {
            why = fmt::format(
                "{}'s approval was recorded before jitgate kept approvers' uids, so it cannot be checked",
                name);
        } else if (auto same = dir_.is_account(uid, name); !same) {
            why = fmt::format("the user database could not confirm {}'s account (uid {})", name, uid);
        } else if (!*same) {
            why = fmt::format("{}'s account was removed (uid {} is no longer {})", name, uid, name);
        } else if (!is_approver(
                       current && i + 1 == r.approvers.size() && current->uid == uid && current->user == name
                           ? *current
                           : then,
                       p)) {
            why = fmt::format("{} is no longer an approver of port '{}'", name, p.name);
        } else if (uid == r.uid && !p.self_approve) {
            why = fmt::format("port '{}' no longer lets requesters approve their own requests", p.name);
        }
        if (why.empty()) {
            kept_names.push_back(name);
            kept_uids.push_back(uid);
            kept_groups.push_back(r.approver_token_groups[i]);
            continue;
        }
        json ev = base_event("approval_lapsed", nullptr);
        if (uid != kNoUid) ev["uid"] = uid;
        ev["user"] = name;
        ev.update(
            {{"request_id", r.id}, {"port", r.port}, {"proto", proto_name(r.proto)}, {"requester", r.user}});
        if (!r.src.empty()) ev["src"] = r.src;
        ev["reason"] = why;
        lapsed.push_back(std::move(ev));
    }
    r.approvers = std::move(kept_names);
    r.approver_uids = std::move(kept_uids);
    r.approver_token_groups = std::move(kept_groups);
    for (auto& ev : lapsed) {
        ev["approvers"] = r.approvers;  // the approvals that still count
        ev["approvals_required"] = p.approvals_required;
        audit_.emit(std::move(ev));
    }
    return static_cast<int>(lapsed.size());
}

int Workflow::recheck_approvals() {
    int n = 0;
    for (auto& r : value_or_throw(store_.requests("pending", 1 << 20))) {
        if (r.approvers.empty()) continue;
        const PortPolicy* p = policy_->find(r.port, r.proto);
        if (!p) continue;  // end_unprotected rejects it
        if (const int lapsed = drop_lapsed(r, *p)) {
            value_or_throw(
                store_.put_request(r));  // still pending, whatever is left: a reload grants nothing
            n += lapsed;
        }
    }
    return n;
}

int Workflow::end_removed_accounts(int max_accounts) {
    auto accounts =
        value_or_throw(store_.accounts_after(account_cursor_.first, account_cursor_.second, max_accounts));
    // The next call goes on after the last one checked, or from the start.
    account_cursor_ = static_cast<int>(accounts.size()) < max_accounts
                          ? std::pair<std::uint32_t, std::string>{0, ""}
                          : accounts.back();
    int n = 0;
    for (const auto& [uid, user] : accounts) {
        // An unanswered lookup ends nothing: the next pass asks again.
        if (dir_.is_account(uid, user).value_or(true)) continue;
        auto grants = value_or_throw(store_.active_grants_of(uid, user));
        if (!grants.empty()) value_or_throw(end_grants(grants, "revoked", "account_removed", nullptr));
        n += static_cast<int>(grants.size());
        for (auto& r : value_or_throw(store_.pending_requests_of(uid, user))) {
            r.decision_reason = "the requester's account was removed";
            value_or_throw(close_request(r, "rejected", "account_removed", nullptr,
                                         {{"duration_s", r.duration_s}, {"reason", r.decision_reason}}));
            ++n;
        }
    }
    return n;
}

}  // namespace jg
