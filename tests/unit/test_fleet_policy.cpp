// The fleet's parts of a policy (design.md §7): a node's [fleet] table, a
// port's hosts and fleet_mode, the fleet policy (`jitgate policy push`), and
// the node's settings with jitgated's --etcd, --node and --label over them.
#include <doctest/doctest.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "core/policy.h"
#include "daemon/fleet_node.h"

namespace test_fleet_policy {
using namespace jg;

namespace {

std::string joined(const std::vector<std::string>& v) {
    std::string s;
    for (auto& e : v) s += e + "\n";
    return s;
}

// The policy must produce exactly one error, starting "p.toml:LINE: " and containing `what`.
void expect_one_error(const std::string& text, int line, const std::string& what) {
    auto load = parse_policy(text, "p.toml");
    INFO("policy:\n", text, "\nerrors:\n", joined(load.errors));
    REQUIRE(load.errors.size() == 1);
    CHECK(load.errors[0].rfind("p.toml:" + std::to_string(line) + ": ", 0) == 0);
    CHECK(load.errors[0].find(what) != std::string::npos);
}

// The same for a fleet policy.
void expect_one_fleet_error(const std::string& text, int line, const std::string& what) {
    auto load = parse_fleet_policy(text, "f.toml");
    INFO("policy:\n", text, "\nerrors:\n", joined(load.errors));
    REQUIRE(load.errors.size() == 1);
    CHECK(load.errors[0].rfind("f.toml:" + std::to_string(line) + ": ", 0) == 0);
    CHECK(load.errors[0].find(what) != std::string::npos);
}

const char* kPort = "[[port]]\nname = \"pg\"\nport = 5432\napprovers = [\"alice\"]\n";

}  // namespace

TEST_SUITE("fleet policy") {
    TEST_CASE("[fleet]: every key parsed") {
        auto load = parse_policy(R"([fleet]
etcd = ["http://10.0.0.5:2379", "https://etcd-2.example:2379"]
node = "db-1"
labels = { role = "db", env = "prod" }
prefix = "/jg/test-1"
grace = "1m30s"
ca_file = "/etc/jitgate/ca.pem"
cert_file = "/etc/jitgate/node.pem"
key_file = "/etc/jitgate/node.key"
user = "jitgate"
password_file = "/etc/jitgate/etcd.pass"
signers = ["db-1:11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="]
)",
                                 "p.toml");
        INFO(joined(load.errors));
        REQUIRE(load.ok());
        const FleetSettings& f = load.policy.fleet;
        CHECK(f.enabled());
        CHECK(f.etcd == std::vector<std::string>{"http://10.0.0.5:2379", "https://etcd-2.example:2379"});
        CHECK(f.node == "db-1");
        CHECK(f.labels == Labels{{"env", "prod"}, {"role", "db"}});
        CHECK(f.prefix == "/jg/test-1");
        CHECK(f.grace_s == 90);
        CHECK(f.ca_file == "/etc/jitgate/ca.pem");
        CHECK(f.cert_file == "/etc/jitgate/node.pem");
        CHECK(f.key_file == "/etc/jitgate/node.key");
        CHECK(f.user == "jitgate");
        CHECK(f.password_file == "/etc/jitgate/etcd.pass");
    }

    TEST_CASE("[fleet]: defaults, and no etcd is a single host") {
        auto none = parse_policy(kPort, "p.toml");
        REQUIRE(none.ok());
        CHECK_FALSE(none.policy.fleet.enabled());
        CHECK(none.policy.fleet.prefix == "/jitgate/v1");
        CHECK(none.policy.fleet.grace_s == 15);
        CHECK(none.policy.fleet.node.empty());

        auto minimal = parse_policy("[fleet]\netcd = [\"http://127.0.0.1:2379\"]\n", "p.toml");
        REQUIRE(minimal.ok());
        const FleetSettings& f = minimal.policy.fleet;
        CHECK(f.enabled());
        CHECK(f.node.empty());  // the host name, by effective_fleet
        CHECK(f.labels.empty());
        CHECK(f.prefix == "/jitgate/v1");
        CHECK(f.grace_s == 15);
        CHECK(f.ca_file.empty());
        CHECK(f.user.empty());

        // [fleet] without etcd (labels kept for a later --etcd) may sit beside [[port]].
        auto later = parse_policy(std::string("[fleet]\nnode = \"n1\"\n") + kPort, "p.toml");
        INFO(joined(later.errors));
        CHECK(later.ok());
        CHECK_FALSE(later.policy.fleet.enabled());
    }

    TEST_CASE("[fleet]: each bad etcd endpoint is refused with its line") {
        expect_one_error("[fleet]\nnode = \"n\"\netcd = [\"10.0.0.5:2379\"]\n", 3,
                         "fleet.etcd: '10.0.0.5:2379' is not an etcd endpoint");
        expect_one_error("[fleet]\netcd = [\"ftp://x:2379\"]\n", 2, "is not an etcd endpoint");
        expect_one_error("[fleet]\netcd = [\"http://" + std::string(600, 'a') + "\"]\n", 2,
                         "is not an etcd endpoint");
        expect_one_error("[fleet]\netcd = \"http://x:2379\"\n", 2, "fleet.etcd must be a list of strings");
        expect_one_error("[fleet]\netcd = [2379]\n", 2, "fleet.etcd must be a list of strings");
    }

    TEST_CASE("[fleet]: node, labels and prefix must be names") {
        expect_one_error("[fleet]\n\nnode = \"db 1\"\n", 3, "fleet.node must be 1-63 letters");
        expect_one_error("[fleet]\nnode = \"-db\"\n", 2, "fleet.node must be");
        expect_one_error("[fleet]\nnode = \"" + std::string(64, 'n') + "\"\n", 2, "fleet.node must be");
        expect_one_error("[fleet]\nnode = 1\n", 2, "fleet.node must be a string");
        expect_one_error("[fleet]\nlabels = \"role=db\"\n", 2, "fleet.labels must be a table");
        expect_one_error("[fleet]\nlabels = { role = \"d b\" }\n", 2,
                         "fleet.labels: each label is name = \"value\"");
        expect_one_error("[fleet]\nlabels = { role = 1 }\n", 2, "fleet.labels: each label");
        expect_one_error("[fleet]\nlabels = { \"ro le\" = \"db\" }\n", 2, "fleet.labels: each label");
        expect_one_error("[fleet]\nlabels = { role = \"\" }\n", 2, "fleet.labels: each label");
        for (const char* bad : {"jitgate", "/", "/jitgate/", "/jit gate", "/jit*gate", "/a\\b"}) {
            CAPTURE(bad);
            expect_one_error(std::string("[fleet]\nprefix = '") + bad + "'\n", 2,
                             "fleet.prefix must be a path such as \"/jitgate/v1\"");
        }
        expect_one_error("[fleet]\nprefix = \"/" + std::string(128, 'p') + "\"\n", 2, "fleet.prefix must be");
        auto ok = parse_policy("[fleet]\nprefix = \"/" + std::string(127, 'p') + "\"\n", "p.toml");
        CHECK(ok.ok());
    }

    TEST_CASE("[fleet]: grace is a duration up to 24h") {
        expect_one_error("[fleet]\ngrace = \"15\"\n", 2, "fleet.grace");
        expect_one_error("[fleet]\ngrace = \"0s\"\n", 2, "fleet.grace");
        expect_one_error("[fleet]\ngrace = 15\n", 2, "fleet.grace must be a string");
        expect_one_error("[fleet]\ngrace = \"25h\"\n", 2, "fleet.grace must be at most 24h");
        auto day = parse_policy("[fleet]\ngrace = \"24h\"\n", "p.toml");
        REQUIRE(day.ok());
        CHECK(day.policy.fleet.grace_s == 24 * 3600);
    }

    TEST_CASE("[fleet]: cert_file and key_file together; user needs password_file") {
        expect_one_error("[fleet]\ncert_file = \"/c.pem\"\n", 1,
                         "fleet.cert_file and fleet.key_file go together: give both or neither");
        expect_one_error("\n[fleet]\nkey_file = \"/k.pem\"\n", 2,
                         "fleet.cert_file and fleet.key_file go together");
        expect_one_error("[fleet]\nuser = \"jitgate\"\n", 1, "fleet.user needs fleet.password_file");
        auto pass_only = parse_policy("[fleet]\npassword_file = \"/p\"\nca_file = \"/ca.pem\"\n", "p.toml");
        CHECK(pass_only.ok());
        expect_one_error("[fleet]\nca_file = [\"/ca.pem\"]\n", 2, "fleet.ca_file must be a string");
    }

    TEST_CASE("[fleet]: an unknown key is named; [fleet] must be a table") {
        expect_one_error("[fleet]\netcd = [\"http://e:2379\"]\nnodes = \"x\"\n", 3,
                         "unknown key 'nodes' in [fleet]");
        expect_one_error("fleet = 1\n", 1, "[fleet] must be a table");
    }

    TEST_CASE("a node's file in a fleet holds no [[port]] tables") {
        auto load = parse_policy(std::string("[fleet]\netcd = [\"http://e:2379\"]\n\n") + kPort, "p.toml");
        INFO(joined(load.errors));
        REQUIRE(load.errors.size() == 1);
        CHECK(load.errors[0].rfind("p.toml:", 0) == 0);
        CHECK(load.errors[0].find("in a fleet the protected ports come from the fleet policy") !=
              std::string::npos);
        CHECK(load.errors[0].find("jitgate policy push FILE") != std::string::npos);
    }

    TEST_CASE("[[port]] hosts and fleet_mode") {
        auto load = parse_policy(
            std::string(kPort) + "hosts = { role = \"db\", env = \"prod\" }\nfleet_mode = \"strict\"\n" +
                "[[port]]\nport = 22\napprovers = [\"a\"]\nfleet_mode = \"best_effort\"\n" +
                "[[port]]\nport = 80\napprovers = [\"a\"]\n",
            "p.toml");
        INFO(joined(load.errors));
        REQUIRE(load.ok());
        REQUIRE(load.policy.ports.size() == 3);
        CHECK(load.policy.ports[0].hosts == Labels{{"env", "prod"}, {"role", "db"}});
        CHECK(load.policy.ports[0].strict);
        CHECK(load.policy.ports[1].hosts.empty());
        CHECK_FALSE(load.policy.ports[1].strict);
        CHECK(load.policy.ports[2].hosts.empty());  // every node
        CHECK_FALSE(load.policy.ports[2].strict);   // best_effort by default
    }

    TEST_CASE("[[port]] hosts and fleet_mode: every error with its line") {
        const std::string p = kPort;
        expect_one_error(p + "hosts = \"db\"\n", 5,
                         "port 'pg'.hosts must be a table such as { role = \"db\" }");
        expect_one_error(p + "hosts = { role = \"d/b\" }\n", 5,
                         "port 'pg'.hosts: each label is name = \"value\"");
        expect_one_error(p + "hosts = { role = [\"db\"] }\n", 5, "port 'pg'.hosts: each label");
        expect_one_error(p + "fleet_mode = \"strictly\"\n", 5,
                         "port 'pg': fleet_mode must be \"best_effort\" or \"strict\"");
        expect_one_error(p + "fleet_mode = true\n", 5, "fleet_mode must be a string");
        expect_one_error(p + "host = { role = \"db\" }\n", 5, "unknown key 'host' in [[port]]");
    }

    TEST_CASE("parse_fleet_policy: [[port]] tables, hosts and fleet_mode kept") {
        auto load = parse_fleet_policy(
            std::string(kPort) + "hosts = { role = \"db\" }\nfleet_mode = \"strict\"\n", "f.toml");
        INFO(joined(load.errors));
        REQUIRE(load.ok());
        REQUIRE(load.policy.ports.size() == 1);
        CHECK(load.policy.ports[0].hosts == Labels{{"role", "db"}});
        CHECK(load.policy.ports[0].strict);
    }

    TEST_CASE("parse_fleet_policy: [daemon] and [fleet] belong to each node; no port is no policy") {
        expect_one_fleet_error(
            std::string(kPort) + "\n[daemon]\nsocket = \"/s\"\n", 6,
            "a fleet policy holds [[port]] tables only; [daemon] belongs in each node's own file");
        expect_one_fleet_error(std::string("[fleet]\nnode = \"n\"\n") + kPort, 1,
                               "[fleet] belongs in each node's own file");
        // With etcd endpoints the node-file rule speaks first.
        expect_one_fleet_error(std::string("[fleet]\netcd = [\"http://e:2379\"]\n") + kPort, 3,
                               "in a fleet the protected ports come from the fleet policy");
        expect_one_fleet_error("", 1, "the fleet policy protects no port: add [[port]] tables");
        expect_one_fleet_error("# only a comment\n", 1, "the fleet policy protects no port");
        // A policy that does not parse gives parse_policy's errors only.
        expect_one_fleet_error(std::string(kPort) + "fleet_mode = \"x\"\n", 5, "fleet_mode must be");
        expect_one_fleet_error("[[port]\n", 1, "");
    }
}

TEST_SUITE("effective_fleet") {
    TEST_CASE("the file's settings when no flag is given") {
        FleetSettings file;
        file.etcd = {"http://e1:2379"};
        file.node = "db-1";
        file.labels = {{"role", "db"}};
        file.grace_s = 30;
        auto f = effective_fleet(file, {}, "", {});
        REQUIRE(f.ok());
        CHECK(f->etcd == file.etcd);
        CHECK(f->node == "db-1");
        CHECK(f->labels == file.labels);
        CHECK(f->grace_s == 30);
        CHECK(f->prefix == "/jitgate/v1");
    }

    TEST_CASE("--etcd, --node and --label replace the file's values") {
        FleetSettings file;
        file.etcd = {"http://e1:2379"};
        file.node = "db-1";
        file.labels = {{"role", "db"}, {"env", "prod"}};
        auto f = effective_fleet(file, {"http://a:2379", "http://b:2379"}, "web-2", {"role=web", "zone=b"});
        REQUIRE(f.ok());
        CHECK(f->etcd == std::vector<std::string>{"http://a:2379", "http://b:2379"});
        CHECK(f->node == "web-2");
        CHECK(f->labels == Labels{{"role", "web"}, {"zone", "b"}});  // env=prod is not kept
    }

    TEST_CASE("a --label that is not one KEY=VALUE is refused") {
        for (const char* bad : {"role", "role=db,env=prod", "role=", "=db", "ro le=db"}) {
            CAPTURE(bad);
            auto f = effective_fleet({}, {}, "n", {bad});
            REQUIRE_FALSE(f.ok());
            CHECK(f.error().find("is not KEY=VALUE") != std::string::npos);
        }
    }

    TEST_CASE("the node's name defaults to the host name, up to its first dot") {
        char host[256] = {};
        REQUIRE(gethostname(host, sizeof(host) - 1) == 0);
        std::string want = host;
        if (auto dot = want.find('.'); dot != std::string::npos) want.resize(dot);
        auto f = effective_fleet({}, {}, "", {});
        if (!valid_fleet_name(want)) {
            REQUIRE_FALSE(f.ok());
            CHECK(f.error().find("give --node NAME") != std::string::npos);
            return;
        }
        REQUIRE(f.ok());
        CHECK(f->node == want);
        CHECK_FALSE(f->enabled());  // no etcd: a single host, still named
        // --node, then [fleet] node, before the host name.
        FleetSettings file;
        file.node = "from-file";
        CHECK(effective_fleet(file, {}, "", {})->node == "from-file");
        CHECK(effective_fleet(file, {}, "from-flag", {})->node == "from-flag");
    }
}

}  // namespace test_fleet_policy
