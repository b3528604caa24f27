#pragma once
// The audit records of kernel decisions: one builder for every deny,
// would_deny, allow and bind_denied record, whether it comes from a
// ring-buffer event or from a rate-limit window closed after its principal
// went quiet.  jitgated writes thousands of these a second, so they are
// built as AuditFields, not as json objects; the benchmark of the audit log
// builds its records here too.
//
// KernelRecords owns what follows from those records: the names of the uids
// they carry (cached), the decision counts for the metrics, the latest
// denials that status shows, and the events_lost report.
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include <sys/types.h>

#include "core/audit.h"
#include "core/clock.h"
#include "core/keys.h"
#include "core/rl_window.h"
#include "core/workflow.h"
#include "jitgate/abi.h"

namespace jg {

class AuditLog;

const char* hook_name(std::uint8_t hook);
const char* verdict_type(std::uint8_t verdict);  // "allow", "would_deny" or "deny"

// Remote principals (ingress, XDP) are their source address: no task, no uid.
inline bool is_remote_event(const jg_event& e) { return e.hook == JG_HOOK_INGRESS || e.hook == JG_HOOK_XDP; }

// A bind refused (or, audit mode, reported) by cgroup/bind4 or bind6: a
// bind_denied record.
inline bool is_bind_event(const jg_event& e) { return e.hook == JG_HOOK_BIND4 || e.hook == JG_HOOK_BIND6; }

// One kernel decision as its record tells it.
struct Decision {
    std::uint8_t verdict = JG_VERDICT_DENY;  // JG_VERDICT_*
    std::uint8_t hook = 0;                   // JG_HOOK_*; 0: unknown
    bool bind = false;                       // a refused bind: a bind_denied record
    std::uint16_t port = 0;
    std::uint8_t proto = 0;        // JG_PROTO_*
    bool local = true;             // a local task: uid and user; else a remote source
    std::uint32_t uid = 0;         // when local
    std::string src, dst;          // addresses, when known
    std::uint64_t cgroup_id = 0;   // 0: unknown
    std::uint32_t pid = 0;         // 0: unknown
    std::string_view comm;         // the task's name, when known
    std::uint16_t sport = 0;       // 0: unknown
    std::uint64_t grant_id = 0;    // an allow's grant
    std::uint64_t stands_for = 1;  // itself and the decisions the rate limit held back
    std::string reason;            // why the record was written late (a closed window)

    const char* type() const { return bind ? "bind_denied" : verdict_type(verdict); }
    // A local user's refused connection: what status lists with the command to ask.
    bool is_denial() const { return verdict == JG_VERDICT_DENY && !bind; }
};

// The decision a ring-buffer event reports; `e` must outlive it (comm).
Decision decision_of(const jg_event& e);
// The decision that closes a window: the last of its decisions, standing
// for all it held back.
Decision decision_of(const ClosedWindow& w);
// The record of `d` into `out` (cleared first); `user` names d.uid (unused
// for a remote principal).
void decision_fields(const Decision& d, std::string_view user, AuditFields& out);
// The same for a ring-buffer event.
void kernel_event_fields(const jg_event& e, std::string_view user, AuditFields& out);

class KernelRecords {
public:
    KernelRecords(AuditLog& audit, Directory& dir, Clock& clock) : audit_(audit), dir_(dir), clock_(clock) {}

    void on_event(const jg_event& e);       // a decision the ring reported
    void on_closed(const ClosedWindow& w);  // a window closed with decisions unrecorded
    // Decisions enforced but never recorded one by one, as the kernel counts
    // them (ring reserve failures, full rate-limit tables): any increase since
    // the last report becomes one events_lost record.
    void report_lost(std::uint64_t ring_full, std::uint64_t rl_full);
    // At each tick: the name cache goes when /etc/passwd changed, and once a
    // minute (other NSS sources).
    void check_passwd(std::uint64_t tick);

    // A uid's name for a record of a kernel decision: cached.
    std::string user_of(std::uint32_t uid);
    // Kernel decision records since start, by (type, port, proto), each
    // counting the decisions it stands for.
    using DecisionCounts = std::map<std::tuple<std::string, std::uint16_t, std::string>, std::uint64_t>;
    const DecisionCounts& decisions() const { return decisions_; }
    // The latest denials, one per principal, port and protocol (newest
    // first), shown by status with the command that asks for access.
    const std::vector<json>& recent_denials() const { return recent_denials_; }
    static constexpr std::size_t kRecentDenials = 8;

private:
    void record(const Decision& d);
    void remember_denial(const Decision& d, std::string_view user);

    AuditLog& audit_;
    Directory& dir_;
    Clock& clock_;
    AuditFields fields_;  // reused for every record
    std::map<std::uint32_t, std::string> names_;
    // /etc/passwd's identity and change times, when the cache was filled.
    std::tuple<ino_t, std::int64_t, std::int64_t, off_t> passwd_stamp_{};
    DecisionCounts decisions_;
    std::vector<json> recent_denials_;
};

}  // namespace jg
