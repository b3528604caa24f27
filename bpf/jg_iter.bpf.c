// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Ending the TCP connections a grant no longer covers.
 *
 * When a grant expires or is revoked, the hooks already refuse every further
 * packet of the connections it admitted; left at that, the client would hang
 * until its retransmissions time out.  The daemon then runs this iterator
 * over the TCP sockets of its network namespace: every connection on a
 * protected "cut" port that the hooks would now refuse is destroyed
 * (bpf_sock_destroy: the kernel sends a reset and the local end gets
 * ECONNABORTED), and described to the daemon in the iterator's output.
 *
 * The decision is the hooks' own, taken again for each socket:
 * - a local user's connection, seen at its client socket (peer is a local
 *   address on a protected port): the uid grant for (uid, port, tcp);
 * - a remote peer's connection, seen at this host's end (local port
 *   protected, peer not a local address): the source grant of the peer.
 * Ports in audit mode or with on_expiry = "drain" are left alone, and so are
 * sockets outside the cgroup the programs are attached to.
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "jitgate/abi.h"
#include "jg_common.bpf.h"

#define JG_AF_INET	    2
#define JG_AF_INET6	    10
#define JG_MAX_CGROUP_DEPTH 64

/* Weak: on a kernel without it (before 6.5) the object still loads, and the
 * daemon leaves this program out (loader.cpp). */
extern int bpf_sock_destroy(struct sock_common *sk) __ksym __weak;

/* The cgroup the programs are attached to (its id: the inode number of its
 * directory), set by the daemon before each run: only the sockets of that
 * cgroup and the cgroups below it are gated, so only they are cut. */
volatile __u64 jg_cut_cgroup_id;

static __always_inline int in_attach_cgroup(struct sock *sk)
{
	struct cgroup *cg = BPF_CORE_READ(sk, sk_cgrp_data.cgroup);
	int i;

	for (i = 0; i < JG_MAX_CGROUP_DEPTH && cg; i++) {
		if (BPF_CORE_READ(cg, kn, id) == jg_cut_cgroup_id)
			return 1;
		cg = BPF_CORE_READ(cg, self.parent, cgroup);
	}
	return 0;
}

static __always_inline int cut_port(__u16 port)
{
	__u8 flags = jg_port_flags(port, JG_PROTO_TCP);

	return (flags & JG_PF_PROTECTED) &&
	       !(flags & (JG_PF_AUDIT | JG_PF_DRAIN));
}

SEC("iter/tcp")
int jg_cut(struct bpf_iter__tcp *ctx)
{
	struct sock_common *skc = ctx->sk_common;
	__u32 sock_uid = ctx->uid; /* read once: the verifier refuses a
				      computed context address */
	struct jg_cut_rec rec = {};
	struct jg_flow_key fk = {};
	struct jg_sk_state *st;
	struct tcp_sock *tp;
	struct jg_flow_val *flow;
	__u16 family;
	__u8 state;

	if (!skc)
		return 0;
	family = skc->skc_family;
	state = skc->skc_state;
	/* Listeners open nothing by themselves; time-wait and request sockets
	 * carry no data and cannot be destroyed. */
	if (state == BPF_TCP_LISTEN || state == BPF_TCP_TIME_WAIT ||
	    state == BPF_TCP_NEW_SYN_RECV || state == BPF_TCP_CLOSE)
		return 0;
	if (family == JG_AF_INET) {
		jg_v4_mapped(rec.local, skc->skc_rcv_saddr);
		jg_v4_mapped(rec.peer, skc->skc_daddr);
	} else if (family == JG_AF_INET6) {
		BPF_CORE_READ_INTO(&rec.local, skc, skc_v6_rcv_saddr);
		BPF_CORE_READ_INTO(&rec.peer, skc, skc_v6_daddr);
	} else {
		return 0;
	}
	rec.lport = skc->skc_num;
	rec.pport = bpf_ntohs(skc->skc_dport);
	rec.state = state;
	tp = bpf_skc_to_tcp_sock(skc);
	if (!tp)
		return 0;

	if (is_local_v6((const __u32 *)rec.peer)) {
		/* A local user's connection: judged at its client end. */
		if (!cut_port(rec.pport))
			return 0;
		st = bpf_sk_storage_get(&jg_sk_state, tp, 0, 0);
		rec.uid = st ? st->uid : sock_uid;
		if (jg_uid_grant(rec.uid, rec.pport, JG_PROTO_TCP))
			return 0;
		rec.kind = JG_CUT_LOCAL;
		rec.grant_id = st ? st->grant_id : 0;
	} else {
		/* A remote peer's connection: judged at this host's end. */
		if (!cut_port(rec.lport))
			return 0;
		if (jg_addr_grant(rec.peer, rec.lport, JG_PROTO_TCP))
			return 0;
		rec.kind = JG_CUT_REMOTE;
		rec.uid = sock_uid;
		flow = jg_flow_lookup(rec.peer, rec.pport, rec.lport,
				      JG_PROTO_TCP, &fk);
		rec.grant_id = flow ? flow->grant_id : 0;
	}
	if (!in_attach_cgroup((struct sock *)tp))
		return 0;
	rec.result = (__u32)bpf_sock_destroy(skc);
	bpf_seq_write(ctx->meta->seq, &rec, sizeof(rec));
	return 0;
}
