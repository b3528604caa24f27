// CLI parsing: argv vectors through build_app + finish, no daemon involved.
#include <doctest/doctest.h>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <functional>
#include <initializer_list>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cli/app.h"
#include "cli/client.h"
#include "cli/render.h"
#include "core/audit.h"
#include "core/protocol.h"
#include "core/text.h"
#include "helpers.h"
#include "jitgate/version.h"

namespace test_cli {
using namespace jg;
using namespace jg::testing;

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

// Parses, sets the clock --since counts back from, and finishes.
Parsed run_at(std::int64_t now_us, std::initializer_list<const char*> args) {
    Parsed p;
    parse_into(p.s, args);
    p.s.now_us = now_us;
    p.error = finish(p.s);
    return p;
}

// run_cli with stdout and stderr captured.
struct Ran {
    int rc = 0;
    std::string out, err;
};

Ran run_main(std::vector<const char*> args) {
    args.insert(args.begin(), "jitgate");
    std::ostringstream out, err;
    auto* old_out = std::cout.rdbuf(out.rdbuf());
    auto* old_err = std::cerr.rdbuf(err.rdbuf());
    Ran r;
    r.rc = run_cli(static_cast<int>(args.size()), args.data());
    std::cout.rdbuf(old_out);
    std::cerr.rdbuf(old_err);
    r.out = out.str();
    r.err = err.str();
    return r;
}

// A stand-in jitgated on a Unix socket: for each connection, reads one
// request line and writes what `answer` returns for it, then closes.
class FakeDaemon {
public:
    using Answer = std::function<std::string(const nlohmann::json& request)>;
    FakeDaemon(std::string path, Answer answer) : path_(std::move(path)), answer_(std::move(answer)) {
        fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        REQUIRE(fd_ >= 0);
        sockaddr_un sa{};
        sa.sun_family = AF_UNIX;
        REQUIRE(path_.size() < sizeof(sa.sun_path));
        std::memcpy(sa.sun_path, path_.c_str(), path_.size() + 1);
        REQUIRE(bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0);
        REQUIRE(listen(fd_, 8) == 0);
        thread_ = std::thread([this] { serve(); });
    }
    ~FakeDaemon() {
        stop_ = true;
        shutdown(fd_, SHUT_RDWR);
        thread_.join();
        close(fd_);
    }
    FakeDaemon(const FakeDaemon&) = delete;
    FakeDaemon& operator=(const FakeDaemon&) = delete;
    std::vector<nlohmann::json> requests;  // read after the client is done

private:
    void serve() {
        while (!stop_) {
            const int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
            if (c < 0) return;
            const auto req = nlohmann::json::parse(jg::testing::read_request_line(c), nullptr, false);
            requests.push_back(req);
            const std::string out = answer_(req);
            std::size_t off = 0;
            while (off < out.size()) {
                const ssize_t n = send(c, out.data() + off, out.size() - off, MSG_NOSIGNAL);
                if (n <= 0) break;
                off += static_cast<std::size_t>(n);
            }
            close(c);
        }
    }

    std::string path_;
    Answer answer_;
    int fd_ = -1;
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

// Request 12 as op show returns it: pending with `approvers` of 2, or
// decided as `state`.
nlohmann::json req12(const std::string& state, std::vector<std::string> approvers = {}) {
    nlohmann::json r = {{"request_id", 12},
                        {"state", state},
                        {"uid", 1000},
                        {"user", "rita"},
                        {"port", 5432},
                        {"proto", "tcp"},
                        {"duration_s", 600},
                        {"reason", "fix prod"},
                        {"approvers", approvers},
                        {"created_at", "2027-01-15T08:00:00.000000Z"}};
    if (state == "pending") {
        r["approvals_required"] = 2;
        r["expires_at"] = "2027-01-15T08:15:00.000000Z";
    }
    if (state == "granted") {
        r.update({{"grant_id", 13},
                  {"grant_state", "active"},
                  {"remaining_s", 599},
                  {"expires_at", "2027-01-15T08:10:00.000000Z"},
                  {"decided_by", "bob"}});
    }
    return r;
}

// A jitgated whose op show answers request 12 with `states` in turn (the
// last one for ever after); anything else is an error reply.
struct ShowScript {
    std::vector<nlohmann::json> states;
    std::atomic<int> shows{0};
    std::string answer(const nlohmann::json& req) {
        const auto id = req.value("id", std::int64_t(0));
        if (req.value("op", "") != "show" ||
            req.value("args", nlohmann::json()) != nlohmann::json{{"id", 12}})
            return reply_error(id, code::kInvalid, "unexpected " + req.dump());
        const std::size_t i = static_cast<std::size_t>(shows++);
        return reply_ok(id, states[std::min(i, states.size() - 1)]);
    }
};

// wait_for_decision with stdout and stderr captured.
Ran run_wait(const std::string& socket, bool json, const nlohmann::json& first, const WaitOptions& o) {
    CliState s;
    s.socket = socket;
    s.json = json;
    std::ostringstream out, err;
    auto* old_out = std::cout.rdbuf(out.rdbuf());
    auto* old_err = std::cerr.rdbuf(err.rdbuf());
    Ran r;
    r.rc = wait_for_decision(s, first, o);
    std::cout.rdbuf(old_out);
    std::cerr.rdbuf(old_err);
    r.out = out.str();
    r.err = err.str();
    return r;
}

WaitOptions fast_wait(const std::atomic<bool>* stop = nullptr) {
    WaitOptions o;
    o.poll_ms = 5;
    o.unreachable_ms = 1000;
    o.stop = stop;
    return o;
}

// request --wait's JSON without its "nodes", which must name one node
// (this host: req12 names none) applied.
nlohmann::json without_nodes(const std::string& out) {
    nlohmann::json j = nlohmann::json::parse(out);
    char host[256] = {};
    REQUIRE(gethostname(host, sizeof(host) - 1) == 0);
    REQUIRE(j.contains("nodes"));
    REQUIRE(j["nodes"].size() == 1);
    CHECK(j["nodes"][0].at("node") == host);
    CHECK(j["nodes"][0].at("state") == "applied");
    CHECK(j["nodes"][0].at("latency_ms").is_number_integer());
    j.erase("nodes");
    return j;
}

std::size_t count_of(const std::string& text, const std::string& what) {
    std::size_t n = 0;
    for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
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
        CHECK(out.find("  request 7  pending  5432/tcp from 203.0.113.7  by rita  for 30m") !=
              std::string::npos);
        CHECK(out.find("  grant 8  active  5432/tcp from 203.0.113.0/24  asked by rita  10m left") !=
              std::string::npos);
        CHECK(out.find("  grant 8  active  5432/tcp  for rita  10m left") != std::string::npos);
        CHECK(render_human("revoke", grant).find("from 203.0.113.0/24  asked by rita") != std::string::npos);
    }

    TEST_CASE("break-glass PORT[/PROTO] --for DUR --reason TEXT") {
        CliState s = ok({"break-glass", "5432/udp", "--for", "10m", "--reason", "primary down"});
        CHECK(s.op == "break_glass");
        CHECK(s.args ==
              nlohmann::json{
                  {"port", 5432}, {"proto", "udp"}, {"duration_s", 600}, {"reason", "primary down"}});
        CliState t =
            ok({"--json", "break-glass", "--reason", "r", "--for", "1h", "22", "--socket", "/tmp/b.sock"});
        CHECK(t.json);
        CHECK(t.socket == "/tmp/b.sock");
        CHECK(t.args ==
              nlohmann::json{{"port", 22}, {"proto", "tcp"}, {"duration_s", 3600}, {"reason", "r"}});

        CHECK_THROWS_AS(run({"break-glass", "5432", "--for", "10m"}), CLI::ParseError);   // no reason
        CHECK_THROWS_AS(run({"break-glass", "5432", "--reason", "r"}), CLI::ParseError);  // no --for
        CHECK_THROWS_AS(run({"break-glass", "--for", "10m", "--reason", "r"}), CLI::ParseError);
        CHECK_THROWS_AS(run({"break-glass", "5432", "--for", "10m", "--reason", "r", "--ticket", "T"}),
                        CLI::ParseError);
        CHECK_THROWS_AS(run({"break-glass", "5432", "--for", "10m", "--reason", "r", "--wait"}),
                        CLI::ParseError);
        CHECK_THROWS_AS(
            run({"break-glass", "5432", "--for", "10m", "--reason", "r", "--from", "203.0.113.7"}),
            CLI::ParseError);

        CHECK(finish_error({"break-glass", "5432", "--for", "10m", "--reason", ""}) ==
              "--reason must say why: break-glass is reviewed after the fact");
        CHECK(finish_error({"break-glass", "5432", "--for", "10m", "--reason", "   "}) ==
              "--reason must say why: break-glass is reviewed after the fact");
        CHECK(finish_error({"break-glass", "5432", "--for", "ten", "--reason", "r"})
                  .find("invalid duration 'ten'") != std::string::npos);
        CHECK(finish_error({"break-glass", "5432/sctp", "--for", "1m", "--reason", "r"}).find("'sctp'") !=
              std::string::npos);
        const std::string long_reason(1025, 'r');
        CHECK(finish_error({"break-glass", "5432", "--for", "1m", "--reason", long_reason.c_str()}) ==
              "--reason is longer than 1024 bytes");
    }

    TEST_CASE(
        "request --wait is a flag of request (and approve, revoke); the daemon's arguments are unchanged") {
        CliState w = ok({"request", "5432", "--for", "10m", "--reason", "r", "--wait", "--ticket", "T-9"});
        CHECK(w.wait);
        CHECK(w.op == "request");
        CHECK(w.args ==
              nlohmann::json{
                  {"port", 5432}, {"proto", "tcp"}, {"duration_s", 600}, {"reason", "r"}, {"ticket", "T-9"}});
        CliState plain = ok({"request", "5432", "--for", "10m"});
        CHECK_FALSE(plain.wait);
        CHECK(ok({"--json", "request", "5432", "--wait", "--for", "1m"}).wait);
        // approve and revoke --wait (issue 19) wait for a fleet's target nodes; list has none.
        CHECK_THROWS_AS(run({"list", "--wait"}), CLI::ParseError);
        CHECK_THROWS_AS(run({"deny", "7", "--wait"}), CLI::ParseError);
        CHECK_THROWS_AS(run({"--wait", "request", "5432", "--for", "1m"}), CLI::ParseError);
    }

    TEST_CASE("render: the state lines of request --wait") {
        CHECK(render_wait_state(req12("pending")) == "request 12: pending, 0 of 2 approvals");
        CHECK(render_wait_state(req12("pending", {"alice"})) ==
              "request 12: pending, 1 of 2 approvals (alice)");
        CHECK(render_wait_state(req12("granted", {"alice", "bob"})) ==
              "request 12: granted, grant 13, 9m59s remaining until 2027-01-15T08:10:00.000000Z");
        nlohmann::json gone = req12("granted");
        gone["grant_state"] = "revoked";
        gone.erase("remaining_s");
        CHECK(render_wait_state(gone) == "request 12: granted, but grant 13 is already revoked");
        nlohmann::json rej = req12("rejected");
        rej.update({{"decided_by", "alice"}, {"decision_reason", "not during the freeze"}});
        CHECK(render_wait_state(rej) == "request 12: rejected by alice: not during the freeze");
        rej.erase("decision_reason");
        CHECK(render_wait_state(rej) == "request 12: rejected by alice");
        nlohmann::json ttl = req12("expired");
        ttl["decided_by"] = "request_ttl";
        CHECK(render_wait_state(ttl) ==
              "request 12: expired: nobody decided it before its request_ttl ran out");
    }

    TEST_CASE("render: a wait names who can decide and until when; the terminal line counts it") {
        nlohmann::json r = req12("pending");
        r["expires_at"] = "2027-01-15T08:15:00.000000Z";
        CHECK(render_wait_for(r) == "until 2027-01-15T08:15:00.000000Z");
        r["eligible_approvers"] = {"alice"};
        CHECK(render_wait_for(r) == "by alice, until 2027-01-15T08:15:00.000000Z");
        r["eligible_approvers"] = {"alice", "bob", "@dba"};
        CHECK(render_wait_for(r) == "by alice, bob or @dba, until 2027-01-15T08:15:00.000000Z");
        r.erase("expires_at");
        CHECK(render_wait_for(r) == "by alice, bob or @dba");
        CHECK(render_wait_for(nlohmann::json::object()).empty());
        CHECK(render_waiting(r, 65) == "waiting 1m5s for a decision on request 12");
        CHECK(render_waiting(r, 0) == "waiting 0s for a decision on request 12");
    }

    TEST_CASE("render: break-glass says so loudly, with its expiry") {
        nlohmann::json r = req12("granted");
        r["break_glass"] = true;
        r["expires_at"] = "2027-01-15T08:15:00.000000Z";
        CHECK(render_human("break_glass", r) ==
              "BREAK-GLASS: 5432/tcp granted to rita at once, without approval, until "
              "2027-01-15T08:15:00.000000Z (grant 13, request 12); this is recorded in the audit log and "
              "listed "
              "for review\n");
    }

    TEST_CASE("render: list shows every item's facts in blocks within 110 columns") {
        nlohmann::json pending = req12("pending", {"alice"});
        pending["ticket"] = "INC-7";
        const nlohmann::json active = {{"grant_id", 13},
                                       {"request_id", 11},
                                       {"state", "active"},
                                       {"user", "bob"},
                                       {"port", 6000},
                                       {"proto", "udp"},
                                       {"approvers", {"alice", "carol"}},
                                       {"reason", "dns"},
                                       {"remaining_s", 598},
                                       {"expires_at", "2027-01-15T08:10:00.000000Z"},
                                       {"src", "2001:db8::/64"}};
        const nlohmann::json glass = {
            {"grant_id", 21},
            {"request_id", 20},
            {"state", "revoked"},
            {"user", "olly"},
            {"port", 5432},
            {"proto", "tcp"},
            {"approvers", nlohmann::json::array()},
            {"break_glass", true},
            {"reason",
             std::string(150, 'x') + " primary is down and paging reached nobody on the rota tonight"},
            {"ended_at", "2027-01-15T08:05:00.000000Z"},
            {"ended_by", "alice"}};
        const std::string out =
            render_human("list", {{"requests", {pending}}, {"grants", {active}}, {"break_glass", {glass}}});
        CHECK(out ==
              "pending requests (1):\n"
              "  request 12  pending  5432/tcp  by rita  for 10m  1 of 2 approvals (alice)\n"
              "      undecided until 2027-01-15 08:15:00Z\n"
              "      reason: fix prod  ticket: INC-7\n"
              "active grants (1):\n"
              "  grant 13  active  6000/udp from 2001:db8::/64  asked by bob  9m58s left (until 2027-01-15 "
              "08:10:00Z)\n"
              "      approved by alice,carol  request 11\n"
              "      reason: dns\n"
              "break-glass grants of the last 7 days, for review (1):\n"
              "  grant 21  BREAK-GLASS  revoked  5432/tcp  for olly  ended 2027-01-15 08:05:00Z by alice  no "
              "approver\n"
              "      request 20\n"
              "      reason: " +
                  std::string(96, 'x') + "\n          " + std::string(54, 'x') +
                  " primary is down and paging reached nobody on\n"
                  "          the rota tonight\n");
        std::istringstream lines(out);
        for (std::string line; std::getline(lines, line);) {
            CAPTURE(line);
            CHECK(line.size() <= 110u);
        }

        // Decided requests (list --all): who decided, when, and why.
        nlohmann::json rej = req12("rejected", {"alice"});
        rej.update({{"decided_at", "2027-01-15T08:01:00.000000Z"},
                    {"decided_by", "bob"},
                    {"decision_reason", "not now"}});
        const nlohmann::json glass_req = [] {
            nlohmann::json r = req12("granted");
            r.update({{"decided_at", "2027-01-15T08:02:00.000000Z"},
                      {"decided_by", "break_glass"},
                      {"break_glass", true}});
            return r;
        }();
        CHECK(
            render_human("list", {{"requests", {rej, glass_req}}, {"grants", nlohmann::json::array()}}) ==
            "requests (2):\n"
            "  request 12  rejected  5432/tcp  by rita  for 10m  approved by alice\n"
            "      rejected 2027-01-15 08:01:00Z by bob: not now\n"
            "      reason: fix prod\n"
            "  request 12  BREAK-GLASS  granted  5432/tcp  by rita  for 10m  granted 2027-01-15 08:02:00Z by "
            "break_glass\n"
            "      grant 13\n"
            "      reason: fix prod\n");
        CHECK(render_human("list", {{"requests", nlohmann::json::array()},
                                    {"grants", nlohmann::json::array()},
                                    {"break_glass", nlohmann::json::array()}}) == "nothing to show\n");
    }

}  // TEST_SUITE

TEST_SUITE("cli wait") {
    TEST_CASE("request --wait: each change of state once on stderr, then granted: exit 0") {
        TempDir dir;
        const std::string sock = dir.file("d.sock");
        ShowScript script{{req12("pending"), req12("pending"), req12("pending", {"alice"}),
                           req12("pending", {"alice"}), req12("granted", {"alice", "bob"})}};
        FakeDaemon d(sock, [&](const nlohmann::json& q) { return script.answer(q); });
        nlohmann::json first = req12("pending");
        first["eligible_approvers"] = {"alice", "bob"};
        const Ran r = run_wait(sock, false, first, fast_wait());
        CHECK(r.rc == 0);
        CHECK(r.err ==
              "request 12: pending, 0 of 2 approvals; waiting for a decision by alice or bob, until "
              "2027-01-15T08:15:00.000000Z (Ctrl-C stops waiting)\n"
              "request 12: pending, 1 of 2 approvals (alice)\n");
        CHECK(r.out == "request 12: granted, grant 13, 9m59s remaining until 2027-01-15T08:10:00.000000Z\n");
        CHECK(script.shows == 5);

        // --json: the one final object on stdout.
        script.shows = 0;
        const Ran j = run_wait(sock, true, req12("pending"), fast_wait());
        CHECK(j.rc == 0);
        CHECK(nlohmann::json::parse(j.out) == req12("granted", {"alice", "bob"}));
        CHECK(count_of(j.out, "\n") == 1);
    }

    TEST_CASE("request --wait: rejected or expired: exit 3, naming who and why") {
        TempDir dir;
        const std::string sock = dir.file("d.sock");
        nlohmann::json rej = req12("rejected");
        rej.update({{"decided_by", "alice"}, {"decision_reason", "not during the freeze"}});
        ShowScript script{{req12("pending"), rej}};
        FakeDaemon d(sock, [&](const nlohmann::json& q) { return script.answer(q); });
        const Ran r = run_wait(sock, false, req12("pending"), fast_wait());
        CHECK(r.rc == 3);
        CHECK(r.out.empty());
        CHECK(r.err.find("jitgate: request 12: rejected by alice: not during the freeze\n") !=
              std::string::npos);

        script.shows = 0;
        const Ran j = run_wait(sock, true, req12("pending"), fast_wait());
        CHECK(j.rc == 3);
        CHECK(nlohmann::json::parse(j.out) == rej);

        nlohmann::json ttl = req12("expired");
        ttl["decided_by"] = "request_ttl";
        script.states = {ttl};
        script.shows = 0;
        const Ran x = run_wait(sock, false, req12("pending"), fast_wait());
        CHECK(x.rc == 3);
        CHECK(x.err.find("jitgate: request 12: expired: nobody decided it before its request_ttl ran out") !=
              std::string::npos);
    }

    TEST_CASE(
        "request --wait: stopped (SIGINT) withdraws nothing: exit 130, the current object with --json") {
        TempDir dir;
        const std::string sock = dir.file("d.sock");
        ShowScript script{{req12("pending", {"alice"})}};
        FakeDaemon d(sock, [&](const nlohmann::json& q) { return script.answer(q); });
        std::atomic<bool> stop{true};
        const Ran now = run_wait(sock, true, req12("pending"), fast_wait(&stop));
        CHECK(now.rc == 130);
        CHECK(nlohmann::json::parse(now.out) == req12("pending"));
        CHECK(now.err.find("stopped waiting; request 12 stays pending (jitgate deny 12 withdraws it)\n") !=
              std::string::npos);
        CHECK(script.shows == 0);

        // Stopped after a few looks: the object it last saw.
        stop = false;
        std::thread stopper([&] {
            while (script.shows < 3) std::this_thread::sleep_for(std::chrono::milliseconds(1));
            stop = true;
        });
        const Ran later = run_wait(sock, true, req12("pending"), fast_wait(&stop));
        stopper.join();
        CHECK(later.rc == 130);
        CHECK(nlohmann::json::parse(later.out) == req12("pending", {"alice"}));
        CHECK(later.err.find("stopped waiting; request 12 stays pending") != std::string::npos);
    }

    TEST_CASE("request --wait: jitgated unreachable: said once, retried, exit 4 after the limit") {
        TempDir dir;
        const std::string sock = dir.file("none.sock");
        WaitOptions o = fast_wait();
        o.unreachable_ms = 300;
        const auto t0 = std::chrono::steady_clock::now();
        const Ran r = run_wait(sock, false, req12("pending"), o);
        const auto took = std::chrono::steady_clock::now() - t0;
        CHECK(r.rc == 4);
        CHECK(count_of(r.err, "; trying again for up to 1 s\n") == 1);
        CHECK(count_of(r.err, "cannot reach jitgated at " + sock) == 2);  // the notice and the final error
        CHECK(r.err.find("request 12 stays pending (jitgate list shows it)") != std::string::npos);
        CHECK(took >= std::chrono::milliseconds(300));
        CHECK(took < std::chrono::milliseconds(3000));
        const Ran j = run_wait(sock, true, req12("pending"), o);
        CHECK(j.rc == 4);
        CHECK(nlohmann::json::parse(j.out).at("error").at("code") == "unreachable");
    }

    TEST_CASE("request --wait survives a restart of jitgated") {
        TempDir dir;
        const std::string sock = dir.file("d.sock");
        ShowScript before{{req12("pending")}};
        ShowScript after{{req12("granted", {"alice", "bob"})}};
        auto first =
            std::make_unique<FakeDaemon>(sock, [&](const nlohmann::json& q) { return before.answer(q); });
        Ran r;
        std::thread waiter([&] { r = run_wait(sock, false, req12("pending"), fast_wait()); });
        while (before.shows < 2) std::this_thread::sleep_for(std::chrono::milliseconds(1));
        first.reset();  // jitgated stops...
        ::unlink(sock.c_str());
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        FakeDaemon second(sock, [&](const nlohmann::json& q) { return after.answer(q); });  // ...and is back
        waiter.join();
        CHECK(r.rc == 0);
        CHECK(count_of(r.err, "trying again") == 1);
        CHECK(r.out == "request 12: granted, grant 13, 9m59s remaining until 2027-01-15T08:10:00.000000Z\n");
        CHECK(after.shows >= 1);
    }

    TEST_CASE("request --wait: the daemon's errors end the wait with their exit code") {
        TempDir dir;
        const std::string sock = dir.file("d.sock");
        std::string mode = "gone";
        FakeDaemon d(sock, [&](const nlohmann::json& q) {
            const auto id = q.value("id", std::int64_t(0));
            if (mode == "gone") return reply_error(id, code::kNotFound, "there is no request 12");
            return reply_error(id, code::kInvalid, "unknown operation \"show\"");
        });
        const Ran gone = run_wait(sock, false, req12("pending"), fast_wait());
        CHECK(gone.rc == 1);
        CHECK(gone.err.find("jitgate: there is no request 12\n") != std::string::npos);
        mode = "old";
        const Ran old = run_wait(sock, false, req12("pending"), fast_wait());
        CHECK(old.rc == 1);
        CHECK(old.err.find("no op show; it is older than this jitgate") != std::string::npos);
    }

    TEST_CASE("jitgate request --wait: the request, then op show until granted; auto-approved at once") {
        TempDir dir;
        const std::string sock = dir.file("d.sock");
        std::atomic<bool> auto_approved{false};
        std::atomic<int> shows{0};
        FakeDaemon d(sock, [&](const nlohmann::json& q) {
            const auto id = q.value("id", std::int64_t(0));
            if (q.value("op", "") == "request")
                return reply_ok(id, auto_approved ? req12("granted") : req12("pending"));
            ++shows;
            return reply_ok(id, req12("granted", {"alice", "bob"}));
        });
        const Ran j =
            run_main({"--socket", sock.c_str(), "request", "5432", "--for", "10m", "--wait", "--json"});
        CHECK(j.rc == 0);
        // The decided request, and (one host: no revision) the node that answered, applied.
        CHECK(without_nodes(j.out) == req12("granted", {"alice", "bob"}));
        CHECK(count_of(j.out, "\n") == 1);
        CHECK(shows == 1);
        CHECK(j.err.find("request 12: pending, 0 of 2 approvals; waiting for a decision") !=
              std::string::npos);

        const Ran h = run_main({"--socket", sock.c_str(), "request", "5432", "--for", "10m", "--wait"});
        CHECK(h.rc == 0);
        CHECK(h.out.find("waiting for approval: an approver runs  jitgate approve 12\n") !=
              std::string::npos);
        CHECK(h.out.find(
                  "request 12: granted, grant 13, 9m59s remaining until 2027-01-15T08:10:00.000000Z\n") !=
              std::string::npos);

        auto_approved = true;
        shows = 0;
        const Ran at_once =
            run_main({"--socket", sock.c_str(), "request", "5432", "--for", "10m", "--wait", "--json"});
        CHECK(at_once.rc == 0);
        CHECK(without_nodes(at_once.out) == req12("granted"));
        CHECK(shows == 0);
        CHECK(at_once.err.empty());
    }
}

TEST_SUITE("cli audit") {
    TEST_CASE("audit: 50 past records by default; a follower none unless it asks") {
        CliState s = ok({"audit"});
        CHECK(s.op == "audit");
        CHECK(s.args == nlohmann::json{{"limit", 50}});

        CHECK(ok({"audit", "--follow"}).args == nlohmann::json{{"follow", true}});
        CHECK(ok({"audit", "-f"}).args == nlohmann::json{{"follow", true}});
        CHECK(ok({"audit", "-f", "--limit", "10"}).args == nlohmann::json{{"follow", true}, {"limit", 10}});
        CHECK(ok({"audit", "--limit", "10000"}).args == nlohmann::json{{"limit", 10000}});
        CHECK(ok({"audit", "--limit=1"}).args == nlohmann::json{{"limit", 1}});

        const std::int64_t now = *parse_rfc3339_us("2026-11-21T12:00:00Z");
        Parsed f = run_at(now, {"audit", "-f", "--since", "10m"});
        CHECK(f.error.empty());
        CHECK(f.s.args == nlohmann::json{{"follow", true}, {"since_us", now - 600000000}, {"limit", 50}});
        Parsed t = run_at(now, {"audit", "--since", "2026-11-21T09:56:00Z", "--json"});
        CHECK(t.error.empty());
        CHECK(t.s.json);
        CHECK(t.s.args.at("since_us") == *parse_rfc3339_us("2026-11-21T09:56:00Z"));
        CHECK(t.s.args.at("since_us").is_number_integer());
    }

    TEST_CASE("audit --type: repeated and comma-separated, each known, each once") {
        CHECK(ok({"audit", "--type", "deny"}).args.at("types") == nlohmann::json{"deny"});
        CHECK(ok({"audit", "--type", "deny", "--type", "allow,grant", "--type=deny"}).args.at("types") ==
              nlohmann::json{"deny", "allow", "grant"});
        CHECK(ok({"audit", "--type", "grant, revoke ,expire"}).args.at("types") ==
              nlohmann::json{"grant", "revoke", "expire"});
        CHECK_FALSE(ok({"audit"}).args.contains("types"));

        const std::string e = finish_error({"audit", "--type", "deny,bogus"});
        CHECK(e.find("unknown audit record type 'bogus'") == 0);
        CHECK(e.find("deny, would_deny, allow, request") != std::string::npos);
        CHECK(e.find("daemon_stop") != std::string::npos);
        CHECK(finish_error({"audit", "--type", "Deny"}).find("'Deny'") != std::string::npos);
        CHECK(finish_error({"audit", "--type", "deny,"}).find("names no type") != std::string::npos);
        CHECK(finish_error({"audit", "--type", ""}).find("names no type") != std::string::npos);
        // One value per --type: a second word is not a type.
        CHECK_THROWS_AS(run({"audit", "--type", "deny", "allow"}), CLI::ParseError);
        CHECK_THROWS_AS(run({"audit", "--type"}), CLI::ParseError);
    }

    TEST_CASE("audit --port, --user, --limit, --since: refused before the daemon sees them") {
        CHECK(ok({"audit", "--port", "5432"}).args == nlohmann::json{{"port", 5432}, {"limit", 50}});
        CHECK(ok({"audit", "--port", "65535"}).args.at("port") == 65535);
        for (const char* p : {"0", "65536", "abc", "22x", "-1", "", "1e3", "99999999999"}) {
            CAPTURE(p);
            CHECK(finish_error({"audit", "--port", p}).find(std::string("invalid --port '") + p + "'") == 0);
        }
        CHECK(ok({"audit", "--user", "alice"}).args.at("user") == "alice");
        CHECK(ok({"audit", "--user", "1001"}).args.at("user") == "1001");
        CHECK(finish_error({"audit", "--user", ""}).find("--user is empty") == 0);
        for (const char* n : {"0", "10001", "x", "-5", ""}) {
            CAPTURE(n);
            CHECK(finish_error({"audit", "--limit", n}).find(std::string("invalid --limit '") + n + "'") ==
                  0);
        }
        CHECK(finish_error({"audit", "--since", "last week"}).find("invalid time 'last week'") == 0);
        CHECK(finish_error({"audit", "--since", "2026-11-31T00:00:00Z"}).find("no such day") !=
              std::string::npos);
        CHECK(finish_error({"audit", "--since", "0m"}).find("invalid duration") != std::string::npos);
        CHECK_THROWS_AS(run({"audit", "--bogus"}), CLI::ParseError);
        CHECK_THROWS_AS(run({"audit", "extra"}), CLI::ParseError);
        CHECK_THROWS_AS(run({"audit", "--port"}), CLI::ParseError);
    }

    TEST_CASE("audit verify [FILE...]") {
        CliState v = ok({"audit", "verify"});
        CHECK(v.op == "audit-verify");
        CHECK(v.files.empty());
        CliState two = ok({"audit", "verify", "old.jsonl", "audit.jsonl", "--json"});
        CHECK(two.op == "audit-verify");
        CHECK(two.files == std::vector<std::string>{"old.jsonl", "audit.jsonl"});
        CHECK(two.json);
        CHECK(ok({"--socket", "/tmp/s", "audit", "verify", "x"}).socket == "/tmp/s");
        // The audit options mean nothing to verify.
        CHECK(finish_error({"audit", "--follow", "verify"}).find("audit verify takes only FILE arguments") ==
              0);
        CHECK(finish_error({"audit", "verify", "--since", "1h", "x"}).find("takes only FILE") !=
              std::string::npos);
        CHECK(finish_error({"audit", "--type", "deny", "verify"}).find("takes only FILE") !=
              std::string::npos);
        CHECK(ok({"audit", "verify", "-", "audit.jsonl"}).files ==
              std::vector<std::string>{"-", "audit.jsonl"});
        CHECK(finish_error({"audit", "verify", "-", "-"}).find("read only once") != std::string::npos);
    }

    TEST_CASE("--version prints the version on stdout and exits 0, with no sub-command") {
        const Ran r = run_main({"--version"});
        CHECK(r.rc == 0);
        CHECK(r.out == "jitgate " JITGATE_VERSION "\n");
    }

    TEST_CASE("usage errors exit 2, an unreachable daemon 4") {
        TempDir dir;
        const std::string sock = dir.file("none.sock");
        for (auto args : std::vector<std::vector<const char*>>{{"audit", "--type", "nope"},
                                                               {"audit", "--port", "0"},
                                                               {"audit", "--since", "whenever"},
                                                               {"audit", "--limit", "20000"},
                                                               {"audit", "--follow", "verify"},
                                                               {"audit", "--type", "deny", "allow"}}) {
            args.insert(args.begin(), {"--socket", sock.c_str()});
            const Ran r = run_main(args);
            CAPTURE(r.err);
            CHECK(r.rc == 2);
        }
        const Ran bad_type = run_main({"audit", "--type", "nope", "--socket", sock.c_str()});
        CHECK(bad_type.err.find("unknown audit record type 'nope'; the types are: deny,") !=
              std::string::npos);

        const Ran down = run_main({"audit", "--socket", sock.c_str()});
        CHECK(down.rc == 4);
        CHECK(down.err.find("cannot reach jitgated at " + sock) != std::string::npos);
        const Ran down_json = run_main({"audit", "--json", "--socket", sock.c_str()});
        CHECK(down_json.rc == 4);
        CHECK(nlohmann::json::parse(down_json.out).at("error").at("code") == "unreachable");
        // verify without a FILE needs the daemon to name its log.
        const Ran where = run_main({"audit", "verify", "--socket", sock.c_str()});
        CHECK(where.rc == 4);
        CHECK(where.err.find("name it: jitgate audit verify") != std::string::npos);
    }

    TEST_CASE(
        "audit: history from the daemon, human or JSON Lines; the daemon's errors keep their exit code") {
        TempDir dir;
        const std::string sock = dir.file("d.sock");
        ChainHead head;
        std::vector<nlohmann::json> records;
        for (int i = 0; i < 3; ++i) {
            nlohmann::json r = {{"ts", "2026-11-21T09:56:00.000000Z"},
                                {"type", "deny"},
                                {"uid", 1001},
                                {"user", "alice"},
                                {"port", 5432},
                                {"proto", "tcp"},
                                {"comm", "ps\x1b[2J"}};
            seal(r, head);
            records.push_back(r);
        }
        std::string scope = "all";
        FakeDaemon d(sock, [&](const nlohmann::json& req) {
            const auto id = req.value("id", std::int64_t(0));
            if (req.value("args", nlohmann::json::object()).value("user", "") == "nobody")
                return reply_error(id, code::kForbidden, "you may only read the records about you");
            std::string out;
            for (const auto& r : records) out += reply_event(id, r);
            return out + reply_ok(id, {{"count", records.size()}, {"following", false}, {"scope", scope}});
        });
        const Ran human = run_main({"--socket", sock.c_str(), "audit", "--port", "5432"});
        CHECK(human.rc == 0);
        // Each denial ends with the command that asks for access.
        const std::string ask = "  to ask: jitgate request 5432/tcp --for 30m --reason WHY\n";
        CHECK(human.out ==
              "2026-11-21 09:56:00.000000Z #1 deny user=alice(1001) port=5432/tcp comm=\"ps\\x1b[2J\"" + ask +
                  "2026-11-21 09:56:00.000000Z #2 deny user=alice(1001) port=5432/tcp comm=\"ps\\x1b[2J\"" +
                  ask +
                  "2026-11-21 09:56:00.000000Z #3 deny user=alice(1001) port=5432/tcp comm=\"ps\\x1b[2J\"" +
                  ask);
        REQUIRE(d.requests.size() == 1);
        CHECK(d.requests[0].at("op") == "audit");
        CHECK(d.requests[0].at("args") == nlohmann::json{{"port", 5432}, {"limit", 50}});

        // JSON Lines: each record exactly as the log holds it, hashes included.
        const Ran jl = run_main({"--socket", sock.c_str(), "audit", "--json"});
        CHECK(jl.rc == 0);
        std::string want;
        for (const auto& r : records) want += render_line(r);
        CHECK(jl.out == want);
        std::istringstream lines(jl.out);
        std::vector<std::pair<std::string, std::istream*>> in{{"stdout", &lines}};
        CHECK(verify_chain(in).ok);

        scope = "own";
        const Ran own = run_main({"--socket", sock.c_str(), "audit"});
        CHECK(own.rc == 0);
        CHECK(own.err.find("showing only the records about you") != std::string::npos);

        const Ran refused = run_main({"--socket", sock.c_str(), "audit", "--user", "nobody"});
        CHECK(refused.rc == 3);
        CHECK(refused.err == "jitgate: you may only read the records about you\n");
    }

    TEST_CASE("audit --follow: records, dropped counts on stderr, and the daemon closing the stream") {
        TempDir dir;
        const std::string sock = dir.file("d.sock");
        FakeDaemon d(sock, [](const nlohmann::json& req) {
            const auto id = req.value("id", std::int64_t(0));
            return reply_ok(id, {{"count", 0}, {"following", true}, {"scope", "all"}}) +
                   reply_event(id, {{"seq", 8}, {"type", "grant"}, {"grant_id", 3}}) + reply_dropped(id, 12) +
                   reply_event(id, {{"seq", 21}, {"type", "expire"}, {"grant_id", 3}});
        });
        const Ran r = run_main({"--socket", sock.c_str(), "audit", "-f", "--type", "grant,expire"});
        CHECK(r.rc == 1);
        CHECK(r.out == "- #8 grant grant=3\n- #21 expire grant=3\n");
        CHECK(r.err.find("jitgate: 12 audit records were not delivered to this follower because it read too "
                         "slowly; the audit log has them\n") != std::string::npos);
        CHECK(r.err.find("jitgated closed the stream") != std::string::npos);
        REQUIRE(d.requests.size() == 1);
        CHECK(d.requests[0].at("args") == nlohmann::json{{"follow", true}, {"types", {"grant", "expire"}}});
    }

    TEST_CASE("stream_daemon: stops when told, reports a garbled line, an early close") {
        TempDir dir;
        const std::string sock = dir.file("d.sock");
        std::string script;
        FakeDaemon d(sock, [&](const nlohmann::json&) { return script; });
        script = "{\"id\":1,\"ok\":true,\"event\":{}}\n{\"id\":1,\"ok\":true,\"event\":{}}\n";
        int seen = 0;
        auto r = stream_daemon(sock, "audit", nlohmann::json::object(),
                               [&](const nlohmann::json&) { return ++seen < 1; });
        REQUIRE(r.ok());
        CHECK(*r == kStreamStopped);
        CHECK(seen == 1);

        script = "{\"id\":1,\"ok\":true,\"event\":{}}\nnot json\n";
        seen = 0;
        r = stream_daemon(sock, "audit", nlohmann::json::object(),
                          [&](const nlohmann::json&) { return ++seen; });
        REQUIRE_FALSE(r.ok());
        CHECK(seen == 1);
        CHECK(r.error().find("not a valid reply") != std::string::npos);

        script = "{\"id\":1,\"ok\":true,\"event\":{}}\n";
        r = stream_daemon(sock, "audit", nlohmann::json::object(),
                          [&](const nlohmann::json&) { return true; });
        REQUIRE(r.ok());
        CHECK(*r == kStreamClosed);

        script = "";
        r = stream_daemon(sock, "audit", nlohmann::json::object(),
                          [&](const nlohmann::json&) { return true; });
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().find("closed before a reply") != std::string::npos);

        // A follower that was asked to stop.
        std::atomic<bool> stop{true};
        script = "{\"id\":1,\"ok\":true,\"result\":{\"following\":true}}\n";
        r = stream_daemon(
            sock, "audit", nlohmann::json::object(), [&](const nlohmann::json&) { return true; }, &stop);
        REQUIRE(r.ok());
        CHECK(*r == kStreamInterrupted);
    }

    TEST_CASE("audit verify FILE: intact or the first broken record; exit 0 or 1") {
        TempDir dir;
        const std::string none = dir.file("none.sock");
        ChainHead head;
        const std::string log = text(chain(5, head));
        write_file(dir.file("a.jsonl"), log);
        const std::string a = dir.file("a.jsonl");

        Ran r = run_main({"--socket", none.c_str(), "audit", "verify", a.c_str()});
        CHECK(r.rc == 0);
        CHECK(r.out == a + ": intact, 5 records (seq 1-5)\n");
        CHECK(r.err.find("not checked against jitgated's chain head") != std::string::npos);

        // Record 3 removed.
        std::string cut = log;
        const auto l3 = cut.find('\n', cut.find('\n') + 1) + 1;
        cut.erase(l3, cut.find('\n', l3) + 1 - l3);
        write_file(dir.file("b.jsonl"), cut);
        const std::string b = dir.file("b.jsonl");
        r = run_main({"--socket", none.c_str(), "audit", "verify", b.c_str()});
        CHECK(r.rc == 1);
        CHECK(r.out.find(b + ":3: seq 4: seq 4 follows seq 2: record 3 was removed\n") == 0);
        CHECK(r.out.find("the 2 records before it (seq 1-2) are intact") != std::string::npos);

        r = run_main({"--socket", none.c_str(), "--json", "audit", "verify", b.c_str()});
        CHECK(r.rc == 1);
        const auto j = nlohmann::json::parse(r.out);
        CHECK(j.at("ok") == false);
        CHECK(j.at("records") == 2);
        CHECK(j.at("broken") == nlohmann::json{{"file", b},
                                               {"line", 3},
                                               {"seq", 4},
                                               {"problem", "seq 4 follows seq 2: record 3 was removed"}});

        r = run_main({"--socket", none.c_str(), "audit", "verify", dir.file("missing.jsonl").c_str()});
        CHECK(r.rc == 1);
        CHECK(r.err.find("cannot read " + dir.file("missing.jsonl") + ": No such file or directory") !=
              std::string::npos);
        r = run_main({"--socket", none.c_str(), "audit", "verify", dir.file("").c_str()});
        CHECK(r.rc == 1);
        CHECK(r.err.find("it is a directory") != std::string::npos);
    }

    TEST_CASE("audit verify: the daemon's log by default, its tail checked against the chain head") {
        TempDir dir;
        const std::string sock = dir.file("d.sock");
        const std::string path = dir.file("audit.jsonl");
        ChainHead head;
        const std::string log = text(chain(6, head));
        ChainHead daemon_head = head;
        FakeDaemon d(sock, [&](const nlohmann::json& req) {
            return reply_ok(
                req.value("id", std::int64_t(0)),
                {{"version", JITGATE_VERSION},
                 {"audit", {{"log", path}, {"seq", daemon_head.seq}, {"hash", daemon_head.hash}}}});
        });
        write_file(path, log);
        Ran r = run_main({"--socket", sock.c_str(), "audit", "verify"});
        CHECK(r.rc == 0);
        CHECK(r.out == path + ": intact, 6 records (seq 1-6); matches jitgated's chain head (seq 6)\n");
        CHECK(r.err.empty());

        // The last record removed: intact by itself, but not where jitgated is.
        write_file(path, log.substr(0, log.rfind('\n', log.size() - 2) + 1));
        r = run_main({"--socket", sock.c_str(), "audit", "verify"});
        CHECK(r.rc == 1);
        CHECK(r.out.find(path + ":6: seq 6: the log ends at seq 5 but jitgated has written up to seq 6: the "
                                "tail was removed") == 0);
        // Named another way (a relative path through ..), it is still the daemon's log.
        const std::string other = dir.file(
            "../" + std::filesystem::path(dir.file("")).parent_path().filename().string() + "/audit.jsonl");
        r = run_main({"--socket", sock.c_str(), "audit", "verify", other.c_str()});
        CHECK(r.rc == 1);
        CHECK(r.out.find("the tail was removed") != std::string::npos);
        // A copy elsewhere is checked on its own.
        write_file(dir.file("copy.jsonl"), log.substr(0, log.rfind('\n', log.size() - 2) + 1));
        r = run_main({"--socket", sock.c_str(), "audit", "verify", dir.file("copy.jsonl").c_str()});
        CHECK(r.rc == 0);
        CHECK(r.out.find("intact, 5 records (seq 1-5)\n") != std::string::npos);

        // The daemon wrote on after answering: fine. Its head hash differs: not.
        write_file(path, log);
        daemon_head = ChainHead{4, std::string(64, 'e')};
        r = run_main({"--socket", sock.c_str(), "--json", "audit", "verify"});
        CHECK(r.rc == 1);
        const auto j = nlohmann::json::parse(r.out);
        CHECK(j.at("broken").at("seq") == 4);
        CHECK(j.at("broken").at("problem").get<std::string>().find("does not match the daemon's record") !=
              std::string::npos);
        CHECK(j.at("daemon_head").at("seq") == 4);
    }
}

TEST_CASE("one request, one reply: the result, or the error with its exit code, human or JSON") {
    TempDir dir;
    const std::string sock = dir.file("d.sock");
    FakeDaemon d(sock, [](const nlohmann::json& req) {
        const auto id = req.value("id", std::int64_t(0));
        if (req.at("op") == "approve") return reply_error(id, code::kForbidden, "bob is not an approver");
        if (req.at("op") == "deny") return std::string("{\"id\":1,\"ok\":false}\n");
        return reply_ok(id, {{"requests", nlohmann::json::array()}, {"grants", nlohmann::json::array()}});
    });
    Ran r = run_main({"--socket", sock.c_str(), "--json", "list"});
    CHECK(r.rc == 0);
    CHECK(nlohmann::json::parse(r.out) ==
          nlohmann::json{{"requests", nlohmann::json::array()}, {"grants", nlohmann::json::array()}});

    r = run_main({"--socket", sock.c_str(), "approve", "7"});
    CHECK(r.rc == 3);
    CHECK(r.out.empty());
    CHECK(r.err == "jitgate: bob is not an approver\n");
    r = run_main({"--socket", sock.c_str(), "--json", "approve", "7"});
    CHECK(r.rc == 3);
    CHECK(nlohmann::json::parse(r.out) ==
          nlohmann::json{{"ok", false},
                         {"error", {{"code", "forbidden"}, {"message", "bob is not an approver"}}}});
    // A refusal without an error object: exit 1 and a sentence all the same.
    r = run_main({"--socket", sock.c_str(), "deny", "7"});
    CHECK(r.rc == 1);
    CHECK(r.err == "jitgate: the daemon refused without a reason\n");

    // Invalid input never reaches the daemon: exit 2.
    r = run_main({"--socket", sock.c_str(), "--json", "approve", "0"});
    CHECK(r.rc == 2);
    CHECK(nlohmann::json::parse(r.out).at("error").at("code") == "invalid");
    CHECK(r.err == "jitgate: ID must be a positive request id\n");

    const std::string none = dir.file("none.sock");
    r = run_main({"--socket", none.c_str(), "--json", "status"});
    CHECK(r.rc == 4);
    CHECK(nlohmann::json::parse(r.out).at("error").at("code") == "unreachable");
    CHECK(r.err.find("jitgate: cannot reach jitgated at " + none) == 0);
}

TEST_CASE("status shows each XDP interface with its mode, or why it is not attached") {
    nlohmann::json st = {{"version", JITGATE_VERSION},
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

TEST_CASE("usage errors say what to do: an unknown command, an id that is not a number") {
    Ran r = run_main({"frobnicate"});
    CHECK(r.rc == 2);
    CHECK(r.err.find("unknown command 'frobnicate'") != std::string::npos);
    CHECK(r.err.find("request, ") != std::string::npos);
    CHECK(r.err.find("approve") != std::string::npos);
    r = run_main({"--socket", "/nonexistent", "--json", "lsit"});
    CHECK(r.rc == 2);
    CHECK(r.err.find("unknown command 'lsit'") != std::string::npos);
    for (const char* op : {"approve", "deny", "revoke"}) {
        CAPTURE(op);
        r = run_main({op, "abc"});
        CHECK(r.rc == 2);
        CHECK(r.err.find("ID must be a number") != std::string::npos);
    }
    r = run_main({"list", "--bogus"});  // CLI11's own message is clear here
    CHECK(r.rc == 2);
    CHECK(r.err.find("--bogus") != std::string::npos);
    r = run_main({});
    CHECK(r.rc == 2);
}

namespace {

// Whether every line of `out` reads as text on a terminal: no C0 control
// but the newlines, no DEL, no C1 or bidirectional control, only UTF-8.
bool terminal_safe_lines(const std::string& out) {
    for (std::size_t i = 0; i < out.size();) {
        if (out[i] == '\n') {
            ++i;
            continue;
        }
        std::uint32_t cp = 0;
        const std::size_t len = jg::utf8_at(out, i, cp);
        if (len == 0 || jg::is_control_code_point(cp)) return false;
        i += len;
    }
    return true;
}

// A request whose every free-text field is hostile: an OSC 52 clipboard
// write, a CSI as U+009B, a right-to-left override, colours, an ESC in a name.
nlohmann::json hostile_request(const std::string& state) {
    nlohmann::json r = req12(state, {"al\xe2\x81\xa6ice"});
    r["user"] = "ri\x1b[8mta";
    r["reason"] =
        "fix \x1b]52;c;cm0gLXJmIC8K\x07 \xc2\x9b"
        "2J \xe2\x80\xae"
        "gnp.exe";
    r["ticket"] = "OPS-1\x1b[31m";
    if (state == "rejected") {
        r["decided_by"] =
            "bo\xc2\x9d"
            "b";
        r["decision_reason"] = "no\x1b[2J\nrequest 13: granted";
        r["decided_at"] = "2027-01-15T08:01:00.000000Z";
    }
    return r;
}

}  // namespace

TEST_SUITE("cli text") {
    TEST_CASE("a hostile reason, ticket or name from jitgated is shown escaped: list, approve, deny, wait") {
        TempDir dir;
        const std::string sock = dir.file("d.sock");
        FakeDaemon d(sock, [](const nlohmann::json& q) {
            const auto id = q.value("id", std::int64_t(0));
            const std::string op = q.value("op", "");
            if (op == "list") {
                nlohmann::json g = hostile_request("granted");
                g["state"] = "active";
                return reply_ok(id, {{"requests", {hostile_request("pending")}}, {"grants", {g}}});
            }
            if (op == "approve") return reply_ok(id, hostile_request("granted"));
            if (op == "deny" || op == "show") return reply_ok(id, hostile_request("rejected"));
            if (op == "request") return reply_ok(id, hostile_request("pending"));
            return reply_error(id, code::kInvalid, "unexpected");
        });
        const std::string reason = "fix \\x1b]52;c;cm0gLXJmIC8K\\x07 \\u009b2J \\u202egnp.exe";
        for (const char* op : {"list", "approve", "deny", "request"}) {
            INFO(op);
            std::vector<const char*> argv{"--socket", sock.c_str(), op};
            if (std::string(op) == "approve" || std::string(op) == "deny") argv.push_back("12");
            if (std::string(op) == "request")
                argv.insert(argv.end(), {"5432", "--for", "10m", "--reason", "x", "--wait"});
            const Ran r = run_main(argv);
            const std::string all = r.out + r.err;
            INFO(all);
            CHECK(r.rc == (std::string(op) == "request" ? 3 : 0));
            CHECK(terminal_safe_lines(r.out));
            CHECK(terminal_safe_lines(r.err));
            CHECK(all.find(reason) != std::string::npos);
            CHECK(all.find("ri\\x1b[8mta") != std::string::npos);
            CHECK(all.find("OPS-1\\x1b[31m") != std::string::npos);
            CHECK(all.find("al\\u2066ice") != std::string::npos);
            if (std::string(op) == "request")  // the wait's last line: who rejected it and why
                CHECK(all.find("rejected by bo\\u009db: no\\x1b[2J\\nrequest 13: granted\n") !=
                      std::string::npos);
            // A reason cannot forge a line of its own.
            CHECK(all.find("\nrequest 13: granted") == std::string::npos);
        }
    }

    TEST_CASE("status: a denied process's name and user are shown escaped") {
        nlohmann::json st = {{"version", JITGATE_VERSION},
                             {"abi_version", 1},
                             {"cgroup", "/sys/fs/cgroup"},
                             {"programs", nlohmann::json::array()},
                             {"ports", nlohmann::json::array()},
                             {"grants", nlohmann::json::array()},
                             {"pending_requests", 0},
                             {"recent_denials",
                              {{{"at", "2027-01-15T08:00:00.000000Z"},
                                {"port", 5432},
                                {"proto", "tcp"},
                                {"uid", 1001},
                                {"user",
                                 "ev\xe2\x80\xae"
                                 "il"},
                                {"comm",
                                 "\x1b]0;pwn\x07\x9b"
                                 "2J"},
                                {"to_ask", "jitgate request 5432/tcp --for 30m --reason WHY"}}}},
                             {"counters", nlohmann::json::object()}};
        const std::string out = jg::render_human("status", st);
        INFO(out);
        CHECK(terminal_safe_lines(out));
        CHECK(out.find("ev\\u202eil(1001) \\x1b]0;pwn\\x07\\x9b2J\n") != std::string::npos);
    }

    TEST_CASE("a reason or ticket jitgated would refuse is refused here, exit 3, never an abort") {
        TempDir dir;
        const std::string sock = dir.file("d.sock");
        FakeDaemon d(sock,
                     [](const nlohmann::json& q) { return reply_ok(q.value("id", 0), req12("pending")); });
        const std::string s = sock;
        struct Case {
            std::vector<const char*> argv;
            const char* words;
        };
        const std::vector<Case> cases = {
            {{"request", "5432", "--for", "10m", "--reason",
              "a\xff"
              "b"},
             "the --reason holds a byte that is not UTF-8 (0xFF) at character 2"},
            {{"request", "5432", "--for", "10m", "--reason", "ok", "--ticket", "T\x1b[2J"},
             "the --ticket holds a control character (U+001B) at character 2"},
            {{"request", "5432", "--for", "10m", "--reason",
              "a\xe2\x80\xae"
              "b"},
             "the --reason holds a bidirectional control (U+202E) at character 2"},
            {{"request", "5432", "--for", "10m", "--reason",
              "\xc2\x9b"
              "2J"},
             "the --reason holds a control character (U+009B) at character 1"},
            {{"request", "5432", "--for", "10m", "--reason", "a\xc0\xaf"}, "not UTF-8 (0xC0) at character 2"},
            {{"deny", "12", "--reason", "no\x1b]52;c;eA==\x07"}, "(U+001B) at character 3"},
            {{"break-glass", "5432", "--for", "10m", "--reason", "fire\xed\xa0\x80"},
             "not UTF-8 (0xED) at character 5"},
            {{"run", "5432", "--for", "10m", "--reason", "x\x7f", "--", "true"}, "(U+007F) at character 2"},
            {{"audit", "--user", "a\xff"}, "the --user holds a byte that is not UTF-8"},
        };
        for (const Case& c : cases) {
            for (bool as_json : {false, true}) {
                std::vector<const char*> argv{"--socket", s.c_str()};
                if (as_json) argv.push_back("--json");
                argv.insert(argv.end(), c.argv.begin(), c.argv.end());
                Ran r;
                INFO(c.words);
                REQUIRE_NOTHROW(r = run_main(argv));
                CHECK(r.rc == 3);
                CHECK(r.err.find(c.words) != std::string::npos);
                CHECK(r.err.find("jitgate: the --") == 0);
                CHECK(count_of(r.err, "\n") == 1);
                CHECK(terminal_safe_lines(r.err));
                if (as_json) {
                    const auto j = nlohmann::json::parse(r.out, nullptr, false);
                    CHECK(j.value("ok", true) == false);
                    CHECK(j["error"].value("code", "") == "refused");
                } else {
                    CHECK(r.out.empty());
                }
            }
        }
        CHECK(d.requests.empty());  // nothing was sent
        // Printable UTF-8 goes through as it is.
        const Ran fine = run_main({"--socket", s.c_str(), "request", "5432", "--for", "10m", "--reason",
                                   "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x9a\x80"});
        CHECK(fine.rc == 0);
        REQUIRE(d.requests.size() == 1);
        CHECK(d.requests[0]["args"]["reason"] == "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x9a\x80");
    }

    TEST_CASE("error messages that echo what was typed or sent are escaped, and --json never throws") {
        TempDir dir;
        const std::string sock = dir.file("d.sock");
        FakeDaemon d(sock, [](const nlohmann::json& q) {
            return reply_error(q.value("id", 0), code::kNotFound,
                               "there is no user '\x1b[2Jroot\xe2\x80\xae'");
        });
        Ran r = run_main({"--socket", sock.c_str(), "approve", "12"});
        CHECK(r.rc == 1);
        CHECK(r.err == "jitgate: there is no user '\\x1b[2Jroot\\u202e'\n");
        // The CLI's own sentences about an argument: a port, a type, a socket path.
        for (std::vector<const char*> argv :
             {std::vector<const char*>{"request", "\x1b[2J\xff", "--for", "1m", "--reason", "x"},
              std::vector<const char*>{"audit", "--type", "de\x1b[2Jny\xff"},
              std::vector<const char*>{"--socket", "/nonexistent/\x1b]0;x\x07\xff", "status"},
              std::vector<const char*>{"\x1b[2Jfrob\xc2\x9b"},            // an unknown command
              std::vector<const char*>{"list", "--\x1b[2J\xe2\x80\xae"},  // CLI11's own message
              std::vector<const char*>{"approve", "1\x1b[2J"}}) {
            for (bool as_json : {false, true}) {
                if (as_json) argv.insert(argv.begin(), "--json");
                REQUIRE_NOTHROW(r = run_main(argv));
                INFO(r.err);
                CHECK(r.rc != 0);
                CHECK_FALSE(r.err.empty());
                CHECK(terminal_safe_lines(r.err));
                // A usage error (exit 2 from CLI11) prints nothing on stdout; the rest one JSON object.
                if (as_json && !r.out.empty())
                    CHECK_FALSE(nlohmann::json::parse(r.out, nullptr, false).is_discarded());
                if (as_json && argv.size() > 3) CHECK_FALSE(r.out.empty());
            }
        }
    }
}

}  // namespace test_cli
