// Issue 18: [daemon] max_grants sizes the grant maps (default 65536), the
// sentence said when pinned maps keep another size, and what status shows.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/render.h"
#include "core/policy.h"
#include "daemon/startup.h"

namespace test_max_grants {
using namespace jg;

namespace {

std::vector<std::string> errors_of(const std::string& text) { return parse_policy(text, "t.toml").errors; }

const char* kRange = "daemon.max_grants must be a whole number from 16 to 4194304";

}  // namespace

TEST_SUITE("max_grants") {
    TEST_CASE("[daemon] max_grants: the default, values in range") {
        CHECK(parse_policy("", "t.toml").policy.daemon.max_grants == 65536);
        CHECK(parse_policy("[daemon]\nsocket = \"/s\"\n", "t.toml").policy.daemon.max_grants == 65536);
        for (const std::uint32_t n : {16u, 1000u, 65536u, 1048576u, 4194304u}) {
            auto load = parse_policy("[daemon]\nmax_grants = " + std::to_string(n) + "\n", "t.toml");
            CHECK(load.ok());
            CHECK(load.policy.daemon.max_grants == n);
        }
        CHECK(parse_policy("[daemon]\nmax_grants = 1_048_576\n", "t.toml").policy.daemon.max_grants ==
              1048576);
    }

    TEST_CASE("[daemon] max_grants: each refusal is one sentence on the key's line") {
        for (const char* bad :
             {"15", "0", "-1", "4194305", "4294967312", "65536.0", "1e6", "\"65536\"", "true", "[65536]"}) {
            INFO("max_grants = ", bad);
            const auto errors =
                errors_of(std::string("[daemon]\nsocket = \"/s\"\nmax_grants = ") + bad + "\n");
            REQUIRE(errors.size() == 1);
            CHECK(errors[0].rfind("t.toml:3: ", 0) == 0);
            CHECK(errors[0].find(kRange) != std::string::npos);
            CHECK(errors[0].find("default 65536") != std::string::npos);
        }
        // A refused value leaves the default, never a truncated number.
        CHECK(parse_policy("[daemon]\nmax_grants = 4194305\n", "t.toml").policy.daemon.max_grants == 65536);
    }

    TEST_CASE("the sentence when pinned grant maps keep another size") {
        CHECK(max_grants_note(65536, 65536).empty());
        const std::string n = max_grants_note(65536, 16);
        CHECK(n ==
              "the grant maps hold 65536 grants each, not the 16 of [daemon] max_grants: they keep the size "
              "they were pinned with, and a max_grants change takes effect after jitgated --uninstall and a "
              "new start (or a reboot)");
    }

    TEST_CASE("status shows the grant capacity, and the configured size while it differs") {
        nlohmann::json st = {{"version", "x"},
                             {"abi_version", 3},
                             {"cgroup", "/c"},
                             {"programs", nlohmann::json::array()},
                             {"ports", nlohmann::json::array()},
                             {"grants", nlohmann::json::array()},
                             {"pending_requests", 0},
                             {"counters", nlohmann::json::object()}};
        CHECK(render_human("status", st).find("grant capacity") == std::string::npos);  // an older daemon
        st["max_grants"] = 1048576;
        st["max_grants_configured"] = 1048576;
        const std::string same = render_human("status", st);
        CHECK(same.find("grant capacity: 1048576 per grant map (local users, remote hosts, networks)\n") !=
              std::string::npos);
        CHECK(same.find("takes effect") == std::string::npos);
        st["max_grants_configured"] = 16;
        CHECK(
            render_human("status", st)
                .find("grant capacity: 1048576 per grant map (local users, remote hosts, networks); [daemon] "
                      "max_grants = 16 takes effect after jitgated --uninstall and a new start\n") !=
            std::string::npos);
    }
}

}  // namespace test_max_grants
