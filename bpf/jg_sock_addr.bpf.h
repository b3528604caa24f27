/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The record of a cgroup sock_addr hook's decision (connect, sendmsg, bind):
 * one filler for jg_local.bpf.c and jg_bind.bpf.c.  Needs jg_common.bpf.h.
 */
#ifndef JG_SOCK_ADDR_BPF_H
#define JG_SOCK_ADDR_BPF_H

static __always_inline void fill_task(struct jg_event *e)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();

	e->pid = pid_tgid >> 32;
	e->cgroup_id = bpf_get_current_cgroup_id();
	bpf_get_current_comm(e->comm, sizeof(e->comm));
}

static __always_inline int emit_sock_addr(struct bpf_sock_addr *ctx,
					  const __u8 dst[16], __u32 uid,
					  __u16 port, __u8 proto, __u8 hook,
					  __u8 verdict, __u64 grant_id,
					  __u32 suppressed)
{
	struct jg_event *e = jg_event_reserve();

	if (!e)
		return 0;
	fill_task(e);
	e->grant_id = grant_id;
	e->netns_cookie = bpf_get_netns_cookie(ctx);
	e->uid = uid;
	__builtin_memcpy(e->dst, dst, 16);
	e->dport = port;
	e->proto = proto;
	e->hook = hook;
	e->verdict = verdict;
	e->suppressed = suppressed;
	jg_event_submit(e);
	return 1;
}

#endif /* JG_SOCK_ADDR_BPF_H */
