// The node agent and trust (design.md §7.3): which fleet policy version it
// runs and whether that version is still signed by a listed signer, what a
// change of [fleet] signers does to the documents already held, and the
// refusal of an older signed version written back over a newer one.
#include <fmt/format.h>

#include "core/text.h"
#include "fleet/agent.h"
#include "util/log.h"

namespace jg::fleet {

void Agent::adopt_policy(const KeyValue& kv) {
    auto j = parse_object(kv.value, "policy document");
    if (!j) return reject("policy_rejected", kv, j.error());
    // Run only what a listed signer pushed (design.md §7.3).
    if (auto why = trust_.refusal(kSigPolicy, *j)) return reject("policy_rejected", kv, *why, &*j);
    auto doc = parse_policy_json(*j);
    if (!doc) return reject("policy_rejected", kv, doc.error(), &*j);
    if (doc->version == policy_version_) {
        // The version running, as a listed signer signed it: what a later
        // change of signers judges it by.
        running_signed_ = std::move(*j);
        return;
    }
    if (doc->version < policy_version_)
        return reject("policy_rejected", kv,
                      fmt::format("its version {} is older than the version {} this node runs", doc->version,
                                  policy_version_));
    PolicyLoad load = parse_fleet_policy(doc->text, doc->file.empty() ? "fleet-policy" : doc->file);
    if (!load.ok()) {
        std::string why;
        for (auto& e : load.errors) why += (why.empty() ? "" : "; ") + e;
        return reject("policy_rejected", kv, why);
    }
    if (!on_policy_(*doc, load.policy, *j))
        return reject("policy_rejected", kv, "this node could not apply it (see its log)");
    policy_version_ = doc->version;
    running_signed_ = std::move(*j);
    if (!policy_distrust_.empty())
        log(fmt::format("fleet: policy version {} is signed by a listed signer: new grants are applied again",
                        policy_version_));
    policy_distrust_.clear();
    view_.policy = Held<PolicyDoc>{*doc, kv.mod_revision};
    recheck_all_ = true;
    ack_dirty_ = true;
}

void Agent::signers_changed() {
    reverify_ = true;
    // Judged now when its signed document is known; else by the full read.
    if (running_signed_.is_object()) judge_running_policy();
}

void Agent::judge_running_policy() {
    std::string why;
    if (policy_version_ == 0) {
        // None run yet: nothing to trust.
    } else if (!running_signed_.is_object()) {
        why = "this node does not hold its signed document and etcd holds none that verifies";
    } else if (auto v = running_signed_.value("version", json());
               !v.is_number_integer() || v.get<std::int64_t>() != policy_version_) {
        why = "the signed document this node holds is of another version";
    } else if (auto r = trust_.refusal(kSigPolicy, running_signed_)) {
        why = *r;
    }
    const bool was = !policy_distrust_.empty();
    if (why.empty()) {
        policy_distrust_.clear();
        if (was) {
            log(fmt::format("fleet: policy version {} verifies again: new grants are applied again",
                            policy_version_));
            recheck_all_ = true;
        }
        return;
    }
    policy_distrust_ = fmt::format(
        "the fleet policy version {} this node runs is not signed by a key [fleet] signers lists ({}): "
        "its ports stay protected, but no new grant is applied or decided on this node until a version "
        "signed by a listed signer is pushed (jitgate policy push)",
        policy_version_, why);
    if (was) return;
    log(fmt::format("fleet: {}", escape_terminal(policy_distrust_)));
    audit_.emit({{"type", "policy_rejected"}, {"version", policy_version_}, {"reason", policy_distrust_}});
    ack_dirty_ = true;
}

std::optional<std::string> Agent::replayed(const GrantDoc& d, const Held<GrantDoc>* held) const {
    if (!held) return std::nullopt;
    const GrantRow &was = held->doc.row, &now = d.row;
    // Another grant under a reused id is not this one (reconcile ends the old).
    if (was.user != now.user || was.port != now.port || was.proto != now.proto || was.src != now.src ||
        was.start_us != now.start_us)
        return std::nullopt;
    if (was.state == "active" || now.state != "active") return std::nullopt;
    return fmt::format(
        "it is an older version of grant {}, which this node saw end ({}): an ended grant never starts "
        "again (an old document written back)",
        now.id, was.state);
}

std::optional<std::string> reopened(const RequestRow& was, const RequestRow& now) {
    if (was.state == "pending" || now.state != "pending" || was.user != now.user || was.port != now.port ||
        was.created_us != now.created_us)
        return std::nullopt;
    return fmt::format(
        "it is an older version of request {}, which this node saw decided ({}): a decided request is "
        "never pending again (an old document written back)",
        now.id, was.state);
}

}  // namespace jg::fleet
