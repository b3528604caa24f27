// jitgated's start-up facts (daemon/startup.h): which setting wins, and the
// pin directories an upgrade across an ABI change removes.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "daemon/startup.h"
#include "helpers.h"
#include "jitgate/abi.h"

namespace test_startup {
using namespace jg;
using namespace jg::testing;

TEST_SUITE("startup") {
    TEST_CASE(
        "a flag given wins over a [daemon] key, even when it names the default; a key over the default") {
        DaemonOptions o;
        o.given = {"--socket"};  // given on the command line, with the default value
        DaemonSettings d;
        d.socket = "/run/other/jitgate.sock";
        d.state_dir = "/srv/jitgate";
        d.metrics_address = "127.0.0.1:9464";
        apply_daemon_settings(o, d);
        CHECK(o.socket == DaemonOptions{}.socket);
        CHECK(o.state_dir == "/srv/jitgate");
        CHECK(o.metrics_address == "127.0.0.1:9464");
        CHECK(o.audit_log == DaemonOptions{}.audit_log);  // no key: the default
    }

    TEST_CASE("other ABI versions' pin directories are v<N> other than ours; nothing else") {
        TempDir dir;
        const std::string bpffs = dir.file("bpffs");
        CHECK(other_abi_dirs(bpffs).empty());  // no directory at all
        for (const std::string& n :
             {fmt::format("v{}", JG_ABI_VERSION), std::string("v1"), std::string("v12"), std::string("v"),
              std::string("vx"), std::string("links")})
            std::filesystem::create_directories(bpffs + "/" + n);
        CHECK(pin_dir_of(bpffs) == fmt::format("{}/v{}", bpffs, JG_ABI_VERSION));
        auto others = other_abi_dirs(bpffs);
        std::sort(others.begin(), others.end());
        CHECK(others == std::vector<std::string>{bpffs + "/v1", bpffs + "/v12"});
    }
}

}  // namespace test_startup
