#pragma once
// Who may serve a protected port (policy key service_users, design §1): the
// set of uids the bind hooks admit, and the listeners already on a protected
// port whose owner would not be admitted.  Pure logic; the host's account
// database and /proc come in through AccountDb and text.
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/keys.h"
#include "core/policy.h"

namespace jg {

// UID_MIN when /etc/login.defs does not set it (shadow's default).
inline constexpr std::uint32_t kDefaultUidMin = 1000;

// UID_MIN of a login.defs text: the last "UID_MIN <n>" line that is not a
// comment; kDefaultUidMin when there is none or it is not a number from 1
// to 2^31.
std::uint32_t parse_uid_min(std::string_view login_defs);
// The same, read from a file (kDefaultUidMin when it cannot be read).
std::uint32_t read_uid_min(const std::string& path = "/etc/login.defs");

// The account look-ups service_users needs (the host's NSS, or a fake).
class AccountDb {
public:
    virtual ~AccountDb() = default;
    virtual std::optional<std::uint32_t> uid_of(const std::string& user) = 0;
    // Every uid whose primary group it is or that is listed as a member;
    // nullopt when the group does not exist.
    virtual std::optional<std::vector<std::uint32_t>> group_members(const std::string& group) = 0;
    virtual std::optional<std::string> name_of(std::uint32_t uid) = 0;
};

// The host's passwd and group databases, read now (through NSS).
class HostAccounts : public AccountDb {
public:
    std::optional<std::uint32_t> uid_of(const std::string& user) override;
    std::optional<std::vector<std::uint32_t>> group_members(const std::string& group) override;
    std::optional<std::string> name_of(std::uint32_t uid) override;
};

// Who may bind one protected (port, proto): root always (it can remove the
// programs anyway, and many services bind as root before dropping
// privileges), every uid below `below` ("system"; 0 when not listed), and
// `uids`.
struct BindRule {
    std::uint32_t below = 0;
    std::set<std::uint32_t> uids;
    bool admits(std::uint32_t uid) const { return uid == 0 || uid < below || uids.count(uid) != 0; }
};

using BindRules = std::map<std::pair<std::uint16_t, Proto>, BindRule>;

// The rule of every protected (port, proto) of `p`, groups expanded now.
// Names the directory does not know admit nobody (policy check warns).
BindRules resolve_service_users(const Policy& p, std::uint32_t uid_min, AccountDb& db);
// How many jg_bind_users entries `rules` needs.
std::size_t bind_user_entries(const BindRules& rules);

// A socket bound to a local port, from /proc/net/{tcp,tcp6,udp,udp6}.
struct Listener {
    std::uint16_t port = 0;
    Proto proto = Proto::Tcp;
    std::uint32_t uid = 0;
    Addr16 addr{};  // local address, Addr16 form
};

// The listening TCP sockets (state LISTEN) or the bound UDP sockets of one
// /proc/net table's text; `v6`: the tcp6/udp6 layout.  Lines it cannot read
// are skipped.
std::vector<Listener> parse_proc_net(std::string_view text, Proto proto, bool v6);
// The four tables of the caller's network namespace.
std::vector<Listener> read_listeners();

// One sentence per listener on a protected port whose owner the port's
// service_users would not admit: the next bind of the real service there
// would be its first sign otherwise.
std::vector<std::string> impostor_warnings(const Policy& p, const BindRules& rules,
                                           const std::vector<Listener>& listeners, AccountDb& db);

}  // namespace jg
