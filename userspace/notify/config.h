#pragma once
// jitgate notify's configuration (design.md §9): the [[notify]] tables of
// the file jitgated reads, and [web] url (the approval page, for links).
// Every problem is one "FILE:LINE: message"; the notifier refuses to start
// on any.
#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace jg::notify {

enum class Format { Json, Slack };

struct Target {
    std::string name;  // the state file's and notify_failed's name for it
    std::string url;
    Format format = Format::Json;
    std::string secret;           // the key's bytes (whsec_ decoded); empty: unsigned
    std::set<std::string> types;  // record types sent
    std::set<int> ports;          // empty: every port (and records of none)
    std::int64_t give_up_after_s = 600;
    std::int64_t timeout_s = 15;  // one try's whole time (connecting: at most 5 s of it)
    int line = 0;
};

struct Config {
    std::vector<Target> targets;
    std::string web_url;  // "" when [web] url is not set: no links
};

// The record types a target gets when it names none.
const std::vector<std::string>& default_types();

// url without credentials, path or query: "https://hooks.slack.com".
std::string origin_of(const std::string& url);

struct ConfigLoad {
    Config config;
    std::vector<std::string> errors;
};
// `read_file` reads a secret_file (tests give their own): its text, or an
// error sentence starting "cannot".
ConfigLoad parse_config(std::string_view text, std::string_view file,
                        std::string (*read_file)(const std::string& path, std::string* error));
ConfigLoad load_config(const std::string& path);

}  // namespace jg::notify
