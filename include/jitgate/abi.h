/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The one header shared by the BPF programs (bpf/ *.bpf.c) and the C++ side.
 *
 * Rules (see shared/style.md): fixed-width fields only, byte order stated for
 * every multi-byte field, explicit zeroed padding, no bool/enum/bitfield
 * members, sizes checked by static_assert on both sides.  When the meaning or
 * the layout of any map below changes, bump JG_ABI_VERSION: it is part of the
 * pin path, so an old pinned map is never silently reused with a new meaning.
 */
#ifndef JITGATE_ABI_H
#define JITGATE_ABI_H

#ifdef __cplusplus
#include <cstdint>
typedef std::uint8_t jg_u8;
typedef std::uint16_t jg_u16;
typedef std::uint32_t jg_u32;
typedef std::uint64_t jg_u64;
#else
typedef __u8 jg_u8;
typedef __u16 jg_u16;
typedef __u32 jg_u32;
typedef __u64 jg_u64;
#endif

#define JG_ABI_VERSION 5

/* Transport protocols, as IANA protocol numbers (IPPROTO_TCP, IPPROTO_UDP). */
#define JG_PROTO_TCP 6
#define JG_PROTO_UDP 17

/* jg_port_val.tcp / .udp flag bits. */
#define JG_PF_PROTECTED 0x1 /* the port is gated for this protocol */
#define JG_PF_AUDIT	0x2 /* mode = "audit": report would_deny, never block */
#define JG_PF_DRAIN	0x4 /* on_expiry = "drain" */

/* Protected ports: BPF_MAP_TYPE_ARRAY indexed by port number (host order),
 * 65536 entries.  An array lookup is inlined by the verifier, so an
 * unprotected port costs one load. */
#define JG_PORT_ENTRIES 65536
struct jg_port_val {
	jg_u8 tcp;    /* JG_PF_* for TCP */
	jg_u8 udp;    /* JG_PF_* for UDP */
	jg_u8 pad[6]; /* zero */
};

/* Grant for a local user: BPF_MAP_TYPE_HASH, preallocated (ABI 4): an
 * element costs its 48-byte header, key and value, and nothing more, and
 * the table holds exactly max_entries ([daemon] max_grants). */
struct jg_uid_key {
	jg_u32 uid;  /* real uid, host order */
	jg_u16 port; /* destination port, host order */
	jg_u8 proto; /* JG_PROTO_* */
	jg_u8 pad;   /* zero */
};

/* Grant for a remote peer: BPF_MAP_TYPE_HASH, preallocated like the local
 * one.  jg_grants_bloom holds every key of this map (and may hold keys no
 * longer in it): a source the bloom filter does not know has no grant here,
 * so a flood of random sources is refused without a walk in this table. */
struct jg_addr_key {
	jg_u8 addr[16]; /* source address, network order; IPv4 as ::ffff:a.b.c.d
			 */
	jg_u16 port;	/* destination port, host order */
	jg_u8 proto;	/* JG_PROTO_* */
	jg_u8 pad;	/* zero */
};

/* Grant for a remote network wider than one host (policy allow_prefix):
 * BPF_MAP_TYPE_LPM_TRIE.  port and proto come first so that every lookup
 * matches them exactly: prefixlen = 32 + the address prefix in bits, with
 * IPv4 prefixes counted inside ::ffff:0:0/96 (an IPv4 /24 is 32 + 96 + 24).
 * Single hosts live in jg_grants_addr (a hash, cheaper to look up). */
struct jg_net_key {
	jg_u32 prefixlen; /* host order, 32 + address prefix bits */
	jg_u16 port;	  /* destination port, host order */
	jg_u8 proto;	  /* JG_PROTO_* */
	jg_u8 pad;	  /* zero */
	jg_u8 addr[16];	  /* network order, IPv4 as ::ffff:a.b.c.d, host bits
			     zero */
};

/* Value of the three grant maps. */
struct jg_grant_val {
	jg_u64 expires_ns; /* CLOCK_BOOTTIME, ns; the grant is void at or after
			      this */
	jg_u64 grant_id;   /* the daemon's grant id, never 0 (the programs
			      read 0 as "no grant") */
};

/* The default size of the grant maps ([daemon] max_grants). */
#define JG_GRANT_ENTRIES 65536

/* jg_grants_bloom: BPF_MAP_TYPE_ARRAY_OF_MAPS of one entry, an inner
 * BPF_MAP_TYPE_BLOOM_FILTER whose values are jg_addr_key, JG_BLOOM_HASHES
 * hash functions.  A bloom filter cannot forget a key, so the daemon builds
 * a new one and swaps it in after grants were removed.  An empty slot (no
 * filter yet) means "unknown": the programs look in jg_grants_addr.
 * One hash: every packet of a granted source pays each hash (a jhash of the
 * key), while a hash fewer only sends more spoofed sources on to the grant
 * hash.  The filter is made for JG_BLOOM_SCALE times the grant map's
 * entries, so that its bitmap keeps about the size three hashes had (the
 * kernel sizes it by entries x hashes x 7/5, rounded up to a power of two):
 * 8 bits per grant for a power-of-two max_grants (5.6 to 11.2 otherwise),
 * about 12 % of absent sources passed on to the hash when the map is full,
 * against 3 % with three hashes. */
#define JG_BLOOM_HASHES 1
#define JG_BLOOM_SCALE	4

/* Addresses of this host (host network namespace): BPF_MAP_TYPE_HASH,
 * key = 16-byte address, network order, IPv4 as ::ffff:a.b.c.d; value = 1.
 * Kept current by the daemon from netlink.  Loopback ranges and the
 * unspecified addresses are recognised by the programs themselves. */
#define JG_LOCAL_ADDR_ENTRIES 4096
struct jg_addr {
	jg_u8 addr[16];
};

/*
 * Who may serve a protected port (policy service_users), read by
 * cgroup/bind4 and bind6.  A bind of a protected (port, proto) in the host
 * network namespace goes ahead when the task's real uid is 0, is below the
 * port's jg_bind_val threshold for that protocol ("system": the accounts
 * below UID_MIN), or has a jg_bind_users entry; otherwise it is refused.
 *
 * jg_bind_ports: BPF_MAP_TYPE_ARRAY indexed by port number (host order),
 * JG_PORT_ENTRIES entries; an entry never written is zero, so a port the
 * daemon has not described yet admits root only (fail closed).
 * jg_bind_users: BPF_MAP_TYPE_HASH, key jg_bind_key, value jg_u8 = 1; one
 * entry per (uid, port, proto), so a group of thousands costs one lookup.
 */
#define JG_BIND_USER_ENTRIES 262144
struct jg_bind_val {
	jg_u32 tcp_below; /* uids below this may bind TCP (0: none but root) */
	jg_u32 udp_below; /* the same for UDP */
};
struct jg_bind_key {
	jg_u32 uid;  /* real uid, host order */
	jg_u16 port; /* the protected port, host order */
	jg_u8 proto; /* JG_PROTO_* */
	jg_u8 pad;   /* zero */
};

/* Prefixes routed to this host without being addresses of an interface
 * (AnyIP `local` routes such as "local 198.51.100.128/25 dev lo", IPv6
 * anycast): BPF_MAP_TYPE_LPM_TRIE, value = 1.  Kept current by the daemon
 * from rtnetlink; looked up only for an address jg_local_addrs lacks. */
#define JG_LOCAL_NET_ENTRIES 4096
struct jg_local_net_key {
	jg_u32 prefixlen; /* host order, 128-bit space (IPv4: 96 + bits) */
	jg_u8 addr[16];	  /* network order, IPv4 as ::ffff:a.b.c.d, host bits
			     zero */
};

/* Runtime configuration: BPF_MAP_TYPE_ARRAY, one entry. */
struct jg_config {
	jg_u64 host_netns_cookie; /* the netns whose local users are gated */
	jg_u32 flags;		  /* reserved, zero */
	jg_u32 net_grants; /* entries in jg_grants_net: 0 lets the programs
			      skip the prefix trie; raised before an entry is
			      added, lowered after one is removed */
	jg_u64 grant_gen;  /* raised after every change to a grant map: a
			      cached admission (jg_flow_val, jg_sk_state)
			      made under another generation is not used */
};

/* Per-socket state in BPF_MAP_TYPE_SK_STORAGE: the real uid of the last task
 * that passed a connect/sendmsg check on this socket towards a local
 * protected port.  The egress backstop re-checks the grant for that uid. */
struct jg_sk_state {
	jg_u32 uid;	 /* host order */
	jg_u16 port;	 /* last allowed destination port, host order */
	jg_u8 proto;	 /* JG_PROTO_* */
	jg_u8 pad;	 /* zero */
	jg_u64 grant_id; /* grant of the last allow event emitted for this
			    socket */
	/* The egress backstop's cache (ABI 5): (cached_uid, cached_port,
	 * cached_proto) holds a grant until cached_until (CLOCK_BOOTTIME ns),
	 * as read under grant generation cached_gen; valid only while
	 * jg_config.grant_gen is still that, so a revocation ends it at once,
	 * and only for packets of jg_sk_state.uid to that port.  The tuple
	 * names its own principal and port because the hooks change uid/port
	 * under the socket lock while UDP egress runs without it: the cache
	 * never borrows them.  cache_seq makes the tuple one value: a writer
	 * takes it from even to odd by compare-and-swap (or leaves the cache
	 * alone when it finds it odd or moved: the cache is only a shortcut),
	 * writes, and makes it even again; a reader uses only a tuple read
	 * between two equal, even readings of it. */
	jg_u64 cached_until;
	jg_u64 cached_gen;
	jg_u32 cached_uid;  /* host order */
	jg_u16 cached_port; /* host order */
	jg_u8 cached_proto; /* JG_PROTO_* */
	jg_u8 pad2;	    /* zero */
	jg_u32 cache_seq;   /* odd while a writer writes */
	jg_u32 pad3;	    /* zero */
};

/* Remote flows seen under a grant, so that the ingress check reports one
 * allow per connection or UDP flow, not one per packet, and on_expiry =
 * "drain" can tell an admitted flow from a new one: BPF_MAP_TYPE_LRU_HASH,
 * value jg_flow_val.  A packet of an admitted flow costs one lookup here and
 * the clock read while the cached admission holds (see jg_sk_state). */
#define JG_FLOW_ENTRIES 65536
struct jg_flow_key {
	jg_u8 src[16]; /* peer address, network order, IPv4 v4-mapped */
	jg_u16 sport;  /* peer port, host order */
	jg_u16 dport;  /* local (protected) port, host order */
	jg_u8 proto;   /* JG_PROTO_* */
	jg_u8 pad[3];  /* zero */
};
struct jg_flow_val {
	jg_u64 grant_id;	/* the grant the flow was admitted under */
	jg_u64 cached_until;	/* that grant's end, CLOCK_BOOTTIME ns */
	jg_u64 cached_gen;	/* jg_config.grant_gen when it was read */
	struct jg_flow_key key; /* the entry's own key: an LRU element can be
				   reused for another flow while a program
				   reads it, so a cache is used only when
				   this still names the packet's flow */
};

/* Deny-event rate limit, per (principal, port, proto): at most one deny
 * event per JG_RL_WINDOW_NS; the denials in between are counted and carried
 * by the next event as jg_event.suppressed.  BPF_MAP_TYPE_HASH, not LRU: an
 * evicted window would take its count with it.  The daemon removes windows
 * idle for a second (writing the closing record of any count); a denial
 * that finds the table full is counted in JG_CNT_RL_FULL, which the daemon
 * reports as events_lost. */
#define JG_RL_ENTRIES	65536
#define JG_RL_WINDOW_NS 1000000000ULL
#define JG_RL_ADDR	1 /* principal is jg_rl_key.addr */
#define JG_RL_UID	2 /* principal is the uid in jg_rl_key.addr[0..3] */
#define JG_RL_BIND	3 /* bind refused to the uid in addr[0..3] (ABI 3) */
struct jg_rl_key {
	jg_u8 addr[16]; /* JG_RL_ADDR: source, network order, v4-mapped;
			   JG_RL_UID: jg_u32 uid (host order) then zero */
	jg_u16 port;	/* host order */
	jg_u8 proto;	/* JG_PROTO_* */
	jg_u8 kind;	/* JG_RL_* */
};
struct jg_rl_val {
	jg_u64 window_end_ns; /* CLOCK_MONOTONIC_COARSE; no event before */
	jg_u32 suppressed;    /* denials not reported since the last event */
	jg_u8 verdict;	      /* JG_VERDICT_* of the latest denial (0: deny) */
	jg_u8 hook;	      /* JG_HOOK_* of the latest denial (0: unknown) */
	jg_u16 pad;	      /* zero */
};

/*
 * The denial memo (ABI 4): per CPU, the remote principal (jg_rl_key) whose
 * window this CPU last saw, so that a flood from one source costs an array
 * read and one atomic add on this CPU's own cache line, not a lookup in
 * jg_deny_rl.  BPF_MAP_TYPE_ARRAY indexed by CPU (bpf_get_smp_processor_id),
 * BPF_F_MMAPABLE: the daemon takes a count with an atomic exchange.  Used by
 * the remote programs (softirq: one at a time per CPU).
 * A denial of `key` before window_end_ns adds to `pending` (in XDP, one to
 * the memo's `dst`, before the local-address lookup); the program
 * moves `pending` into the key's jg_deny_rl window (exchange, then add)
 * before the memo takes another key or window, and the daemon takes the
 * count of a memo idle for a window with a compare-and-swap of the whole
 * word: a swap that succeeds took the count of the generation whose key it
 * read, so each denial is reported once and under its own principal:
 * counted + suppressed still equal the kernel counters.
 */
#define JG_MEMO_SLOTS	       1024 /* CPUs beyond it go to jg_deny_rl directly */
#define JG_MEMO_COUNT(pending) ((jg_u32)(pending))
struct jg_deny_memo {
	struct jg_rl_key key; /* the principal, port, proto, kind */
	jg_u8 verdict;	      /* JG_VERDICT_* of the latest denial */
	jg_u8 hook;	      /* JG_HOOK_* of the latest denial */
	jg_u16 pad;	      /* zero */
	jg_u64
	    window_end_ns; /* CLOCK_MONOTONIC_COARSE: the memo holds before */
	jg_u64 pending;	   /* low 32 bits: denials not yet in jg_deny_rl;
			      high 32: the memo's generation, raised by
			      the program (only) each time it empties the
			      memo to take another key (JG_MEMO_COUNT) */
	jg_u64 full_until_ns; /* jg_deny_rl was full: until then this CPU opens
				 no window there (counted rl_full) */
	jg_u8 dst[16];	      /* the destination of the denial that took the
				 memo: a packet to it from the same principal
				 is known to be for this host (XDP skips the
				 local-address lookup); one cache line in all */
};

/* Allow-record window, per (principal, grant, port, proto): the deny
 * window's mechanism (jg_rl_val, JG_RL_WINDOW_NS, the daemon's closing
 * record) on a table of its own, so that a granted principal opening flows
 * as fast as it can writes at most one allow record a second.  The first
 * flow of a window is recorded with jg_event.suppressed = the flows not
 * recorded since the last record (its audit `count` is 1 + that); the
 * value's `suppressed` counts the flows a record has yet to carry.
 * BPF_MAP_TYPE_HASH of JG_RL_ENTRIES; a flow that finds it full is counted
 * in JG_CNT_RL_FULL. */
struct jg_allow_key {
	struct jg_rl_key who; /* principal, port and proto, as for denials */
	jg_u32 pad;	      /* zero */
	jg_u64 grant_id;      /* the grant the flows were allowed under */
};

/* Per-CPU counters: BPF_MAP_TYPE_PERCPU_ARRAY of jg_u64, indexed by: */
#define JG_CNT_ALLOW	    0 /* connections / flows allowed under a grant */
#define JG_CNT_DENY	    1 /* connections / packets refused */
#define JG_CNT_WOULD_DENY   2 /* audit-mode ports: would have been refused */
#define JG_CNT_EVENTS_LOST  3 /* ring-buffer reserve failures */
#define JG_CNT_EGRESS_DROP  4 /* packets dropped by the egress backstop */
#define JG_CNT_XDP_DROP	    5 /* frames dropped by XDP */
#define JG_CNT_INGRESS_DROP 6 /* packets dropped by cgroup_skb/ingress */
#define JG_CNT_GUARD_DROP   7 /* dropped by jg_guard (ingress's too) */
#define JG_CNT_RL_FULL	    8 /* not recorded: jg_deny_rl/jg_allow_rl full */
#define JG_CNT_BIND_DENY    9 /* binds refused (or, audit mode, reported) */
#define JG_CNT_MAX	    16

/* Hooks, for jg_event.hook. */
#define JG_HOOK_CONNECT4 1
#define JG_HOOK_CONNECT6 2
#define JG_HOOK_SENDMSG4 3
#define JG_HOOK_SENDMSG6 4
#define JG_HOOK_EGRESS	 5
#define JG_HOOK_INGRESS	 6
#define JG_HOOK_XDP	 7
#define JG_HOOK_BIND4	 8 /* verdict DENY: refused; WOULD_DENY: audit mode */
#define JG_HOOK_BIND6	 9

/* Verdicts, for jg_event.verdict. */
#define JG_VERDICT_ALLOW      1
#define JG_VERDICT_DENY	      2
#define JG_VERDICT_WOULD_DENY 3

/* One kernel decision, through the BPF ring buffer. */
struct jg_event {
	jg_u64 cgroup_id; /* cgroup of the task (sock_addr hooks) or socket */
	jg_u64 grant_id;  /* allow: the grant; otherwise 0 */
	jg_u64 netns_cookie;
	jg_u32 uid; /* real uid of the task, or of the socket for egress */
	jg_u32 pid; /* tgid; 0 in softirq context */
	jg_u8 comm[16];
	jg_u8 src[16]; /* network order, IPv4 as ::ffff:a.b.c.d; zero if unknown
			*/
	jg_u8 dst[16]; /* network order, IPv4 as ::ffff:a.b.c.d */
	jg_u16 sport;  /* host order; 0 if unknown */
	jg_u16 dport;  /* host order */
	jg_u8 proto;   /* JG_PROTO_* */
	jg_u8 hook;    /* JG_HOOK_* */
	jg_u8 verdict; /* JG_VERDICT_* */
	jg_u8 pad;     /* zero */
	jg_u32 suppressed; /* further identical denials this event stands for;
			      allow: further new flows (jg_allow_key) */
	jg_u32 pad2;	   /* zero */
};

#define JG_RINGBUF_BYTES (1u << 20)

/* Allow records are submitted without waking the daemon (a wake-up is a
 * cross-CPU interrupt, several times the cost of the decision), unless more
 * than 1/JG_RING_WAKE_SHARE of the ring (its size as made, --ring-buffer-bytes)
 * waits; the daemon drains the ring at least every JG_RING_DRAIN_MS.  Other
 * records wake a daemon that had caught up.  Neither wake-up is sent again
 * within JG_RING_WAKE_GAP_NS of the last one (jg_wake; the coarse clock, so
 * up to a tick more): a record of a burst waits for the next wake-up or the
 * daemon's next drain (every millisecond after records came, else
 * JG_RING_DRAIN_MS). */
#define JG_RING_WAKE_SHARE  8
#define JG_RING_DRAIN_MS    50
#define JG_RING_WAKE_GAP_NS (1000 * 1000ULL)

/*
 * One TCP connection the cut iterator (iter/tcp, jg_cut) ended because no
 * grant covers it any more, written to the iterator's seq file and read by
 * the daemon: not a map, so not part of the pinned ABI.  A local user's
 * connection is cut at its client socket (the kernel resets both ends); a
 * remote peer's at this host's end.
 */
#define JG_CUT_LOCAL  1 /* a local user's client socket */
#define JG_CUT_REMOTE 2 /* this host's end of a remote peer's connection */
struct jg_cut_rec {
	jg_u64 grant_id; /* the grant that admitted it, 0 when unknown */
	jg_u8 peer[16];	 /* network order, IPv4 as ::ffff:a.b.c.d */
	jg_u8 local[16]; /* network order, IPv4 as ::ffff:a.b.c.d */
	jg_u32 uid;	 /* JG_CUT_LOCAL: the user the grant was for */
	jg_u32
	    result;   /* bpf_sock_destroy(): 0, or -errno as two's complement */
	jg_u16 lport; /* local port, host order */
	jg_u16 pport; /* peer port, host order */
	jg_u8 kind;   /* JG_CUT_* */
	jg_u8 state;  /* TCP state when cut */
	jg_u8 pad[2]; /* zero */
};

#ifdef __cplusplus
static_assert(sizeof(jg_port_val) == 8, "jg_port_val layout");
static_assert(sizeof(jg_uid_key) == 8, "jg_uid_key layout");
static_assert(sizeof(jg_addr_key) == 20, "jg_addr_key layout");
static_assert(sizeof(jg_net_key) == 24, "jg_net_key layout");
static_assert(sizeof(jg_flow_key) == 24, "jg_flow_key layout");
static_assert(sizeof(jg_rl_key) == 20, "jg_rl_key layout");
static_assert(sizeof(jg_rl_val) == 16, "jg_rl_val layout");
static_assert(sizeof(jg_allow_key) == 32, "jg_allow_key layout");
static_assert(sizeof(jg_deny_memo) == 64, "jg_deny_memo layout");
static_assert(sizeof(jg_grant_val) == 16, "jg_grant_val layout");
static_assert(sizeof(jg_addr) == 16, "jg_addr layout");
static_assert(sizeof(jg_local_net_key) == 20, "jg_local_net_key layout");
static_assert(sizeof(jg_config) == 24, "jg_config layout");
static_assert(sizeof(jg_flow_val) == 48, "jg_flow_val layout");
static_assert(sizeof(jg_sk_state) == 48, "jg_sk_state layout");
static_assert(sizeof(jg_event) == 96, "jg_event layout");
static_assert(sizeof(jg_cut_rec) == 56, "jg_cut_rec layout");
static_assert(sizeof(jg_bind_val) == 8, "jg_bind_val layout");
static_assert(sizeof(jg_bind_key) == 8, "jg_bind_key layout");
#else
_Static_assert(sizeof(struct jg_port_val) == 8, "jg_port_val layout");
_Static_assert(sizeof(struct jg_uid_key) == 8, "jg_uid_key layout");
_Static_assert(sizeof(struct jg_addr_key) == 20, "jg_addr_key layout");
_Static_assert(sizeof(struct jg_net_key) == 24, "jg_net_key layout");
_Static_assert(sizeof(struct jg_flow_key) == 24, "jg_flow_key layout");
_Static_assert(sizeof(struct jg_rl_key) == 20, "jg_rl_key layout");
_Static_assert(sizeof(struct jg_rl_val) == 16, "jg_rl_val layout");
_Static_assert(sizeof(struct jg_allow_key) == 32, "jg_allow_key layout");
_Static_assert(sizeof(struct jg_deny_memo) == 64, "jg_deny_memo layout");
_Static_assert(sizeof(struct jg_grant_val) == 16, "jg_grant_val layout");
_Static_assert(sizeof(struct jg_addr) == 16, "jg_addr layout");
_Static_assert(sizeof(struct jg_local_net_key) == 20, "jg_local_net_key");
_Static_assert(sizeof(struct jg_config) == 24, "jg_config layout");
_Static_assert(sizeof(struct jg_flow_val) == 48, "jg_flow_val layout");
_Static_assert(sizeof(struct jg_sk_state) == 48, "jg_sk_state layout");
_Static_assert(sizeof(struct jg_event) == 96, "jg_event layout");
_Static_assert(sizeof(struct jg_cut_rec) == 56, "jg_cut_rec layout");
_Static_assert(sizeof(struct jg_bind_val) == 8, "jg_bind_val layout");
_Static_assert(sizeof(struct jg_bind_key) == 8, "jg_bind_key layout");
#endif

#endif /* JITGATE_ABI_H */
