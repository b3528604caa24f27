// The node agent (fleet/agent) on what etcd holds: a grant meant for this
// node is applied once; garbage under the prefix is refused with a record
// and never applied; what a refusal logs is escaped (etcd's values are
// anyone's with write access to the prefix).
#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

#include "fakes.h"
#include "fleet/agent.h"
#include "fleet/docs.h"
#include "helpers.h"
#include "util/log.h"

using namespace jg;
using namespace jg::testing;
using namespace jg::fleet;

namespace {

const std::string P = "/jitgate/v1";

// A directory that resolves the names it knows to their uids, as NSS would.
class NamesDirectory : public FakeDirectory {
public:
    std::optional<std::uint32_t> uid_of(const std::string& user) override {
        for (const auto& [uid, name] : names)
            if (name == user) return uid;
        return std::nullopt;
    }
};

struct Node {
    Store store = memory_store();
    NamesDirectory dir;
    FakeSink sink;
    FakeAudit audit;
    FakeClock clock;
    Workflow wf{store, dir, sink, audit, clock, "boot-A"};
    Agent agent{{P, "db-1", {{"role", "db"}}, 15, "boot-A"},         wf, store, audit, clock, dir,
                [](const PolicyDoc&, const Policy&) { return true; }};

    Node() {
        dir.names = {{1000, "alice"}};
        PolicyLoad load = parse_policy("[[port]]\nport = 5432\napprovers = [\"bob\"]\n", "node.toml");
        REQUIRE(load.ok());
        wf.set_policy(std::make_shared<const Policy>(load.policy));
    }
    void put(const std::string& key, const std::string& value, std::int64_t rev) {
        Batch b{false, rev, {KeyValue{key, value, rev, rev, 1, 0}}, {}};
        agent.on_batch(b);
    }
};

std::string a_grant(std::int64_t id, const std::string& on, std::int64_t now_us) {
    GrantRow g;
    g.id = id;
    g.request_id = id - 1;
    g.user = "alice";
    g.port = 5432;
    g.start_us = now_us - 1000000;
    g.expires_us = now_us + 3600LL * 1000000;
    g.state = "active";
    g.reason = "INC-7";
    g.approvers = {"bob"};
    return grant_doc(g, {on, "db-2"}).dump();
}

}  // namespace

TEST_SUITE("fleet agent") {
    TEST_CASE("a grant for this node is applied once, with grant_applied") {
        Node n;
        n.put(grant_key(P, 42), a_grant(42, "role=db", n.clock.wall), 10);
        CHECK(n.sink.puts == std::vector<std::int64_t>{42});
        REQUIRE(n.sink.live.count(42));
        CHECK(n.sink.live[42].uid == 1000);
        const json& applied = n.audit.last("grant_applied");
        CHECK(applied.at("grant_id") == 42);
        CHECK(applied.at("latency_ms") == 1000);
        // The same document again (a full read) applies nothing more.
        n.put(grant_key(P, 42), a_grant(42, "role=db", n.clock.wall), 11);
        CHECK(n.sink.puts.size() == 1);
    }

    TEST_CASE("a grant for other nodes is not applied") {
        Node n;
        n.put(grant_key(P, 42), a_grant(42, "role=web", n.clock.wall), 10);
        n.put(grant_key(P, 43), a_grant(43, "db-2", n.clock.wall), 11);
        CHECK(n.sink.puts.empty());
        CHECK(n.audit.of("grant_applied").empty());
    }

    TEST_CASE("garbage under the prefix is refused with a record, once, and never applied") {
        Node n;
        std::vector<std::string> logged;
        set_log_sink([&](std::string_view m) { logged.emplace_back(m); });
        n.put(grant_key(P, 42), "{not json", 10);
        n.put(grant_key(P, 42), "{not json", 10);                           // the same version: one record
        n.put(grant_key(P, 43), a_grant(44, "role=db", n.clock.wall), 11);  // its id is not its key's
        std::string wrong = a_grant(45, "role=db", n.clock.wall);
        wrong.replace(wrong.find("\"user\":\"alice\""), 14, "\"user\":\"al ice\"");
        n.put(grant_key(P, 45), wrong, 12);
        set_log_sink(nullptr);
        CHECK(n.sink.puts.empty());
        const auto rejected = n.audit.of("grant_rejected");
        REQUIRE(rejected.size() == 3);
        CHECK(rejected[0].at("key") == grant_key(P, 42));
        CHECK(rejected[0].at("revision") == 10);
        CHECK(rejected[0].at("reason").get<std::string>().find("not a JSON object") != std::string::npos);
        CHECK(rejected[1].at("reason").get<std::string>().find("its id is not its key's") !=
              std::string::npos);
        CHECK(rejected[2].at("reason").get<std::string>().find("'user'") != std::string::npos);
        CHECK(logged.size() == 3);
    }

    TEST_CASE("a fleet policy that does not parse is refused; what is logged of it is escaped") {
        Node n;
        std::vector<std::string> logged;
        set_log_sink([&](std::string_view m) { logged.emplace_back(m); });
        const std::string text =
            "[[port]]\nport = 5432\napprovers = [\"\\u001b]0;owned\\u0007\\u001b[2J\"]\n";
        n.put(policy_key(P), policy_doc({1, text, "fleet.toml", "root", n.clock.wall}).dump(), 10);
        set_log_sink(nullptr);
        CHECK(n.agent.policy_version() == 0);
        const json& r = n.audit.last("policy_rejected");
        CHECK(r.at("key") == policy_key(P));
        REQUIRE(logged.size() == 1);
        CHECK(logged[0].find("is not a user name") != std::string::npos);
        CHECK(logged[0].find('\x1b') == std::string::npos);
        CHECK(logged[0].find('\x07') == std::string::npos);
        CHECK(logged[0].find("\\x1b") != std::string::npos);
    }
}
