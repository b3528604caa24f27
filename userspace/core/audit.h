#pragma once
// The audit records' core, in its parts: the chain and its one sealer
// (audit_chain.h), the end of an existing log (audit_tail.h), verification
// (audit_verify.h) and queries over the stream (audit_query.h). Rendering
// records for people is the CLI's (cli/audit_render.h).
#include "core/audit_chain.h"
#include "core/audit_query.h"
#include "core/audit_tail.h"
#include "core/audit_verify.h"
#include "core/clock.h"
#include "core/result.h"
