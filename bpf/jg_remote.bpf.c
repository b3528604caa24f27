// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * jitgate enforcement for remote peers: anything that arrives over a network
 * interface (other hosts, containers on a bridge, other network namespaces).
 * The principal is the packet's source address; the grant is looked up in
 * jg_grants_addr (single hosts) and jg_grants_net (prefixes).
 *
 * cgroup_skb/ingress is authoritative: it runs for every packet delivered to
 * a socket of this host, after VLAN stripping, reassembly, decapsulation and
 * NAT, and the protected port is the receiving socket's own port.  Two
 * programs on two links make that decision (jg_ingress, jg_guard),
 * so that no single detached link lets a peer in.  XDP on
 * chosen interfaces drops what it can classify with certainty before the
 * stack spends anything on it, and passes everything else to ingress.
 */
#include "vmlinux.h"
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "jitgate/abi.h"
#include "jg_common.bpf.h"
#include "jg_frame.bpf.h"

/*
 * Whether a grant in force admits the packet's source (XDP).  An IPv6
 * packet from an IPv4-mapped address is nobody: addresses are keyed
 * v4-mapped, so it would otherwise borrow that IPv4 peer's grant from an
 * IPv6 sender (the kernel still delivers such UDP datagrams), past IPv4
 * reverse-path filtering.
 */
static __always_inline int source_granted(const struct jg_l4 *l4,
					  const struct jg_config *cfg)
{
	struct jg_hit h = {};

	if (l4->mapped)
		return 0;
	return jg_addr_hit(l4->src, l4->dport, l4->proto, cfg, 1, &h);
}

/* skb: the ingress packet, whose cgroup and netns the event names (asked
 * only when an event is written); NULL in XDP, which has neither. */
static __always_inline int emit_remote(struct __sk_buff *skb,
				       const struct jg_l4 *l4, __u8 hook,
				       __u8 verdict, __u64 grant_id,
				       __u32 suppressed)
{
	struct jg_event *e = jg_event_reserve();

	if (!e)
		return 0;
	if (skb) {
		e->cgroup_id = bpf_skb_cgroup_id(skb);
		e->netns_cookie = bpf_get_netns_cookie(skb);
	}
	e->grant_id = grant_id;
	__builtin_memcpy(e->src, l4->src, 16);
	__builtin_memcpy(e->dst, l4->dst, 16);
	e->sport = l4->sport;
	e->dport = l4->dport;
	e->proto = l4->proto;
	e->hook = hook;
	e->verdict = verdict;
	e->suppressed = suppressed;
	jg_event_submit(e);
	return 1;
}

/* A denial (or, in audit mode, a would-be denial), rate-limited per
 * (source, port, proto); the counters count every one. */
static __always_inline void report_denial(struct __sk_buff *skb,
					  const struct jg_l4 *l4, __u8 hook,
					  __u8 verdict)
{
	struct jg_rl_key key = {};
	__u32 suppressed;

	jg_count(verdict == JG_VERDICT_DENY ? JG_CNT_DENY : JG_CNT_WOULD_DENY);
	jg_rl_key_of(&key, l4->src, l4->dport, l4->proto);
	if (!jg_deny_rate_memo(&key, l4->dst, verdict, hook, &suppressed))
		return;
	if (!emit_remote(skb, l4, hook, verdict, 0, suppressed))
		/* The ring is full (counted as events_lost): keep this denial
		 * and those it stood for for the next event. */
		jg_deny_rate_undo(&key, suppressed + 1);
}

/* A new flow under a grant: counted always, recorded at most once a second
 * per (source, grant, port, proto) with how many flows the record stands
 * for; the daemon closes a window that went quiet. */
static __always_inline void report_allow(struct __sk_buff *skb,
					 const struct jg_l4 *l4, __u64 grant_id)
{
	struct jg_allow_key key = {};
	struct jg_rl_key who = {};
	__u32 suppressed;

	jg_count(JG_CNT_ALLOW);
	jg_rl_key_of(&who, l4->src, l4->dport, l4->proto);
	if (!jg_allow_rate_ok(&key, &who, grant_id, JG_HOOK_INGRESS,
			      &suppressed))
		return;
	if (!emit_remote(skb, l4, JG_HOOK_INGRESS, JG_VERDICT_ALLOW, grant_id,
			 suppressed))
		jg_allow_rate_undo(&key, suppressed + 1);
}

/* The jg_flows entry of this flow (key filled in for an update). */
static __always_inline struct jg_flow_val *flow_lookup(const struct jg_l4 *l4,
						       struct jg_flow_key *key)
{
	return jg_flow_lookup(l4->src, l4->sport, l4->dport, l4->proto, key);
}

static __always_inline int jg_flow_key_eq(const struct jg_flow_key *a,
					  const struct jg_flow_key *b)
{
	const __u32 *x = (const __u32 *)a, *y = (const __u32 *)b;

	return x[0] == y[0] && x[1] == y[1] && x[2] == y[2] && x[3] == y[3] &&
	       x[4] == y[4] && x[5] == y[5];
}

/* Whether the flow's entry f (found under key) admits this packet on its
 * own: still this flow's, admitted under a grant whose cached end holds,
 * and no grant changed since (grant_gen). */
static __always_inline int flow_cached(const struct jg_flow_val *f,
				       const struct jg_flow_key *key, __u64 gen)
{
	return f && f->grant_id && jg_flow_key_eq(&f->key, key) &&
	       jg_cache_holds(f->cached_gen, f->cached_until, gen);
}

/*
 * Whether a grant in force admits this packet, once its flow's entry f
 * (looked up under `key`) did not: the grant is looked up, the entry
 * refreshed, and a flow new to this grant recorded.  gen was read before
 * the grant, so that a grant removed meanwhile leaves an entry that no
 * longer holds.
 */
static __always_inline int admit(struct __sk_buff *skb, const struct jg_l4 *l4,
				 const struct jg_config *cfg, __u64 gen,
				 const struct jg_flow_val *f,
				 const struct jg_flow_key *key)
{
	struct jg_flow_val fresh = {};
	struct jg_hit h = {};
	int known;

	if (l4->mapped)
		return 0;
	if (!jg_addr_hit(l4->src, l4->dport, l4->proto, cfg, 1, &h))
		return 0;
	known = f && f->grant_id == h.id;
	fresh.grant_id = h.id;
	fresh.cached_until = h.until;
	fresh.cached_gen = gen;
	fresh.key = *key;
	bpf_map_update_elem(&jg_flows, key, &fresh, BPF_ANY);
	if (!known)
		report_allow(skb, l4, h.id);
	return 1;
}

static __always_inline int flow_admitted(const struct jg_l4 *l4)
{
	struct jg_flow_key key = {};
	struct jg_flow_val *f = flow_lookup(l4, &key);

	return f && f->grant_id;
}

/* A loopback packet from this host (its source read in place, before any
 * parse): the local-user hooks judged it.  Only a local source counts: a
 * packet redirected onto lo from outside (tc mirred, bpf_redirect) is still
 * a peer's.  A header not in the linear area is no answer: parsed later. */
static __always_inline int from_this_host(struct __sk_buff *skb, __u32 l3proto)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;

	if (l3proto == bpf_htons(JG_ETH_P_IP)) {
		struct iphdr *ip = data;

		if ((void *)(ip + 1) > end)
			return 0;
		return is_local_v4(ip->saddr);
	}
	if (l3proto == bpf_htons(JG_ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = data;
		__u32 a[4];

		if ((void *)(ip6 + 1) > end)
			return 0;
		__builtin_memcpy(a, &ip6->saddr, 16);
		/* :: is no source: refused below, like an unreadable one. */
		return !jg_is_zero((const __u8 *)a) && is_local_v6(a);
	}
	return 0;
}

/*
 * The ingress decision.  `report` is set for jg_ingress, the program that
 * records denials; jg_guard judges every packet again on a link of
 * its own, so that detaching one link (another root process, a mistake)
 * opens nothing until the daemon re-attaches it.  The guard records allows
 * (once per flow, like jg_ingress: whichever runs first records it) but not
 * denials, which jg_ingress already reported: it counts its drops instead.
 */
static __always_inline int ingress(struct __sk_buff *skb, int report)
{
	struct jg_l4 l4 = {};
	struct jg_flow_key fkey = {};
	struct jg_flow_val *flow;
	struct jg_config *cfg;
	struct bpf_sock *sk;
	__u64 gen;
	__u32 l3proto = skb->protocol;
	__u32 ifindex = skb->ifindex;
	__u16 port = 0;
	__u8 proto, flags = 0;
	int parsed;

	/* This host talking to itself over loopback was decided by the
	 * local-user hooks. */
	if (ifindex == JG_LOOPBACK_IFINDEX && from_this_host(skb, l3proto))
		return 1;
	sk = skb->sk;
	if (!sk)
		return 1;
	sk = bpf_sk_fullsock(sk);
	if (!sk)
		return 1;
	/* The receiving socket's port: whatever tags, tunnels or NAT did to
	 * the packet on its way, this is the service it reaches.  Unprotected
	 * ports are let go before the packet is read at all. */
	proto = jg_sock_proto(sk->protocol);
	if (proto && (sk->type == SOCK_STREAM || sk->type == SOCK_DGRAM)) {
		port = (__u16)sk->src_port;
		flags = jg_port_flags(port, proto);
		if (!(flags & JG_PF_PROTECTED))
			return 1;
	} else {
		proto = 0;
	}
	/* One read of the headers: the source (the principal) and, for the
	 * event and the flow key, the rest.  Reassembly already happened. */
	parsed = jg_parse_skb(skb, l3proto, &l4);
	if (!proto) {
		/* Not a TCP/UDP stream or datagram socket: a raw socket gets
		 * copies of such packets and its "port" is a protocol number
		 * (so is the stand-in socket of BPF_PROG_TEST_RUN).  Judge by
		 * the packet's own headers. */
		if (parsed != JG_PARSE_OK)
			return 1;
		port = l4.dport;
		proto = l4.proto;
		flags = jg_port_flags(port, proto);
		if (!(flags & JG_PF_PROTECTED))
			return 1;
	} else if (parsed != JG_PARSE_OK || l4.proto != proto) {
		l4.sport = 0; /* the L4 header is not the socket's: unknown */
	}
	l4.dport = port;
	l4.proto = proto;
	/* A packet of a flow admitted before: the flow's entry and the clock.
	 * (Before the checks below, all of which would let it go too.)  An
	 * IPv4-mapped IPv6 source is nobody: addresses are keyed v4-mapped. */
	cfg = jg_cfg();
	gen = jg_grant_gen(cfg);
	flow = l4.mapped ? NULL : flow_lookup(&l4, &fkey);
	if (flow_cached(flow, &fkey, gen))
		return 1;
	/* Sockets of other network namespaces (containers) are other hosts. */
	if (!in_host_netns(skb))
		return 1;
	/* The same, for a header the in-place read could not reach.  A
	 * source the parser could not read stays zero (::), which no grant
	 * names: refused below. */
	if (ifindex == JG_LOOPBACK_IFINDEX && !jg_is_zero(l4.src) &&
	    is_local_v6((const __u32 *)l4.src))
		return 1;

	if (admit(skb, &l4, cfg, gen, flow, &fkey))
		return 1;
	if (flags & JG_PF_AUDIT) {
		if (report)
			report_denial(skb, &l4, JG_HOOK_INGRESS,
				      JG_VERDICT_WOULD_DENY);
		return 1;
	}
	/* on_expiry = "drain": an established TCP connection a grant admitted
	 * may finish.  A packet for a listening socket opens a new connection
	 * and may not; UDP has no connection to finish, so it is cut. */
	if ((flags & JG_PF_DRAIN) && l4.proto == JG_PROTO_TCP &&
	    sk->state != BPF_TCP_LISTEN && flow && flow->grant_id)
		return 1;
	if (!report) {
		jg_count(JG_CNT_GUARD_DROP);
		return 0;
	}
	jg_count(JG_CNT_INGRESS_DROP);
	report_denial(skb, &l4, JG_HOOK_INGRESS, JG_VERDICT_DENY);
	return 0;
}

SEC("cgroup_skb/ingress")
int jg_ingress(struct __sk_buff *skb)
{
	return ingress(skb, 1);
}

SEC("cgroup_skb/ingress")
int jg_guard(struct __sk_buff *skb)
{
	return ingress(skb, 0);
}

/*
 * Early drop.  Order matters for cost: parse, then the protected-port array
 * lookup (all that unprotected traffic pays), then the grant (a bloom filter
 * answers for most sources that have none), then whether the destination
 * is this host (forwarded traffic is not ours to gate): only a denial pays
 * for that.
 */
SEC("xdp")
int jg_xdp(struct xdp_md *ctx)
{
	struct jg_l4 l4 = {};
	__u8 flags;

	if (jg_parse_frame(ctx, &l4) != JG_PARSE_OK)
		return XDP_PASS; /* not certain: ingress decides */
	flags = jg_port_flags(l4.dport, l4.proto);
	if (!(flags & JG_PF_PROTECTED))
		return XDP_PASS;
	if (source_granted(&l4, jg_cfg()))
		return XDP_PASS; /* ingress records the allow, once per flow */
	/* The same principal denied a moment ago, to the same destination:
	 * counted in this CPU's memo, dropped. */
	if (!(flags & (JG_PF_AUDIT | JG_PF_DRAIN))) {
		struct jg_rl_key key = {};

		jg_rl_key_of(&key, l4.src, l4.dport, l4.proto);
		if (jg_memo_repeat(&key, l4.dst, JG_HOOK_XDP)) {
			jg_count(JG_CNT_DENY);
			jg_count(JG_CNT_XDP_DROP);
			return XDP_DROP;
		}
	}
	if (!is_local_v6((const __u32 *)l4.dst))
		return XDP_PASS;
	/* Audit mode is ingress's to report; a flow a grant admitted on a
	 * drain port goes on to ingress, which tells new connections apart. */
	if ((flags & JG_PF_AUDIT) ||
	    ((flags & JG_PF_DRAIN) && flow_admitted(&l4)))
		return XDP_PASS;
	jg_count(JG_CNT_XDP_DROP);
	report_denial(NULL, &l4, JG_HOOK_XDP, JG_VERDICT_DENY);
	return XDP_DROP;
}
