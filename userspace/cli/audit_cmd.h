#pragma once
// jitgate audit: show or follow the audit stream, and verify the log's chain.
#include "cli/app.h"

namespace jg {

// Streams op "audit" with s.args; returns the exit code.
int run_audit(const CliState& s);
// Verifies s.files (default: jitgated's log), against jitgated's chain head
// when the last file is its current log; returns the exit code.
int run_audit_verify(const CliState& s);
// audit verify --fleet: jitgated checks every node's published audit head
// against its history of heads in etcd (op audit_fleet); exit 1 when a
// problem was found.
int run_audit_fleet(const CliState& s);

}  // namespace jg
