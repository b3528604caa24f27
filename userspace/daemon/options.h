#pragma once
// The jitgated command line, built in a function: main() parses it, and the
// documentation check (tests/dist) reads its options from the same place.
#include <CLI/CLI.hpp>
#include <memory>

#include "daemon/daemon.h"

namespace jg {

// Binds each option to o, and --uninstall to *uninstall.
std::unique_ptr<CLI::App> build_daemon_app(DaemonOptions& o, bool& uninstall);

}  // namespace jg
