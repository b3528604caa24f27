#include "cli/fleet_render.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/duration.h"
#include "core/text.h"

namespace jg {

namespace {

using nlohmann::json;

// A cell of the nodes table: a number as it is, a string (already
// escaped), true/false as yes/no, anything else (null: never acked) as "-".
std::string cell(const json& row, const char* key) {
    const auto v = row.find(key);
    if (v == row.end()) return "-";
    if (v->is_boolean()) return v->get<bool>() ? "yes" : "no";
    if (v->is_number_integer() || v->is_number_unsigned()) return v->dump();
    if (v->is_number_float()) return fmt::format("{}", std::llround(v->get<double>()));
    if (v->is_string()) return v->get<std::string>().empty() ? "-" : v->get<std::string>();
    return "-";
}

// A node's labels as key=value,key=value (sorted by key), "-" for none.
std::string labels_cell(const json& row) {
    const auto l = row.find("labels");
    if (l == row.end() || !l->is_object() || l->empty()) return "-";
    std::string out;
    for (const auto& [k, v] : l->items())
        out += (out.empty() ? "" : ",") + k + "=" + (v.is_string() ? v.get<std::string>() : v.dump());
    return out;
}

// How long ago the node last acked, as a duration ("-" when it never did).
std::string ack_age_cell(const json& row) {
    const auto a = row.find("ack_age_s");
    if (a == row.end() || !a->is_number()) return "-";
    const double s = a->get<double>();
    return s < 0 || !std::isfinite(s) ? "-" : format_duration(std::llround(std::min(s, 1e12)));
}

// Rows of cells as columns two spaces apart, the last one unpadded.
std::string table(const std::vector<std::vector<std::string>>& rows) {
    std::vector<std::size_t> width;
    for (const auto& r : rows)
        for (std::size_t i = 0; i < r.size(); ++i) {
            if (width.size() <= i) width.push_back(0);
            width[i] = std::max(width[i], r[i].size());
        }
    std::string out;
    for (const auto& r : rows) {
        for (std::size_t i = 0; i < r.size(); ++i) {
            out += r[i];
            if (i + 1 < r.size()) out += std::string(width[i] - r[i].size() + 2, ' ');
        }
        out += "\n";
    }
    return out;
}

// One line of policy text for a terminal: tabs as spaces to the next
// multiple of 8 (a TOML file may be indented with them), a CRLF line's \r
// dropped, the rest escaped.
std::string policy_line(std::string_view line) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    std::string expanded;
    for (char c : line) {
        if (c == '\t')
            expanded.append(8 - expanded.size() % 8, ' ');
        else
            expanded += c;
    }
    return escape_terminal(expanded);
}

// The number of ports in a policy reply: a count, or the list of names.
std::size_t ports_of(const json& r) {
    const auto p = r.find("ports");
    if (p == r.end()) return 0;
    if (p->is_array()) return p->size();
    return p->is_number_unsigned() || p->is_number_integer() ? p->get<std::size_t>() : 0;
}

}  // namespace

std::string render_nodes(const json& raw) {
    const json r = escape_strings(raw);
    const auto nodes = r.find("nodes");
    if (nodes == r.end() || !nodes->is_array() || nodes->empty())
        return "no nodes have registered in the fleet\n";
    std::vector<std::vector<std::string>> rows{
        {"NODE", "LABELS", "ALIVE", "APPLIED_REV", "LAG", "POLICY", "GRANTS", "ACK_AGE", "REJECTED"}};
    for (const auto& n : *nodes) {
        if (!n.is_object()) continue;
        rows.push_back({cell(n, "node"), labels_cell(n), cell(n, "alive"), cell(n, "applied_revision"),
                        cell(n, "lag"), cell(n, "policy_version"), cell(n, "grants"), ack_age_cell(n),
                        cell(n, "rejected")});
    }
    return table(rows);
}

std::string render_policy_push(const json& r) {
    const std::size_t ports = ports_of(r);
    return fmt::format("fleet policy version {}: {} port{}\n", cell(r, "version"), ports,
                       ports == 1 ? "" : "s");
}

std::string render_policy_show(const json& raw) {
    const json r = escape_strings(raw);
    // The header as TOML comments, so that the whole reads as a policy file.
    std::string s = fmt::format("# fleet policy version {}", cell(r, "version"));
    if (r.contains("pushed_by")) s += fmt::format(", pushed by {}", cell(r, "pushed_by"));
    if (r.contains("pushed_at")) s += fmt::format(" at {}", cell(r, "pushed_at"));
    if (r.contains("file")) s += fmt::format(" from {}", cell(r, "file"));
    s += "\n";
    if (const auto p = r.find("ports"); p != r.end() && p->is_array()) {
        std::string names;
        for (const auto& n : *p)
            if (n.is_string()) names += (names.empty() ? "" : ", ") + n.get<std::string>();
        s += fmt::format("# {} port{}{}{}\n", p->size(), p->size() == 1 ? "" : "s", names.empty() ? "" : ": ",
                         names);
    }
    // The text as pushed (raw: escaped line by line here, not as one string).
    const auto t = raw.find("text");
    const std::string text = t != raw.end() && t->is_string() ? t->get<std::string>() : std::string();
    for (std::size_t at = 0; at < text.size();) {
        const std::size_t nl = std::min(text.find('\n', at), text.size());
        s += policy_line(std::string_view(text).substr(at, nl - at)) + "\n";
        at = nl + 1;
    }
    return s;
}

}  // namespace jg
