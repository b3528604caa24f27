// libFuzzer: the fleet's documents and keys (fleet/docs.h) on arbitrary
// text, as a node reads them from etcd (anyone with write access to the
// prefix wrote them). Each input goes through parse_request_doc,
// parse_grant_doc, parse_policy_doc and parse_key.
//
// Properties: a document accepted is written back by request_doc /
// grant_doc / policy_doc to text that parses to the same document; its
// names are names, its numbers in range, and every text field a person may
// read is safe for a terminal; a key parse_key accepts is exactly the key
// the matching *_key function builds, and anything else is nothing.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "check.h"
#include "core/selector.h"
#include "fleet/docs.h"

using namespace jg;
using namespace jg::fleet;

namespace {

const std::string kPrefix = "/jitgate/v1";

void safe(std::string_view in, const std::string& field, const std::string& v) {
    JG_CHECK(fuzz::terminal_safe(v), in, "'" + field + "' of an accepted document is safe for a terminal");
}

void extras(std::string_view in, const Extras& x) {
    safe(in, "on", x.on);
    safe(in, "origin", x.origin);
    JG_CHECK(parse_selector(x.on).ok(), in, "'on' of an accepted document is a selector: " + x.on);
    JG_CHECK(valid_fleet_name(x.origin), in, "'origin' of an accepted document is a node name");
}

void request(std::string_view in) {
    auto d = parse_request_doc(in);
    if (!d) {
        JG_CHECK(!d.error().empty(), in, "a refusal says why");
        return;
    }
    const RequestRow& r = d->row;
    JG_CHECK(r.id >= 1 && r.port >= 1 && r.duration_s >= 1, in, "a request's id, port and duration");
    JG_CHECK(valid_user_name(r.user), in, "a request's user is a user name");
    for (const auto& a : r.approvers) JG_CHECK(valid_user_name(a), in, "each approver is a user name");
    for (const auto* f : {&r.reason, &r.ticket, &r.decided_by, &r.decision_reason, &r.src})
        safe(in, "text", *f);
    extras(in, d->x);
    const json doc = request_doc(r, d->x);
    auto again = parse_request_doc(doc.dump());
    JG_CHECK(again.ok(), in, "request_doc's text parses: " + (again ? std::string() : again.error()));
    JG_CHECK(request_doc(again->row, again->x) == doc, in, "a request document reads back as written");
}

void grant(std::string_view in) {
    auto d = parse_grant_doc(in);
    if (!d) {
        JG_CHECK(!d.error().empty(), in, "a refusal says why");
        return;
    }
    const GrantRow& g = d->row;
    JG_CHECK(g.id >= 1 && g.port >= 1 && g.request_id >= 0, in, "a grant's ids and port");
    JG_CHECK(g.expires_us > g.start_us, in, "a grant ends after it starts");
    JG_CHECK(valid_user_name(g.user), in, "a grant's user is a user name");
    for (const auto& a : g.approvers) JG_CHECK(valid_user_name(a), in, "each approver is a user name");
    for (const auto* f : {&g.reason, &g.ticket, &g.ended_by, &g.src}) safe(in, "text", *f);
    extras(in, d->x);
    const json doc = grant_doc(g, d->x);
    auto again = parse_grant_doc(doc.dump());
    JG_CHECK(again.ok(), in, "grant_doc's text parses: " + (again ? std::string() : again.error()));
    JG_CHECK(grant_doc(again->row, again->x) == doc, in, "a grant document reads back as written");
}

void policy(std::string_view in) {
    auto d = parse_policy_doc(in);
    if (!d) return;
    JG_CHECK(d->version >= 1, in, "a policy's version");
    safe(in, "file", d->file);
    safe(in, "pushed_by", d->pushed_by);
    auto again = parse_policy_doc(policy_doc(*d).dump());
    JG_CHECK(again.ok(), in, "policy_doc's text parses");
    JG_CHECK(policy_doc(*again) == policy_doc(*d), in, "a policy document reads back as written");
}

void key(std::string_view in) {
    const KeyName k = parse_key(kPrefix, in);
    std::string built;
    if (k.kind == "requests") built = request_key(kPrefix, k.id);
    if (k.kind == "grants") built = grant_key(kPrefix, k.id);
    if (k.kind == "nodes") built = node_key(kPrefix, k.node);
    if (k.kind == "acks") built = ack_key(kPrefix, k.node);
    if (k.kind == "ids") built = ids_key(kPrefix);
    if (k.kind == "policy") built = policy_key(kPrefix);
    if (k.kind.empty()) {
        JG_CHECK(k.id == 0 && k.node.empty(), in, "a key of no known form names nothing");
        return;
    }
    JG_CHECK(built == in, in, "a key parse_key accepts is the one its kind's function builds: " + built);
    if (k.kind == "requests" || k.kind == "grants") JG_CHECK(k.id >= 1, in, "an id in a key is at least 1");
    if (k.kind == "nodes" || k.kind == "acks")
        JG_CHECK(valid_fleet_name(k.node), in, "a node in a key is a name");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view in(reinterpret_cast<const char*>(data), size);
    request(in);
    grant(in);
    policy(in);
    key(in);
    return 0;
}
