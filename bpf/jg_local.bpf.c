// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * jitgate enforcement for local users.
 *
 * cgroup/connect{4,6} and cgroup/sendmsg{4,6} refuse (EPERM) a connection or
 * datagram from a task in the host network namespace to a protected
 * (port, proto) on this host unless jg_grants_uid holds an unexpired grant for
 * the task's real uid.  cgroup_skb/egress re-checks every packet a socket
 * sends to this host (it leaves through loopback), so a flow that was allowed
 * stops the moment its grant expires or is removed, even with the daemon dead.
 *
 * Ports are host order everywhere in the maps; addresses are network order,
 * IPv4 stored as ::ffff:a.b.c.d (include/jitgate/abi.h).
 */
#include "vmlinux.h"
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "jitgate/abi.h"
#include "jg_common.bpf.h"
#include "jg_frame.bpf.h"
#include "jg_sock_addr.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* A denial or would-be denial of a local user: counted always, reported at
 * most once a second per (uid, port, proto), the report carrying how many
 * it stands for.  The decision itself is never rate-limited. */
static __always_inline void report_local_denial(struct bpf_sock_addr *ctx,
						const __u8 dst[16], __u32 uid,
						__u16 port, __u8 proto,
						__u8 hook, __u8 verdict)
{
	struct jg_rl_key key = {};
	__u32 suppressed;

	jg_count(verdict == JG_VERDICT_DENY ? JG_CNT_DENY : JG_CNT_WOULD_DENY);
	jg_rl_key_uid(&key, uid, port, proto);
	if (!jg_deny_rate_ok(&key, verdict, hook, &suppressed))
		return;
	if (!emit_sock_addr(ctx, dst, uid, port, proto, hook, verdict, 0,
			    suppressed))
		jg_deny_rate_undo(&key, suppressed + 1);
}

/* A new connection or flow under a grant: counted always, recorded at most
 * once a second per (uid, grant, port, proto), the record carrying how many
 * flows it stands for; the daemon closes a window that went quiet. */
static __always_inline void report_local_allow(struct bpf_sock_addr *ctx,
					       const __u8 dst[16], __u32 uid,
					       __u16 port, __u8 proto,
					       __u8 hook, __u64 grant_id)
{
	struct jg_allow_key key = {};
	struct jg_rl_key who = {};
	__u32 suppressed;

	jg_count(JG_CNT_ALLOW);
	jg_rl_key_uid(&who, uid, port, proto);
	if (!jg_allow_rate_ok(&key, &who, grant_id, hook, &suppressed))
		return;
	if (!emit_sock_addr(ctx, dst, uid, port, proto, hook, JG_VERDICT_ALLOW,
			    grant_id, suppressed))
		jg_allow_rate_undo(&key, suppressed + 1);
}

/* Writes the socket's cached admission: (uid, port, proto) holds a grant
 * until `until` as read under generation `gen` (until 0: no admission).
 * Writers take turns through cache_seq (odd while one writes), so the tuple
 * left behind is always one writer's whole: two writers interleaving (UDP
 * egress runs without the socket lock, on any CPU) could otherwise leave one
 * grant's generation next to another grant's end, and a grant replaced by a
 * shorter one would be admitted until the old end.  A writer that finds
 * another at it leaves the cache alone: it is only a shortcut, and the next
 * packet that misses it asks the grant map.  The compare-and-swaps are full
 * barriers (lock cmpxchg); the plain stores between them keep their order on
 * x86, the one architecture this object is built for (CMakeLists.txt). */
static __always_inline void cache_write(struct jg_sk_state *st, __u32 uid,
					__u16 port, __u8 proto, __u64 gen,
					__u64 until)
{
	__u32 seq = *(volatile __u32 *)&st->cache_seq;

	if ((seq & 1) ||
	    __sync_val_compare_and_swap(&st->cache_seq, seq, seq + 1) != seq)
		return;
	st->cached_until = until;
	st->cached_uid = uid;
	st->cached_port = port;
	st->cached_proto = proto;
	st->cached_gen = gen;
	__sync_val_compare_and_swap(&st->cache_seq, seq + 1, seq + 2);
}

/* Records who last passed the check on this socket, for the egress
 * backstop, with the grant's end as read under generation `gen` (h: none in
 * audit mode); *same_flow says whether it repeats the last recorded flow. */
static __always_inline void remember(struct bpf_sock_addr *ctx, __u32 uid,
				     __u16 port, __u8 proto,
				     const struct jg_hit *h, __u64 gen,
				     int *same_flow)
{
	__u64 grant_id = h ? h->id : 0;

	struct jg_sk_state *st;

	*same_flow = 0;
	st = bpf_sk_storage_get(&jg_sk_state, ctx->sk, 0,
				BPF_SK_STORAGE_GET_F_CREATE);
	if (!st)
		return;
	*same_flow = st->grant_id == grant_id && st->uid == uid &&
		     st->port == port && st->proto == proto;
	/* The hooks of one socket run under its lock, one at a time; the
	 * cache names its own principal, so it holds for nobody else while
	 * these change. */
	st->uid = uid;
	st->port = port;
	st->proto = proto;
	st->grant_id = grant_id;
	cache_write(st, uid, port, proto, gen, h ? h->until : 0);
}

/*
 * The decision shared by the four sock_addr hooks.  dst is the destination
 * as a v4-mapped or IPv6 address (for the event only).  Returns 1 to let the
 * syscall proceed, 0 to refuse it with EPERM.
 */
static __always_inline int decide_sock_addr(struct bpf_sock_addr *ctx,
					    const __u8 dst[16], int v6,
					    __u8 hook, int is_sendmsg)
{
	__u16 port = bpf_ntohs((__u16)ctx->user_port);
	struct jg_hit h = {};
	__u8 proto, flags;
	int same_flow;
	__u64 gen;
	__u32 uid;

	proto = jg_sock_proto(ctx->protocol);
	if (!proto)
		return 1;
	flags = jg_port_flags(port, proto);
	if (!(flags & JG_PF_PROTECTED))
		return 1;
	if (v6 ? !is_local_v6((const __u32 *)dst) : !is_local_v4(ctx->user_ip4))
		return 1;
	if (!in_host_netns(ctx))
		return 1;

	uid = (__u32)bpf_get_current_uid_gid();
	gen = jg_grant_gen(jg_cfg()); /* before the grant: see jg_sk_state */
	/* The grant map decides, never the socket's cached admission: a
	 * connect() or sendmsg() opens a flow, and the cache is the egress
	 * backstop's shortcut for packets of flows already opened. */
	if (jg_uid_hit(uid, port, proto, &h)) {
		remember(ctx, uid, port, proto, &h, gen, &same_flow);
		/* One allow per connection, and per UDP flow: a datagram
		 * socket sending again, or connect()ing again, to the port of
		 * its last recorded flow under the same grant is no new flow.
		 */
		if (same_flow && (is_sendmsg || proto == JG_PROTO_UDP))
			return 1;
		report_local_allow(ctx, dst, uid, port, proto, hook, h.id);
		return 1;
	}

	if (flags & JG_PF_AUDIT) {
		report_local_denial(ctx, dst, uid, port, proto, hook,
				    JG_VERDICT_WOULD_DENY);
		/* Audit mode lets the flow through; the egress backstop then
		 * applies the same audit-mode verdict. */
		remember(ctx, uid, port, proto, NULL, gen, &same_flow);
		return 1;
	}
	report_local_denial(ctx, dst, uid, port, proto, hook, JG_VERDICT_DENY);
	return 0;
}

static __always_inline int sock_addr4(struct bpf_sock_addr *ctx, __u8 hook,
				      int is_sendmsg)
{
	__u8 dst[16] = {};

	jg_v4_mapped(dst, ctx->user_ip4);
	return decide_sock_addr(ctx, dst, 0, hook, is_sendmsg);
}

static __always_inline int sock_addr6(struct bpf_sock_addr *ctx, __u8 hook,
				      int is_sendmsg)
{
	__u32 dst[4];

	dst[0] = ctx->user_ip6[0];
	dst[1] = ctx->user_ip6[1];
	dst[2] = ctx->user_ip6[2];
	dst[3] = ctx->user_ip6[3];
	return decide_sock_addr(ctx, (const __u8 *)dst, 1, hook, is_sendmsg);
}

SEC("cgroup/connect4")
int jg_connect4(struct bpf_sock_addr *ctx)
{
	return sock_addr4(ctx, JG_HOOK_CONNECT4, 0);
}

SEC("cgroup/connect6")
int jg_connect6(struct bpf_sock_addr *ctx)
{
	return sock_addr6(ctx, JG_HOOK_CONNECT6, 0);
}

SEC("cgroup/sendmsg4")
int jg_sendmsg4(struct bpf_sock_addr *ctx)
{
	return sock_addr4(ctx, JG_HOOK_SENDMSG4, 1);
}

SEC("cgroup/sendmsg6")
int jg_sendmsg6(struct bpf_sock_addr *ctx)
{
	return sock_addr6(ctx, JG_HOOK_SENDMSG6, 1);
}

/*
 * A UDP datagram to a broadcast or multicast address leaves through a real
 * interface, yet the kernel loops a copy back to local listeners: such
 * packets are judged like loopback ones.  Every other packet leaving the
 * host passes through here, so the headers are read in place (no helper
 * call); headers outside the linear area get the full parse instead.
 */
static __always_inline int jg_loops_back(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;

	if (skb->protocol == bpf_htons(JG_ETH_P_IP)) {
		struct iphdr *ip = data;
		struct jg_addr a = {};
		__u32 h;

		if ((void *)(ip + 1) > end)
			return 1;
		if (ip->protocol != IPPROTO_UDP &&
		    ip->protocol != IPPROTO_UDPLITE)
			return 0;
		h = bpf_ntohl(ip->daddr);
		if ((h >> 28) == 0xe || h == 0xffffffff)
			return 1;
		jg_v4_mapped(a.addr, ip->daddr);
		return bpf_map_lookup_elem(&jg_local_addrs, &a) != NULL;
	}
	if (skb->protocol == bpf_htons(JG_ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = data;

		if ((void *)(ip6 + 1) > end)
			return 1;
		return ip6->daddr.in6_u.u6_addr8[0] == 0xff;
	}
	return 0;
}

/*
 * Per-packet backstop.  Only packets that leave through loopback (the
 * kernel routes everything addressed to this host there, whatever address
 * form was used) and go to a protected port are looked at.  The principal is
 * the uid recorded by the sock_addr hooks for this socket, or the socket's
 * owner when no hook saw it (sockets older than the attachment).
 */
/* A TCP segment with RST set and SYN clear (jg_parse_l3 found its header). */
static __always_inline int tcp_is_reset(struct __sk_buff *skb,
					const struct jg_l4 *l4)
{
	__u8 flags;

	if (!l4->l4_off ||
	    bpf_skb_load_bytes(skb, (__u32)l4->l4_off + 13, &flags, 1))
		return 0;
	return (flags & 0x04) && !(flags & 0x02);
}

/* Whether the socket's cached admission covers this packet: the socket's
 * principal to this destination (port, proto) under a grant that still
 * holds (jg_sk_state).  The tuple is used only when read whole: between two
 * equal, even readings of cache_seq (x86 keeps loads in order; the compiler
 * barriers keep the compiler from moving them). */
static __always_inline int cached_admit(const struct jg_sk_state *st,
					const struct jg_l4 *l4,
					const struct jg_config *cfg)
{
	__u64 until, gen;
	__u32 seq, uid;
	__u16 port;
	__u8 proto;

	if (!st)
		return 0;
	seq = *(const volatile __u32 *)&st->cache_seq;
	if (seq & 1)
		return 0;
	asm volatile("" ::: "memory");
	until = st->cached_until;
	gen = st->cached_gen;
	uid = st->cached_uid;
	port = st->cached_port;
	proto = st->cached_proto;
	asm volatile("" ::: "memory");
	if (*(const volatile __u32 *)&st->cache_seq != seq)
		return 0;
	return until && uid == st->uid && port == l4->dport &&
	       proto == l4->proto &&
	       jg_cache_holds(gen, until, jg_grant_gen(cfg));
}

SEC("cgroup_skb/egress")
int jg_egress(struct __sk_buff *skb)
{
	struct jg_l4 l4 = {};
	struct jg_sk_state *st = NULL;
	struct jg_config *cfg;
	struct bpf_sock *sk;
	struct jg_event *e;
	struct jg_hit h = {};
	__u64 gen;
	__u32 uid;
	__u8 flags;

	int parsed;

	if (skb->ifindex != JG_LOOPBACK_IFINDEX && !jg_loops_back(skb))
		return 1;
	sk = skb->sk;
	if (sk)
		sk = bpf_sk_fullsock(sk);
	parsed = jg_parse_skb(skb, skb->protocol, &l4);
	if (parsed == JG_PARSE_SKIP)
		return 1; /* not TCP/UDP, or a non-first fragment */
	if (parsed == JG_PARSE_BAD) {
		/* Headers we cannot walk: judge by the socket's own peer. */
		if (!sk)
			return 1;
		l4.proto = jg_sock_proto(sk->protocol);
		l4.dport = bpf_ntohs(sk->dst_port);
		if (!l4.proto || !l4.dport)
			return 1;
	}
	/* A packet of a connection admitted before: one lookup and the clock
	 * read (the socket's storage exists only where a hook admitted it in
	 * this host's network namespace, on a protected port). */
	cfg = jg_cfg();
	if (sk)
		st = bpf_sk_storage_get(&jg_sk_state, sk, 0, 0);
	if (cached_admit(st, &l4, cfg))
		return 1;
	flags = jg_port_flags(l4.dport, l4.proto);
	if (!(flags & JG_PF_PROTECTED))
		return 1;
	/* Sockets of other network namespaces (containers) talk to their own
	 * loopback and ports: other hosts', not ours to gate. */
	if (!in_host_netns(skb))
		return 1;

	uid = st ? st->uid : bpf_get_socket_uid(skb);
	gen = jg_grant_gen(cfg);
	if (jg_uid_hit(uid, l4.dport, l4.proto, &h)) {
		if (st) /* uid is st->uid as read above */
			cache_write(st, uid, l4.dport, l4.proto, gen, h.until);
		return 1;
	}
	if (flags & JG_PF_AUDIT)
		return 1; /* reported once by the sock_addr hook already */
	/* on_expiry = "drain": a TCP connection that a grant allowed may
	 * finish; only new connections are refused (by the sock_addr hooks).
	 * UDP has no connection to finish: a connected UDP socket is cut. */
	if ((flags & JG_PF_DRAIN) && l4.proto == JG_PROTO_TCP && st &&
	    st->grant_id)
		return 1;
	/* A reset opens nothing.  Let it through, so that when a connection is
	 * cut (bpf_sock_destroy at the end of its grant, or the kernel
	 * answering a segment for it afterwards) the other end learns of it at
	 * once instead of keeping a dead connection. */
	if (l4.proto == JG_PROTO_TCP && tcp_is_reset(skb, &l4))
		return 1;

	jg_count(JG_CNT_EGRESS_DROP);
	/* One event per socket and grant change, not per packet: remember that
	 * this socket was cut by clearing its grant id. */
	if (st) {
		if (st->grant_id == 0)
			return 0;
		st->grant_id = 0;
	}
	jg_count(JG_CNT_DENY);
	e = jg_event_reserve();
	if (e) {
		e->cgroup_id = bpf_skb_cgroup_id(skb);
		e->uid = uid;
		__builtin_memcpy(e->src, l4.src, 16);
		__builtin_memcpy(e->dst, l4.dst, 16);
		e->sport = l4.sport;
		e->dport = l4.dport;
		e->proto = l4.proto;
		e->hook = JG_HOOK_EGRESS;
		e->verdict = JG_VERDICT_DENY;
		jg_event_submit(e);
	}
	return 0;
}
