#pragma once
// The TOML policy (design.md §2): which ports are protected, who approves.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/keys.h"
#include "core/limits.h"
#include "core/selector.h"

namespace jg {

// An approver or an auto-approve subject: a user name, or a group as "@name".
struct Principal {
    bool is_group = false;
    std::string name;
    std::string text() const { return is_group ? "@" + name : name; }
};

struct AutoApprove {
    Principal who;
    std::int64_t max_duration_s = 0;
};

// break_glass_max when a port says nothing (capped by its max_duration).
inline constexpr std::int64_t kDefaultBreakGlassMaxSeconds = 15 * 60;

// warn_before when a port says nothing.
inline constexpr std::int64_t kDefaultWarnBeforeSeconds = 5 * 60;

struct PortPolicy {
    std::string name;
    std::uint16_t port = 0;
    bool tcp = true;
    bool udp = false;
    bool audit = false;  // mode = "audit"
    bool drain = false;  // on_expiry = "drain"
    std::int64_t max_duration_s = 3600;
    std::vector<Principal> approvers;
    int approvals_required = 1;
    bool self_approve = false;
    bool require_reason = true;
    std::int64_t request_ttl_s = 900;
    // warn_before: an expiry_warning record this long before a grant ends,
    // for grants that last longer than this (a shorter one's grant record
    // already says when it ends); "0s" = no warnings.
    std::int64_t warn_before_s = kDefaultWarnBeforeSeconds;
    std::vector<AutoApprove> auto_approve;
    // allow_prefix = { ipv4 = 24, ipv6 = 64 }: the widest network (shortest
    // prefix) a `request --from` may name, per family; unset = single hosts only.
    std::optional<int> allow_prefix_v4, allow_prefix_v6;
    // Break-glass (granted at once, reviewed after the fact): the longest it
    // may last, 0 = not on this port; and who may use it: unset = the port's approvers,
    // an empty list = nobody.
    std::int64_t break_glass_max_s = kDefaultBreakGlassMaxSeconds;
    std::optional<std::vector<Principal>> break_glass;
    // service_users: who may bind the port (core/service_users.h).
    // service_system: "system" is listed, or the key is absent (the default):
    // root and the accounts below UID_MIN of /etc/login.defs.
    bool service_system = true;
    std::vector<Principal> service_users;
    // Fleet (design.md §7): the nodes the port is for (every label must
    // match; empty: all), and whether its grants end when the node has been
    // cut off from etcd for [fleet] grace (fleet_mode = "strict").
    Labels hosts;
    bool strict = false;
    int line = 0;

    bool covers(Proto p) const { return p == Proto::Tcp ? tcp : udp; }
    std::string proto_text() const { return tcp && udp ? "both" : tcp ? "tcp" : "udp"; }
};

// [daemon] max_grants: how many grants each of the three grant maps (local
// users, remote hosts, remote networks) holds.  Read at start only: a pinned
// map keeps the size it was made with.
inline constexpr std::uint32_t kDefaultMaxGrants = 65536;
inline constexpr std::uint32_t kMinMaxGrants = 16;
inline constexpr std::uint32_t kMaxMaxGrants = 4194304;
// Enough rows to read every grant the three grant maps can hold at once.
inline constexpr int kEveryActiveGrant = 3 * int(kMaxMaxGrants);

struct DaemonSettings {
    std::optional<std::string> cgroup, bpffs, socket, state_dir, audit_log;
    std::vector<std::string> xdp_interfaces;     // distinct names, in file order
    std::vector<Principal> auditors;             // may read every audit record; distinct
    std::optional<std::string> metrics_address;  // HTTP /metrics on loopback ("127.0.0.1:9464")
    RequestLimits limits;                        // caps, rate, retention, free space
    std::uint32_t max_grants = kDefaultMaxGrants;
};

// [fleet] (design.md §7): the node's place in a fleet; no etcd endpoints:
// a single host.
struct FleetSettings {
    std::vector<std::string> etcd;  // endpoint URLs
    std::string node;               // empty: the host name
    Labels labels;
    std::string prefix = "/jitgate/v1";
    std::int64_t grace_s = 15;
    std::string ca_file, cert_file, key_file, user, password_file;
    // design.md §7.3: the keys whose documents this node accepts, "NODE:BASE64KEY".
    std::vector<std::string> signers;
    bool enabled() const { return !etcd.empty(); }
};

// [identity.oidc] (design.md §8): the OpenID provider whose ID tokens
// jitgated accepts on its socket; no issuer: tokens are refused.
struct OidcSettings {
    std::string issuer;     // https (http only on loopback); compared exactly with iss
    std::string client_id;  // the public client jitgate-web and jitgate login use
    std::string audience;   // the aud a token must hold (default client_id)
    std::string username_claim = "preferred_username";
    std::string groups_claim = "groups";
    std::string jwks_file;  // the keys from this file, not from the issuer's discovery
    bool enabled() const { return !issuer.empty(); }
    bool operator==(const OidcSettings&) const = default;
};

struct Policy {
    DaemonSettings daemon;
    FleetSettings fleet;
    OidcSettings oidc;
    std::vector<PortPolicy> ports;

    const PortPolicy* find(std::uint16_t port, Proto proto) const;
};

struct PolicyLoad {
    Policy policy;
    std::vector<std::string> errors;  // each "FILE:LINE: message"
    bool ok() const { return errors.empty(); }
};

// A name the kernel could give a network interface (dev_valid_name).
bool valid_ifname(std::string_view name);

// Parses and validates a policy document; `file` only names it in errors.
PolicyLoad parse_policy(std::string_view text, std::string_view file);
// A fleet policy (jitgate policy push): [[port]] tables only; [daemon] and
// [fleet] are each node's own and refused here.
PolicyLoad parse_fleet_policy(std::string_view text, std::string_view file);
// Reads and parses a policy file; an unreadable file is one error.
PolicyLoad load_policy_file(const std::string& path);

// Names in a valid policy that `exists` does not know (approvers, auto_approve,
// break_glass, service_users, auditors): not errors, as a directory service may add them
// later, but each likely a typo that leaves a port without approvers.  One
// sentence each, "port 'db' (line 4): approver 'alcie' is not a user on this host; ...".
std::vector<std::string> unknown_principals(const Policy& p,
                                            const std::function<bool(const Principal&)>& exists);
// Whether this host's user or group database (NSS) knows the name.
bool host_knows(const Principal& who);

}  // namespace jg
