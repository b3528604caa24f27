// Records of kernel decisions (daemon/kernel_records.h): one builder for the
// ring's events and for the rate-limit windows closed after their principal
// went quiet, the decision counts, the latest denials and events_lost.
#include <doctest/doctest.h>

#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "core/keys.h"
#include "daemon/audit_log.h"
#include "daemon/kernel_records.h"
#include "fakes.h"
#include "helpers.h"

namespace test_kernel_records {
using namespace jg;
using namespace jg::testing;

namespace {

void put_addr(jg_u8 (&to)[16], const char* text) {
    const Addr16 a = *parse_addr(text);
    std::memcpy(to, a.data(), 16);
}

// A local user's connection to 5432/tcp, as the ring reports it.
jg_event local_event(std::uint8_t verdict, std::uint32_t suppressed) {
    jg_event e{};
    e.verdict = verdict;
    e.hook = JG_HOOK_CONNECT4;
    e.proto = JG_PROTO_TCP;
    e.dport = 5432;
    e.uid = 1000;
    e.pid = 4242;
    e.cgroup_id = 77;
    std::memcpy(e.comm, "psql", 4);
    put_addr(e.dst, "198.51.100.1");
    e.sport = 40000;
    e.suppressed = suppressed;
    if (verdict == JG_VERDICT_ALLOW) e.grant_id = 7;
    return e;
}

ClosedWindow local_window(bool allow, std::uint64_t suppressed) {
    ClosedWindow w;
    w.allow = allow;
    w.who.is_uid = true;
    w.who.uid = 1000;
    w.port = 5432;
    w.proto = Proto::Tcp;
    w.verdict = allow ? JG_VERDICT_ALLOW : JG_VERDICT_DENY;
    w.hook = JG_HOOK_CONNECT4;
    w.grant_id = allow ? 7 : 0;
    w.suppressed = suppressed;
    return w;
}

json record_of(const Decision& d, const char* user = "alice") {
    AuditFields f;
    decision_fields(d, user, f);
    return f.to_json();
}

// `r` without the fields only a ring event knows (the task, addresses).
json without_task(json r) {
    for (const char* k : {"cgroup_id", "pid", "comm", "dst", "sport"}) r.erase(k);
    return r;
}

std::vector<json> lines_of(const std::string& path) {
    std::vector<json> out;
    std::ifstream in(path);
    for (std::string l; std::getline(in, l);) out.push_back(json::parse(l));
    return out;
}

}  // namespace

TEST_SUITE("kernel records") {
    TEST_CASE("a denial: the ring's record and a closed window's have one shape") {
        // Each stands for 3 denials: the event itself and 2 held back; the
        // window's last denial and the 2 before it.
        const json ring = record_of(decision_of(local_event(JG_VERDICT_DENY, 2)));
        const json window = record_of(decision_of(local_window(false, 3)));
        CHECK(ring == json{{"type", "deny"},
                           {"port", 5432},
                           {"proto", "tcp"},
                           {"hook", "connect4"},
                           {"uid", 1000},
                           {"user", "alice"},
                           {"cgroup_id", 77},
                           {"pid", 4242},
                           {"comm", "psql"},
                           {"dst", "198.51.100.1"},
                           {"sport", 40000},
                           {"suppressed", 2}});
        json want = without_task(ring);
        want["reason"] =
            "the last 3 denials for this principal and port were not recorded one by one (rate limit); this "
            "record closes them";
        CHECK(window == want);
        // A window of one denial: no suppressed, as a ring event of one.
        CHECK_FALSE(record_of(decision_of(local_window(false, 1))).contains("suppressed"));
        CHECK_FALSE(record_of(decision_of(local_event(JG_VERDICT_DENY, 0))).contains("suppressed"));
    }

    TEST_CASE("an allow: count is what the record stands for, ring and window alike") {
        const json ring = record_of(decision_of(local_event(JG_VERDICT_ALLOW, 4)));
        const json window = record_of(decision_of(local_window(true, 5)));
        CHECK(ring.at("type") == "allow");
        CHECK(ring.at("count") == 5);
        CHECK(ring.at("grant_id") == 7);
        json want = without_task(ring);
        want["reason"] =
            "the last 5 new connections or flows of this principal under this grant were not recorded one by "
            "one (rate limit); this record closes them";
        CHECK(window == want);
    }

    TEST_CASE("binds and remote sources: bind_denied with audit, src without a uid") {
        jg_event e = local_event(JG_VERDICT_WOULD_DENY, 0);
        e.hook = JG_HOOK_BIND4;
        ClosedWindow w = local_window(false, 2);
        w.bind = true;
        w.verdict = JG_VERDICT_WOULD_DENY;
        w.hook = JG_HOOK_BIND4;
        const json ring = record_of(decision_of(e)), window = record_of(decision_of(w));
        CHECK(ring.at("type") == "bind_denied");
        CHECK(ring.at("audit") == true);
        CHECK(window.at("type") == "bind_denied");
        CHECK(window.at("audit") == true);
        CHECK(window.at("hook") == "bind4");
        CHECK(window.at("suppressed") == 1);

        jg_event r{};
        r.verdict = JG_VERDICT_DENY;
        r.hook = JG_HOOK_INGRESS;
        r.proto = JG_PROTO_TCP;
        r.dport = 22;
        r.uid = 1000;  // not the principal of a remote decision
        put_addr(r.src, "203.0.113.5");
        ClosedWindow rw;
        rw.who.src = "203.0.113.5";
        rw.port = 22;
        rw.proto = Proto::Tcp;
        rw.hook = JG_HOOK_INGRESS;
        rw.suppressed = 1;
        const json remote = record_of(decision_of(r)), remote_window = record_of(decision_of(rw));
        CHECK(remote == json{{"type", "deny"},
                             {"port", 22},
                             {"proto", "tcp"},
                             {"hook", "ingress"},
                             {"src", "203.0.113.5"}});
        json w2 = remote_window;
        w2.erase("reason");
        CHECK(w2 == remote);
    }

    TEST_CASE("written, counted and remembered the same from the ring and from a window") {
        TempDir dir;
        FakeClock clock;
        auto a = AuditLog::open({dir.file("audit.jsonl"), dir.file("audit.head"), false, ""}, clock);
        REQUIRE(a.ok());
        FakeDirectory names;
        names.names = {{1000, "alice"}};
        KernelRecords k(**a, names, clock);
        k.on_event(local_event(JG_VERDICT_DENY, 2));
        k.on_closed(local_window(false, 3));
        k.on_closed(local_window(false, 0));  // nothing held back: no record
        k.on_event(local_event(JG_VERDICT_ALLOW, 4));
        k.on_closed(local_window(true, 5));
        jg_event would = local_event(JG_VERDICT_WOULD_DENY, 0);
        k.on_event(would);
        (*a)->flush();
        const auto lines = lines_of(dir.file("audit.jsonl"));
        REQUIRE(lines.size() == 5);
        CHECK(lines[0].at("type") == "deny");
        CHECK(lines[0].at("user") == "alice");
        CHECK(lines[1].at("reason").get<std::string>().find("the last 3 denials") == 0);
        CHECK(lines[3].at("count") == 5);
        CHECK(lines[4].at("type") == "would_deny");
        // Each record counts the decisions it stands for.
        const auto& n = k.decisions();
        CHECK(n.at({"deny", 5432, "tcp"}) == 6);
        CHECK(n.at({"allow", 5432, "tcp"}) == 10);
        CHECK(n.at({"would_deny", 5432, "tcp"}) == 1);
        // One latest denial per principal, port and protocol; would_deny is none.
        REQUIRE(k.recent_denials().size() == 1);
        const json& d = k.recent_denials()[0];
        CHECK(d.at("to_ask") == "jitgate request 5432/tcp --for 30m --reason WHY");
        CHECK(d.at("user") == "alice");
        CHECK(d.at("at") == rfc3339_us(clock.wall));
        CHECK_FALSE(d.contains("comm"));  // the window's, the newer, knows no task
    }

    TEST_CASE("events_lost: each increase of the kernel's count once; a count that went back starts over") {
        TempDir dir;
        FakeClock clock;
        auto a = AuditLog::open({dir.file("audit.jsonl"), dir.file("audit.head"), false, ""}, clock);
        REQUIRE(a.ok());
        FakeDirectory names;
        KernelRecords k(**a, names, clock);
        k.report_lost(2, 1);
        k.report_lost(2, 1);
        k.report_lost(3, 1);
        k.report_lost(1, 0);  // the maps were made anew
        (*a)->flush();
        const auto lines = lines_of(dir.file("audit.jsonl"));
        REQUIRE(lines.size() == 3);
        CHECK(lines[0].at("count") == 3);
        CHECK(lines[0].at("ring_full") == 2);
        CHECK(lines[0].at("rl_full") == 1);
        CHECK(lines[1].at("count") == 1);
        CHECK(lines[1].at("total") == 4);
        CHECK(lines[2].at("count") == 1);
        CHECK((*a)->lost_seen() == 1);
    }
}

}  // namespace test_kernel_records
