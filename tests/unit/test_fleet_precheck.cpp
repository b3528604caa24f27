// A full read's grant documents checked on several threads (fleet/precheck):
// the same verdicts as one check at a time, for good, forged, unsigned and
// unparseable documents, and the agent acting on them as it did before.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "fakes.h"
#include "fleet/agent.h"
#include "fleet/docs.h"
#include "fleet/precheck.h"
#include "fleet/trust.h"
#include "fleet_fixtures.h"
#include "helpers.h"
#include "util/log.h"

namespace test_fleet_precheck {
using namespace jg;
using namespace jg::testing;
using namespace jg::fleet;

namespace {

// db-1 under test; db-2 decides; `x` is a key nobody lists.
struct Keys {
    Ed25519Key own = key_of('1'), peer = key_of('2'), stranger = key_of('x');
    Trust trust{"db-1", own, {{"db-1", own.public_key()}, {"db-2", peer.public_key()}}};
    Trust peer_trust{"db-2", peer, {}};
    Trust forger{"db-2", stranger, {}};  // claims to be db-2
};

json grant_json(std::int64_t id, std::int64_t now_us) {
    return grant_doc(active_grant_row(id, now_us, 600), {"role=db", "db-2"});
}

// 200 grant documents, ids 1..200: every 7th forged, every 11th unsigned,
// every 13th not JSON; the rest signed by db-2.
std::vector<KeyValue> mixed_batch(const Keys& k, std::int64_t now_us) {
    std::vector<KeyValue> kvs;
    for (std::int64_t id = 1; id <= 200; ++id) {
        json j = grant_json(id, now_us);
        std::string text;
        if (id % 13 == 0) {
            text = "{not json";
        } else if (id % 11 == 0) {
            text = j.dump();
        } else {
            (id % 7 == 0 ? k.forger : k.peer_trust).sign(kSigGrant, j);
            text = j.dump();
        }
        kvs.push_back(KeyValue{grant_key(P, id), text, 10, 10, 1, 0});
    }
    return kvs;
}

}  // namespace

TEST_SUITE("fleet precheck") {
    TEST_CASE("checked on 1, 2 or 5 threads: each verdict is the one a single check gives") {
        Keys k;
        const auto kvs = mixed_batch(k, 1'000'000'000'000);
        std::vector<const KeyValue*> ptrs;
        for (const auto& kv : kvs) ptrs.push_back(&kv);
        for (unsigned threads : {1U, 2U, 5U}) {
            CAPTURE(threads);
            const auto got = check_documents(k.trust, kSigGrant, ptrs, threads);
            REQUIRE(got.size() == kvs.size());
            int trusted = 0;
            for (std::size_t i = 0; i < kvs.size(); ++i) {
                REQUIRE(got[i].has_value());
                auto j = parse_object(kvs[i].value, "grant document");
                CHECK(got[i]->doc.ok() == j.ok());
                if (!j) continue;
                CHECK(got[i]->untrusted == k.trust.refusal(kSigGrant, *j));
                if (!got[i]->untrusted) ++trusted;
            }
            // 200 less the forged (28), unsigned (18) and unparseable (15),
            // less those counted twice (77, 91, 143, 154, 182).
            CHECK(trusted == 200 - 28 - 18 - 15 + 5);
        }
        CHECK(check_documents(k.trust, kSigGrant, {}, 2).empty());
    }

    TEST_CASE("a full read of many grants: the signed ones applied, every other one refused with a record") {
        Keys k;
        Store store = memory_store();
        NamesDirectory dir;
        dir.names = {{1000, "alice"}};
        FakeSink sink;
        FakeAudit audit;
        FakeClock clock;
        Workflow wf{store, dir, sink, audit, clock, "boot-A"};
        PolicyLoad load = parse_policy("[[port]]\nport = 5432\napprovers = [\"bob\"]\n", "node.toml");
        REQUIRE(load.ok());
        wf.set_policy(std::make_shared<const Policy>(load.policy));
        Agent agent{{P, "db-1", {{"role", "db"}}, 15, "boot-A"},
                    k.trust,
                    wf,
                    store,
                    audit,
                    clock,
                    dir,
                    [](const PolicyDoc&, const Policy&, const json&) { return true; }};
        Batch b{true, 10, mixed_batch(k, clock.wall), {}};
        std::vector<std::string> logged;  // one line per refusal, kept out of the test's output
        set_log_sink([&](std::string_view m) { logged.emplace_back(m); });
        agent.on_batch(b);
        set_log_sink(nullptr);
        CHECK(logged.size() >= 28 + 18 + 15 - 5);
        CHECK(sink.live.size() == 200 - 28 - 18 - 15 + 5);
        CHECK(sink.live.count(1));
        CHECK_FALSE(sink.live.count(7));   // forged
        CHECK_FALSE(sink.live.count(11));  // unsigned
        CHECK_FALSE(sink.live.count(13));  // not JSON
        CHECK(audit.of("grant_rejected").size() == 28 + 18 + 15 - 5);
    }
}

}  // namespace test_fleet_precheck
