// Every audit record names its node (design.md §4, §7): the records built as
// json (the workflow's, the fleet's, events_lost) and the kernel's, built
// as fields, alike; a record that names a node itself keeps it.
#include <doctest/doctest.h>

#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "core/audit_verify.h"
#include "daemon/audit_log.h"
#include "daemon/kernel_records.h"
#include "fakes.h"
#include "helpers.h"

namespace test_audit_node {
using namespace jg;
using namespace jg::testing;

namespace {

std::vector<json> records_in(const std::string& path) {
    std::ifstream in(path);
    std::vector<json> out;
    for (std::string line; std::getline(in, line);) out.push_back(json::parse(line));
    return out;
}

jg_event a_denial() {
    jg_event e{};
    e.verdict = JG_VERDICT_DENY;
    e.hook = JG_HOOK_CONNECT4;
    e.proto = JG_PROTO_TCP;
    e.dport = 5432;
    e.uid = 1000;
    e.pid = 4242;
    std::memcpy(e.comm, "psql", 4);
    return e;
}

// Writes one record of each kind to a log opened with `node`.
std::vector<json> written_with(const std::string& node) {
    TempDir dir;
    FakeClock clock;
    auto a = AuditLog::open({dir.file("audit.jsonl"), dir.file("audit.head"), false, node}, clock);
    REQUIRE(a.ok());
    FakeDirectory names;
    names.names = {{1000, "alice"}};
    KernelRecords k(**a, names, clock);
    (*a)->emit(json{{"type", "request"}, {"request_id", 1}, {"port", 5432}});
    (*a)->emit(json{{"type", "grant_applied"}, {"grant_id", 2}, {"node", "db-9"}});
    k.on_event(a_denial());
    k.report_lost(2, 1);
    (*a)->flush();
    std::ifstream log(dir.file("audit.jsonl"));
    CHECK(verify_chain({{dir.file("audit.jsonl"), &log}}).ok);
    return records_in(dir.file("audit.jsonl"));
}

}  // namespace

TEST_CASE("audit log: every record carries the node's name; a record's own node stays") {
    const auto r = written_with("db-1");
    REQUIRE(r.size() == 4);
    CHECK(r[0].at("type") == "request");
    CHECK(r[0].at("node") == "db-1");
    CHECK(r[1].at("node") == "db-9");
    CHECK(r[2].at("type") == "deny");
    CHECK(r[2].at("node") == "db-1");
    CHECK(r[3].at("type") == "events_lost");
    CHECK(r[3].at("node") == "db-1");
}

TEST_CASE("audit log: opened without a node name, records carry none of their own making") {
    const auto r = written_with("");
    REQUIRE(r.size() == 4);
    CHECK_FALSE(r[0].contains("node"));
    CHECK(r[1].at("node") == "db-9");
    CHECK_FALSE(r[2].contains("node"));
    CHECK_FALSE(r[3].contains("node"));
}

}  // namespace test_audit_node
