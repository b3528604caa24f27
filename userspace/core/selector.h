#pragma once
// Which nodes of a fleet something is for (design.md §7): a node's name,
// or labels that must all match ("role=db,env=prod").  Node names and
// label keys and values share one small alphabet, so that a selector, a
// node's labels and an etcd key print as what they are.
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "core/result.h"

namespace jg {

using Labels = std::map<std::string, std::string>;

struct Selector {
    std::string node;  // a node's name; empty: by labels
    Labels labels;     // every one must match; empty with no node: every node

    bool matches(const std::string& node_name, const Labels& node_labels) const;
    std::string text() const;  // as parse_selector reads it back
    bool operator==(const Selector&) const = default;
};

// 1-63 characters of [A-Za-z0-9._-], starting with a letter or digit.
bool valid_fleet_name(std::string_view s);
// "NAME" or "KEY=VALUE[,KEY=VALUE...]", or the refusal as one sentence.
Result<Selector> parse_selector(std::string_view text);
// Whether every label of `want` is one of `have`'s (an empty want: all).
bool labels_match(const Labels& want, const Labels& have);
// "key=value,key=value" (sorted by key): labels as text.
std::string labels_text(const Labels& l);

}  // namespace jg
