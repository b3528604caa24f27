// jitgated: loads and pins jitgate's BPF programs, serves the control socket.
#include "daemon/daemon.h"
#include "daemon/fleet_node.h"
#include "daemon/options.h"

int main(int argc, char** argv) {
    jg::DaemonOptions o;
    bool do_uninstall = false;
    auto app = jg::build_daemon_app(o, do_uninstall);
    try {
        app->parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app->exit(e) == 0 ? 0 : 2;
    }
    for (const char* flag :
         {"--cgroup", "--bpffs", "--socket", "--state-dir", "--audit-log", "--metrics-address"})
        if (app->count(flag)) o.given.insert(flag);
    if (o.print_key || o.rotate_key) return jg::print_node_key(o, o.rotate_key);
    return do_uninstall ? jg::uninstall(o) : jg::run_daemon(o);
}
