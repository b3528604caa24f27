/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Maps and helpers shared by jitgate's BPF programs.  Each *.bpf.c is
 * compiled on its own and all are linked into one object (bpftool gen
 * object); the maps are declared __weak here so that every file may name
 * them and the linker keeps one of each.
 */
#ifndef JG_COMMON_BPF_H
#define JG_COMMON_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "jitgate/abi.h"

#define JG_LOOPBACK_IFINDEX 1
#define JG_ETH_P_IP	    0x0800
#define JG_ETH_P_IPV6	    0x86DD
/* IPv6 extension headers (not in vmlinux.h: they are #defines). */
#define JG_NEXTHDR_HOP	    0
#define JG_NEXTHDR_ROUTING  43
#define JG_NEXTHDR_FRAGMENT 44
#define JG_NEXTHDR_DEST	    60

/* Protected ports, indexed by port (host order). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, JG_PORT_ENTRIES);
	__type(key, __u32);
	__type(value, struct jg_port_val);
} jg_ports SEC(".maps") __weak;

/* The two grant hashes are preallocated: no allocation when a grant is
 * written, an exact "full", and no per-element allocator overhead. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, JG_GRANT_ENTRIES);
	__type(key, struct jg_uid_key);
	__type(value, struct jg_grant_val);
} jg_grants_uid SEC(".maps") __weak;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, JG_GRANT_ENTRIES);
	__type(key, struct jg_addr_key);
	__type(value, struct jg_grant_val);
} jg_grants_addr SEC(".maps") __weak;

/* The inner map's template; the daemon creates the real filters, sized to
 * the grant maps (include/jitgate/abi.h). */
struct jg_bloom {
	__uint(type, BPF_MAP_TYPE_BLOOM_FILTER);
	__uint(max_entries, JG_GRANT_ENTRIES);
	__type(value, struct jg_addr_key);
	__uint(map_extra, JG_BLOOM_HASHES);
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 1);
	__type(key, __u32);
	__array(values, struct jg_bloom);
} jg_grants_bloom SEC(".maps") __weak;

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, JG_GRANT_ENTRIES);
	__type(key, struct jg_net_key);
	__type(value, struct jg_grant_val);
} jg_grants_net SEC(".maps") __weak;

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, JG_FLOW_ENTRIES);
	__type(key, struct jg_flow_key);
	__type(value, struct jg_flow_val);
} jg_flows SEC(".maps") __weak;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, JG_RL_ENTRIES);
	__type(key, struct jg_rl_key);
	__type(value, struct jg_rl_val);
} jg_deny_rl SEC(".maps") __weak;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, JG_MEMO_SLOTS);
	__type(key, __u32);
	__type(value, struct jg_deny_memo);
} jg_deny_memo SEC(".maps") __weak;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, JG_RL_ENTRIES);
	__type(key, struct jg_allow_key);
	__type(value, struct jg_rl_val);
} jg_allow_rl SEC(".maps") __weak;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, JG_LOCAL_ADDR_ENTRIES);
	__type(key, struct jg_addr);
	__type(value, __u8);
} jg_local_addrs SEC(".maps") __weak;

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, JG_LOCAL_NET_ENTRIES);
	__type(key, struct jg_local_net_key);
	__type(value, __u8);
} jg_local_nets SEC(".maps") __weak;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct jg_config);
} jg_config SEC(".maps") __weak;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, JG_CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} jg_counters SEC(".maps") __weak;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, JG_RINGBUF_BYTES);
} jg_events SEC(".maps") __weak;

/* Until when (CLOCK_MONOTONIC_COARSE) no record wakes the daemon: neither
 * one that finds it caught up nor one past the ring's mark
 * (include/jitgate/abi.h, JG_RING_WAKE_GAP_NS). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} jg_wake SEC(".maps") __weak;

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct jg_sk_state);
} jg_sk_state SEC(".maps") __weak;

static __always_inline void jg_count_n(__u32 idx, __u64 n)
{
	__u64 *c = bpf_map_lookup_elem(&jg_counters, &idx);

	if (c)
		*c += n;
}

static __always_inline void jg_count(__u32 idx)
{
	jg_count_n(idx, 1);
}

/* Reserve an event, zeroed; counts the loss when the ring is full.  A ring
 * with no room is seen without taking its lock (a flood that nobody drains
 * fast enough would otherwise contend for it on every CPU). */
static __always_inline struct jg_event *jg_event_reserve(void)
{
	struct jg_event *e = NULL;

	if (bpf_ringbuf_query(&jg_events, BPF_RB_AVAIL_DATA) +
		2 * (sizeof(*e) + 8) <=
	    bpf_ringbuf_query(&jg_events, BPF_RB_RING_SIZE))
		e = bpf_ringbuf_reserve(&jg_events, sizeof(*e), 0);
	if (!e) {
		jg_count(JG_CNT_EVENTS_LOST);
		return NULL;
	}
	__builtin_memset(e, 0, sizeof(*e));
	return e;
}

/* Submit a filled event.  An allow record does not wake the daemon, which
 * drains the ring every JG_RING_DRAIN_MS, unless the ring is filling up.
 * Any other record wakes it when it had caught up (the kernel's default).
 * Either wake-up is sent at most once per JG_RING_WAKE_GAP_NS: a daemon
 * that keeps up with a burst would otherwise be woken for every record,
 * and one that is behind, for every record past the mark: an interrupt
 * each, several times the cost of the decision. */
static __always_inline void jg_event_submit(struct jg_event *e)
{
	__u64 avail = bpf_ringbuf_query(&jg_events, BPF_RB_AVAIL_DATA);
	__u64 flags = BPF_RB_NO_WAKEUP, now, *next;
	__u32 zero = 0;

	if (avail > bpf_ringbuf_query(&jg_events, BPF_RB_RING_SIZE) /
			JG_RING_WAKE_SHARE) {
		flags = BPF_RB_FORCE_WAKEUP;
	} else if (e->verdict != JG_VERDICT_ALLOW) {
		/* Only this record waits: the daemon had caught up and the
		 * default wakes it.  Else the default wakes nobody. */
		flags = 0;
		if (avail > sizeof(*e) + 8) {
			bpf_ringbuf_submit(e, 0);
			return;
		}
	}
	if (flags != BPF_RB_NO_WAKEUP) {
		next = bpf_map_lookup_elem(&jg_wake, &zero);
		now = bpf_ktime_get_coarse_ns();
		if (next && now < *next)
			flags = BPF_RB_NO_WAKEUP;
		else if (next)
			*next = now + JG_RING_WAKE_GAP_NS;
	}
	bpf_ringbuf_submit(e, flags);
}

static __always_inline void jg_v4_mapped(__u8 out[16], __u32 ip4 /* net */)
{
	__u32 *w = (__u32 *)out;

	w[0] = 0;
	w[1] = 0;
	w[2] = bpf_htonl(0xffff);
	w[3] = ip4;
}

/* Socket protocol to JG_PROTO_*, 0 for anything not gated.  MPTCP is
 * gated as TCP: its subflows are TCP connections to the same port. */
static __always_inline __u8 jg_sock_proto(__u32 protocol)
{
	if (protocol == IPPROTO_TCP || protocol == IPPROTO_MPTCP)
		return JG_PROTO_TCP;
	if (protocol == IPPROTO_UDP || protocol == IPPROTO_UDPLITE)
		return JG_PROTO_UDP;
	return 0;
}

static __always_inline __u8 jg_port_flags(__u16 port, __u8 proto)
{
	__u32 idx = port;
	struct jg_port_val *v = bpf_map_lookup_elem(&jg_ports, &idx);

	if (!v)
		return 0;
	return proto == JG_PROTO_TCP ? v->tcp : v->udp;
}

/* L3/L4 header facts of one packet. */
struct jg_l4 {
	__u8 src[16]; /* network order, IPv4 v4-mapped */
	__u8 dst[16];
	__u16 sport;  /* host order */
	__u16 dport;  /* host order */
	__u8 proto;   /* JG_PROTO_* */
	__u8 mapped;  /* an IPv6 header whose source is IPv4-mapped */
	__u16 l4_off; /* jg_parse_l3: offset of the L4 header (0: unknown) */
};

/* ::ffff:0:0/96 */
static __always_inline int jg_is_v4_mapped(const __u8 a[16])
{
	const __u32 *w = (const __u32 *)a;

	return w[0] == 0 && w[1] == 0 && w[2] == bpf_htonl(0xffff);
}

static __always_inline int jg_is_zero(const __u8 a[16])
{
	const __u32 *w = (const __u32 *)a;

	return (w[0] | w[1] | w[2] | w[3]) == 0;
}

#define JG_PARSE_OK   0
#define JG_PARSE_SKIP 1 /* not TCP/UDP, or a non-first fragment */
#define JG_PARSE_BAD  2 /* truncated or malformed */

#define JG_IPV6_MAX_EXT	  8
#define JG_IPV4_FRAG_MASK 0x1fff /* fragment offset bits of frag_off */
#define JG_IPV6_FRAG_MASK 0xfff8 /* fragment offset bits, fragment header */

/* The IPv6 extension headers both parsers walk. */
static __always_inline int jg_ipv6_ext(__u8 nexthdr)
{
	return nexthdr == JG_NEXTHDR_HOP || nexthdr == JG_NEXTHDR_ROUTING ||
	       nexthdr == JG_NEXTHDR_DEST || nexthdr == IPPROTO_AH ||
	       nexthdr == JG_NEXTHDR_FRAGMENT;
}

/*
 * Parse an skb whose data starts at the network header (cgroup_skb);
 * l3proto is skb->protocol, read once by the caller (clang may otherwise
 * address the context through a computed pointer, which the verifier
 * refuses).
 * Bounded: at most JG_IPV6_MAX_EXT IPv6 extension headers are walked; a
 * longer chain is JG_PARSE_BAD.  src and dst are filled as soon as the fixed
 * IP header was read, whatever the result; they stay zero only when it could
 * not be.
 */
static __always_inline int jg_parse_l3(struct __sk_buff *skb, __u32 l3proto,
				       struct jg_l4 *o)
{
	__u32 off = 0;
	__u8 nexthdr;
	__u16 ports[2];

	if (l3proto == bpf_htons(JG_ETH_P_IP)) {
		struct iphdr ip;

		if (bpf_skb_load_bytes(skb, 0, &ip, sizeof(ip)))
			return JG_PARSE_BAD;
		jg_v4_mapped(o->src, ip.saddr);
		jg_v4_mapped(o->dst, ip.daddr);
		if (ip.ihl < 5)
			return JG_PARSE_BAD;
		if (bpf_ntohs(ip.frag_off) & JG_IPV4_FRAG_MASK)
			return JG_PARSE_SKIP;
		nexthdr = ip.protocol;
		off = ip.ihl * 4;
	} else if (l3proto == bpf_htons(JG_ETH_P_IPV6)) {
		struct ipv6hdr ip6;
		int i;

		if (bpf_skb_load_bytes(skb, 0, &ip6, sizeof(ip6)))
			return JG_PARSE_BAD;
		__builtin_memcpy(o->src, &ip6.saddr, 16);
		__builtin_memcpy(o->dst, &ip6.daddr, 16);
		o->mapped = jg_is_v4_mapped(o->src);
		nexthdr = ip6.nexthdr;
		off = sizeof(ip6);
#pragma unroll
		for (i = 0; i < JG_IPV6_MAX_EXT; i++) {
			__u8 h[2];

			if (nexthdr == JG_NEXTHDR_FRAGMENT) {
				__u8 f[8];

				if (bpf_skb_load_bytes(skb, off, f, sizeof(f)))
					return JG_PARSE_BAD;
				if (((f[2] << 8) | f[3]) & JG_IPV6_FRAG_MASK)
					return JG_PARSE_SKIP;
				nexthdr = f[0];
				off += 8;
				continue;
			}
			if (!jg_ipv6_ext(nexthdr))
				break;
			if (bpf_skb_load_bytes(skb, off, h, sizeof(h)))
				return JG_PARSE_BAD;
			off += nexthdr == IPPROTO_AH ? (h[1] + 2) * 4
						     : (h[1] + 1) * 8;
			nexthdr = h[0];
		}
		if (jg_ipv6_ext(nexthdr))
			return JG_PARSE_BAD;
	} else {
		return JG_PARSE_SKIP;
	}

	o->proto = jg_sock_proto(nexthdr);
	if (!o->proto)
		return JG_PARSE_SKIP;
	if (bpf_skb_load_bytes(skb, off, ports, sizeof(ports)))
		return JG_PARSE_BAD;
	o->sport = bpf_ntohs(ports[0]);
	o->dport = bpf_ntohs(ports[1]);
	o->l4_off = off;
	return JG_PARSE_OK;
}

/* Whether `a` (16-byte form) lies in a prefix routed to this host that is
 * no interface address (AnyIP, anycast); an empty trie answers at once. */
static __always_inline int jg_in_local_net(const __u8 a[16])
{
	struct jg_local_net_key k = {};

	k.prefixlen = 128;
	__builtin_memcpy(k.addr, a, 16);
	return bpf_map_lookup_elem(&jg_local_nets, &k) != NULL;
}

/*
 * Whether a destination reaches this host.  Broadcast and multicast count:
 * the kernel loops a copy back to local listeners without it passing the
 * egress hook, so a protected UDP port must be closed to them too.
 */
static __always_inline int is_local_v4(__u32 ip4 /* network order */)
{
	struct jg_addr a = {};
	__u32 h = bpf_ntohl(ip4);

	if (h == 0 || (h >> 24) == 127 || (h >> 28) == 0xe || h == 0xffffffff)
		return 1;
	jg_v4_mapped(a.addr, ip4);
	return bpf_map_lookup_elem(&jg_local_addrs, &a) != NULL ||
	       jg_in_local_net(a.addr);
}

static __always_inline int is_local_v6(const __u32 ip6[4] /* network order */)
{
	struct jg_addr a = {};

	if (jg_is_v4_mapped((const __u8 *)ip6))
		return is_local_v4(ip6[3]);
	if (ip6[0] == 0 && ip6[1] == 0 && ip6[2] == 0 &&
	    (ip6[3] == 0 || ip6[3] == bpf_htonl(1)))
		return 1; /* :: and ::1 */
	if ((bpf_ntohl(ip6[0]) >> 24) == 0xff)
		return 1; /* multicast */
	__builtin_memcpy(a.addr, ip6, 16);
	return bpf_map_lookup_elem(&jg_local_addrs, &a) != NULL ||
	       jg_in_local_net(a.addr);
}

/* The configuration (an array lookup, which the verifier inlines). */
static __always_inline struct jg_config *jg_cfg(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&jg_config, &zero);
}

/* The grant generation a cached admission is checked against; ~0 without a
 * configuration, which no cache ever holds. */
static __always_inline __u64 jg_grant_gen(const struct jg_config *cfg)
{
	return cfg ? cfg->grant_gen : ~0ULL;
}

static __always_inline int in_host_netns(void *ctx)
{
	struct jg_config *cfg = jg_cfg();

	/* Without a configured netns (never the case once the daemon attached
	 * the programs) treat every netns as the host's: fail closed. */
	if (!cfg || cfg->host_netns_cookie == 0)
		return 1;
	return bpf_get_netns_cookie(ctx) == cfg->host_netns_cookie;
}

/* A grant found in force: its id (0: none) and its end (CLOCK_BOOTTIME). */
struct jg_hit {
	__u64 id;
	__u64 until;
};

/* Whether grant entry g is in force now, filling *h; the clock is read only
 * when an entry was found. */
static __always_inline int jg_in_force(const struct jg_grant_val *g,
				       struct jg_hit *h)
{
	if (!g)
		return 0;
	h->until = g->expires_ns;
	h->id = g->grant_id;
	return bpf_ktime_get_boot_ns() < h->until;
}

/* The grant of a local user for (port, proto), if it is in force. */
static __always_inline int jg_uid_hit(__u32 uid, __u16 port, __u8 proto,
				      struct jg_hit *h)
{
	struct jg_uid_key key = {};

	key.uid = uid;
	key.port = port;
	key.proto = proto;
	return jg_in_force(bpf_map_lookup_elem(&jg_grants_uid, &key), h);
}

/* The same, as the grant's id or 0. */
static __always_inline __u64 jg_uid_grant(__u32 uid, __u16 port, __u8 proto)
{
	struct jg_hit h = {};

	return jg_uid_hit(uid, port, proto, &h) ? h.id : 0;
}

/* Whether a cached admission still holds: made under the current grant
 * generation (no grant changed since) and before the grant's end. */
static __always_inline int jg_cache_holds(__u64 cached_gen, __u64 until,
					  __u64 gen)
{
	return cached_gen == gen && bpf_ktime_get_boot_ns() < until;
}

/* The jg_flows entry of a remote flow (key filled in for an update):
 * peer address and port, local (protected) port, protocol. */
static __always_inline struct jg_flow_val *
jg_flow_lookup(const __u8 src[16], __u16 sport, __u16 dport, __u8 proto,
	       struct jg_flow_key *key)
{
	__builtin_memcpy(key->src, src, 16);
	key->sport = sport;
	key->dport = dport;
	key->proto = proto;
	return bpf_map_lookup_elem(&jg_flows, key);
}

/* 0 when the bloom filter proves `key` absent from jg_grants_addr; 1 when
 * it may be there, or when there is no filter yet. */
static __always_inline int jg_bloom_may_hold(struct jg_addr_key *key)
{
	__u32 zero = 0;
	void *bloom = bpf_map_lookup_elem(&jg_grants_bloom, &zero);

	if (!bloom)
		return 1;
	return bpf_map_peek_elem(bloom, key) == 0;
}

/* The entries that may grant a remote source (port, proto), clock unread:
 * the single-host hash unless the bloom filter rules it out, and the prefix
 * trie only while it holds anything (jg_config.net_grants).  `use_bloom` is a
 * constant at each call site. */
static __always_inline struct jg_grant_val *
jg_addr_entry(const __u8 src[16], __u16 port, __u8 proto,
	      const struct jg_config *cfg, int use_bloom, int *host)
{
	struct jg_addr_key key = {};
	struct jg_net_key net = {};
	struct jg_grant_val *g = NULL;

	__builtin_memcpy(key.addr, src, 16);
	key.port = port;
	key.proto = proto;
	*host = 1;
	if (!use_bloom || jg_bloom_may_hold(&key))
		g = bpf_map_lookup_elem(&jg_grants_addr, &key);
	if (g || (cfg && cfg->net_grants == 0))
		return g;
	*host = 0;
	net.prefixlen = 32 + 128;
	net.port = port;
	net.proto = proto;
	__builtin_memcpy(net.addr, src, 16);
	return bpf_map_lookup_elem(&jg_grants_net, &net);
}

/*
 * The grant of a remote source for (port, proto), if it is in force: the
 * single-host hash first, then the prefix trie.  A host entry that has ended
 * hides no prefix grant: the trie is asked then too.
 */
static __always_inline int jg_addr_hit(const __u8 src[16], __u16 port,
				       __u8 proto, const struct jg_config *cfg,
				       int use_bloom, struct jg_hit *h)
{
	struct jg_net_key net = {};
	struct jg_grant_val *g;
	int host;

	g = jg_addr_entry(src, port, proto, cfg, use_bloom, &host);
	if (jg_in_force(g, h))
		return 1;
	if (!g || !host || (cfg && cfg->net_grants == 0))
		return 0;
	net.prefixlen = 32 + 128;
	net.port = port;
	net.proto = proto;
	__builtin_memcpy(net.addr, src, 16);
	return jg_in_force(bpf_map_lookup_elem(&jg_grants_net, &net), h);
}

/* The same, as the grant's id or 0 (the cut iterator). */
static __always_inline __u64 jg_addr_grant(const __u8 src[16], __u16 port,
					   __u8 proto)
{
	struct jg_hit h = {};

	return jg_addr_hit(src, port, proto, jg_cfg(), 0, &h) ? h.id : 0;
}

/* IPv6 sources are limited per /64: one sender owns a whole /64 and could
 * otherwise write one record per address it picks. */
static __always_inline void
jg_rl_key_of(struct jg_rl_key *key, const __u8 src[16], __u16 port, __u8 proto)
{
	__builtin_memcpy(key->addr, src, 16);
	if (!jg_is_v4_mapped(src))
		__builtin_memset(key->addr + 8, 0, 8);
	key->port = port;
	key->proto = proto;
	key->kind = JG_RL_ADDR;
}

/* A local user's key: the uid in the first four bytes. */
static __always_inline void jg_rl_key_uid(struct jg_rl_key *key, __u32 uid,
					  __u16 port, __u8 proto)
{
	__builtin_memcpy(key->addr, &uid, sizeof(uid));
	key->port = port;
	key->proto = proto;
	key->kind = JG_RL_UID;
}

/*
 * Record rate limit per window key of `map` (jg_deny_rl: principal, port,
 * proto; jg_allow_rl: the same and the grant): returns 1 when an event may
 * be written now, with *suppressed = the decisions not reported since the
 * last one; 0 when this decision is only counted.  The verdict and hook of
 * the latest decision are kept for the daemon's closing record.  The coarse
 * clock costs a few ns, unlike CLOCK_BOOTTIME, and a one-second window needs
 * no more precision.
 */
/* This CPU's denial memo (include/jitgate/abi.h); NULL beyond its slots. */
static __always_inline struct jg_deny_memo *jg_memo(void)
{
	__u32 cpu = bpf_get_smp_processor_id();

	return bpf_map_lookup_elem(&jg_deny_memo, &cpu);
}

/* After jg_deny_rl was found full, a CPU stops trying to open windows in
 * it for this long: the daemon frees windows only once they are idle for
 * a second, so in a flood the table stays full meanwhile. */
#define JG_RL_FULL_PAUSE_NS (100 * 1000 * 1000ULL)

static __always_inline int jg_window_at(void *map, const void *key,
					__u8 verdict, __u8 hook, __u64 now,
					__u32 *suppressed, __u64 *window_end,
					struct jg_deny_memo *memo)
{
	struct jg_rl_val fresh = {};
	struct jg_rl_val *v;
	__u64 end;

	*suppressed = 0;
	*window_end = 0;
	v = bpf_map_lookup_elem(map, key);
	if (!v && memo && now < memo->full_until_ns) {
		/* Full a moment ago: no insert that would fail again. */
		jg_count(JG_CNT_RL_FULL);
		return 0;
	}
	if (!v) {
		fresh.window_end_ns = now + JG_RL_WINDOW_NS;
		fresh.verdict = verdict;
		fresh.hook = hook;
		if (bpf_map_update_elem(map, key, &fresh, BPF_NOEXIST) == 0) {
			*window_end = fresh.window_end_ns;
			return 1;
		}
		/* Another CPU opened this window meanwhile, or the table is
		 * full: then the decision is counted for the daemon's
		 * events_lost record, never dropped without a trace. */
		v = bpf_map_lookup_elem(map, key);
		if (!v) {
			jg_count(JG_CNT_RL_FULL);
			if (memo)
				memo->full_until_ns = now + JG_RL_FULL_PAUSE_NS;
			return 0;
		}
	}
	end = v->window_end_ns;
	v->verdict = verdict;
	v->hook = hook;
	/* One CPU wins the end of a window (compare-and-swap) and takes the
	 * count (exchange); a CPU that loses counts itself as suppressed.  No
	 * decision is reported twice or lost. */
	if (now < end ||
	    __sync_val_compare_and_swap(&v->window_end_ns, end,
					now + JG_RL_WINDOW_NS) != end) {
		__sync_fetch_and_add(&v->suppressed, 1);
		*window_end = v->window_end_ns;
		return 0;
	}
	*suppressed = __sync_lock_test_and_set(&v->suppressed, 0);
	*window_end = now + JG_RL_WINDOW_NS;
	return 1;
}

static __always_inline int jg_window_ok(void *map, const void *key,
					__u8 verdict, __u8 hook,
					__u32 *suppressed)
{
	__u64 end;

	return jg_window_at(map, key, verdict, hook, bpf_ktime_get_coarse_ns(),
			    suppressed, &end, NULL);
}

static __always_inline int jg_rl_key_eq(const struct jg_rl_key *a,
					const struct jg_rl_key *b)
{
	const __u16 *x = (const __u16 *)a, *y = (const __u16 *)b;
	int i;

#pragma unroll
	for (i = 0; i < (int)(sizeof(*a) / 2); i++)
		if (x[i] != y[i])
			return 0;
	return 1;
}

/* Moves the memo's count into its key's window (made, already ended, when
 * the daemon closed it meanwhile: the next denial or the daemon reports it);
 * a full table counts it as lost, as a denial that finds it full is. */
static __always_inline void jg_memo_flush(struct jg_deny_memo *m, __u64 now)
{
	struct jg_rl_val fresh = {};
	struct jg_rl_key key;
	struct jg_rl_val *v;
	/* Empties the count and opens the next generation in one exchange;
	 * only this program changes the generation, so it reads it plainly. */
	__u64 next = ((m->pending >> 32) + 1) << 32;
	__u32 n = JG_MEMO_COUNT(__sync_lock_test_and_set(&m->pending, next));

	if (!n)
		return;
	__builtin_memcpy(&key, &m->key, sizeof(key));
	v = bpf_map_lookup_elem(&jg_deny_rl, &key);
	if (!v) {
		fresh.window_end_ns = now;
		fresh.suppressed = n;
		fresh.verdict = m->verdict;
		fresh.hook = m->hook;
		if (bpf_map_update_elem(&jg_deny_rl, &key, &fresh,
					BPF_NOEXIST) == 0)
			return;
		v = bpf_map_lookup_elem(&jg_deny_rl, &key);
		if (!v) {
			jg_count_n(JG_CNT_RL_FULL, n);
			return;
		}
	}
	__sync_fetch_and_add(&v->suppressed, n);
}

static __always_inline int jg_addr_eq(const __u8 a[16], const __u8 b[16])
{
	const __u32 *x = (const __u32 *)a, *y = (const __u32 *)b;

	return x[0] == y[0] && x[1] == y[1] && x[2] == y[2] && x[3] == y[3];
}

/*
 * A denial XDP can count in this CPU's memo at once: the memo holds this
 * principal's window, open, taken by a denial to this very destination (so
 * the destination is this host's: no local-address lookup).  1 when
 * counted (the caller drops), 0 when the full path must decide.
 */
static __always_inline int jg_memo_repeat(const struct jg_rl_key *key,
					  const __u8 dst[16], __u8 hook)
{
	struct jg_deny_memo *m = jg_memo();

	if (!m || bpf_ktime_get_coarse_ns() >= m->window_end_ns ||
	    !jg_rl_key_eq(&m->key, key) || jg_is_zero(m->dst) ||
	    !jg_addr_eq(m->dst, dst))
		return 0;
	m->verdict = JG_VERDICT_DENY;
	m->hook = hook;
	__sync_fetch_and_add(&m->pending, 1);
	return 1;
}

/*
 * jg_deny_rate_ok for the remote programs, through this CPU's memo: a
 * denial of the memo's principal inside its window is counted there (no
 * jg_deny_rl lookup); any other goes to the shared window, and the memo
 * takes that principal when it is free (ended, or nothing pending).
 */
static __always_inline int jg_deny_rate_memo(const struct jg_rl_key *key,
					     const __u8 dst[16], __u8 verdict,
					     __u8 hook, __u32 *suppressed)
{
	struct jg_deny_memo *m = jg_memo();
	__u64 now = bpf_ktime_get_coarse_ns(), end;
	int ok, take;

	if (m && now < m->window_end_ns && jg_rl_key_eq(&m->key, key)) {
		m->verdict = verdict;
		m->hook = hook;
		__sync_fetch_and_add(&m->pending, 1);
		*suppressed = 0;
		return 0;
	}
	/* Busy with another principal's denials: leave it. */
	take = m && (now >= m->window_end_ns || JG_MEMO_COUNT(m->pending) == 0);
	if (take)
		jg_memo_flush(m, now);
	ok = jg_window_at(&jg_deny_rl, key, verdict, hook, now, suppressed,
			  &end, m);
	if (take && end) {
		__builtin_memcpy(&m->key, key, sizeof(*key));
		/* Only XDP vouches that dst is this host's (it asked); ingress
		 * sees addresses after NAT.  Zero is no destination. */
		if (hook == JG_HOOK_XDP)
			__builtin_memcpy(m->dst, dst, 16);
		else
			__builtin_memset(m->dst, 0, 16);
		m->verdict = verdict;
		m->hook = hook;
		m->window_end_ns = end;
	}
	return ok;
}

/* The event jg_window_ok allowed could not be written: count `n` decisions
 * as suppressed again, so the next event (or the daemon's closing record)
 * carries them. */
static __always_inline void jg_window_undo(void *map, const void *key, __u32 n)
{
	struct jg_rl_val *v = bpf_map_lookup_elem(map, key);

	if (v)
		__sync_fetch_and_add(&v->suppressed, n);
}

/* Deny-event rate limit per (principal, port, proto). */
static __always_inline int jg_deny_rate_ok(const struct jg_rl_key *key,
					   __u8 verdict, __u8 hook,
					   __u32 *suppressed)
{
	return jg_window_ok(&jg_deny_rl, key, verdict, hook, suppressed);
}

static __always_inline void jg_deny_rate_undo(const struct jg_rl_key *key,
					      __u32 n)
{
	jg_window_undo(&jg_deny_rl, key, n);
}

/*
 * Allow-record rate limit per (principal, grant, port, proto), for a new
 * connection or flow (already counted in JG_CNT_ALLOW): 1 when the caller
 * writes an allow event now, carrying *suppressed earlier flows; then, if
 * that event cannot be written, jg_allow_rate_undo(key, suppressed + 1).
 */
static __always_inline int jg_allow_rate_ok(struct jg_allow_key *key,
					    const struct jg_rl_key *who,
					    __u64 grant_id, __u8 hook,
					    __u32 *suppressed)
{
	key->who = *who;
	key->grant_id = grant_id;
	return jg_window_ok(&jg_allow_rl, key, JG_VERDICT_ALLOW, hook,
			    suppressed);
}

static __always_inline void jg_allow_rate_undo(const struct jg_allow_key *key,
					       __u32 n)
{
	jg_window_undo(&jg_allow_rl, key, n);
}

#endif /* JG_COMMON_BPF_H */
