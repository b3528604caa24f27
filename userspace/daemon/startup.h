#pragma once
// jitgated's start-up checks and the host facts it reads: privilege, the
// policy, directories only root may write, the [daemon] settings, the pin
// directory of this ABI and the ones an older jitgate left, and the warnings
// said at start and reload.
#include <signal.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/policy.h"
#include "core/result.h"
#include "core/service_users.h"
#include "daemon/daemon.h"

namespace jg {

class AuditLog;
struct XdpStatus;

// <bpffs>/v<ABI>: where this version pins its links and maps.
std::string pin_dir_of(const std::string& bpffs);
// Pin directories of other ABI versions under bpffs ("v<N>", N not ours):
// what an older (or newer) jitgate left attached.
std::vector<std::string> other_abi_dirs(const std::string& bpffs);

// Flags win over [daemon] keys, which win over the defaults.
void apply_daemon_settings(DaemonOptions& o, const DaemonSettings& d);

// Why jitgated cannot run here (not root, a shifted time namespace); nothing when it can.
std::optional<std::string> start_refusal();
// The policy at `config`; its errors are printed to stderr, one a line, and
// the error says how to check it.
Result<std::shared_ptr<const Policy>> load_start_policy(const std::string& config);
// Makes the state, socket and audit log directories and refuses any that
// another user could write (they could replace the store or the log, or put
// their own socket in place of the daemon's).  The audit log's directory.
Result<std::string> prepare_dirs(const DaemonOptions& o);
// SIGINT, SIGTERM and SIGHUP blocked (read from a signalfd instead) and
// SIGPIPE ignored; the blocked set.
sigset_t block_signals();
// Room for every control-socket client plus the daemon's own descriptors.
void raise_fd_limit();

// The daemon_start record, and events_lost for records sealed but never
// written when the daemon last stopped.
void record_start(AuditLog& audit, const std::string& cgroup, std::size_t ports, const std::string& config);
// An upgrade across an ABI change: once our links are attached (and the
// grants are in our maps, from the store), the other version's links and
// maps go without a moment unenforced; each removal logged and recorded.
void remove_other_abis(const std::string& bpffs, AuditLog& audit);

// Who may bind each protected port of `p`, groups expanded now.
BindRules service_rules(const Policy& p);
// A protected port inside the ephemeral range can be handed to this host's
// own outgoing connections, whose replies would then be refused: say so.
void warn_ephemeral(const Policy& p);
// Sockets already on a protected port whose owner may not bind it (an
// impostor, or a service_users list that misses the real service): said at
// start and reload, so that a restart of the service is not the first sign.
void warn_impostors(const Policy& p, const BindRules& rules);
// Names the policy gives that this host does not know (likely typos).
void warn_unknown_principals(const Policy& p);
// The sentence said at start and reload when the grant maps hold another
// number of grants than [daemon] max_grants (maps pinned by an earlier start
// keep their size); empty when they agree.
std::string max_grants_note(std::uint32_t capacity, std::uint32_t max_grants);
// Where XDP runs and where it could not be attached.
void log_xdp(const std::vector<XdpStatus>& xdp);

}  // namespace jg
