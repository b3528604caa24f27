#pragma once
// The audit record of a kernel decision (one ring-buffer event).  jitgated
// writes thousands of these a second, so they are built as AuditFields, not
// as a json object; the benchmark of the audit log builds its records here too.
#include <cstdint>
#include <string_view>

#include "core/audit.h"
#include "jitgate/abi.h"

namespace jg {

const char* hook_name(std::uint8_t hook);
const char* verdict_type(std::uint8_t verdict);  // "allow", "would_deny" or "deny"

// Remote principals (ingress, XDP) are their source address: no task, no uid.
inline bool is_remote_event(const jg_event& e) { return e.hook == JG_HOOK_INGRESS || e.hook == JG_HOOK_XDP; }

// A bind refused (or, audit mode, reported) by cgroup/bind4 or bind6: a
// bind_denied record.
inline bool is_bind_event(const jg_event& e) { return e.hook == JG_HOOK_BIND4 || e.hook == JG_HOOK_BIND6; }

// The record of `e` into `out` (cleared first); `user` names e.uid (unused
// for a remote principal).
void kernel_event_fields(const jg_event& e, std::string_view user, AuditFields& out);

}  // namespace jg
