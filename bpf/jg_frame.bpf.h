/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The XDP frame parser: Ethernet, up to JG_MAX_VLAN stacked 802.1Q / 802.1ad
 * tags, IPv4 with options, IPv6 with up to JG_IPV6_MAX_EXT extension headers,
 * IPv4 and IPv6 fragments, then the TCP/UDP ports.  Headers are read in place
 * (direct packet access, every read bounds-checked against data_end).
 *
 * It answers JG_PARSE_OK only when it knows the destination port and
 * protocol for certain.  Everything else (non-IP, not TCP/UDP, non-first
 * fragments, deeper tag stacks or header chains than it walks, truncated or
 * malformed headers) is JG_PARSE_SKIP or JG_PARSE_BAD, which XDP passes on to
 * the authoritative cgroup_skb/ingress check.
 */
#ifndef JG_FRAME_BPF_H
#define JG_FRAME_BPF_H

#include "jg_common.bpf.h"

#define JG_MAX_VLAN	   4
#define JG_ETH_P_8021Q	   0x8100
#define JG_ETH_P_8021AD	   0x88A8
#define JG_ETH_P_QINQ_9100 0x9100 /* pre-standard QinQ, still in use */

struct jg_vlan_hdr {
	__be16 tci;
	__be16 proto;
};

static __always_inline int jg_is_vlan(__u16 proto /* network order */)
{
	return proto == bpf_htons(JG_ETH_P_8021Q) ||
	       proto == bpf_htons(JG_ETH_P_8021AD) ||
	       proto == bpf_htons(JG_ETH_P_QINQ_9100);
}

/* Ports of the TCP or UDP header at l4; proto is the IP protocol number;
 * base is where the IP header starts (o->l4_off is counted from there). */
static __always_inline int jg_frame_ports(void *base, void *l4, void *end,
					  __u8 proto, struct jg_l4 *o)
{
	__be16 *ports = l4;

	o->proto = jg_sock_proto(proto);
	if (!o->proto)
		return JG_PARSE_SKIP;
	if ((void *)(ports + 2) > end)
		return JG_PARSE_BAD;
	o->sport = bpf_ntohs(ports[0]);
	o->dport = bpf_ntohs(ports[1]);
	o->l4_off = (__u16)(l4 - base);
	return JG_PARSE_OK;
}

static __always_inline int jg_frame_ipv4(void *pos, void *end, struct jg_l4 *o)
{
	struct iphdr *ip = pos;
	__u32 hlen;

	if ((void *)(ip + 1) > end)
		return JG_PARSE_BAD;
	if (ip->version != 4 || ip->ihl < 5)
		return JG_PARSE_BAD;
	hlen = ip->ihl * 4;
	if (bpf_ntohs(ip->tot_len) < hlen)
		return JG_PARSE_BAD;
	jg_v4_mapped(o->src, ip->saddr);
	jg_v4_mapped(o->dst, ip->daddr);
	/* A non-first fragment has no ports: reassembly, then ingress. */
	if (bpf_ntohs(ip->frag_off) & JG_IPV4_FRAG_MASK)
		return JG_PARSE_SKIP;
	return jg_frame_ports(ip, pos + hlen, end, ip->protocol, o);
}

static __always_inline int jg_frame_ipv6(void *pos, void *end, struct jg_l4 *o)
{
	struct ipv6hdr *ip6 = pos;
	__u8 nexthdr;
	int i;

	if ((void *)(ip6 + 1) > end)
		return JG_PARSE_BAD;
	if (ip6->version != 6)
		return JG_PARSE_BAD;
	__builtin_memcpy(o->src, &ip6->saddr, 16);
	__builtin_memcpy(o->dst, &ip6->daddr, 16);
	o->mapped = jg_is_v4_mapped(o->src);
	nexthdr = ip6->nexthdr;
	pos = ip6 + 1;
#pragma unroll
	for (i = 0; i < JG_IPV6_MAX_EXT; i++) {
		__u8 *h = pos;

		switch (nexthdr) {
		case JG_NEXTHDR_HOP:
		case JG_NEXTHDR_ROUTING:
		case JG_NEXTHDR_DEST:
			if ((void *)(h + 2) > end)
				return JG_PARSE_BAD;
			nexthdr = h[0];
			pos += (h[1] + 1) * 8;
			break;
		case IPPROTO_AH:
			if ((void *)(h + 2) > end)
				return JG_PARSE_BAD;
			nexthdr = h[0];
			pos += (h[1] + 2) * 4;
			break;
		case JG_NEXTHDR_FRAGMENT:
			if ((void *)(h + 8) > end)
				return JG_PARSE_BAD;
			if (((h[2] << 8) | h[3]) & JG_IPV6_FRAG_MASK)
				return JG_PARSE_SKIP; /* non-first fragment */
			nexthdr = h[0];
			pos += 8;
			break;
		default:
			return jg_frame_ports(ip6, pos, end, nexthdr, o);
		}
	}
	/* Still inside the chain after JG_IPV6_MAX_EXT headers: a chain
	 * longer than we walk, or ports behind it; not certain either way. */
	if (jg_ipv6_ext(nexthdr))
		return JG_PARSE_BAD;
	return jg_frame_ports(ip6, pos, end, nexthdr, o);
}

static __always_inline int jg_parse_frame(struct xdp_md *ctx, struct jg_l4 *o)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	void *pos = eth + 1;
	__u16 proto;
	int i;

	if (pos > end)
		return JG_PARSE_BAD;
	proto = eth->h_proto;
#pragma unroll
	for (i = 0; i < JG_MAX_VLAN; i++) {
		struct jg_vlan_hdr *v = pos;

		if (!jg_is_vlan(proto))
			break;
		if ((void *)(v + 1) > end)
			return JG_PARSE_BAD;
		proto = v->proto;
		pos = v + 1;
	}
	if (proto == bpf_htons(JG_ETH_P_IP))
		return jg_frame_ipv4(pos, end, o);
	if (proto == bpf_htons(JG_ETH_P_IPV6))
		return jg_frame_ipv6(pos, end, o);
	/* More tags than we walk, or not IP (ARP, LLDP, ...). */
	return jg_is_vlan(proto) ? JG_PARSE_BAD : JG_PARSE_SKIP;
}

/*
 * jg_parse_l3 for cgroup_skb (data starts at the network header), reading
 * the headers in place when they lie in the linear area: the same answer,
 * without a helper call per header.  Anything the in-place walk cannot read
 * (a header beyond the linear area, or one it finds malformed) is parsed
 * again with bpf_skb_load_bytes, which decides.
 */
static __always_inline int jg_parse_skb(struct __sk_buff *skb, __u32 l3proto,
					struct jg_l4 *o)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	int r = JG_PARSE_BAD;

	if (l3proto == bpf_htons(JG_ETH_P_IP))
		r = jg_frame_ipv4(data, end, o);
	else if (l3proto == bpf_htons(JG_ETH_P_IPV6))
		r = jg_frame_ipv6(data, end, o);
	else
		return JG_PARSE_SKIP;
	if (r != JG_PARSE_BAD)
		return r;
	__builtin_memset(o, 0, sizeof(*o));
	return jg_parse_l3(skb, l3proto, o);
}

#endif /* JG_FRAME_BPF_H */
