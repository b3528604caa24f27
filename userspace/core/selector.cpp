#include "core/selector.h"

#include <fmt/format.h>

#include <cctype>

#include "core/text.h"

namespace jg {

namespace {

// A selector names at most this many labels (a node's labels are checked against it).
constexpr std::size_t kMaxLabels = 16;

}  // namespace

bool valid_fleet_name(std::string_view s) {
    if (s.empty() || s.size() > 63) return false;
    if (!std::isalnum(static_cast<unsigned char>(s[0]))) return false;
    for (char c : s)
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') return false;
    return true;
}

bool labels_match(const Labels& want, const Labels& have) {
    for (const auto& [k, v] : want) {
        auto it = have.find(k);
        if (it == have.end() || it->second != v) return false;
    }
    return true;
}

std::string labels_text(const Labels& l) {
    std::string out;
    for (const auto& [k, v] : l) out += (out.empty() ? "" : ",") + k + "=" + v;
    return out;
}

bool Selector::matches(const std::string& node_name, const Labels& node_labels) const {
    if (!node.empty()) return node == node_name;
    return labels_match(labels, node_labels);
}

std::string Selector::text() const { return node.empty() ? labels_text(labels) : node; }

Result<Selector> parse_selector(std::string_view text) {
    const std::string shown = escape_terminal(text.substr(0, 80));
    if (text.empty()) return err("--on needs a node name or labels (key=value[,key=value])");
    Selector s;
    if (text.find('=') == std::string_view::npos) {
        if (!valid_fleet_name(text))
            return err(fmt::format(
                "--on '{}' is not a node name: use 1-63 letters, digits, '.', '_' or '-', or labels "
                "as key=value[,key=value]",
                shown));
        s.node = std::string(text);
        return s;
    }
    std::size_t start = 0;
    while (start <= text.size()) {
        const std::size_t comma = std::min(text.find(',', start), text.size());
        const std::string_view part = text.substr(start, comma - start);
        const std::size_t eq = part.find('=');
        if (eq == std::string_view::npos || !valid_fleet_name(part.substr(0, eq)) ||
            !valid_fleet_name(part.substr(eq + 1)))
            return err(fmt::format(
                "--on '{}' is not a selector: write a node name or key=value[,key=value] with keys "
                "and values of 1-63 letters, digits, '.', '_' or '-'",
                shown));
        const std::string key(part.substr(0, eq));
        if (s.labels.count(key)) return err(fmt::format("--on '{}' names label '{}' twice", shown, key));
        s.labels[key] = std::string(part.substr(eq + 1));
        if (s.labels.size() > kMaxLabels)
            return err(fmt::format("--on names more than {} labels", kMaxLabels));
        start = comma + 1;
    }
    return s;
}

}  // namespace jg
