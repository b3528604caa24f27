#pragma once
// Signed documents (design.md §7.3): write access to etcd is not access to
// a port.  Every document a node writes carries `signer` (the node's name)
// and `sig`, an Ed25519 signature over the document without `sig` in the
// canonical form of the audit chain (keys sorted, no whitespace), preceded
// by a line naming its kind so that a signature made for one kind of
// document never passes for another.  A request carries two more kinds of
// signature, so that what was said is attributable to who said it even when
// a later writer's signature is missing:
//   origin_sig        its origin node's, over the fields fixed at creation
//                     (who asks for what, why, until when);
//   approvals[i].sig  the node's where approver i acted, over those fields,
//                     the approver's name and, when they approved with an ID
//                     token, the port's approver groups it gave
//                     (approvals[i].groups: what a later approval rechecks
//                     them against, as on one host).
// An approval that does not verify is not counted; a request whose own
// signature fails may still be approved while it is pending (its decision
// fields dropped), but only with the approvals that verify.
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/ed25519.h"
#include "core/result.h"
#include "fleet/node_key.h"

namespace jg::fleet {

using json = nlohmann::json;

// The kinds of signed text.
inline constexpr const char* kSigGrant = "grant";
inline constexpr const char* kSigRequest = "request";
inline constexpr const char* kSigPolicy = "policy";
// A node's ack (acks/NODE): what it applied, signed by that node itself,
// since `--wait` and `jitgate nodes` report from it.
inline constexpr const char* kSigAck = "ack";

// The bytes a signature covers: "jitgate/v1 KIND\n" and the canonical
// document without `sig`; nothing when the document holds invalid UTF-8.
std::optional<std::string> signed_text(std::string_view kind, const json& doc);

// A request document as checked: what may be counted, and what was not.
struct CheckedRequest {
    json doc;            // the document as it counts (unverified approvals removed)
    std::string note;    // what was dropped, empty when everything verified
    std::string signer;  // whose whole-document signature verified (empty: none did)
};

class Trust {
public:
    Trust(std::string node, Ed25519Key key, std::vector<Signer> signers)
        : node_(std::move(node)), key_(std::move(key)) {
        set_signers(std::move(signers));
    }

    const std::string& node() const { return node_; }
    const Ed25519Key& key() const { return key_; }
    void set_key(Ed25519Key k) { key_ = std::move(k); }
    void set_signers(std::vector<Signer> s);
    // Whom refusal() trusts, as one value: SHA-256 (hex) over every listed
    // signer's node and key in a fixed order.  Equal for the same list in
    // any order, and different for any other (fleet/verified.h).
    const std::string& fingerprint() const { return fingerprint_; }
    // Whether `pub` is listed for `node`.
    bool listed(const std::string& node, const Ed25519Public& pub) const;
    bool own_key_listed() const { return listed(node_, key_.public_key()); }

    // `doc` signed by this node: its `signer` and `sig` set.
    void sign(std::string_view kind, json& doc) const;
    // Why `doc` is not signed by a listed signer; nothing when it is.
    std::optional<std::string> refusal(std::string_view kind, const json& doc) const;

    // A request document as this node writes it: the origin's signature
    // (this node's when `prior` has none: a new request), each approval's
    // (kept from `prior` when it names the same approver, this node's for
    // a new one, with its entry of the document's approver_token_groups
    // moved into it), then the whole document's.  `prior`: the document as
    // read (null: none).
    void seal_request(json& doc, const json& prior) const;
    // A request document read from etcd, checked: refused (with why) when
    // its origin's signature fails, or when its own fails and it is no
    // longer pending.  Its approver_token_groups is made from the approvals
    // kept (whatever the document said), parallel to its approvers.
    Result<CheckedRequest> check_request(const json& doc) const;

private:
    // Whether `sig` by a key listed for `who` covers `text`.
    bool verifies(const std::string& who, const std::string& text, const std::string& sig) const;

    std::string node_;
    Ed25519Key key_;
    std::vector<Signer> signers_;
    std::string fingerprint_;
};

// Why `ack` is not node `node`'s own ack, signed by that node's listed key
// (another listed node's signature does not do); nothing when it is.
std::optional<std::string> ack_refusal(const Trust& trust, const std::string& node, const json& ack);

// The fields of a request fixed when it is made (what origin_sig covers).
json request_base(const json& doc);
// Signers entries parsed (each already checked where the file was read).
Result<std::vector<Signer>> parse_signers(const std::vector<std::string>& entries);

}  // namespace jg::fleet
