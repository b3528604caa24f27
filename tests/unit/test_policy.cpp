// parse_policy: a full valid policy, defaults, and every error with its line.
#include <doctest/doctest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "core/policy.h"

namespace test_policy {
using namespace jg;

namespace {

// Errors of a policy that must not parse, as one string for CAPTURE/messages.
std::string joined(const std::vector<std::string>& v) {
    std::string s;
    for (auto& e : v) s += e + "\n";
    return s;
}

// The policy must produce exactly one error, starting "FILE:LINE: " and containing `what`.
void expect_one_error(const std::string& text, int line, const std::string& what) {
    auto load = parse_policy(text, "p.toml");
    INFO("errors:\n", joined(load.errors));
    REQUIRE(load.errors.size() == 1);
    const std::string prefix = "p.toml:" + std::to_string(line) + ": ";
    CHECK(load.errors[0].rfind(prefix, 0) == 0);
    CHECK(load.errors[0].find(what) != std::string::npos);
    CHECK_FALSE(load.ok());
}

// True when some error starts with "p.toml:LINE: " and contains `what`.
bool has_error(const PolicyLoad& load, int line, const std::string& what) {
    const std::string prefix = "p.toml:" + std::to_string(line) + ": ";
    for (auto& e : load.errors)
        if (e.rfind(prefix, 0) == 0 && e.find(what) != std::string::npos) return true;
    return false;
}

const char* kFull = R"(# jitgate policy
[daemon]
cgroup = "/sys/fs/cgroup/jg"
bpffs = "/sys/fs/bpf/jg-test"
socket = "/run/jg-test.sock"
state_dir = "/var/lib/jg-test"
audit_log = "/var/log/jg-test.jsonl"

[[port]]
name = "postgres"
port = 5432
proto = "tcp"
mode = "enforce"
max_duration = "1h"
approvers = ["alice", "@dba"]
approvals_required = 2
self_approve = true
require_reason = false
request_ttl = "15m"
on_expiry = "drain"

[[port.auto_approve]]
group = "oncall"
max_duration = "15m"

[[port.auto_approve]]
user = "bob"

[[port]]
name = "dns"
port = 53
proto = "both"
mode = "audit"
approvers = ["carol"]

[[port]]
name = "syslog"
port = 514
proto = "udp"
on_expiry = "cut"
approvers = ["dave"]
)";

}  // namespace

TEST_SUITE("policy") {
    TEST_CASE("a full policy with every key parses to the right values") {
        auto load = parse_policy(kFull, "p.toml");
        INFO("errors:\n", joined(load.errors));
        REQUIRE(load.ok());
        const Policy& pol = load.policy;
        CHECK(pol.daemon.cgroup.value_or("") == "/sys/fs/cgroup/jg");
        CHECK(pol.daemon.bpffs.value_or("") == "/sys/fs/bpf/jg-test");
        CHECK(pol.daemon.socket.value_or("") == "/run/jg-test.sock");
        CHECK(pol.daemon.state_dir.value_or("") == "/var/lib/jg-test");
        CHECK(pol.daemon.audit_log.value_or("") == "/var/log/jg-test.jsonl");
        REQUIRE(pol.ports.size() == 3);

        const PortPolicy& pg = pol.ports[0];
        CHECK(pg.name == "postgres");
        CHECK(pg.port == 5432);
        CHECK(pg.tcp);
        CHECK_FALSE(pg.udp);
        CHECK(pg.proto_text() == "tcp");
        CHECK_FALSE(pg.audit);
        CHECK(pg.drain);
        CHECK(pg.max_duration_s == 3600);
        REQUIRE(pg.approvers.size() == 2);
        CHECK_FALSE(pg.approvers[0].is_group);
        CHECK(pg.approvers[0].name == "alice");
        CHECK(pg.approvers[0].text() == "alice");
        CHECK(pg.approvers[1].is_group);
        CHECK(pg.approvers[1].name == "dba");
        CHECK(pg.approvers[1].text() == "@dba");
        CHECK(pg.approvals_required == 2);
        CHECK(pg.self_approve);
        CHECK_FALSE(pg.require_reason);
        CHECK(pg.request_ttl_s == 900);
        CHECK(pg.line == 9);
        REQUIRE(pg.auto_approve.size() == 2);
        CHECK(pg.auto_approve[0].who.is_group);
        CHECK(pg.auto_approve[0].who.name == "oncall");
        CHECK(pg.auto_approve[0].max_duration_s == 900);
        CHECK_FALSE(pg.auto_approve[1].who.is_group);
        CHECK(pg.auto_approve[1].who.name == "bob");
        CHECK(pg.auto_approve[1].max_duration_s == 3600);  // defaults to the port's max

        const PortPolicy& dns = pol.ports[1];
        CHECK(dns.name == "dns");
        CHECK(dns.port == 53);
        CHECK(dns.tcp);
        CHECK(dns.udp);
        CHECK(dns.proto_text() == "both");
        CHECK(dns.audit);
        CHECK_FALSE(dns.drain);
        CHECK(dns.line == 29);

        const PortPolicy& sl = pol.ports[2];
        CHECK_FALSE(sl.tcp);
        CHECK(sl.udp);
        CHECK(sl.proto_text() == "udp");
        CHECK_FALSE(sl.drain);
        CHECK(sl.line == 36);
    }

    TEST_CASE("defaults of a minimal [[port]]") {
        auto load = parse_policy("[[port]]\nport = 8080\napprovers = [\"alice\"]\n", "p.toml");
        INFO("errors:\n", joined(load.errors));
        REQUIRE(load.ok());
        CHECK_FALSE(load.policy.daemon.cgroup.has_value());
        CHECK_FALSE(load.policy.daemon.bpffs.has_value());
        CHECK_FALSE(load.policy.daemon.socket.has_value());
        CHECK_FALSE(load.policy.daemon.state_dir.has_value());
        CHECK_FALSE(load.policy.daemon.audit_log.has_value());
        REQUIRE(load.policy.ports.size() == 1);
        const PortPolicy& p = load.policy.ports[0];
        CHECK(p.name == "port-8080");
        CHECK(p.port == 8080);
        CHECK(p.tcp);
        CHECK_FALSE(p.udp);
        CHECK_FALSE(p.audit);
        CHECK_FALSE(p.drain);
        CHECK(p.max_duration_s == 3600);
        CHECK(p.approvals_required == 1);
        CHECK_FALSE(p.self_approve);
        CHECK(p.require_reason);
        CHECK(p.request_ttl_s == 900);
        CHECK(p.auto_approve.empty());
        CHECK(p.break_glass_max_s == 900);
        CHECK_FALSE(p.break_glass.has_value());
        CHECK(p.service_system);  // service_users absent: "system" (root and system accounts)
        CHECK(p.service_users.empty());
        CHECK(p.line == 1);
    }

    TEST_CASE("an empty policy is valid and protects nothing") {
        auto load = parse_policy("", "p.toml");
        CHECK(load.ok());
        CHECK(load.policy.ports.empty());
        CHECK(load.policy.find(5432, Proto::Tcp) == nullptr);
    }

    TEST_CASE("a port with only auto_approve rules needs no approvers") {
        auto load = parse_policy(
            "[[port]]\nport = 9000\n[[port.auto_approve]]\nuser = \"ci\"\nmax_duration = \"5m\"\n", "p.toml");
        INFO("errors:\n", joined(load.errors));
        REQUIRE(load.ok());
        REQUIRE(load.policy.ports.size() == 1);
        CHECK(load.policy.ports[0].approvers.empty());
        REQUIRE(load.policy.ports[0].auto_approve.size() == 1);
        CHECK(load.policy.ports[0].auto_approve[0].max_duration_s == 300);
    }

    TEST_CASE("Policy::find matches port and protocol") {
        auto load = parse_policy(kFull, "p.toml");
        REQUIRE(load.ok());
        const Policy& pol = load.policy;
        REQUIRE(pol.find(5432, Proto::Tcp) != nullptr);
        CHECK(pol.find(5432, Proto::Tcp)->name == "postgres");
        CHECK(pol.find(5432, Proto::Udp) == nullptr);
        REQUIRE(pol.find(53, Proto::Tcp) != nullptr);
        REQUIRE(pol.find(53, Proto::Udp) != nullptr);
        CHECK(pol.find(53, Proto::Tcp) == pol.find(53, Proto::Udp));
        CHECK(pol.find(53, Proto::Udp)->name == "dns");
        CHECK(pol.find(514, Proto::Tcp) == nullptr);
        REQUIRE(pol.find(514, Proto::Udp) != nullptr);
        CHECK(pol.find(514, Proto::Udp)->name == "syslog");
        CHECK(pol.find(5433, Proto::Tcp) == nullptr);
        CHECK(pol.find(0, Proto::Tcp) == nullptr);
    }

    TEST_CASE("unknown keys are named with their line") {
        expect_one_error("[[port]]\nport = 1\napprovers = [\"a\"]\nmax_durration = \"1h\"\n", 4,
                         "unknown key 'max_durration' in [[port]]");
        expect_one_error("\n\n[frobnicate]\nx = 1\n", 3, "unknown key 'frobnicate'");
        expect_one_error("verbose = true\n", 1, "unknown key 'verbose'");
        expect_one_error("[daemon]\nsocket = \"/s\"\nsokcet = \"/t\"\n", 3,
                         "unknown key 'sokcet' in [daemon]");
        expect_one_error(
            "[[port]]\nport = 1\napprovers = [\"a\"]\n[[port.auto_approve]]\nuser = \"b\"\nmax = \"1m\"\n", 6,
            "unknown key 'max' in [[port.auto_approve]]");
    }

    TEST_CASE("port: out of range, missing, not an integer") {
        expect_one_error("[[port]]\nname = \"x\"\napprovers = [\"a\"]\nport = 0\n", 4,
                         "port must be a whole number from 1 to 65535");
        expect_one_error("[[port]]\nname = \"x\"\napprovers = [\"a\"]\nport = 65536\n", 4,
                         "port must be a whole number from 1 to 65535");
        expect_one_error("[[port]]\nname = \"x\"\napprovers = [\"a\"]\nport = -22\n", 4,
                         "port must be a whole number from 1 to 65535");
        expect_one_error("[[port]]\nname = \"x\"\napprovers = [\"a\"]\nport = \"5432\"\n", 4,
                         "port must be a whole number from 1 to 65535");
        expect_one_error("[[port]]\nname = \"x\"\napprovers = [\"a\"]\nport = 5432.0\n", 4,
                         "port must be a whole number from 1 to 65535");
        expect_one_error("[[port]]\nname = \"x\"\napprovers = [\"a\"]\nport = true\n", 4,
                         "port must be a whole number from 1 to 65535");
        expect_one_error("\n[[port]]\nname = \"x\"\napprovers = [\"a\"]\n", 2, "needs a port number");
    }

    TEST_CASE("proto, mode and on_expiry must be one of their words") {
        expect_one_error("[[port]]\nport = 1\napprovers = [\"a\"]\n\nproto = \"sctp\"\n", 5,
                         "proto must be \"tcp\", \"udp\" or \"both\"");
        expect_one_error("[[port]]\nport = 1\napprovers = [\"a\"]\nproto = \"TCP\"\n", 4, "proto must be");
        expect_one_error("[[port]]\nport = 1\napprovers = [\"a\"]\nproto = 6\n", 4, "proto must be a string");
        expect_one_error("[[port]]\nport = 1\napprovers = [\"a\"]\nmode = \"block\"\n", 4,
                         "mode must be \"enforce\" or \"audit\"");
        expect_one_error("[[port]]\nport = 1\napprovers = [\"a\"]\non_expiry = \"kill\"\n", 4,
                         "on_expiry must be \"cut\" or \"drain\"");
    }

    TEST_CASE("bad durations name the key and the line") {
        expect_one_error("[[port]]\nport = 1\napprovers = [\"a\"]\nmax_duration = \"1 hour\"\n", 4,
                         "max_duration: invalid duration '1 hour'");
        expect_one_error("[[port]]\nport = 1\napprovers = [\"a\"]\nrequest_ttl = \"15\"\n", 4,
                         "request_ttl: invalid duration '15'");
        expect_one_error("[[port]]\nport = 1\napprovers = [\"a\"]\nmax_duration = 3600\n", 4,
                         "max_duration must be a string");
        expect_one_error(
            "[[port]]\nport = 1\napprovers = [\"a\"]\n[[port.auto_approve]]\nuser = \"b\"\n"
            "max_duration = \"0s\"\n",
            6, "max_duration: invalid duration '0s'");
    }

    TEST_CASE("booleans must be true or false") {
        expect_one_error("[[port]]\nport = 1\napprovers = [\"a\"]\nself_approve = \"yes\"\n", 4,
                         "self_approve must be true or false");
        expect_one_error("[[port]]\nport = 1\napprovers = [\"a\"]\nrequire_reason = 1\n", 4,
                         "require_reason must be true or false");
    }

    TEST_CASE("approvers: missing, malformed") {
        expect_one_error("\n\n[[port]]\nport = 1\n", 3, "list at least one approver");
        expect_one_error("[[port]]\nport = 1\napprovers = []\n", 1, "list at least one approver");
        auto load =
            parse_policy("[[port]]\nport = 1\napprovers = [\"alice\", \"bad name\", \"@\"]\n", "p.toml");
        INFO("errors:\n", joined(load.errors));
        CHECK(has_error(load, 3, "'bad name' is not a user name or @group"));
        CHECK(has_error(load, 3, "'@' is not a user name or @group"));
        auto notlist = parse_policy("[[port]]\nport = 1\napprovers = \"alice\"\n", "p.toml");
        INFO("errors:\n", joined(notlist.errors));
        CHECK(has_error(notlist, 3, "approvers must be a list of strings"));
        CHECK(has_error(notlist, 1, "list at least one approver"));
        CHECK(notlist.errors.size() == 2);
        expect_one_error("[[port]]\nport = 1\napprovers = [\"alice\", 7]\n", 3,
                         "approvers must be a list of strings");
    }

    TEST_CASE("approvals_required: range and more than the users listed") {
        expect_one_error("[[port]]\nport = 1\napprovers = [\"a\", \"b\"]\napprovals_required = 3\n", 4,
                         "approvals_required is 3 but only 2 distinct approvers are listed");
        expect_one_error("[[port]]\nport = 1\napprovers = [\"a\"]\napprovals_required = 0\n", 4,
                         "approvals_required must be a whole number from 1 to 16");
        expect_one_error("[[port]]\nport = 1\napprovers = [\"a\"]\napprovals_required = 17\n", 4,
                         "approvals_required must be a whole number from 1 to 16");
        expect_one_error("[[port]]\nport = 1\napprovers = [\"a\"]\napprovals_required = \"1\"\n", 4,
                         "approvals_required must be a whole number from 1 to 16");
        // A group may hold any number of people: not an error.
        auto ok = parse_policy("[[port]]\nport = 1\napprovers = [\"a\", \"@dba\"]\napprovals_required = 3\n",
                               "p.toml");
        INFO("errors:\n", joined(ok.errors));
        CHECK(ok.ok());
        // Exactly as many as listed is fine.
        CHECK(
            parse_policy("[[port]]\nport = 1\napprovers = [\"a\", \"b\"]\napprovals_required = 2\n", "p.toml")
                .ok());
    }

    TEST_CASE("a port/proto is declared once; a name is used once") {
        const char* dup =
            "[[port]]\nname = \"a\"\nport = 5432\napprovers = [\"x\"]\n"
            "\n[[port]]\nname = \"b\"\nport = 5432\napprovers = [\"x\"]\n";
        expect_one_error(dup, 6, "port 5432/tcp is declared twice");

        const char* both =
            "[[port]]\nname = \"a\"\nport = 53\nproto = \"both\"\napprovers = [\"x\"]\n"
            "[[port]]\nname = \"b\"\nport = 53\nproto = \"udp\"\napprovers = [\"x\"]\n";
        expect_one_error(both, 6, "port 53/udp is declared twice");

        const char* both2 =
            "[[port]]\nname = \"a\"\nport = 53\napprovers = [\"x\"]\n"
            "[[port]]\nname = \"b\"\nport = 53\nproto = \"both\"\napprovers = [\"x\"]\n";
        expect_one_error(both2, 5, "port 53/tcp is declared twice");

        const char* distinct =
            "[[port]]\nname = \"a\"\nport = 53\nproto = \"tcp\"\napprovers = [\"x\"]\n"
            "[[port]]\nname = \"b\"\nport = 53\nproto = \"udp\"\napprovers = [\"x\"]\n";
        CHECK(parse_policy(distinct, "p.toml").ok());

        const char* names =
            "[[port]]\nname = \"db\"\nport = 5432\napprovers = [\"x\"]\n"
            "[[port]]\nname = \"db\"\nport = 5433\napprovers = [\"x\"]\n";
        expect_one_error(names, 5, "port name 'db' is used twice");
    }

    TEST_CASE("a TOML syntax error names its line") {
        auto load = parse_policy("[[port]]\nport = 1\napprovers = [\"a\"\nname = \"x\"\n", "p.toml");
        REQUIRE(load.errors.size() == 1);
        CHECK(load.errors[0].rfind("p.toml:4: ", 0) == 0);

        auto load2 = parse_policy("# ok\n[[port]]\nport = = 1\n", "p.toml");
        REQUIRE(load2.errors.size() == 1);
        CHECK(load2.errors[0].rfind("p.toml:3: ", 0) == 0);
        CHECK(load2.policy.ports.empty());

        auto load3 = parse_policy("[[port]]\nport = 1\nport = 2\n", "p.toml");
        REQUIRE(load3.errors.size() == 1);
        CHECK(load3.errors[0].rfind("p.toml:3: ", 0) == 0);
    }

    TEST_CASE("auto_approve: exactly one of user or group") {
        const char* both =
            "[[port]]\nport = 1\napprovers = [\"a\"]\n\n[[port.auto_approve]]\n"
            "user = \"bob\"\ngroup = \"ops\"\n";
        expect_one_error(both, 5, "give exactly one of user or group");
        const char* neither =
            "[[port]]\nport = 1\napprovers = [\"a\"]\n[[port.auto_approve]]\nmax_duration = \"5m\"\n";
        expect_one_error(neither, 4, "give exactly one of user or group");
        const char* badname =
            "[[port]]\nport = 1\napprovers = [\"a\"]\n[[port.auto_approve]]\ngroup = \"o ps\"\n";
        expect_one_error(badname, 4, "is not a user name or @group");
    }

    TEST_CASE("auto_approve max_duration may not exceed the port's") {
        const char* t =
            "[[port]]\nport = 1\nmax_duration = \"30m\"\napprovers = [\"a\"]\n"
            "[[port.auto_approve]]\ngroup = \"oncall\"\n\nmax_duration = \"1h\"\n";
        expect_one_error(t, 8, "max_duration is longer than the port's max_duration (30m)");
        const char* eq =
            "[[port]]\nport = 1\nmax_duration = \"30m\"\napprovers = [\"a\"]\n"
            "[[port.auto_approve]]\ngroup = \"oncall\"\nmax_duration = \"30m\"\n";
        CHECK(parse_policy(eq, "p.toml").ok());
    }

    TEST_CASE("every error is reported, not only the first") {
        const char* t = "[[port]]\nport = 0\nproto = \"x\"\nmode = \"y\"\napprovers = [\"a\"]\n";
        auto load = parse_policy(t, "p.toml");
        INFO("errors:\n", joined(load.errors));
        CHECK(load.errors.size() == 3);
        CHECK(has_error(load, 2, "port must be"));
        CHECK(has_error(load, 3, "proto must be"));
        CHECK(has_error(load, 4, "mode must be"));
    }

    TEST_CASE("the file name given is the one in the errors") {
        auto load = parse_policy("bogus = 1\n", "/etc/jitgate/jitgate.toml");
        REQUIRE(load.errors.size() == 1);
        CHECK(load.errors[0].rfind("/etc/jitgate/jitgate.toml:1: ", 0) == 0);
    }

    TEST_CASE("load_policy_file: an unreadable file is one error") {
        auto load = load_policy_file("/nonexistent/jitgate-unit-test/policy.toml");
        REQUIRE(load.errors.size() == 1);
        CHECK(load.errors[0].rfind("/nonexistent/jitgate-unit-test/policy.toml: cannot read", 0) == 0);
    }

    TEST_CASE("the shipped example policy is valid") {
        // The source tree, from CMake: __FILE__ is relative under ccache's base_dir.
        const auto root = std::filesystem::path(JG_SOURCE_DIR);
        const std::string path = (root / "examples" / "jitgate.toml").string();
        REQUIRE(std::filesystem::exists(path));
        auto load = load_policy_file(path);
        INFO("errors:\n", joined(load.errors));
        REQUIRE(load.ok());
        REQUIRE(load.policy.ports.size() == 1);
        const PortPolicy& p = load.policy.ports[0];
        CHECK(p.name == "demo-db");
        CHECK(p.port == 15432);
        CHECK(p.proto_text() == "tcp");
        CHECK(p.max_duration_s == 1800);
        CHECK(p.request_ttl_s == 900);
        REQUIRE(p.approvers.size() == 1);
        CHECK(p.approvers[0].text() == "jg-demo-lead");
        CHECK(load.policy.find(15432, Proto::Tcp) == &p);
    }

    TEST_CASE("an approver listed twice is an error, and counts once for approvals_required") {
        auto load = parse_policy(
            "[[port]]\nport = 1\napprovers = [\"alice\", \"alice\"]\napprovals_required = 2\n", "p.toml");
        INFO("errors:\n", joined(load.errors));
        CHECK(has_error(load, 3, "approver 'alice' is listed twice"));
        CHECK(has_error(load, 4, "approvals_required is 2 but only 1 distinct approvers are listed"));
    }

    TEST_CASE("daemon.auditors: users and @groups, in file order") {
        auto load = parse_policy(
            "[daemon]\nauditors = [\"@secops\", \"bob\", \"svc.audit-1\"]\n[[port]]\nport = 1\napprovers = "
            "[\"a\"]\n",
            "p.toml");
        INFO("errors:\n", joined(load.errors));
        REQUIRE(load.ok());
        const auto& a = load.policy.daemon.auditors;
        REQUIRE(a.size() == 3);
        CHECK(a[0].is_group);
        CHECK(a[0].name == "secops");
        CHECK(a[0].text() == "@secops");
        CHECK_FALSE(a[1].is_group);
        CHECK(a[1].name == "bob");
        CHECK(a[2].text() == "svc.audit-1");

        auto none =
            parse_policy("[daemon]\nauditors = []\n[[port]]\nport = 1\napprovers = [\"a\"]\n", "p.toml");
        REQUIRE(none.ok());
        CHECK(none.policy.daemon.auditors.empty());
        auto unset = parse_policy("[[port]]\nport = 1\napprovers = [\"a\"]\n", "p.toml");
        REQUIRE(unset.ok());
        CHECK(unset.policy.daemon.auditors.empty());
    }

    TEST_CASE("daemon.auditors: bad names, wrong types and duplicates are errors with their line") {
        const std::string port = "[[port]]\nport = 1\napprovers = [\"a\"]\n";
        expect_one_error("[daemon]\nauditors = [\"bad name\"]\n" + port, 2,
                         "daemon.auditors: 'bad name' is not a user name or @group");
        expect_one_error("[daemon]\n\nauditors = [\"@\"]\n" + port, 3,
                         "daemon.auditors: '@' is not a user name or @group");
        expect_one_error("[daemon]\nauditors = [\"\"]\n" + port, 2, "'' is not a user name or @group");
        expect_one_error("[daemon]\nauditors = [\"@a/b\"]\n" + port, 2,
                         "'@a/b' is not a user name or @group");
        expect_one_error("[daemon]\nauditors = \"@secops\"\n" + port, 2,
                         "daemon.auditors must be a list of strings");
        expect_one_error("[daemon]\nauditors = [\"bob\", 7]\n" + port, 2,
                         "daemon.auditors must be a list of strings");
        expect_one_error("[daemon]\nauditors = [\"bob\", \"@ops\", \"bob\"]\n" + port, 2,
                         "daemon.auditors: 'bob' is listed twice");
        // A user and a group of the same name are different principals.
        auto both = parse_policy("[daemon]\nauditors = [\"ops\", \"@ops\"]\n" + port, "p.toml");
        INFO("errors:\n", joined(both.errors));
        CHECK(both.ok());
        CHECK(both.policy.daemon.auditors.size() == 2);
    }

    TEST_CASE("xdp_interfaces: lo and bad names are refused with a sentence") {
        expect_one_error("[daemon]\nxdp_interfaces = [\"lo\"]\n[[port]]\nport = 1\napprovers = [\"a\"]\n", 2,
                         "lo carries local traffic only");
        expect_one_error("[daemon]\nxdp_interfaces = [\"a/b\"]\n[[port]]\nport = 1\napprovers = [\"a\"]\n", 2,
                         "'a/b' is not an interface name");
    }

    TEST_CASE("allow_prefix: per family, each key optional; unset means single hosts only") {
        auto both = parse_policy(
            "[[port]]\nport = 5432\napprovers = [\"a\"]\nallow_prefix = { ipv4 = 24, ipv6 = 64 }\n",
            "p.toml");
        INFO("errors:\n", joined(both.errors));
        REQUIRE(both.ok());
        const PortPolicy& b = both.policy.ports[0];
        CHECK(b.allow_prefix_v4 == 24);
        CHECK(b.allow_prefix_v6 == 64);

        auto v4 = parse_policy("[[port]]\nport = 5432\napprovers = [\"a\"]\nallow_prefix = { ipv4 = 32 }\n",
                               "p.toml");
        REQUIRE(v4.ok());
        CHECK(v4.policy.ports[0].allow_prefix_v4 == 32);
        CHECK_FALSE(v4.policy.ports[0].allow_prefix_v6.has_value());

        auto v6 = parse_policy("[[port]]\nport = 5432\napprovers = [\"a\"]\nallow_prefix = { ipv6 = 1 }\n",
                               "p.toml");
        REQUIRE(v6.ok());
        CHECK_FALSE(v6.policy.ports[0].allow_prefix_v4.has_value());
        CHECK(v6.policy.ports[0].allow_prefix_v6 == 1);

        auto none = parse_policy("[[port]]\nport = 5432\napprovers = [\"a\"]\nallow_prefix = {}\n", "p.toml");
        REQUIRE(none.ok());
        CHECK_FALSE(none.policy.ports[0].allow_prefix_v4.has_value());

        auto unset = parse_policy("[[port]]\nport = 5432\napprovers = [\"a\"]\n", "p.toml");
        REQUIRE(unset.ok());
        CHECK_FALSE(unset.policy.ports[0].allow_prefix_v4.has_value());
        CHECK_FALSE(unset.policy.ports[0].allow_prefix_v6.has_value());

        // The same table written as a sub-table of the [[port]].
        auto sub = parse_policy(
            "[[port]]\nport = 5432\napprovers = [\"a\"]\n[port.allow_prefix]\nipv4 = 28\nipv6 = 120\n",
            "p.toml");
        INFO("errors:\n", joined(sub.errors));
        REQUIRE(sub.ok());
        CHECK(sub.policy.ports[0].allow_prefix_v4 == 28);
        CHECK(sub.policy.ports[0].allow_prefix_v6 == 120);

        // The full example of kFull sets none.
        auto full = parse_policy(kFull, "p.toml");
        REQUIRE(full.ok());
        for (auto& p : full.policy.ports) CHECK_FALSE(p.allow_prefix_v4.has_value());
    }

    TEST_CASE("allow_prefix: wrong types, ranges and keys are errors with their line") {
        const std::string head = "[[port]]\nname = \"db\"\nport = 5432\napprovers = [\"a\"]\n";
        expect_one_error(head + "allow_prefix = { ipv4 = 0 }\n", 5,
                         "port 'db': allow_prefix.ipv4 must be a whole number from 1 to 32");
        expect_one_error(head + "allow_prefix = { ipv4 = 33 }\n", 5,
                         "port 'db': allow_prefix.ipv4 must be a whole number from 1 to 32");
        expect_one_error(head + "allow_prefix = { ipv4 = -8 }\n", 5, "allow_prefix.ipv4 must be");
        expect_one_error(head + "allow_prefix = { ipv4 = \"24\" }\n", 5, "allow_prefix.ipv4 must be");
        expect_one_error(head + "allow_prefix = { ipv4 = 24.0 }\n", 5, "allow_prefix.ipv4 must be");
        expect_one_error(head + "allow_prefix = { ipv4 = true }\n", 5, "allow_prefix.ipv4 must be");
        expect_one_error(head + "allow_prefix = { ipv6 = 0 }\n", 5,
                         "port 'db': allow_prefix.ipv6 must be a whole number from 1 to 128");
        expect_one_error(head + "allow_prefix = { ipv6 = 129 }\n", 5,
                         "port 'db': allow_prefix.ipv6 must be a whole number from 1 to 128");
        expect_one_error(head + "allow_prefix = { ipv4 = 24, ipv5 = 1 }\n", 5,
                         "unknown key 'ipv5' in port 'db' allow_prefix");
        expect_one_error(head + "allow_prefix = 24\n", 5,
                         "port 'db': allow_prefix must be a table such as { ipv4 = 24, ipv6 = 64 }");
        expect_one_error(head + "allow_prefix = [24, 64]\n", 5, "allow_prefix must be a table");
        // In a multi-line sub-table, the line of the offending key.
        expect_one_error(head + "[port.allow_prefix]\nipv4 = 24\n\nipv6 = 200\n", 8,
                         "allow_prefix.ipv6 must be a whole number from 1 to 128");
        // Both keys wrong: both reported; a bad key leaves the field unset.
        auto two = parse_policy(head + "allow_prefix = { ipv4 = 0, ipv6 = 0 }\n", "p.toml");
        CHECK(two.errors.size() == 2);
        CHECK(has_error(two, 5, "allow_prefix.ipv4"));
        CHECK(has_error(two, 5, "allow_prefix.ipv6"));
        CHECK_FALSE(two.policy.ports[0].allow_prefix_v4.has_value());
    }

    TEST_CASE("break_glass_max and break_glass: values, defaults, off, nobody") {
        auto load = parse_policy(R"([[port]]
name = "a"
port = 1
approvers = ["x"]
break_glass_max = "30m"
break_glass = ["alice", "@oncall"]

[[port]]
name = "b"
port = 2
approvers = ["x"]
max_duration = "10m"

[[port]]
name = "c"
port = 3
approvers = ["x"]
break_glass_max = "0s"
break_glass = []

[[port]]
name = "d"
port = 4
approvers = ["x"]
break_glass_max = "0h0m"
)",
                                 "p.toml");
        INFO("errors:\n", joined(load.errors));
        REQUIRE(load.ok());
        REQUIRE(load.policy.ports.size() == 4);
        const PortPolicy& a = load.policy.ports[0];
        CHECK(a.break_glass_max_s == 1800);
        REQUIRE(a.break_glass.has_value());
        REQUIRE(a.break_glass->size() == 2);
        CHECK((*a.break_glass)[0].text() == "alice");
        CHECK_FALSE((*a.break_glass)[0].is_group);
        CHECK((*a.break_glass)[1].text() == "@oncall");
        CHECK((*a.break_glass)[1].is_group);
        CHECK((*a.break_glass)[1].name == "oncall");
        // The 15m default stays within a shorter max_duration.
        const PortPolicy& b = load.policy.ports[1];
        CHECK(b.break_glass_max_s == 600);
        CHECK_FALSE(b.break_glass.has_value());
        const PortPolicy& c = load.policy.ports[2];
        CHECK(c.break_glass_max_s == 0);
        REQUIRE(c.break_glass.has_value());
        CHECK(c.break_glass->empty());
        CHECK(load.policy.ports[3].break_glass_max_s == 0);
    }

    TEST_CASE("break_glass_max and break_glass: every error with its line") {
        const std::string head = "[[port]]\nname = \"db\"\nport = 1\napprovers = [\"a\"]\n";
        expect_one_error(head + "break_glass_max = \"15\"\n", 5,
                         "port 'db'.break_glass_max: invalid duration '15'");
        expect_one_error(head + "max_duration = \"1h\"\nbreak_glass_max = \"1h\"\nbreak_glass_max2 = 1\n", 7,
                         "unknown key 'break_glass_max2' in [[port]]");
        expect_one_error(head + "break_glass_max = 900\n", 5, "break_glass_max must be a string");
        expect_one_error(head + "\nbreak_glass_max = \"-5m\"\n", 6, "invalid duration '-5m'");
        expect_one_error(head + "break_glass_max = \"0x\"\n", 5, "invalid duration '0x'");
        expect_one_error(head + "max_duration = \"10m\"\nbreak_glass_max = \"15m\"\n", 6,
                         "port 'db': break_glass_max is longer than the port's max_duration (10m)");
        expect_one_error(head + "break_glass = \"alice\"\n", 5,
                         "port 'db': break_glass must be a list of users and @groups");
        expect_one_error(head + "break_glass = [\"alice\", 7]\n", 5, "break_glass must be a list of strings");
        expect_one_error(head + "break_glass = [\"bad name\"]\n", 5,
                         "port 'db' break_glass: 'bad name' is not a user name or @group");
        expect_one_error(head + "\n\nbreak_glass = [\"@oncall\", \"bob\", \"@oncall\"]\n", 7,
                         "port 'db': break_glass lists '@oncall' twice");
        // Both wrong at once: both reported.
        auto two = parse_policy(head + "break_glass_max = \"soon\"\nbreak_glass = \"everyone\"\n", "p.toml");
        INFO("errors:\n", joined(two.errors));
        CHECK(two.errors.size() == 2);
        CHECK(has_error(two, 5, "break_glass_max: invalid duration 'soon'"));
        CHECK(has_error(two, 6, "break_glass must be a list"));
    }

    TEST_CASE("service_users: users, @groups and \"system\"; absent means system only") {
        auto load = parse_policy(
            "[[port]]\nname = \"a\"\nport = 1\napprovers = [\"x\"]\nservice_users = [\"postgres\", "
            "\"@dba\"]\n"
            "[[port]]\nname = \"b\"\nport = 2\napprovers = [\"x\"]\nservice_users = [\"system\", \"pg\"]\n"
            "[[port]]\nname = \"c\"\nport = 3\napprovers = [\"x\"]\nservice_users = []\n"
            "[[port]]\nname = \"d\"\nport = 4\napprovers = [\"x\"]\nservice_users = [\"system\"]\n"
            "[[port]]\nname = \"e\"\nport = 5\napprovers = [\"x\"]\n",
            "p.toml");
        INFO("errors:\n", joined(load.errors));
        REQUIRE(load.ok());
        const auto& ps = load.policy.ports;
        REQUIRE(ps.size() == 5);
        // Listing names without "system" leaves the system accounts out.
        CHECK_FALSE(ps[0].service_system);
        REQUIRE(ps[0].service_users.size() == 2);
        CHECK(ps[0].service_users[0].text() == "postgres");
        CHECK(ps[0].service_users[1].is_group);
        CHECK(ps[0].service_users[1].name == "dba");
        CHECK(ps[1].service_system);
        REQUIRE(ps[1].service_users.size() == 1);
        CHECK(ps[1].service_users[0].text() == "pg");
        CHECK_FALSE(ps[2].service_system);  // [] = root only
        CHECK(ps[2].service_users.empty());
        CHECK(ps[3].service_system);
        CHECK(ps[3].service_users.empty());
        CHECK(ps[4].service_system);
        CHECK(ps[4].service_users.empty());
    }

    TEST_CASE("service_users: every error with its line") {
        const std::string head = "[[port]]\nname = \"db\"\nport = 1\napprovers = [\"a\"]\n";
        expect_one_error(head + "service_users = \"postgres\"\n", 5,
                         "port 'db': service_users must be a list of users, @groups and \"system\"");
        expect_one_error(head + "service_users = [\"postgres\", 7]\n", 5,
                         "service_users must be a list of strings");
        expect_one_error(head + "service_users = [\"bad name\"]\n", 5,
                         "port 'db' service_users: 'bad name' is not a user name or @group");
        expect_one_error(head + "\nservice_users = [\"pg\", \"system\", \"pg\"]\n", 6,
                         "port 'db': service_users lists 'pg' twice");
        expect_one_error(head + "service_users = [\"system\", \"system\"]\n", 5,
                         "service_users lists 'system' twice");
        expect_one_error(head + "service_user = [\"pg\"]\n", 5, "unknown key 'service_user' in [[port]]");
    }

}  // TEST_SUITE

TEST_CASE("valid_ifname follows the kernel's rules for interface names") {
    for (const char* ok : {"eth0", "enp0s31f6", "br-1a2b3c4d5e6f", "veth.100", "abcdefghijklmno"})
        CHECK_MESSAGE(jg::valid_ifname(ok), ok);
    for (const char* bad : {"", ".", "..", "a/b", "a:b", "a b", "a\nb", "tab\t", "abcdefghijklmnop", "\x7f"})
        CHECK_MESSAGE(!jg::valid_ifname(bad), bad);
}

TEST_CASE("xdp_interfaces: names kept once each, in file order") {
    auto load = jg::parse_policy(
        "[daemon]\nxdp_interfaces = [\"eth1\", \"eth0\", \"eth1\"]\n[[port]]\nport = 1\napprovers = "
        "[\"a\"]\n",
        "p.toml");
    REQUIRE(load.ok());
    CHECK(load.policy.daemon.xdp_interfaces == std::vector<std::string>{"eth1", "eth0"});
}

TEST_CASE("unknown_principals: each name the host does not know, once per place, with its port and line") {
    auto load = parse_policy(
        "[daemon]\nauditors = [\"@secops\", \"ghost\"]\n"
        "[[port]]\nname = \"db\"\nport = 5432\napprovers = [\"alice\", \"alcie\", \"@dba\"]\n"
        "break_glass = [\"@oncall\"]\nservice_users = [\"system\", \"alice\", \"pgsql\"]\n"
        "[[port.auto_approve]]\nuser = \"bot\"\nmax_duration = \"5m\"\n",
        "p.toml");
    REQUIRE(load.ok());
    const auto known = [](const Principal& p) {
        return p.is_group ? p.name == "dba" || p.name == "secops" : p.name == "alice";
    };
    const auto w = unknown_principals(load.policy, known);
    INFO(joined(w));
    REQUIRE(w.size() == 5);
    CHECK(w[0] ==
          "[daemon]: auditor 'ghost' is not a user on this host; it counts for nothing until it exists");
    CHECK(w[1].rfind("port 'db' (line 3): approver 'alcie' is not a user", 0) == 0);
    CHECK(w[2].find("auto_approve 'bot' is not a user") != std::string::npos);
    CHECK(w[3].find("break_glass '@oncall' is not a group") != std::string::npos);
    CHECK(w[4].find("service user 'pgsql' is not a user") != std::string::npos);
    CHECK(unknown_principals(load.policy, [](const Principal&) { return true; }).empty());
    // The host's own database: root exists everywhere, this name nowhere.
    CHECK(host_knows(Principal{false, "root"}));
    CHECK(host_knows(Principal{true, "root"}));
    CHECK_FALSE(host_knows(Principal{false, "jitgate-no-such-user-zz"}));
}

}  // namespace test_policy
