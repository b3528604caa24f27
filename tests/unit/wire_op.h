#pragma once
// A workflow operation called as the control socket calls it: its wire
// arguments parsed first by the operation table (core/operations.h), whose
// refusal is the reply, then the operation with the typed arguments.
#include <variant>

#include "core/operations.h"
#include "core/workflow.h"

namespace jg::testing {

template <typename Args>
Reply op(Reply (Workflow::*fn)(const Caller&, const Args&), Workflow& wf, const Caller& c, const json& args) {
    auto parsed = parse_as<Args>(args);
    if (const auto* e = std::get_if<OpError>(&parsed)) return Reply::fail(e->code, e->message);
    return (wf.*fn)(c, std::get<Args>(parsed));
}

}  // namespace jg::testing
