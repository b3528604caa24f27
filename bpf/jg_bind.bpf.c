// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * jitgate: who may serve a protected port.
 *
 * cgroup/bind4 and cgroup/bind6 refuse (EPERM) a bind of a protected
 * (port, proto) by a task in the host network namespace unless its real uid
 * is one of the port's service_users (include/jitgate/abi.h, jg_bind_val).
 * Without this, anyone could listen on [::1] beside a 127.0.0.1-only
 * service, or share a UDP address with SO_REUSEADDR and take its datagrams,
 * and collect what granted users send to "the service".
 *
 * Port 0 (the kernel picks one), unprotected ports and sockets of other
 * network namespaces (their ports are theirs) are not looked at.  In
 * mode = "audit" the bind goes ahead and is reported.
 */
#include "vmlinux.h"
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "jitgate/abi.h"
#include "jg_common.bpf.h"
#include "jg_sock_addr.bpf.h"

#define JG_SOCK_RAW 3 /* enum sock_type; a raw socket serves no port */

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, JG_PORT_ENTRIES);
	__type(key, __u32);
	__type(value, struct jg_bind_val);
} jg_bind_ports SEC(".maps") __weak;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, JG_BIND_USER_ENTRIES);
	__type(key, struct jg_bind_key);
	__type(value, __u8);
} jg_bind_users SEC(".maps") __weak;

/* Whether uid may bind (port, proto): root, an account below the port's
 * "system" threshold, or a listed service user. */
static __always_inline int jg_may_bind(__u32 uid, __u16 port, __u8 proto)
{
	struct jg_bind_key key = {};
	struct jg_bind_val *v;
	__u32 idx = port;

	if (uid == 0)
		return 1;
	v = bpf_map_lookup_elem(&jg_bind_ports, &idx);
	if (v && uid < (proto == JG_PROTO_TCP ? v->tcp_below : v->udp_below))
		return 1;
	key.uid = uid;
	key.port = port;
	key.proto = proto;
	return bpf_map_lookup_elem(&jg_bind_users, &key) != NULL;
}

static __always_inline void jg_rl_key_bind(struct jg_rl_key *key, __u32 uid,
					   __u16 port, __u8 proto)
{
	__builtin_memcpy(key->addr, &uid, sizeof(uid));
	key->port = port;
	key->proto = proto;
	key->kind = JG_RL_BIND;
}

/* A refused (or, audit mode, reported) bind: counted always, recorded at
 * most once a second per (uid, port, proto) with the count it stands for,
 * in windows of their own (JG_RL_BIND), apart from the same user's
 * connection denials. */
static __always_inline void report_bind(struct bpf_sock_addr *ctx,
					const __u8 addr[16], __u32 uid,
					__u16 port, __u8 proto, __u8 hook,
					__u8 verdict)
{
	struct jg_rl_key key = {};
	__u32 suppressed;

	jg_count(JG_CNT_BIND_DENY);
	jg_rl_key_bind(&key, uid, port, proto);
	if (!jg_deny_rate_ok(&key, verdict, hook, &suppressed))
		return;
	if (!emit_sock_addr(ctx, addr, uid, port, proto, hook, verdict, 0,
			    suppressed))
		jg_deny_rate_undo(&key, suppressed + 1);
}

/* The decision of both bind hooks: 1 lets the bind proceed, 0 refuses it
 * with EPERM.  addr is the address bound (v4-mapped or IPv6), for the
 * record only: a protected port is closed on every address. */
static __always_inline int decide_bind(struct bpf_sock_addr *ctx,
				       const __u8 addr[16], __u8 hook)
{
	__u16 port = bpf_ntohs((__u16)ctx->user_port);
	__u8 proto, flags;
	__u32 uid;

	if (!port || ctx->type == JG_SOCK_RAW)
		return 1;
	proto = jg_sock_proto(ctx->protocol);
	if (!proto)
		return 1;
	flags = jg_port_flags(port, proto);
	if (!(flags & JG_PF_PROTECTED))
		return 1;
	if (!in_host_netns(ctx))
		return 1;
	uid = (__u32)bpf_get_current_uid_gid();
	if (jg_may_bind(uid, port, proto))
		return 1;
	if (flags & JG_PF_AUDIT) {
		report_bind(ctx, addr, uid, port, proto, hook,
			    JG_VERDICT_WOULD_DENY);
		return 1;
	}
	report_bind(ctx, addr, uid, port, proto, hook, JG_VERDICT_DENY);
	return 0;
}

SEC("cgroup/bind4")
int jg_bind4(struct bpf_sock_addr *ctx)
{
	__u8 addr[16] = {};

	jg_v4_mapped(addr, ctx->user_ip4);
	return decide_bind(ctx, addr, JG_HOOK_BIND4);
}

SEC("cgroup/bind6")
int jg_bind6(struct bpf_sock_addr *ctx)
{
	__u32 addr[4];

	addr[0] = ctx->user_ip6[0];
	addr[1] = ctx->user_ip6[1];
	addr[2] = ctx->user_ip6[2];
	addr[3] = ctx->user_ip6[3];
	return decide_bind(ctx, (const __u8 *)addr, JG_HOOK_BIND6);
}
