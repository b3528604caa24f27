// jitgate_cli_spec: prints, as one JSON object, the sub-commands and options
// of jitgate and jitgated as their own CLI11 definitions build them (the
// functions main() uses), the audit record types and the ABI version.
// check_docs.py holds the completions and the man pages against it, so
// neither can offer or document what the programs do not accept.
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/app.h"
#include "core/audit.h"
#include "daemon/options.h"
#include "jitgate/abi.h"
#include "jitgate/version.h"

namespace {

using nlohmann::json;

// Options of `app` itself and of its option groups (CLI11 keeps a group as
// a nameless sub-command; on the command line its options are the app's).
void add_options(const CLI::App& app, json& node) {
    for (const CLI::Option* opt : app.get_options()) {
        if (opt->nonpositional()) {
            json names = json::array();
            for (const auto& s : opt->get_snames()) names.push_back("-" + s);
            for (const auto& l : opt->get_lnames()) names.push_back("--" + l);
            node["options"].push_back({{"names", names}, {"takes_value", opt->get_type_size_max() > 0}});
        } else {
            node["positionals"].push_back(opt->get_name(true));
        }
    }
    for (const CLI::App* sub : app.get_subcommands({}))
        if (sub->get_name().empty()) add_options(*sub, node);
}

json describe(const CLI::App& app) {
    json node = {{"name", app.get_name()},
                 {"options", json::array()},
                 {"positionals", json::array()},
                 {"fallthrough", app.get_fallthrough()},
                 {"require_subcommand", app.get_require_subcommand_min()},
                 {"subcommands", json::array()}};
    add_options(app, node);
    for (const CLI::App* sub : app.get_subcommands({}))
        if (!sub->get_name().empty()) node["subcommands"].push_back(describe(*sub));
    return node;
}

}  // namespace

int main() {
    jg::CliState cli;
    jg::DaemonOptions daemon;
    bool uninstall = false;
    json spec = {{"version", JITGATE_VERSION},
                 {"abi_version", JG_ABI_VERSION},
                 {"audit_types", jg::audit_types()},
                 {"jitgate", describe(*jg::build_app(cli))},
                 {"jitgated", describe(*jg::build_daemon_app(daemon, uninstall))}};
    std::cout << spec.dump(1) << "\n";
    return 0;
}
