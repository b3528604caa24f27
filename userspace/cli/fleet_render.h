#pragma once
// Human-readable output of the fleet's operations (design.md §7): jitgate
// nodes, policy push and policy show.  Node names, labels, the policy's text
// and who pushed it come from etcd, which every node can write: all of it is
// escaped (core/text.h escape_terminal) before it is laid out.
#include <nlohmann/json.hpp>
#include <string>

namespace jg {

// The nodes table: NODE, LABELS, ALIVE, APPLIED_REV, LAG, POLICY, GRANTS,
// ACK_AGE, one row per node, columns two spaces apart ("-" for a value a
// node has not reported).
std::string render_nodes(const nlohmann::json& result);
// "fleet policy version 4: 3 ports".
std::string render_policy_push(const nlohmann::json& result);
// The version, who pushed it, when and from which file, as "# " lines;
// then the policy's text, line by line.
std::string render_policy_show(const nlohmann::json& result);

}  // namespace jg
