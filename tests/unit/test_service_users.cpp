// service_users: UID_MIN from login.defs, who may bind each protected port
// (groups expanded), /proc/net listeners and the impostor warnings.
#include <doctest/doctest.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "core/policy.h"
#include "core/service_users.h"

namespace test_service_users {
using namespace jg;

namespace {

class FakeAccounts : public AccountDb {
public:
    std::map<std::string, std::uint32_t> users;
    std::map<std::string, std::vector<std::uint32_t>> groups;
    std::vector<std::string> group_lookups;

    std::optional<std::uint32_t> uid_of(const std::string& u) override {
        auto it = users.find(u);
        if (it == users.end()) return std::nullopt;
        return it->second;
    }
    std::optional<std::vector<std::uint32_t>> group_members(const std::string& g) override {
        group_lookups.push_back(g);
        auto it = groups.find(g);
        if (it == groups.end()) return std::nullopt;
        return it->second;
    }
    std::optional<std::string> name_of(std::uint32_t uid) override {
        for (const auto& [n, u] : users)
            if (u == uid) return n;
        return std::nullopt;
    }
};

Policy policy_of(const std::string& text) {
    auto load = parse_policy(text, "p.toml");
    REQUIRE(load.ok());
    return load.policy;
}

}  // namespace

TEST_SUITE("service_users") {
    TEST_CASE("parse_uid_min: the last UID_MIN line; comments, junk and absence give 1000") {
        CHECK(parse_uid_min("UID_MIN\t\t\t 1000\nUID_MAX 60000\n") == 1000);
        CHECK(parse_uid_min("# UID_MIN 5\nUID_MIN 500\n") == 500);
        CHECK(parse_uid_min("UID_MIN 500\nUID_MIN   2000  \n") == 2000);
        CHECK(parse_uid_min("#UID_MIN 500\n") == kDefaultUidMin);
        CHECK(parse_uid_min("SYS_UID_MIN 100\nSUB_UID_MIN 100000\n") == kDefaultUidMin);
        CHECK(parse_uid_min("") == kDefaultUidMin);
        CHECK(parse_uid_min("UID_MIN\n") == kDefaultUidMin);
        CHECK(parse_uid_min("UID_MIN lots\n") == kDefaultUidMin);
        CHECK(parse_uid_min("UID_MIN 0\n") == kDefaultUidMin);
        CHECK(parse_uid_min("UID_MIN -5\n") == kDefaultUidMin);
        CHECK(parse_uid_min("UID_MIN 99999999999\n") == kDefaultUidMin);
        CHECK(parse_uid_min("UID_MIN 600\r\n") == 600);
        CHECK(parse_uid_min("UID_MIN_X 600\n") == kDefaultUidMin);
    }

    TEST_CASE("read_uid_min: a missing file is the default; a file is read") {
        CHECK(read_uid_min("/nonexistent/jitgate/login.defs") == kDefaultUidMin);
        const auto path = std::filesystem::temp_directory_path() / "jg_test_login.defs";
        {
            std::ofstream out(path);
            out << "MAIL_DIR /var/mail\nUID_MIN 1500\n";
        }
        CHECK(read_uid_min(path.string()) == 1500);
        std::filesystem::remove(path);
    }

    TEST_CASE("resolve_service_users: default system, listed users, groups expanded, per protocol") {
        FakeAccounts db;
        db.users = {{"postgres", 120}, {"alice", 1001}, {"bob", 1002}};
        std::vector<std::uint32_t> big;
        for (std::uint32_t u = 5000; u < 9000; ++u) big.push_back(u);
        db.groups = {{"dba", {1002, 1003}}, {"many", big}};
        const Policy p = policy_of(
            "[[port]]\nname = \"def\"\nport = 10\nproto = \"both\"\napprovers = [\"x\"]\n"
            "[[port]]\nname = \"pg\"\nport = 5432\napprovers = [\"x\"]\n"
            "service_users = [\"postgres\", \"alice\", \"@dba\", \"ghost\", \"@nogroup\"]\n"
            "[[port]]\nname = \"mix\"\nport = 53\nproto = \"udp\"\napprovers = [\"x\"]\n"
            "service_users = [\"system\", \"alice\", \"postgres\"]\n"
            "[[port]]\nname = \"big\"\nport = 7000\napprovers = [\"x\"]\nservice_users = [\"@many\"]\n"
            "[[port]]\nname = \"root\"\nport = 7001\napprovers = [\"x\"]\nservice_users = []\n");
        const BindRules r = resolve_service_users(p, 1000, db);
        REQUIRE(r.size() == 6);  // 10/tcp, 10/udp, 5432/tcp, 53/udp, 7000/tcp, 7001/tcp

        const BindRule& def = r.at({10, Proto::Tcp});
        CHECK(def.below == 1000);
        CHECK(def.uids.empty());
        CHECK(r.at({10, Proto::Udp}).below == 1000);
        CHECK(def.admits(0));
        CHECK(def.admits(999));
        CHECK_FALSE(def.admits(1000));

        const BindRule& pg = r.at({5432, Proto::Tcp});
        CHECK(pg.below == 0);  // system accounts are not listed here
        CHECK(pg.uids == std::set<std::uint32_t>{120, 1001, 1002, 1003});
        CHECK(pg.admits(0));  // root always
        CHECK(pg.admits(120));
        CHECK(pg.admits(1003));
        CHECK_FALSE(pg.admits(999));
        CHECK_FALSE(pg.admits(1004));
        CHECK(r.count({5432, Proto::Udp}) == 0);

        // A listed user below the threshold needs no entry of its own.
        const BindRule& mix = r.at({53, Proto::Udp});
        CHECK(mix.below == 1000);
        CHECK(mix.uids == std::set<std::uint32_t>{1001});

        CHECK(r.at({7000, Proto::Tcp}).uids.size() == 4000);
        CHECK(r.at({7000, Proto::Tcp}).admits(8999));
        CHECK(bind_user_entries(r) == 4 + 1 + 4000);

        const BindRule& root = r.at({7001, Proto::Tcp});
        CHECK(root.admits(0));
        CHECK_FALSE(root.admits(1));
        CHECK_FALSE(root.admits(1001));
    }

    TEST_CASE("parse_proc_net: TCP listeners only, every UDP socket, v4 and v6, owner uid") {
        // 127.0.0.1:5432 LISTEN uid 120; 127.0.0.1:40000 ESTABLISHED; 0.0.0.0:22 LISTEN uid 0.
        const std::string tcp =
            "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout "
            "inode\n"
            "   0: 0100007F:1538 00000000:0000 0A 00000000:00000000 00:00000000 00000000   120        0 1 1 "
            "0 "
            "100 0 0 10 0\n"
            "   1: 0100007F:9C40 0100007F:1538 01 00000000:00000000 00:00000000 00000000  1001        0 2 1\n"
            "   2: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 3 1\n"
            "garbage line\n";
        const auto t = parse_proc_net(tcp, Proto::Tcp, false);
        REQUIRE(t.size() == 2);
        CHECK(t[0].port == 5432);
        CHECK(t[0].uid == 120);
        CHECK(format_addr(t[0].addr) == "127.0.0.1");
        CHECK(t[0].proto == Proto::Tcp);
        CHECK(t[1].port == 22);
        CHECK(format_addr(t[1].addr) == "0.0.0.0");

        // [::1]:5432 LISTEN uid 1001 (::1 as the kernel prints it on this host).
        std::uint32_t w[4] = {0, 0, 0, 0};
        Addr16 one{};
        one[15] = 1;
        std::memcpy(w, one.data(), 16);
        char words[40];
        std::snprintf(words, sizeof(words), "%08X%08X%08X%08X", w[0], w[1], w[2], w[3]);
        const std::string tcp6 = std::string("  sl  local_address remote_address st ...\n   0: ") + words +
                                 ":1538 00000000000000000000000000000000:0000 0A 00000000:00000000 "
                                 "00:00000000 00000000  1001        0 4 1\n";
        const auto t6 = parse_proc_net(tcp6, Proto::Tcp, true);
        REQUIRE(t6.size() == 1);
        CHECK(format_addr(t6[0].addr) == "::1");
        CHECK(t6[0].uid == 1001);
        CHECK(t6[0].port == 5432);
        // The v4 parser does not take a v6 line.
        CHECK(parse_proc_net(tcp6, Proto::Tcp, false).empty());

        // UDP: state 07 (unconnected) counts; so does a connected one.
        const std::string udp =
            "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout "
            "inode "
            "ref pointer drops\n"
            "  1: 0100007F:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000  1002        0 5 2 0 "
            "0\n"
            "  2: 00000000:0000 00000000:0000 07 00000000:00000000 00:00000000 00000000  1002        0 6 2 0 "
            "0\n";
        const auto u = parse_proc_net(udp, Proto::Udp, false);
        REQUIRE(u.size() == 1);  // port 0: not bound to a port
        CHECK(u[0].port == 53);
        CHECK(u[0].proto == Proto::Udp);
        CHECK(u[0].uid == 1002);
    }

    TEST_CASE("impostor_warnings: a listener whose owner may not bind the port, named once each") {
        FakeAccounts db;
        db.users = {{"postgres", 1100}, {"mallory", 1200}};
        const Policy p = policy_of(
            "[[port]]\nname = \"pg\"\nport = 5432\nproto = \"both\"\napprovers = [\"x\"]\n"
            "service_users = [\"postgres\"]\n"
            "[[port]]\nname = \"dns\"\nport = 53\nproto = \"udp\"\napprovers = [\"x\"]\n");
        const BindRules r = resolve_service_users(p, 1000, db);
        Addr16 v6one{};
        v6one[15] = 1;
        Addr16 lo4 = *parse_addr("127.0.0.1");
        const std::vector<Listener> ls = {
            {5432, Proto::Tcp, 1100, lo4},    // the service: fine
            {5432, Proto::Tcp, 1200, v6one},  // the impostor on [::1]
            {5432, Proto::Udp, 1300, lo4},    // a uid without a name
            {5432, Proto::Tcp, 0, lo4},       // root: fine
            {53, Proto::Udp, 101, lo4},       // a system account, default: fine
            {53, Proto::Udp, 1200, lo4},      // not a system account
            {53, Proto::Tcp, 1200, lo4},      // 53/tcp is not protected
            {8080, Proto::Tcp, 1200, lo4},    // unprotected
        };
        const auto w = impostor_warnings(p, r, ls, db);
        INFO([&] {
            std::string s;
            for (auto& x : w) s += x + "\n";
            return s;
        }());
        REQUIRE(w.size() == 3);
        CHECK(w[0].rfind(
                  "port 'pg' (5432/tcp): user 'mallory' (uid 1200) listens on [::1]:5432 but is not among "
                  "the port's service_users",
                  0) == 0);
        CHECK(w[0].find("stop that process, or add the user to service_users") != std::string::npos);
        CHECK(w[1].rfind("port 'pg' (5432/udp): uid 1300 has a socket bound on 127.0.0.1:5432", 0) == 0);
        CHECK(w[2].rfind("port 'dns' (53/udp): user 'mallory' (uid 1200)", 0) == 0);
        CHECK(impostor_warnings(p, r, {}, db).empty());
    }
}

}  // namespace test_service_users
