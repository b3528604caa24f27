#pragma once
// What `jitgate status` and `jitgate metrics` (and GET /metrics) say: the
// running policy, the grants, the kernel's links and counters, the audit
// log's head and the latest denials, read from the daemon's parts when asked.
#include <cstdint>
#include <functional>
#include <string>

#include "core/audit.h"
#include "core/policy.h"
#include "core/store.h"
#include "core/workflow.h"

namespace jg {

class AuditFeed;
class AuditLog;
class Kernel;
class KernelRecords;

// The daemon's parts status and metrics read, at the moment they are asked.
struct StatusParts {
    const std::string& cgroup;
    std::string pin_dir;
    const Policy& policy;
    Store& store;
    Workflow& wf;
    const AuditLog& audit;
    const Kernel& kernel;
    const KernelRecords& records;
    const AuditFeed& feed;
    std::uint64_t connections_cut;  // since start
    std::uint64_t tampers;          // tamper_detected records since start
    std::string node;               // this node's name (the host's on a single host)
    json fleet = nullptr;           // the node's place in its fleet (FleetNode::status); null: a single host
    json notify = json::array();    // each notification target's last notify_failed (design.md §9)
};

// An error when the state store cannot be read.
Result<json> status(const StatusParts& s);
// status as `c` may see it: other users' grants and denials only for sees_all.
Result<json> scoped_status(const StatusParts& s, const Caller& c);
// What status says, as Prometheus families (core/metrics.h).
Result<json> metrics(const StatusParts& s);

// READY=1 for systemd once every link is attached in the kernel; false
// (with the reason logged) when enforcement cannot be verified.  `repair`
// attaches again what someone detached as the daemon started.
bool verify_and_notify_ready(const Kernel& k, std::size_t ports, const std::string& cgroup,
                             const std::function<void()>& repair);

}  // namespace jg
