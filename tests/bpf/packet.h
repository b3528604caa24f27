#pragma once
// A fluent builder for crafted test frames: Ethernet, VLAN tags, IPv4 (with
// options, fragments), IPv6 (with extension headers), TCP/UDP ports.  It
// remembers what it was given (addresses, transport, destination port), so a
// test can expect exactly those in what a program reports.
#include <arpa/inet.h>

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

namespace jgtest {

// Wire values the tests spell frames with.
namespace wire {
constexpr std::uint16_t kIPv4 = 0x0800, kIPv6 = 0x86DD, kArp = 0x0806;
constexpr std::uint16_t kQ = 0x8100, kAd = 0x88A8, kQ9100 = 0x9100;  // VLAN TPIDs
constexpr std::uint8_t kTcp = 6, kUdp = 17, kIcmp = 1, kIcmp6 = 58;
constexpr std::uint8_t kHop = 0, kRouting = 43, kFrag = 44, kDest = 60, kAh = 51;  // IPv6 next headers
constexpr std::uint16_t kMF = 0x2000;                                              // IPv4 more-fragments bit
constexpr std::size_t kL3 = 14;  // IPv4/IPv6 header offset in an untagged frame
constexpr std::uint8_t kFin = 0x01, kSyn = 0x02, kRst = 0x04, kAck = 0x10;  // TCP flags
}  // namespace wire

class Packet {
public:
    Packet& eth(std::uint16_t ethertype) {
        bytes_.insert(bytes_.end(), 12, 0x02);  // dst, src MAC
        put16(ethertype);
        return *this;
    }
    Packet& vlan(std::uint16_t tpid, std::uint16_t vid, std::uint16_t inner_type) {
        // Rewrites the previous ethertype to `tpid`, then the tag.
        bytes_[bytes_.size() - 2] = std::uint8_t(tpid >> 8);
        bytes_[bytes_.size() - 1] = std::uint8_t(tpid);
        put16(vid);
        put16(inner_type);
        return *this;
    }
    // IPv4 header; `options` bytes (a multiple of 4) after it.
    Packet& ipv4(const char* src, const char* dst, std::uint8_t proto, std::uint16_t frag_field = 0,
                 std::size_t options = 0) {
        l3_ = bytes_.size();
        const std::uint8_t ihl = std::uint8_t(5 + options / 4);
        bytes_.push_back(std::uint8_t(0x40 | ihl));
        bytes_.push_back(0);
        put16(0);  // total length, fixed by finish()
        put16(0x1234);
        put16(frag_field);
        bytes_.push_back(64);
        bytes_.push_back(proto);
        put16(0);
        in_addr a{};
        inet_pton(AF_INET, src, &a);
        append(&a, 4);
        inet_pton(AF_INET, dst, &a);
        append(&a, 4);
        for (std::size_t i = 0; i < options; ++i) bytes_.push_back(i + 1 == options ? 0 : 1);  // NOPs, EOL
        v4_ = true;
        src_ = src;
        dst_ = dst;
        return *this;
    }
    Packet& ipv6(const char* src, const char* dst, std::uint8_t nexthdr) {
        l3_ = bytes_.size();
        put16(0x6000);
        put16(0);
        put16(0);  // payload length, fixed by finish()
        bytes_.push_back(nexthdr);
        bytes_.push_back(64);
        in6_addr a{};
        inet_pton(AF_INET6, src, &a);
        append(&a, 16);
        inet_pton(AF_INET6, dst, &a);
        append(&a, 16);
        v4_ = false;
        src_ = src;
        dst_ = dst;
        return *this;
    }
    // A generic IPv6 extension header (hop-by-hop, routing, dest opts) of
    // 8 * (1 + len_units) bytes: Hdr Ext Len counts 8-byte units after the first.
    Packet& ext6(std::uint8_t nexthdr, std::uint8_t len_units = 0) {
        bytes_.push_back(nexthdr);
        bytes_.push_back(len_units);
        bytes_.insert(bytes_.end(), 6 + 8 * std::size_t(len_units), 0);
        return *this;
    }
    // An IPv6 Authentication Header with a 4-byte ICV: 16 bytes, whose Payload
    // Len counts 4-byte units minus 2 (RFC 4302), unlike the other headers.
    Packet& ah6(std::uint8_t nexthdr) {
        bytes_.push_back(nexthdr);
        bytes_.push_back(2);  // (16 / 4) - 2
        bytes_.insert(bytes_.end(), 14, 0);
        return *this;
    }
    Packet& frag6(std::uint8_t nexthdr, std::uint16_t offset_units, bool more) {
        bytes_.push_back(nexthdr);
        bytes_.push_back(0);
        put16(std::uint16_t(offset_units << 3 | (more ? 1 : 0)));
        put16(0xabcd);
        put16(0x0001);
        return *this;
    }
    Packet& ports(std::uint16_t sport, std::uint16_t dport) {
        put16(sport);
        put16(dport);
        sport_ = sport;
        dport_ = dport;
        return *this;
    }
    // A TCP header; flags default to SYN.
    Packet& tcp(std::uint16_t sport, std::uint16_t dport, std::uint8_t flags = wire::kSyn) {
        l4_ = wire::kTcp;
        ports(sport, dport);
        bytes_.insert(bytes_.end(), 16, 0);
        bytes_[bytes_.size() - 8] = 0x50;  // data offset 5
        bytes_[bytes_.size() - 7] = flags;
        return *this;
    }
    Packet& udp(std::uint16_t sport, std::uint16_t dport) {
        l4_ = wire::kUdp;
        ports(sport, dport);
        put16(8);
        put16(0);
        return *this;
    }
    Packet& payload(std::size_t n) {
        bytes_.insert(bytes_.end(), n, 0xaa);
        return *this;
    }
    Packet& truncate(std::size_t n) {
        bytes_.resize(n);
        return *this;
    }
    // Overwrites one byte already written (a malformed field, say).
    Packet& set(std::size_t offset, std::uint8_t value) {
        bytes_.at(offset) = value;
        return *this;
    }
    // The IPv4 total length / IPv6 payload length finish() writes, instead of
    // the true one (a malformed length).
    Packet& ip_length(std::uint16_t value) {
        length_ = value;
        return *this;
    }
    std::vector<std::uint8_t> finish() const {
        auto b = bytes_;
        if (l3_ != npos && l3_ + 8 <= b.size()) {
            if (v4_) {
                std::uint16_t tot = length_.value_or(std::uint16_t(b.size() - l3_));
                b[l3_ + 2] = std::uint8_t(tot >> 8);
                b[l3_ + 3] = std::uint8_t(tot);
            } else if (l3_ + 40 <= b.size()) {
                std::uint16_t pl = length_.value_or(std::uint16_t(b.size() - l3_ - 40));
                b[l3_ + 4] = std::uint8_t(pl >> 8);
                b[l3_ + 5] = std::uint8_t(pl);
            }
        }
        return b;
    }

    // What the builder was given: the addresses of the last IP header
    // (as written), the transport (kTcp, kUdp; 0 if none) and its ports.
    const std::string& src() const { return src_; }
    const std::string& dst() const { return dst_; }
    std::uint8_t transport() const { return l4_; }
    std::uint16_t sport() const { return sport_; }
    std::uint16_t dport() const { return dport_; }

private:
    static constexpr std::size_t npos = ~std::size_t(0);
    void put16(std::uint16_t v) {
        bytes_.push_back(std::uint8_t(v >> 8));
        bytes_.push_back(std::uint8_t(v));
    }
    void append(const void* p, std::size_t n) {
        auto c = static_cast<const std::uint8_t*>(p);
        bytes_.insert(bytes_.end(), c, c + n);
    }
    std::vector<std::uint8_t> bytes_;
    std::size_t l3_ = npos;
    bool v4_ = true;
    std::optional<std::uint16_t> length_;
    std::string src_, dst_;
    std::uint8_t l4_ = 0;
    std::uint16_t sport_ = 0, dport_ = 0;
};

}  // namespace jgtest
