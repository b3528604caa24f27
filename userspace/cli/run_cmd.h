#pragma once
// jitgate run: request access, wait for it, run a command under the grant,
// and revoke the grant when the command ends.
#include "cli/app.h"

namespace jg {

struct RunOptions {
    WaitOptions wait;  // how the approval is awaited; its stop is set here
    // Whether run_with_grant installs its own SIGINT/SIGTERM/SIGHUP/SIGQUIT
    // handlers (tests drive the flag themselves).
    bool own_signals = true;
};

// The exit status of `jitgate run` for a waitpid() status: the command's
// exit code, or 128+N when signal N killed it.
int exit_status_of(int wait_status);

// Runs s.command (s.op == "run") while a grant for s.args is active:
// asks jitgated (op request), waits for the decision (progress on stderr),
// runs the command as a child with the same stdin/stdout/stderr, passes on
// SIGTERM/SIGHUP/SIGQUIT/SIGINT sent to jitgate alone (a terminal's Ctrl-C
// reaches the command directly), then revokes the grant.  A request still
// pending when jitgate is stopped is withdrawn.  Returns the command's exit
// status (128+N if killed by signal N), 3 when refused, 4 when jitgated is
// unreachable, 127/126 when the command cannot be found/executed, 128+N when
// jitgate itself was stopped by signal N before the command ran.  With
// --json one object on stdout after the command's own output.
int run_with_grant(const CliState& s, RunOptions o = {});

// The signal (SIGINT, SIGTERM, ...) that stopped `jitgate run`, 0 if none;
// exposed for tests, which set it with request_run_stop().
int run_stop_signal();
void request_run_stop(int sig, bool forward);
void reset_run_stop();

}  // namespace jg
