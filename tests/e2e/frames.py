#!/usr/bin/python3
"""Crafted Ethernet frames carrying one UDP datagram, sent raw (AF_PACKET) by
a peer host, for the tests that nothing slips past enforcement.

  frames.py IFACE DST_MAC KIND SRC DST PORT PAYLOAD

KIND: plain | vlan (one 802.1Q tag) | qinq (802.1ad tag, then 802.1Q tag)
      | frag (IPv4, two fragments, the second first on the wire)
      | ext6 (IPv6 with hop-by-hop, destination-options and routing headers)
      | frag6 (IPv6, two fragments)
Prints the number of frames sent.
"""
import os
import socket
import struct
import sys


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def udp(src, dst, sport, dport, payload, v6):
    length = 8 + len(payload)
    hdr = struct.pack("!HHHH", sport, dport, length, 0)
    if v6:
        pseudo = socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst) + \
            struct.pack("!IxxxB", length, 17)
    else:
        pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!xBH", 17, length)
    c = csum(pseudo + hdr + payload) or 0xFFFF
    return struct.pack("!HHHH", sport, dport, length, c) + payload


def ipv4(src, dst, proto, payload, ident=0x4A47, frag=0):
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, frag, 64, proto, 0,
                      socket.inet_aton(src), socket.inet_aton(dst))
    return hdr[:10] + struct.pack("!H", csum(hdr)) + hdr[12:] + payload


def ipv6(src, dst, nexthdr, payload):
    return struct.pack("!IHBB", 6 << 28, len(payload), nexthdr, 64) + socket.inet_pton(socket.AF_INET6, src) + \
        socket.inet_pton(socket.AF_INET6, dst) + payload


def eth(dst_mac, src_mac, ethertype, payload):
    return bytes.fromhex(dst_mac.replace(":", "")) + bytes.fromhex(src_mac.replace(":", "")) + \
        struct.pack("!H", ethertype) + payload


def frames(kind, dst_mac, src_mac, src, dst, port, payload):
    v6 = ":" in src
    sport = 40000 + (os.getpid() % 20000)
    payload = payload + b"." * max(0, 48 - len(payload))  # room for two fragments
    dgram = udp(src, dst, sport, port, payload, v6)
    if kind == "plain":
        return [eth(dst_mac, src_mac, 0x0800, ipv4(src, dst, 17, dgram))]
    # Tags carry a priority and VLAN id 0 (802.1p priority tagging): the
    # stack strips such tags and delivers the packet on the untagged
    # interface, so these frames really reach sockets when allowed.
    if kind == "vlan":
        return [eth(dst_mac, src_mac, 0x8100, struct.pack("!HH", 0x6000, 0x0800) + ipv4(src, dst, 17, dgram))]
    if kind == "qinq":
        tags = struct.pack("!HH", 0x2000, 0x8100) + struct.pack("!HH", 0x6000, 0x0800)
        return [eth(dst_mac, src_mac, 0x88A8, tags + ipv4(src, dst, 17, dgram))]
    if kind == "frag":
        # 8-byte aligned split; the tail goes first, so the first thing that
        # arrives has no ports at all.
        cut = 16
        first = ipv4(src, dst, 17, dgram[:cut], frag=0x2000)  # MF, offset 0
        second = ipv4(src, dst, 17, dgram[cut:], frag=cut // 8)
        return [eth(dst_mac, src_mac, 0x0800, second), eth(dst_mac, src_mac, 0x0800, first)]
    if kind == "ext6":
        hbh = struct.pack("!BB", 60, 0) + b"\x01\x04\0\0\0\0"      # hop-by-hop: PadN
        dstopt = struct.pack("!BB", 43, 0) + b"\x01\x04\0\0\0\0"   # destination options: PadN
        routing = struct.pack("!BBBB", 17, 0, 0, 0) + b"\0\0\0\0"  # type 0... segments left 0: ignored
        return [eth(dst_mac, src_mac, 0x86DD, ipv6(src, dst, 0, hbh + dstopt + routing + dgram))]
    if kind == "frag6":
        cut = 16
        ident = struct.pack("!I", 0x4A470001)
        first = struct.pack("!BBH", 17, 0, 0x0001) + ident + dgram[:cut]          # offset 0, M
        second = struct.pack("!BBH", 17, 0, (cut // 8) << 3) + ident + dgram[cut:]  # offset 2
        return [eth(dst_mac, src_mac, 0x86DD, ipv6(src, dst, 44, second)),
                eth(dst_mac, src_mac, 0x86DD, ipv6(src, dst, 44, first))]
    raise SystemExit(f"unknown kind {kind}")


def main():
    iface, dst_mac, kind, src, dst, port, payload = sys.argv[1:8]
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    src_mac = s.getsockname()[4].hex()  # (not /sys: it may show another netns)
    out = frames(kind, dst_mac, src_mac, src, dst, int(port), payload.encode())
    for fr in out:
        s.send(fr)
    print(len(out))


if __name__ == "__main__":
    main()
