// CLI parsing: argv vectors through build_app + finish, no daemon involved.
#include <doctest/doctest.h>

#include <initializer_list>
#include <string>
#include <vector>

#include "cli/app.h"
#include "cli/render.h"

using namespace jg;

namespace {

// Parses `args` (without argv[0]) into a fresh state. Throws CLI::ParseError.
struct Parsed {
    CliState s;
    std::string error;  // what finish() said
};

void parse_into(CliState& s, std::initializer_list<const char*> args) {
    auto app = build_app(s);
    std::vector<const char*> argv{"jitgate"};
    argv.insert(argv.end(), args.begin(), args.end());
    app->parse(static_cast<int>(argv.size()), argv.data());
}

Parsed run(std::initializer_list<const char*> args) {
    Parsed p;
    parse_into(p.s, args);
    p.error = finish(p.s);
    return p;
}

// Parses and finishes, requiring both to succeed.
CliState ok(std::initializer_list<const char*> args) {
    Parsed p;
    REQUIRE_NOTHROW(parse_into(p.s, args));
    p.error = finish(p.s);
    INFO("finish: ", p.error);
    REQUIRE(p.error.empty());
    return p.s;
}

// Parses (which must succeed) and returns finish()'s error, which must be non-empty.
std::string finish_error(std::initializer_list<const char*> args) {
    Parsed p;
    REQUIRE_NOTHROW(parse_into(p.s, args));
    const std::string e = finish(p.s);
    CHECK_FALSE(e.empty());
    return e;
}

}  // namespace

TEST_SUITE("cli") {
    TEST_CASE("request PORT/PROTO --for --reason --ticket") {
        CliState s = ok({"request", "5432/udp", "--for", "1h30m", "--reason", "r", "--ticket", "T"});
        CHECK(s.op == "request");
        CHECK(s.args ==
              nlohmann::json{
                  {"port", 5432}, {"proto", "udp"}, {"duration_s", 5400}, {"reason", "r"}, {"ticket", "T"}});
        CHECK(s.args.at("port").is_number_integer());
        CHECK(s.args.at("duration_s").is_number_integer());
        CHECK_FALSE(s.json);
        CHECK(s.socket == "/run/jitgate/jitgate.sock");
    }

    TEST_CASE("request: protocol defaults to tcp; reason and ticket only when given") {
        CliState s = ok({"request", "5432", "--for", "15m"});
        CHECK(s.op == "request");
        CHECK(s.args == nlohmann::json{{"port", 5432}, {"proto", "tcp"}, {"duration_s", 900}});

        CliState t = ok({"request", "--for", "90s", "53/tcp", "--reason", "dns debugging"});
        CHECK(t.args == nlohmann::json{
                            {"port", 53}, {"proto", "tcp"}, {"duration_s", 90}, {"reason", "dns debugging"}});
    }

    TEST_CASE("--json and --socket are accepted before and after the sub-command") {
        CliState before = ok({"--json", "--socket", "/tmp/x.sock", "request", "5432", "--for", "1h"});
        CHECK(before.json);
        CHECK(before.socket == "/tmp/x.sock");
        CHECK(before.op == "request");
        CHECK(before.args.at("duration_s") == 3600);

        CliState after = ok({"request", "5432", "--for", "1h", "--json", "--socket", "/tmp/y.sock"});
        CHECK(after.json);
        CHECK(after.socket == "/tmp/y.sock");
        CHECK(after.op == "request");
        CHECK(after.args.at("port") == 5432);

        CliState mixed = ok({"--socket=/tmp/z.sock", "list", "--json"});
        CHECK(mixed.json);
        CHECK(mixed.socket == "/tmp/z.sock");
        CHECK(mixed.op == "list");

        CliState st = ok({"status", "--json"});
        CHECK(st.json);
        CHECK(st.op == "status");

        CliState appr = ok({"approve", "7", "--socket", "/tmp/a.sock"});
        CHECK(appr.socket == "/tmp/a.sock");
        CHECK(appr.args == nlohmann::json{{"id", 7}});

        CliState pc = ok({"policy", "check", "/etc/jitgate/jitgate.toml", "--json"});
        CHECK(pc.json);
        CHECK(pc.op == "policy-check");
    }

    TEST_CASE("request: a bad duration is an error from finish") {
        for (const char* d : {"90", "1x", "0s", "30m1h", "abc", "400d"}) {
            CAPTURE(d);
            const std::string e = finish_error({"request", "5432", "--for", d});
            CHECK(e.find(std::string("invalid duration '") + d + "'") != std::string::npos);
        }
    }

    TEST_CASE("request: a bad port is an error from finish") {
        for (const char* p : {"0", "70000", "abc", "65536", "5432/sctp", "5432/", "/tcp"}) {
            CAPTURE(p);
            CHECK_FALSE(finish_error({"request", p, "--for", "1h"}).empty());
        }
        CHECK(finish_error({"request", "0", "--for", "1h"}).find("invalid port '0'") != std::string::npos);
        CHECK(finish_error({"request", "70000", "--for", "1h"}).find("invalid port '70000'") !=
              std::string::npos);
        CHECK(finish_error({"request", "abc", "--for", "1h"}).find("invalid port 'abc'") !=
              std::string::npos);
        CHECK(finish_error({"request", "5432/sctp", "--for", "1h"}).find("'sctp'") != std::string::npos);
    }

    TEST_CASE("request: over-long reason or ticket is refused before the daemon sees it") {
        const std::string reason(1025, 'r');
        const std::string ticket(129, 't');
        CHECK(finish_error({"request", "5432", "--for", "1h", "--reason", reason.c_str()}).find("--reason") !=
              std::string::npos);
        CHECK(finish_error({"request", "5432", "--for", "1h", "--ticket", ticket.c_str()}).find("--ticket") !=
              std::string::npos);
        const std::string reason_ok(1024, 'r');
        CliState s = ok({"request", "5432", "--for", "1h", "--reason", reason_ok.c_str()});
        CHECK(s.args.at("reason").get<std::string>().size() == 1024u);
    }

    TEST_CASE("approve ID [--for DUR]") {
        CliState s = ok({"approve", "7", "--for", "10m"});
        CHECK(s.op == "approve");
        CHECK(s.args == nlohmann::json{{"id", 7}, {"duration_s", 600}});

        CliState plain = ok({"approve", "12"});
        CHECK(plain.args == nlohmann::json{{"id", 12}});

        CHECK(finish_error({"approve", "7", "--for", "ten"}).find("invalid duration 'ten'") !=
              std::string::npos);
        CHECK(finish_error({"approve", "0"}).find("ID") != std::string::npos);
        CHECK_THROWS_AS(run({"approve", "seven"}), CLI::ParseError);
    }

    TEST_CASE("deny and revoke take a positive id") {
        CliState d = ok({"deny", "9", "--reason", "not now"});
        CHECK(d.op == "deny");
        CHECK(d.args == nlohmann::json{{"id", 9}, {"reason", "not now"}});
        CliState d2 = ok({"deny", "9"});
        CHECK(d2.args == nlohmann::json{{"id", 9}});

        CliState r = ok({"revoke", "11"});
        CHECK(r.op == "revoke");
        CHECK(r.args == nlohmann::json{{"id", 11}});

        CHECK_FALSE(finish_error({"revoke", "0"}).empty());
        CHECK_FALSE(finish_error({"deny", "0"}).empty());
        CHECK_THROWS_AS(run({"revoke", "1.5"}), CLI::ParseError);
    }

    TEST_CASE("list --pending / --active / --all, at most one") {
        CHECK(ok({"list"}).args == nlohmann::json{{"filter", "default"}});
        CHECK(ok({"list", "--pending"}).args == nlohmann::json{{"filter", "pending"}});
        CHECK(ok({"list", "--active"}).args == nlohmann::json{{"filter", "active"}});
        CHECK(ok({"list", "--all"}).args == nlohmann::json{{"filter", "all"}});
        CHECK(ok({"list", "--all"}).op == "list");

        CHECK_THROWS_AS(run({"list", "--pending", "--active"}), CLI::ParseError);
        CHECK_THROWS_AS(run({"list", "--active", "--all"}), CLI::ParseError);
        CHECK_THROWS_AS(run({"list", "--pending", "--all"}), CLI::ParseError);
        CHECK_THROWS_AS(run({"list", "--pending", "--active", "--all"}), CLI::ParseError);
    }

    TEST_CASE("missing required arguments and unknown input are parse errors") {
        CHECK_THROWS_AS(run({}), CLI::ParseError);                            // no sub-command
        CHECK_THROWS_AS(run({"request"}), CLI::ParseError);                   // no PORT, no --for
        CHECK_THROWS_AS(run({"request", "5432"}), CLI::ParseError);           // no --for
        CHECK_THROWS_AS(run({"request", "--for", "1h"}), CLI::ParseError);    // no PORT
        CHECK_THROWS_AS(run({"request", "5432", "--for"}), CLI::ParseError);  // --for without value
        CHECK_THROWS_AS(run({"approve"}), CLI::ParseError);
        CHECK_THROWS_AS(run({"deny"}), CLI::ParseError);
        CHECK_THROWS_AS(run({"revoke"}), CLI::ParseError);
        CHECK_THROWS_AS(run({"policy"}), CLI::ParseError);
        CHECK_THROWS_AS(run({"policy", "check"}), CLI::ParseError);
        CHECK_THROWS_AS(run({"frobnicate"}), CLI::ParseError);
        CHECK_THROWS_AS(run({"status", "--bogus"}), CLI::ParseError);
        CHECK_THROWS_AS(run({"--socket"}), CLI::ParseError);
        CHECK_THROWS_AS(run({"request", "5432", "--for", "1h", "extra"}), CLI::ParseError);
    }

    TEST_CASE("policy check FILE") {
        CliState s = ok({"policy", "check", "/etc/jitgate/jitgate.toml"});
        CHECK(s.op == "policy-check");
        CHECK(s.file == "/etc/jitgate/jitgate.toml");
        CHECK(s.args == nlohmann::json::object());
    }

    TEST_CASE("status takes no arguments") {
        CliState s = ok({"status"});
        CHECK(s.op == "status");
        CHECK(s.args == nlohmann::json::object());
    }

    TEST_CASE("request --from ADDR sends the canonical source as the argument from") {
        CliState s = ok({"request", "5432", "--for", "30m", "--reason", "peer", "--from", "203.0.113.7"});
        CHECK(s.op == "request");
        CHECK(s.args == nlohmann::json{{"port", 5432},
                                       {"proto", "tcp"},
                                       {"duration_s", 1800},
                                       {"reason", "peer"},
                                       {"from", "203.0.113.7"}});
        CHECK(ok({"request", "5432", "--for", "1h", "--from=203.0.113.0/24"}).args.at("from") ==
              "203.0.113.0/24");
        CHECK(ok({"request", "5432", "--for", "1h", "--from", "::ffff:203.0.113.7"}).args.at("from") ==
              "203.0.113.7");
        CHECK(ok({"request", "5432/udp", "--from", "2001:DB8::0001", "--for", "1h", "--json"})
                  .args.at("from") == "2001:db8::1");
        CHECK(ok({"request", "5432", "--for", "1h", "--from", "2001:db8::/64"}).args.at("from") ==
              "2001:db8::/64");
        CHECK_FALSE(ok({"request", "5432", "--for", "1h"}).args.contains("from"));
    }

    TEST_CASE("request --from: a bad or refused source is an error from finish") {
        CHECK(finish_error({"request", "5432", "--for", "1h", "--from", "203.0.113.5/24"}) ==
              "203.0.113.5/24 has host bits set; did you mean 203.0.113.0/24?");
        CHECK(finish_error({"request", "5432", "--for", "1h", "--from", "127.0.0.1"})
                  .find("local users get access without --from") != std::string::npos);
        CHECK(finish_error({"request", "5432", "--for", "1h", "--from", "1.2.3"})
                  .find("invalid source address '1.2.3'") != std::string::npos);
        CHECK(finish_error({"request", "5432", "--for", "1h", "--from", "2001:db8::/129"})
                  .find("invalid prefix length") != std::string::npos);
        // Given but empty is an error, not the same as leaving --from out.
        CHECK(finish_error({"request", "5432", "--for", "1h", "--from", ""})
                  .find("invalid source address ''") != std::string::npos);
        CHECK_THROWS_AS(run({"request", "5432", "--for", "1h", "--from"}), CLI::ParseError);
        CHECK_THROWS_AS(run({"approve", "7", "--from", "203.0.113.7"}), CLI::ParseError);
    }

    TEST_CASE("human output names the principal: the user, or from ADDR") {
        const nlohmann::json local = {
            {"request_id", 7},        {"state", "pending"}, {"uid", 1000},
            {"user", "rita"},         {"port", 5432},       {"proto", "tcp"},
            {"duration_s", 1800},     {"reason", "fix"},    {"approvers", nlohmann::json::array()},
            {"approvals_required", 1}};
        const std::string l = render_human("request", local);
        CHECK(l.find("request 7  pending  5432/tcp  by rita  for 30m  (0 of 1 approvals)  reason: fix\n") ==
              0);
        CHECK(l.find("from") == std::string::npos);

        nlohmann::json remote = local;
        remote["src"] = "203.0.113.7";
        const std::string r = render_human("request", remote);
        CHECK(r.find("request 7  pending  5432/tcp  from 203.0.113.7  by rita  for 30m") == 0);

        nlohmann::json granted = remote;
        granted["state"] = "granted";
        granted["grant_id"] = 8;
        granted["expires_at"] = "2027-01-15T08:30:00.000000Z";
        granted["approvers"] = {"alice"};
        const std::string a = render_human("approve", granted);
        CHECK(a.find("5432/tcp  from 203.0.113.7  by rita") != std::string::npos);
        CHECK(a.find("granted: grant 8 is active until 2027-01-15T08:30:00.000000Z for connections from "
                     "203.0.113.7\n") != std::string::npos);
        nlohmann::json granted_local = granted;
        granted_local.erase("src");
        CHECK(render_human("approve", granted_local)
                  .find("granted: grant 8 is active until 2027-01-15T08:30:00.000000Z\n") !=
              std::string::npos);

        const nlohmann::json grant = {{"grant_id", 8},          {"request_id", 7},
                                      {"state", "active"},      {"uid", 1000},
                                      {"user", "rita"},         {"port", 5432},
                                      {"proto", "tcp"},         {"approvers", {"alice"}},
                                      {"remaining_s", 600},     {"expires_at", "2027-01-15T08:30:00.000000Z"},
                                      {"src", "203.0.113.0/24"}};
        nlohmann::json grant_local = grant;
        grant_local.erase("src");
        const nlohmann::json list = {{"requests", {remote}}, {"grants", {grant, grant_local}}};
        const std::string out = render_human("list", list);
        CHECK(out.find("request 7  pending  5432/tcp  from 203.0.113.7  by rita") != std::string::npos);
        CHECK(out.find("grant 8  active  5432/tcp  from 203.0.113.0/24  asked by rita  10m left") !=
              std::string::npos);
        CHECK(out.find("grant 8  active  5432/tcp  for rita  10m left") != std::string::npos);
        CHECK(render_human("revoke", grant).find("from 203.0.113.0/24  asked by rita") != std::string::npos);
    }

}  // TEST_SUITE

TEST_CASE("status shows each XDP interface with its mode, or why it is not attached") {
    nlohmann::json st = {{"version", "0.1.0"},
                         {"abi_version", 1},
                         {"cgroup", "/sys/fs/cgroup"},
                         {"programs", nlohmann::json::array()},
                         {"xdp",
                          {{{"interface", "eth0"}, {"attached", true}, {"link_id", 7}, {"mode", "native"}},
                           {{"interface", "eth1"},
                            {"attached", true},
                            {"link_id", 8},
                            {"mode", "generic"},
                            {"note", "native XDP unavailable: Operation not supported"}},
                           {{"interface", "wg0"},
                            {"attached", false},
                            {"note", "no such interface yet; attached when it appears"}}}},
                         {"ports", nlohmann::json::array()},
                         {"grants", nlohmann::json::array()},
                         {"pending_requests", 0},
                         {"counters", {{"xdp_drop", 12}, {"ingress_drop", 3}}}};
    const std::string out = jg::render_human("status", st);
    CHECK(out.find("eth0         link 7      native\n") != std::string::npos);
    CHECK(out.find("eth1         link 8      generic (native XDP unavailable: Operation not supported)") !=
          std::string::npos);
    CHECK(out.find("wg0          NOT ATTACHED: no such interface yet") != std::string::npos);
    CHECK(out.find("xdp_drop 12 ingress_drop 3") != std::string::npos);
}
