// The fleet policy's versions in etcd (design.md §7): pushed by root on any
// node, adopted by every node from its watch (fleet/agent).
#include <fmt/format.h>

#include "core/protocol.h"
#include "fleet/ledger.h"

namespace jg::fleet {

Reply Ledger::policy_push(const Caller& c, const PolicyPushArgs& a) {
    if (c.uid != 0)
        return Reply::fail(code::kForbidden,
                           "only root on a node of the fleet may push the fleet policy (run it with sudo)");
    PolicyLoad load = parse_fleet_policy(a.text, a.file);
    if (!load.ok()) {
        std::string why;
        for (auto& e : load.errors) why += (why.empty() ? "" : "\n") + e;
        return Reply::fail(code::kInvalid, why);
    }
    const std::string key = policy_key(c_.prefix);
    for (int attempt = 0; attempt < 4; ++attempt) {
        auto cur = etcd_.get(key);
        if (!cur) return unreachable("policy push", cur.error());
        std::int64_t version = 0, rev = 0;
        if (*cur) {
            rev = (*cur)->mod_revision;
            // A version that does not parse is replaced, above the revision it had.
            auto d = parse_policy_doc((*cur)->value);
            version = d ? d->version : (*cur)->version;
        }
        PolicyDoc doc{version + 1, a.text, a.file, c.user, clock_.wall_us()};
        json signed_doc = policy_doc(doc);
        trust_.sign(kSigPolicy, signed_doc);  // design.md §7.3: no node runs an unsigned version
        const std::string value = signed_doc.dump();
        if (value.size() > kMaxDocBytes)
            return Reply::fail(
                code::kInvalid,
                fmt::format("{} is too large to store: as a document it takes {} bytes, at most {} "
                            "fit; shorten it (comments, long lists)",
                            a.file, value.size(), kMaxDocBytes));
        auto txn = etcd_.txn({{key, rev ? Compare::Target::Mod : Compare::Target::Create, rev, {}}},
                             {{TxnOp::Kind::Put, key, value, 0}});
        if (!txn) return unreachable("policy push", txn.error());
        if (!txn->succeeded) continue;
        audit_.emit({{"type", "policy_reload"},
                     {"ok", true},
                     {"uid", c.uid},
                     {"user", c.user},
                     {"pushed", true},
                     {"version", doc.version},
                     {"ports", load.policy.ports.size()},
                     {"file", a.file}});
        return Reply::success({{"version", doc.version},
                               {"ports", load.policy.ports.size()},
                               {"revision", txn->revision},
                               {"node", c_.node}});
    }
    return Reply::fail(code::kConflict,
                       "the fleet policy was pushed from other nodes at the same time; try again");
}

Reply Ledger::policy_show(const Caller&) {
    auto cur = etcd_.get(policy_key(c_.prefix));
    if (!cur) return unreachable("policy show", cur.error());
    if (!*cur)
        return Reply::fail(code::kNotFound,
                           "the fleet has no policy yet: store one with `jitgate policy push FILE`");
    auto d = parse_policy_doc((*cur)->value);
    if (!d)
        return Reply::fail(code::kInternal,
                           fmt::format("the fleet policy in etcd is not valid: {}", d.error()));
    json names = json::array();
    PolicyLoad load = parse_fleet_policy(d->text, d->file);
    for (const auto& p : load.policy.ports) names.push_back(p.name);
    json out = {{"version", d->version},
                {"file", d->file},
                {"pushed_by", d->pushed_by},
                {"pushed_at", rfc3339_us(d->pushed_at_us)},
                {"text", d->text},
                {"ports", names},
                {"running", view_.policy ? view_.policy->doc.version : 0}};
    if (!load.ok()) out["errors"] = load.errors;
    return Reply::success(out);
}

}  // namespace jg::fleet
