#include "core/service_users.h"
#include "core/nss_buffer.h"

#include <fmt/format.h>
#include <grp.h>
#include <pwd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <sstream>

namespace jg {

namespace {

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
    return s;
}

// A whole hexadecimal field of /proc/net (no prefix, no sign).
template <typename T>
bool hex(std::string_view s, T& out) {
    if (s.empty()) return false;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out, 16);
    return ec == std::errc() && end == s.data() + s.size();
}

std::vector<std::string_view> fields(std::string_view line) {
    std::vector<std::string_view> out;
    std::size_t i = 0;
    while (i < line.size()) {
        while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
        const std::size_t start = i;
        while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
        if (i > start) out.push_back(line.substr(start, i - start));
    }
    return out;
}

// "0100007F:1538" (tcp) or 32 hex digits and a port (tcp6): the address as
// the kernel printed it, each 32-bit word in this host's byte order, so the
// words are stored back as they were in memory.
bool local_address(std::string_view text, bool v6, Addr16& addr, std::uint16_t& port) {
    const auto colon = text.find(':');
    if (colon == std::string_view::npos || !hex(text.substr(colon + 1), port)) return false;
    const std::string_view a = text.substr(0, colon);
    const std::size_t words = v6 ? 4 : 1;
    if (a.size() != words * 8) return false;
    std::uint32_t w[4] = {};
    for (std::size_t i = 0; i < words; ++i)
        if (!hex(a.substr(i * 8, 8), w[i])) return false;
    addr = Addr16{};
    if (v6) {
        std::memcpy(addr.data(), w, 16);
    } else {
        addr[10] = addr[11] = 0xff;
        std::memcpy(addr.data() + 12, &w[0], 4);
    }
    return true;
}

std::string read_file(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

}  // namespace

std::uint32_t parse_uid_min(std::string_view text) {
    std::uint32_t out = kDefaultUidMin;
    while (!text.empty()) {
        const auto nl = text.find('\n');
        std::string_view line = trim(text.substr(0, nl));
        text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
        const auto f = fields(line);
        if (f.size() < 2 || f[0] != "UID_MIN") continue;
        std::uint64_t v = 0;
        auto [end, ec] = std::from_chars(f[1].data(), f[1].data() + f[1].size(), v);
        if (ec == std::errc() && end == f[1].data() + f[1].size() && v >= 1 && v <= (1ull << 31))
            out = static_cast<std::uint32_t>(v);
    }
    return out;
}

std::uint32_t read_uid_min(const std::string& path) { return parse_uid_min(read_file(path)); }

std::optional<std::uint32_t> HostAccounts::uid_of(const std::string& user) {
    std::vector<char> buf;
    passwd pw{}, *res = nullptr;
    if (nss_lookup(buf, _SC_GETPW_R_SIZE_MAX,
                   [&](char* b, std::size_t n) { return getpwnam_r(user.c_str(), &pw, b, n, &res); }) == 0 &&
        res)
        return pw.pw_uid;
    return std::nullopt;
}

std::optional<std::string> HostAccounts::name_of(std::uint32_t uid) {
    std::vector<char> buf;
    passwd pw{}, *res = nullptr;
    if (nss_lookup(buf, _SC_GETPW_R_SIZE_MAX,
                   [&](char* b, std::size_t n) { return getpwuid_r(uid, &pw, b, n, &res); }) == 0 &&
        res)
        return std::string(pw.pw_name);
    return std::nullopt;
}

std::optional<std::vector<std::uint32_t>> HostAccounts::group_members(const std::string& name) {
    // A group of thousands does not fit a small buffer: nss_lookup grows it.
    std::vector<char> buf;
    group gr{}, *res = nullptr;
    const int e = nss_lookup(buf, _SC_GETGR_R_SIZE_MAX, [&](char* b, std::size_t n) {
        return getgrnam_r(name.c_str(), &gr, b, n, &res);
    });
    if (e != 0 || !res) return std::nullopt;
    std::vector<std::uint32_t> out;
    for (char** m = gr.gr_mem; m && *m; ++m)
        if (auto uid = uid_of(*m)) out.push_back(*uid);
    // Members by primary group are not listed in the group entry.  On ERANGE
    // getpwent_r keeps its place, so the same entry is asked again with a
    // larger buffer (nss_lookup) rather than ending the walk early.
    setpwent();
    std::vector<char> pbuf;
    passwd pw{}, *pres = nullptr;
    while (nss_lookup(pbuf, _SC_GETPW_R_SIZE_MAX,
                      [&](char* b, std::size_t n) { return getpwent_r(&pw, b, n, &pres); }) == 0 &&
           pres)
        if (pw.pw_gid == gr.gr_gid) out.push_back(pw.pw_uid);
    endpwent();
    return out;
}

BindRules resolve_service_users(const Policy& p, std::uint32_t uid_min, AccountDb& db) {
    BindRules out;
    for (const auto& pp : p.ports) {
        BindRule rule;
        rule.below = pp.service_system ? uid_min : 0;
        for (const auto& who : pp.service_users) {
            if (!who.is_group) {
                if (auto uid = db.uid_of(who.name)) rule.uids.insert(*uid);
                continue;
            }
            if (auto members = db.group_members(who.name))
                for (auto uid : *members) rule.uids.insert(uid);
        }
        // Those the threshold admits need no entry of their own.
        std::erase_if(rule.uids, [&](std::uint32_t uid) { return uid == 0 || uid < rule.below; });
        for (Proto pr : {Proto::Tcp, Proto::Udp})
            if (pp.covers(pr)) out[{pp.port, pr}] = rule;
    }
    return out;
}

std::size_t bind_user_entries(const BindRules& rules) {
    std::size_t n = 0;
    for (const auto& [key, rule] : rules) n += rule.uids.size();
    return n;
}

std::vector<Listener> parse_proc_net(std::string_view text, Proto proto, bool v6) {
    constexpr std::string_view kTcpListen = "0A";
    std::vector<Listener> out;
    bool header = true;
    while (!text.empty()) {
        const auto nl = text.find('\n');
        const std::string_view line = text.substr(0, nl);
        text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
        if (header) {  // "  sl  local_address rem_address   st ..."
            header = false;
            continue;
        }
        const auto f = fields(line);
        // sl local rem st tx:rx tr:when retrnsmt uid ...
        if (f.size() < 8) continue;
        Listener l;
        l.proto = proto;
        if (!local_address(f[1], v6, l.addr, l.port) || l.port == 0) continue;
        if (proto == Proto::Tcp && f[3] != kTcpListen) continue;
        std::uint64_t uid = 0;
        auto [end, ec] = std::from_chars(f[7].data(), f[7].data() + f[7].size(), uid);
        if (ec != std::errc() || end != f[7].data() + f[7].size() || uid > 0xffffffffull) continue;
        l.uid = static_cast<std::uint32_t>(uid);
        out.push_back(l);
    }
    return out;
}

std::vector<Listener> read_listeners() {
    std::vector<Listener> out;
    const struct {
        const char* path;
        Proto proto;
        bool v6;
    } tables[] = {{"/proc/net/tcp", Proto::Tcp, false},
                  {"/proc/net/tcp6", Proto::Tcp, true},
                  {"/proc/net/udp", Proto::Udp, false},
                  {"/proc/net/udp6", Proto::Udp, true}};
    for (const auto& t : tables)
        for (auto& l : parse_proc_net(read_file(t.path), t.proto, t.v6)) out.push_back(l);
    return out;
}

std::vector<std::string> impostor_warnings(const Policy& p, const BindRules& rules,
                                           const std::vector<Listener>& listeners, AccountDb& db) {
    std::vector<std::string> out;
    for (const auto& l : listeners) {
        auto rule = rules.find({l.port, l.proto});
        if (rule == rules.end() || rule->second.admits(l.uid)) continue;
        const PortPolicy* pp = p.find(l.port, l.proto);
        const auto name = db.name_of(l.uid);
        const std::string who =
            name ? fmt::format("user '{}' (uid {})", *name, l.uid) : fmt::format("uid {}", l.uid);
        // fmt, not "[" + std::string: GCC 12 -O3 reports a false -Wrestrict
        // for a literal prepended to a temporary (GCC bug 105329).
        const std::string addr =
            is_v4_mapped(l.addr) ? format_addr(l.addr) : fmt::format("[{}]", format_addr(l.addr));
        out.push_back(fmt::format(
            "port '{}' ({}/{}): {} {} on {}:{} but is not among the port's service_users, so clients may be "
            "talking to it instead of the service; stop that process, or add the user to service_users",
            pp ? pp->name : std::string("?"), l.port, proto_name(l.proto), who,
            l.proto == Proto::Tcp ? "listens" : "has a socket bound", addr, l.port));
    }
    return out;
}

}  // namespace jg
