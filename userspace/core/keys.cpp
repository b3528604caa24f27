#include "core/keys.h"

#include <arpa/inet.h>
#include <fmt/format.h>

#include <cstring>

namespace jg {

std::string_view proto_name(Proto p) { return p == Proto::Tcp ? "tcp" : "udp"; }

Result<Proto> parse_proto(std::string_view text) {
    if (text == "tcp") return Proto::Tcp;
    if (text == "udp") return Proto::Udp;
    return err(fmt::format("unknown protocol '{}': use tcp or udp", text));
}

Result<std::uint16_t> parse_port(std::string_view text) {
    if (text.empty() || text.size() > 5)
        return err(fmt::format("invalid port '{}': give a number from 1 to 65535", text));
    unsigned v = 0;
    for (char c : text) {
        if (c < '0' || c > '9')
            return err(fmt::format("invalid port '{}': give a number from 1 to 65535", text));
        v = v * 10 + unsigned(c - '0');
    }
    if (v < 1 || v > 65535) return err(fmt::format("invalid port '{}': give a number from 1 to 65535", text));
    return static_cast<std::uint16_t>(v);
}

Result<PortSpec> parse_port_spec(std::string_view text) {
    PortSpec spec;
    auto slash = text.find('/');
    auto port = parse_port(text.substr(0, slash));
    if (!port) return err(port.error());
    spec.port = *port;
    if (slash != std::string_view::npos) {
        auto proto = parse_proto(text.substr(slash + 1));
        if (!proto) return err(proto.error());
        spec.proto = *proto;
        spec.proto_given = true;
    }
    return spec;
}

bool is_v4_mapped(const Addr16& a) {
    static constexpr std::uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    return std::memcmp(a.data(), prefix, 12) == 0;
}

Result<Addr16> parse_addr(std::string_view text) {
    Addr16 out{};
    const std::string s(text);
    auto bad = [&] {
        return err(fmt::format("invalid address '{}': give one IPv4 or IPv6 host address", text));
    };
    if (s.empty() || s.size() > INET6_ADDRSTRLEN || s.find('\0') != std::string::npos) return bad();
    in_addr v4{};
    in6_addr v6{};
    if (inet_pton(AF_INET, s.c_str(), &v4) == 1) {
        out[10] = out[11] = 0xff;
        std::memcpy(out.data() + 12, &v4, 4);
        return out;
    }
    if (inet_pton(AF_INET6, s.c_str(), &v6) == 1) {
        std::memcpy(out.data(), &v6, 16);
        return out;  // v4-mapped input is already in the stored form
    }
    return bad();
}

std::string format_addr(const Addr16& a) {
    char buf[INET6_ADDRSTRLEN] = {};
    if (is_v4_mapped(a)) {
        inet_ntop(AF_INET, a.data() + 12, buf, sizeof(buf));
    } else {
        inet_ntop(AF_INET6, a.data(), buf, sizeof(buf));
    }
    return buf;
}

jg_uid_key make_uid_key(std::uint32_t uid, std::uint16_t port, Proto proto) {
    jg_uid_key k;
    std::memset(&k, 0, sizeof(k));
    k.uid = uid;
    k.port = port;
    k.proto = static_cast<std::uint8_t>(proto);
    return k;
}

jg_addr_key make_addr_key(const Addr16& addr, std::uint16_t port, Proto proto) {
    jg_addr_key k;
    std::memset(&k, 0, sizeof(k));
    std::memcpy(k.addr, addr.data(), 16);
    k.port = port;
    k.proto = static_cast<std::uint8_t>(proto);
    return k;
}

jg_grant_val make_grant_val(std::uint64_t expires_boot_ns, std::uint64_t grant_id) {
    jg_grant_val v;
    std::memset(&v, 0, sizeof(v));
    v.expires_ns = expires_boot_ns;
    v.grant_id = grant_id;
    return v;
}

jg_addr make_local_addr(const Addr16& addr) {
    jg_addr a;
    std::memcpy(a.addr, addr.data(), 16);
    return a;
}

}  // namespace jg
