#pragma once
// The documents the fleet keeps in etcd (design.md §7) and their keys under
// the prefix P:
//   P/ids                the id counter (decimal text): ids stay small and fleet-unique
//   P/policy             the fleet policy: {"version","text","file","pushed_by","pushed_at_us"}
//   P/requests/<id>      a request, 12-digit id so keys sort by id; an extension
//                        (jitgate extend) names its grant in "extends"
//   P/grants/<id>        a grant; a revocation is its state turning "revoked", an
//                        approved extension its expires_us moving later
//   P/nodes/<node>       lease-bound registration: {"node","labels","started_us"}
//   P/acks/<node>        what the node applied: {"node","labels","applied_revision","digest",
//                        "grants","policy_version","unresolved","time_us","audit_head"}
//   P/heads/<node>/<seq> the node's audit heads it published (20-digit seq), written once
//                        each: {"node","seq","hash","time_us","sig"} (core/audit_witness.h)
// Anything read from etcd is untrusted (anyone with write access to the
// prefix wrote it): parse_* validate every field and refuse the document
// with one sentence, and nothing refused is applied.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "core/result.h"
#include "core/selector.h"
#include "core/store.h"

namespace jg::fleet {

using json = nlohmann::json;

// A document's fleet-only fields, beside the row the workflow keeps.
struct Extras {
    std::string on;      // the selector's text: which nodes apply the grant
    std::string origin;  // the node that took the request
};

struct RequestDoc {
    RequestRow row;  // uid, approver_uids and the boot fields are this node's to fill
    Extras x;
};

struct GrantDoc {
    GrantRow row;  // uid, expires_boot_ns and boot_id are this node's to fill
    Extras x;
};

struct PolicyDoc {
    std::int64_t version = 0;
    std::string text, file, pushed_by;
    std::int64_t pushed_at_us = 0;
};

json request_doc(const RequestRow& r, const Extras& x);
json grant_doc(const GrantRow& g, const Extras& x);
json policy_doc(const PolicyDoc& p);
Result<RequestDoc> parse_request_doc(std::string_view text);
Result<GrantDoc> parse_grant_doc(std::string_view text);
Result<PolicyDoc> parse_policy_doc(std::string_view text);
// The same from a document parsed already (to check its signature first).
Result<json> parse_object(std::string_view text, const char* what);
// A key as a person may read it (at most 256 bytes, the rest as \xNN):
// etcd keys are bytes, and anyone with write access to the prefix chose them.
std::string printable_key(const std::string& key);
Result<RequestDoc> parse_request_json(const json& j);
Result<GrantDoc> parse_grant_json(const json& j);
Result<PolicyDoc> parse_policy_json(const json& j);

// Keys.
std::string ids_key(const std::string& prefix);
std::string policy_key(const std::string& prefix);
std::string request_key(const std::string& prefix, std::int64_t id);
std::string grant_key(const std::string& prefix, std::int64_t id);
std::string node_key(const std::string& prefix, const std::string& node);
std::string ack_key(const std::string& prefix, const std::string& node);
std::string heads_prefix(const std::string& prefix, const std::string& node);  // ends with '/'
std::string head_key(const std::string& prefix, const std::string& node, std::uint64_t seq);
// What a key under the prefix is, parsed.  kind: "requests", "grants",
// "nodes", "acks", "heads", "policy", "ids", or "" for anything else.
struct KeyName {
    std::string kind;
    std::int64_t id = 0;    // requests, grants
    std::string node;       // nodes, acks, heads
    std::uint64_t seq = 0;  // heads
};
KeyName parse_key(const std::string& prefix, std::string_view key);

// A request's approver groups that approvers' ID tokens gave (RequestRow::
// approver_token_groups): in request_doc's output and check_request's, an
// array parallel to "approvers" (null: approved without a token), present
// only when some approver used a token.  In etcd they travel inside each
// approval, under its signature (fleet/trust.h).
inline constexpr const char* kTokenGroupsField = "approver_token_groups";
inline constexpr std::size_t kMaxTokenGroups = 32;
inline constexpr std::size_t kMaxTokenGroupBytes = 128;

// A user name as the fleet carries it (resolved to a uid on each node).
inline constexpr std::size_t kMaxUserName = 64;
bool valid_user_name(std::string_view s);
// A document larger than this is refused (and never written).
inline constexpr std::size_t kMaxDocBytes = 64 * 1024;

}  // namespace jg::fleet
