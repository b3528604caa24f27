// Signed fleet documents (fleet/trust, design.md §7.3): what a signature
// covers, who may sign, and what a writer to etcd without a listed key can
// and cannot do to a request, a grant or a policy version (the agent's
// refusals: grant_rejected, policy_rejected, nothing in the maps).
#include <doctest/doctest.h>

#include <functional>
#include <string>
#include <vector>

#include "fakes.h"
#include "fleet/agent.h"
#include "fleet/docs.h"
#include "fleet/trust.h"
#include "fleet/verified.h"
#include "fleet_fixtures.h"
#include "helpers.h"

namespace test_fleet_trust {
using namespace jg;
using namespace jg::testing;
using namespace jg::fleet;

namespace {

// Three nodes that list each other, and a key nobody lists.
struct Keys {
    Ed25519Key a = key_of('a'), b = key_of('b'), c = key_of('c'), stranger = key_of('x');
    std::vector<Signer> listed() const {
        return {{"n1", a.public_key()}, {"n2", b.public_key()}, {"n3", c.public_key()}};
    }
    Trust n1{"n1", a, listed()}, n2{"n2", b, listed()}, n3{"n3", c, listed()};
    Trust outsider{"n2", stranger, listed()};  // claims to be n2
};

json a_request() {
    RequestRow r;
    r.id = 7;
    r.user = "alice";
    r.port = 5432;
    r.duration_s = 600;
    r.reason = "INC-1";
    r.state = "pending";
    r.created_us = 1000;
    r.deadline_us = 2000;
    return request_doc(r, {"role=db", "n1"});
}

std::string reason_of(const Result<CheckedRequest>& r) { return r ? r->note : r.error(); }

// TrustNode n1 of the fleet, its agent fed batches by hand.
struct TrustNode {
    Keys k;
    Store store = memory_store();
    NamesDirectory dir;
    FakeSink sink;
    FakeAudit audit;
    FakeClock clock;
    Workflow wf{store, dir, sink, audit, clock, "boot-A"};
    int policies = 0;
    Agent agent{{P, "n1", {{"role", "db"}}, 15, "boot-A"},
                k.n1,
                wf,
                store,
                audit,
                clock,
                dir,
                [this](const PolicyDoc&, const Policy&, const json&) { return ++policies, true; }};

    TrustNode() {
        dir.names = {{1000, "alice"}, {1001, "mallory"}};
        PolicyLoad load = parse_policy("[[port]]\nport = 5432\napprovers = [\"bob\"]\n", "node.toml");
        REQUIRE(load.ok());
        wf.set_policy(std::make_shared<const Policy>(load.policy));
    }
    void put(const std::string& key, const json& value, std::int64_t rev) {
        Batch b{false, rev, {KeyValue{key, value.dump(), rev, rev, 1, 0}}, {}};
        agent.on_batch(b);
    }
    json grant(std::int64_t id, const std::string& user = "alice") const {
        GrantRow g;
        g.id = id;
        g.request_id = id - 1;
        g.user = user;
        g.port = 5432;
        g.start_us = clock.wall - 1000000;
        g.expires_us = clock.wall + 600LL * 1000000;
        g.state = "active";
        g.approvers = {"bob"};
        return grant_doc(g, {"role=db", "n2"});
    }
    json ack() { return json::parse(agent.take_ack().value()); }
};

}  // namespace

TEST_SUITE("fleet trust") {
    TEST_CASE("the signed text: a kind line, then the canonical document without sig") {
        json d = {{"b", 1}, {"a", "x"}, {"sig", "zzz"}};
        CHECK(signed_text("grant", d) == std::string("jitgate/v1 grant\n{\"a\":\"x\",\"b\":1}"));
        // Invalid UTF-8 has no canonical form: nothing is signed or verified.
        CHECK_FALSE(signed_text("grant", json{{"a", std::string("\xff")}}));
    }

    TEST_CASE("a signed document verifies; any change, another kind, no or an unlisted key does not") {
        Keys k;
        json d = {{"id", 1}, {"user", "alice"}, {"port", 5432}};
        k.n1.sign(kSigGrant, d);
        CHECK(d.at("signer") == "n1");
        CHECK_FALSE(k.n2.refusal(kSigGrant, d));
        // The same bytes as a policy: refused (kinds do not mix).
        CHECK(k.n2.refusal(kSigPolicy, d));
        json other = d;
        other["user"] = "mallory";  // a copy with another principal, the old signature
        CHECK(k.n2.refusal(kSigGrant, other).value().find("does not verify") != std::string::npos);
        json bare = other;
        bare.erase("sig");
        CHECK(k.n2.refusal(kSigGrant, bare).value().find("not signed") != std::string::npos);
        json forged = other;
        k.outsider.sign(kSigGrant, forged);  // a key not listed, under a listed name
        CHECK(k.n2.refusal(kSigGrant, forged).value().find("'n2'") != std::string::npos);
        json nobody = other;
        Trust("n9", k.stranger, {}).sign(kSigGrant, nobody);
        CHECK(k.n2.refusal(kSigGrant, nobody).value().find("not in [fleet] signers") != std::string::npos);
        // A key removed from signers: what it signed stops verifying.
        Trust without_n1{"n2", k.b, {{"n2", k.b.public_key()}}};
        CHECK(without_n1.refusal(kSigGrant, d));
        // Two keys listed for one node (a rotation): either verifies.
        Trust both{"n2", k.b, {{"n1", k.stranger.public_key()}, {"n1", k.a.public_key()}}};
        CHECK_FALSE(both.refusal(kSigGrant, d));
    }

    TEST_CASE("a request: its origin, each approval and the whole document are signed where made") {
        Keys k;
        json r = a_request();
        k.n1.seal_request(r, nullptr);  // made on n1
        auto made = k.n3.check_request(r);
        REQUIRE(made);
        CHECK(made->note.empty());
        CHECK(made->signer == "n1");
        // bob approves on n2: his approval is n2's, the origin's stays n1's.
        json approved = r;
        approved.erase("sig");
        approved["approvers"] = {"bob"};
        k.n2.seal_request(approved, r);
        CHECK(approved.at("origin_sig") == r.at("origin_sig"));
        REQUIRE(approved.at("approvals").size() == 1);
        CHECK(approved["approvals"][0].at("node") == "n2");
        auto checked = k.n3.check_request(approved);
        REQUIRE(checked);
        CHECK(checked->note.empty());
        CHECK(checked->doc.at("approvers") == json{"bob"});
    }

    TEST_CASE("a forged approval does not count; the approvals that verify do") {
        Keys k;
        // Made on n1, approved by bob on n2.
        json made = a_request();
        k.n1.seal_request(made, nullptr);
        json r = made;
        r["approvers"] = {"bob"};
        k.n2.seal_request(r, made);
        // An etcd writer adds carol, with an approval signed by no listed key
        // (or none at all), and keeps the document's old signature.
        json forged = r;
        forged["approvers"] = {"bob", "carol"};
        forged["approvals"].push_back({{"user", "carol"}, {"node", "n3"}, {"sig", r["approvals"][0]["sig"]}});
        // Its whole signature no longer holds: refused, so the forged
        // approval counts nowhere (and nothing else an etcd writer changed
        // in it does either).
        auto checked = k.n1.check_request(forged);
        REQUIRE_FALSE(checked);
        CHECK(reason_of(checked).find("sig") != std::string::npos);
        // The approver's name swapped in bob's signed approval: refused too.
        json swapped = r;
        swapped["approvers"] = {"carol"};
        swapped["approvals"][0]["user"] = "carol";
        CHECK_FALSE(k.n1.check_request(swapped));
        // The genuine document: bob's approval counts, once even if listed twice
        // by its (listed) writer.
        auto genuine = k.n1.check_request(r);
        REQUIRE(genuine);
        CHECK(genuine->doc.at("approvers") == json{"bob"});
        json twice = r;
        twice["approvers"] = {"bob", "bob"};
        twice["approvals"].push_back(r["approvals"][0]);
        k.n2.sign(kSigRequest, twice);
        auto t = k.n1.check_request(twice);
        REQUIRE(t);
        CHECK(t->doc.at("approvers") == json{"bob"});
    }

    TEST_CASE("a request changed where its origin signed it, or decided by no listed signer, is refused") {
        Keys k;
        json r = a_request();
        k.n1.seal_request(r, nullptr);
        json longer = r;
        longer["duration_s"] = 86400;
        CHECK(reason_of(k.n2.check_request(longer)).find("origin_sig") != std::string::npos);
        json moved = r;
        moved["user"] = "mallory";
        CHECK_FALSE(k.n2.check_request(moved));
        // Marked granted by a writer without a key: refused.
        json granted = r;
        granted["state"] = "granted";
        granted["grant_id"] = 8;
        CHECK_FALSE(k.n2.check_request(granted));
        // A decided request marked pending again, or an approver's shorter
        // duration dropped, by a writer without a key: origin_sig and the
        // approvals still verify, the whole does not: refused.
        json decided = a_request();
        decided["approvers"] = {"bob"};
        decided["state"] = "granted";
        decided["grant_id"] = 9;
        decided["shortest_s"] = 300;
        k.n1.seal_request(decided, nullptr);
        REQUIRE(k.n2.check_request(decided));
        json reopened = decided;
        reopened["state"] = "pending";
        reopened["grant_id"] = 0;
        CHECK(reason_of(k.n2.check_request(reopened)).find("sig") != std::string::npos);
        json longer_again = decided;
        longer_again["shortest_s"] = 0;
        CHECK_FALSE(k.n2.check_request(longer_again));
        // A request made under a name whose key is not listed.
        json stranger = a_request();
        Trust("n1", k.stranger, {}).seal_request(stranger, nullptr);
        CHECK_FALSE(k.n2.check_request(stranger));
    }

    TEST_CASE("approvals made with ID tokens carry their groups, signed where made, to every node") {
        Keys k;
        json made = a_request();
        k.n1.seal_request(made, nullptr);
        // bob approves on n2 with a token that put him in @sso-dba; carol on
        // n3 with one that gave no group, then dave over a node's socket.
        json one = made;
        one["approvers"] = {"bob"};
        one[kTokenGroupsField] = json::array({json{"sso-dba"}});
        k.n2.seal_request(one, made);
        CHECK_FALSE(one.contains(kTokenGroupsField));  // moved into the approval
        CHECK(one["approvals"][0].at("groups") == json{"sso-dba"});
        json two = one;
        two["approvers"] = {"bob", "carol", "dave"};
        two[kTokenGroupsField] = json::array({nullptr, json::array(), nullptr});
        k.n3.seal_request(two, one);
        CHECK(two["approvals"][0] == one["approvals"][0]);  // kept as n2 signed it
        CHECK(two["approvals"][1].at("groups") == json::array());
        CHECK_FALSE(two["approvals"][2].contains("groups"));
        auto checked = k.n1.check_request(two);
        REQUIRE(checked);
        CHECK(checked->note.empty());
        auto d = parse_request_json(checked->doc);
        REQUIRE_MESSAGE(d.ok(), (d ? "" : d.error()));
        CHECK(d->row.approvers == std::vector<std::string>{"bob", "carol", "dave"});
        REQUIRE(d->row.approver_token_groups.size() == 3);
        CHECK(d->row.approver_token_groups[0] == std::vector<std::string>{"sso-dba"});
        CHECK(d->row.approver_token_groups[1] == std::vector<std::string>{});
        CHECK_FALSE(d->row.approver_token_groups[2]);
        // What the node writes next carries them again (the ledger compares it
        // with what it read to see whether the request changed).
        CHECK(request_doc(d->row, d->x).at(kTokenGroupsField) == checked->doc.at(kTokenGroupsField));
        // The approvers put in another order by a listed writer: each approval's
        // groups stay beside its approver.
        json fewer = two;
        fewer.erase("sig");
        fewer["approvers"] = {"carol", "dave", "bob"};
        k.n2.sign(kSigRequest, fewer);
        auto again = parse_request_json(k.n1.check_request(fewer)->doc);
        REQUIRE(again.ok());
        CHECK(again->row.approvers == std::vector<std::string>{"carol", "dave", "bob"});
        CHECK(again->row.approver_token_groups[2] == std::vector<std::string>{"sso-dba"});
    }

    TEST_CASE("groups added, changed, moved or taken off by an etcd writer void that approval") {
        Keys k;
        json made = a_request();
        k.n1.seal_request(made, nullptr);
        json r = made;
        r["approvers"] = {"bob", "carol", "dave"};
        r[kTokenGroupsField] = json::array({json{"sso-dba"}, json{"sso-ops"}, nullptr});
        k.n2.seal_request(r, made);
        // Each change is written back with the document's own signature
        // made again (a listed node's, the strongest writer short of the
        // approver's node): the approvals it touched do not count.
        auto counted = [&](const std::function<void(json&)>& change) {
            json doc = r;
            change(doc);
            // Without the whole signature made again, the request is refused.
            CHECK_FALSE(k.n1.check_request(doc));
            k.n3.sign(kSigRequest, doc);
            auto c = k.n1.check_request(doc);
            REQUIRE(c);
            auto d = parse_request_json(c->doc);
            REQUIRE_MESSAGE(d.ok(), (d ? "" : d.error()));
            if (d->row.approvers.size() < 3) CHECK(c->note.find("not count") != std::string::npos);
            return d->row.approvers;
        };
        using names = std::vector<std::string>;
        CHECK(counted([](json& d) { d["approvals"][0]["groups"].push_back("sso-admin"); }) ==
              names{"carol", "dave"});
        CHECK(counted([](json& d) { d["approvals"][1]["groups"] = json{"sso-dba"}; }) ==
              names{"bob", "dave"});
        CHECK(counted([](json& d) { std::swap(d["approvals"][0]["groups"], d["approvals"][1]["groups"]); }) ==
              names{"dave"});
        CHECK(counted([](json& d) { d["approvals"][2]["groups"] = json{"sso-dba"}; }) ==
              names{"bob", "carol"});
        CHECK(counted([](json& d) { d["approvals"][0].erase("groups"); }) == names{"carol", "dave"});
        CHECK(counted([](json& d) { d["approvals"][1]["groups"] = json::array(); }) == names{"bob", "dave"});
        // Groups written beside the approvals rather than in them are not
        // read: what counts is made from the approvals that verify.
        json beside = r;
        beside[kTokenGroupsField] = json::array({json{"sso-admin"}, json{"sso-admin"}, json{"sso-admin"}});
        k.n3.sign(kSigRequest, beside);
        auto c = k.n1.check_request(beside);
        REQUIRE(c);
        auto d = parse_request_json(c->doc);
        REQUIRE(d.ok());
        CHECK(d->row.approver_token_groups[0] == std::vector<std::string>{"sso-dba"});
        CHECK(d->row.approver_token_groups[1] == std::vector<std::string>{"sso-ops"});
        CHECK_FALSE(d->row.approver_token_groups[2]);
    }

    TEST_CASE("approvals signed before groups were carried still verify, and carry none") {
        Keys k;
        json made = a_request();
        k.n1.seal_request(made, nullptr);
        // An approval as nodes signed it before: over the request, the
        // approver and the node, nothing else.
        json old = made;
        old.erase("sig");
        old["approvers"] = {"bob"};
        const json body = {{"request", request_base(made)}, {"approver", "bob"}, {"node", "n2"}};
        old["approvals"] = json::array(
            {{{"user", "bob"}, {"node", "n2"}, {"sig", k.b.sign(signed_text("approval", body).value())}}});
        k.n2.sign(kSigRequest, old);
        auto checked = k.n1.check_request(old);
        REQUIRE(checked);
        CHECK(checked->note.empty());
        CHECK(checked->doc.at("approvers") == json{"bob"});
        CHECK_FALSE(checked->doc.contains(kTokenGroupsField));
        auto d = parse_request_json(checked->doc);
        REQUIRE(d.ok());
        CHECK(d->row.approver_token_groups.empty());
        // And an approval made now without a token signs the same text.
        json now = made;
        now["approvers"] = {"bob"};
        k.n2.seal_request(now, made);
        CHECK(now["approvals"][0] == old["approvals"][0]);
    }

    TEST_CASE("the agent applies a grant signed by a listed node and nothing an etcd writer made") {
        TrustNode n;
        json real = n.grant(42);
        n.k.n2.sign(kSigGrant, real);
        n.put(grant_key(P, 42), real, 10);
        CHECK(n.sink.live.count(42));
        // Copies of it for mallory: with its old signature, none, or signed
        // by a key nobody listed.
        json copy = real;
        copy["user"] = "mallory";
        copy["id"] = 43;
        n.put(grant_key(P, 43), copy, 11);
        json bare = copy;
        bare.erase("sig");
        bare.erase("signer");
        n.put(grant_key(P, 43), bare, 12);
        json stranger = copy;
        n.k.outsider.sign(kSigGrant, stranger);
        n.put(grant_key(P, 43), stranger, 13);
        CHECK(n.sink.puts == std::vector<std::int64_t>{42});
        const auto rejected = n.audit.of("grant_rejected");
        REQUIRE(rejected.size() == 3);
        CHECK(rejected[0].at("key") == grant_key(P, 43));
        CHECK(rejected[0].at("signer") == "n2");
        CHECK(rejected[0].at("reason").get<std::string>().find("does not verify") != std::string::npos);
        CHECK(rejected[1].at("reason").get<std::string>().find("not signed") != std::string::npos);
        CHECK(n.ack().at("rejected") == 3);
    }

    TEST_CASE("an unsigned rewrite of an applied grant ends it here (fail closed), never extends it") {
        TrustNode n;
        json real = n.grant(42);
        n.k.n2.sign(kSigGrant, real);
        n.put(grant_key(P, 42), real, 10);
        REQUIRE(n.sink.live.count(42));
        json longer = real;
        longer["expires_us"] = real["expires_us"].get<std::int64_t>() + 60LL * 1000000;
        n.put(grant_key(P, 42), longer, 11);
        CHECK_FALSE(n.sink.live.count(42));
        CHECK(n.audit.of("grant_rejected").size() == 1);
    }

    TEST_CASE("a grant applied before its signer was removed keeps its deadline; new ones are refused") {
        TrustNode n;
        json real = n.grant(42);
        n.k.n2.sign(kSigGrant, real);
        n.put(grant_key(P, 42), real, 10);
        REQUIRE(n.sink.live.count(42));
        n.k.n1.set_signers({{"n1", n.k.a.public_key()}});  // n2 removed (SIGHUP)
        // A full read brings the same version: held, not checked again.
        Batch full{true, 20, {KeyValue{grant_key(P, 42), real.dump(), 10, 10, 1, 0}}, {}};
        n.agent.on_batch(full);
        CHECK(n.sink.live.count(42));
        // A restarted node reads it as new: refused, and still applied here.
        TrustNode fresh;
        fresh.put(grant_key(P, 42), real, 10);
        REQUIRE(fresh.sink.live.count(42));
        fresh.k.n1.set_signers({{"n1", fresh.k.a.public_key()}});
        fresh.put(grant_key(P, 42), real, 11);
        CHECK(fresh.sink.live.count(42));
        CHECK(fresh.audit.last("grant_rejected").at("reason").get<std::string>().find("keeps its deadline") !=
              std::string::npos);
        // n2's new grants are not applied.
        json later = n.grant(44);
        n.k.n2.sign(kSigGrant, later);
        n.put(grant_key(P, 44), later, 21);
        CHECK_FALSE(n.sink.live.count(44));
        CHECK(n.audit.last("grant_rejected").at("key") == grant_key(P, 44));
    }

    TEST_CASE("a grant key deleted with no signed revocation ends the grant, and says so") {
        TrustNode n;
        json real = n.grant(42);
        n.k.n2.sign(kSigGrant, real);
        n.put(grant_key(P, 42), real, 10);
        REQUIRE(n.sink.live.count(42));
        Batch del{false, 11, {}, {KeyValue{grant_key(P, 42), "", 0, 11, 0, 0}}};
        n.agent.on_batch(del);
        CHECK_FALSE(n.sink.live.count(42));
        CHECK(n.audit.last("revoke_applied")
                  .at("reason")
                  .get<std::string>()
                  .find("without a signed revocation") != std::string::npos);
    }

    TEST_CASE("a policy version not signed by a listed node is not run") {
        TrustNode n;
        const std::string text = "[[port]]\nport = 5432\napprovers = [\"bob\"]\n";
        json forged = policy_doc({1, text, "fleet.toml", "root", n.clock.wall});
        n.k.outsider.sign(kSigPolicy, forged);
        n.put(policy_key(P), forged, 10);
        CHECK(n.policies == 0);
        CHECK(n.agent.policy_version() == 0);
        CHECK(n.audit.last("policy_rejected").at("signer") == "n2");
        json real = policy_doc({1, text, "fleet.toml", "root", n.clock.wall});
        n.k.n3.sign(kSigPolicy, real);
        n.put(policy_key(P), real, 11);
        CHECK(n.policies == 1);
        CHECK(n.agent.policy_version() == 1);
    }

    TEST_CASE("the agent refuses a request with a forged approval, and keeps the genuine one it had") {
        TrustNode n;
        json made = a_request();
        n.k.n1.seal_request(made, nullptr);
        json r = made;
        r["approvers"] = {"bob"};
        n.k.n2.seal_request(r, made);
        n.put(request_key(P, 7), r, 10);
        REQUIRE(n.agent.view().requests.count(7));
        json forged = r;
        forged["approvers"] = {"bob", "carol"};
        forged["approvals"].push_back({{"user", "carol"}, {"node", "n3"}, {"sig", r["sig"]}});
        n.put(request_key(P, 7), forged, 11);
        CHECK(n.audit.last("grant_rejected").at("reason").get<std::string>().find("sig") !=
              std::string::npos);
        if (n.agent.view().requests.count(7))
            CHECK(n.agent.view().requests.at(7).doc.row.approvers == std::vector<std::string>{"bob"});
    }

    TEST_CASE("an ended grant's older signed version is refused, even where it was never applied") {
        TrustNode n;
        json active = n.grant(42, "carol");  // carol is unknown here: held, not applied
        n.k.n2.sign(kSigGrant, active);
        n.put(grant_key(P, 42), active, 10);
        REQUIRE_FALSE(n.sink.live.count(42));
        json ended = n.grant(42, "carol");
        ended["state"] = "revoked";
        n.k.n2.sign(kSigGrant, ended);
        n.put(grant_key(P, 42), ended, 11);
        n.dir.names[1002] = "carol";          // known now
        n.put(grant_key(P, 42), active, 12);  // the old version written back
        CHECK_FALSE(n.sink.live.count(42));
        CHECK(n.audit.last("grant_rejected").at("reason").get<std::string>().find("older version") !=
              std::string::npos);
        // Across a full read too: what it saw stays.
        Batch full{true, 20, {KeyValue{grant_key(P, 42), active.dump(), 10, 12, 3, 0}}, {}};
        n.agent.on_batch(full);
        CHECK_FALSE(n.sink.live.count(42));
        CHECK(n.agent.view().grants.at(42).doc.row.state == "revoked");
    }

    TEST_CASE("a decided request is never pending again in the view") {
        TrustNode n;
        json pending = a_request();
        n.k.n1.seal_request(pending, nullptr);
        n.put(request_key(P, 7), pending, 10);
        json granted = pending;
        granted["state"] = "granted";
        granted["approvers"] = {"bob"};
        n.k.n2.seal_request(granted, pending);
        n.put(request_key(P, 7), granted, 11);
        n.put(request_key(P, 7), pending, 12);
        CHECK(n.agent.view().requests.at(7).doc.row.state == "granted");
        CHECK(n.audit.last("grant_rejected").at("reason").get<std::string>().find("older version") !=
              std::string::npos);
    }

    TEST_CASE("a change of signers verifies held documents again, and judges the running policy") {
        TrustNode n;
        const std::string text = "[[port]]\nport = 5432\napprovers = [\"bob\"]\n";
        json pol = policy_doc({1, text, "fleet.toml", "root", n.clock.wall});
        n.k.n2.sign(kSigPolicy, pol);
        n.put(policy_key(P), pol, 5);
        REQUIRE(n.agent.policy_version() == 1);
        json held = n.grant(42, "carol");  // unknown here: held
        n.k.n2.sign(kSigGrant, held);
        n.put(grant_key(P, 42), held, 10);
        REQUIRE_FALSE(n.sink.live.count(42));
        n.k.n1.set_signers({{"n1", n.k.a.public_key()}, {"n3", n.k.c.public_key()}});  // n2 removed
        n.agent.signers_changed();
        CHECK(n.audit.last("policy_rejected").at("version") == 1);
        CHECK_FALSE(n.agent.policy_distrust().empty());
        n.dir.names[1002] = "carol";
        // The full read brings the same versions: verified again, not reused.
        Batch full{true,
                   20,
                   {KeyValue{policy_key(P), pol.dump(), 5, 5, 1, 0},
                    KeyValue{grant_key(P, 42), held.dump(), 10, 10, 1, 0}},
                   {}};
        n.agent.on_batch(full);
        CHECK_FALSE(n.sink.live.count(42));
        CHECK(n.audit.last("grant_rejected").at("key") == grant_key(P, 42));
        // A version a listed node signed: trusted again.
        json next = policy_doc({2, text, "fleet.toml", "root", n.clock.wall});
        n.k.n3.sign(kSigPolicy, next);
        n.put(policy_key(P), next, 21);
        CHECK(n.agent.policy_distrust().empty());
        CHECK_FALSE(n.sink.live.count(42));
    }

    TEST_CASE("[fleet] signers: each entry checked, FILE:LINE named") {
        const std::string head = "[fleet]\netcd = [\"http://127.0.0.1:2379\"]\n";
        Keys k;
        const std::string good = "n1:" + k.a.public_base64();
        PolicyLoad ok = parse_policy(head + "signers = [\"" + good + "\", \"" + good + "\"]\n", "node.toml");
        REQUIRE(ok.ok());
        CHECK(ok.policy.fleet.signers == std::vector<std::string>{good});  // listed twice: once
        for (const std::string& bad :
             std::vector<std::string>{"n1", "n1:", "n1:abc", ":" + k.a.public_base64(),
                                      "n 1:" + k.a.public_base64(), "n1:" + k.a.public_base64().substr(1)}) {
            PolicyLoad l = parse_policy(head + "signers = [\"" + bad + "\"]\n", "node.toml");
            REQUIRE(l.errors.size() == 1);
            CHECK(l.errors[0].rfind("node.toml:3:", 0) == 0);
            CHECK(l.errors[0].find("NODE:BASE64KEY") != std::string::npos);
        }
        CHECK_FALSE(parse_policy(head + "signers = \"" + good + "\"\n", "node.toml").ok());
    }
    // fleet/verified.h: the key binds the signers; the store keeps what a full read holds.
    TEST_CASE("signers' fingerprint: the same list in any order, and another for any change") {
        Keys k;
        auto list = k.listed();
        const Trust same{"n1", k.a, {list[2], list[0], list[1]}};
        CHECK(same.fingerprint() == k.n1.fingerprint());
        CHECK(k.n2.fingerprint() == k.n1.fingerprint());  // whose node it is plays no part
        CHECK(k.n1.fingerprint().size() == 64);
        list[1].key = k.stranger.public_key();
        CHECK(Trust{"n1", k.a, list}.fingerprint() != k.n1.fingerprint());
        list = k.listed();
        list[1].node = "n9";
        CHECK(Trust{"n1", k.a, list}.fingerprint() != k.n1.fingerprint());
        list.pop_back();
        Trust fewer{"n1", k.a, list};
        CHECK(fewer.fingerprint() != k.n1.fingerprint());
        fewer.set_signers(k.listed());
        CHECK(fewer.fingerprint() == k.n1.fingerprint());
        const std::string key = VerifiedDocs::key_of(k.n1, kSigGrant, "{}");
        CHECK(VerifiedDocs::key_of(k.n2, kSigGrant, "{}") == key);
        CHECK(VerifiedDocs::key_of(Trust{"n1", k.a, list}, kSigGrant, "{}") != key);
        CHECK(VerifiedDocs::key_of(k.n1, kSigRequest, "{}") != key);
        CHECK(VerifiedDocs::key_of(k.n1, kSigGrant, "{ }") != key);
    }

    TEST_CASE("checks kept: saved as they come, replaced by what a full read holds, read back") {
        Keys k;
        Store store = memory_store();
        const auto key = [&](const char* doc) { return VerifiedDocs::key_of(k.n1, kSigGrant, doc); };
        VerifiedDocs v;
        must(v.load(store));
        v.add(key("1"));
        v.add(key("2"));
        v.add(key("2"));
        CHECK(v.size() == 2);
        must(v.save(store));
        must(v.save(store));  // nothing new: nothing to do
        v.begin_full_read();
        v.add(key("2"));
        v.add(key("3"));
        CHECK(v.known(key("1")));  // the old set answers until the read ends
        CHECK_FALSE(v.known(key("3")));
        v.end_full_read();
        CHECK_FALSE(v.known(key("1")));
        CHECK(v.known(key("3")));
        must(v.save(store));
        VerifiedDocs again;
        must(again.load(store));
        CHECK(again.size() == 2);
        CHECK_FALSE(again.known(key("1")));
        CHECK(again.known(key("2")));
        CHECK(again.known(key("3")));
        // Dropped by a full read and checked again before a save: kept.
        again.begin_full_read();
        again.add(key("3"));
        again.end_full_read();
        again.add(key("2"));
        must(again.save(store));
        VerifiedDocs third;
        must(third.load(store));
        CHECK(third.size() == 2);
        CHECK(third.known(key("2")));
    }
}

}  // namespace test_fleet_trust
