// libFuzzer: the control-socket protocol (core/protocol.h) on arbitrary
// lines, as jitgated takes them from any local user. Each line goes through
// parse_request; a request it accepts goes on, as the daemon dispatches it,
// to the code that reads and checks the operation's arguments: the workflow
// (against an in-memory store and fakes of the kernel, the user database and
// the clocks) or the "audit" filter. Lines are sent by a few users in turn
// while the clock runs, so approvals, grants and expiry happen too.
//
// Properties: a refusal is one reply line naming the request's id; an
// accepted request never makes an operation throw (which would mean
// parse_request let through arguments the operation cannot read: jitgated
// would answer "internal"); every reply is one JSON line; and the audit
// records the requests produced, sealed as jitgated seals them, verify as
// one chain and render safely for a terminal.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <iterator>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "check.h"
#include "cli/audit_render.h"
#include "core/audit.h"
#include "core/kernel_grant.h"
#include "core/policy.h"
#include "core/protocol.h"
#include "core/store.h"
#include "core/workflow.h"
#include "reference_seal.h"
#include "wire_op.h"

using namespace jg;

namespace {

// The policy of the workflow unit tests: approvers, groups, two-person
// approval, self-approval, auto-approval, break-glass, source networks.
constexpr const char* kPolicy = R"(
[[port]]
name = "db"
port = 5432
max_duration = "1h"
approvers = ["alice", "@dba"]
request_ttl = "15m"

[[port]]
name = "pair"
port = 6000
proto = "both"
max_duration = "2h"
approvers = ["alice", "bob", "carol"]
approvals_required = 2
break_glass_max = "30m"
break_glass = ["bob", "@oncall"]

[[port]]
name = "self"
port = 7000
approvers = ["alice"]
self_approve = true
require_reason = false
break_glass_max = "0s"

[[port]]
name = "auto"
port = 8000
max_duration = "1h"
approvers = ["alice"]
break_glass = []

[[port.auto_approve]]
group = "oncall"
max_duration = "15m"

[[port]]
name = "nets"
port = 9000
mode = "audit"
approvers = ["alice"]
allow_prefix = { ipv4 = 24, ipv6 = 64 }
on_expiry = "drain"
)";

// Who sends line i: requesters, approvers by name and by group, root.
const Caller kCallers[] = {{1000, 4242, "rita"}, {1001, 11, "alice"}, {1004, 14, "dave"},
                           {1006, 16, "olly"},   {1002, 12, "bob"},   {0, 1, "root"}};
constexpr std::size_t kMaxLines = 48;
constexpr std::int64_t kStepSeconds = 301;  // between lines: a 15m TTL runs out after three

class Directory_ : public Directory {
public:
    std::optional<std::string> user_name(std::uint32_t uid) override {
        for (const auto& c : kCallers)
            if (c.uid == uid) return c.user;
        return std::nullopt;
    }
    bool in_group(std::uint32_t, const std::string& user, const std::string& group) override {
        return (user == "dave" && group == "dba") || (user == "olly" && group == "oncall");
    }
};

class Sink : public GrantSink {
public:
    std::set<std::int64_t> live;
    Result<bool> put(const KernelGrant& g) override {
        live.insert(g.id);
        return true;
    }
    void remove(const KernelGrant& g) override { live.erase(g.id); }
};

// Seals every record as jitgated's audit log does, into one log text.
class Log : public AuditSink {
public:
    ChainHead head;
    std::string text;
    std::vector<json> records;
    void emit(json record) override {
        record["ts"] = "2027-01-15T08:00:00.000000Z";
        seal(record, head);
        text += render_line(record);
        records.push_back(std::move(record));
    }
};

class Clock_ : public Clock {
public:
    std::uint64_t boot = 5000ULL * 1000000000ULL;
    std::int64_t wall = 1800000000LL * 1000000;
    std::uint64_t boot_ns() override { return boot; }
    std::int64_t wall_us() override { return wall; }
};

std::shared_ptr<const Policy> policy() {
    static const std::shared_ptr<const Policy> p = [] {
        auto load = parse_policy(kPolicy, "fuzz.toml");
        if (!load.ok()) fuzz::broken(__FILE__, __LINE__, "the harness policy loads", "", load.errors.front());
        return std::make_shared<const Policy>(load.policy);
    }();
    return p;
}

// A reply is one JSON line: an object with the request's id and ok.
void one_reply_line(std::string_view in, const std::string& reply, std::int64_t id, bool ok) {
    JG_CHECK(!reply.empty() && reply.back() == '\n' && reply.find('\n') == reply.size() - 1, in,
             "a reply is one line: " + fuzz::shown(reply));
    const json j = json::parse(reply, nullptr, false);
    JG_CHECK(j.is_object() && j.value("id", std::int64_t(-1)) == id && j.value("ok", !ok) == ok, in,
             "a reply carries the id and ok: " + fuzz::shown(reply));
}

bool known_code(const std::string& c) {
    for (const char* k : {code::kInvalid, code::kRefused, code::kForbidden, code::kNotFound, code::kConflict,
                          code::kCapacity, code::kInternal})
        if (c == k) return true;
    return false;
}

struct Harness {
    Store store;
    Directory_ dir;
    Sink sink;
    Log log;
    Clock_ clock;
    Workflow wf{store, dir, sink, log, clock, "boot-fuzz"};

    explicit Harness(Store s) : store(std::move(s)) { wf.set_policy(policy()); }

    // What jitgated's dispatcher (daemon/control.cpp) does with an accepted request.
    Reply dispatch(const Caller& c, const WireRequest& req, std::string_view in) {
        using jg::testing::op;
        switch (req.kind) {
            case Op::Request: return op(&Workflow::request, wf, c, req.args);
            case Op::Approve: return op(&Workflow::approve, wf, c, req.args);
            case Op::Deny: return op(&Workflow::deny, wf, c, req.args);
            case Op::Revoke: return op(&Workflow::revoke, wf, c, req.args);
            case Op::List: return op(&Workflow::list, wf, c, req.args);
            case Op::BreakGlass: return op(&Workflow::break_glass, wf, c, req.args);
            case Op::Show: return op(&Workflow::show, wf, c, req.args);
            case Op::Status: return Reply::success(json::object());
            case Op::Audit: return audit(req.args);
            default: break;
        }
        fuzz::broken(__FILE__, __LINE__, "parse_request accepts only operations jitgated has", in, req.op);
    }

    // The "audit" operation's arguments, and the records it would send.
    Reply audit(const json& args) {
        auto f = audit_filter_from_args(args);
        if (!f) return Reply::fail(code::kInvalid, f.error());
        std::int64_t n = 0;
        for (const auto& r : log.records) n += matches(*f, r) && belongs_to(r, 1000, "rita") ? 1 : 0;
        return Reply::success(json{{"count", n}});
    }

    void line(std::string_view in, std::string_view text, const Caller& c) {
        WireError why{-99, "untouched"};
        auto req = parse_request(text, &why);
        if (!req) {
            JG_CHECK(why.message == req.error() && !why.message.empty(), in, "the refusal names its reason");
            one_reply_line(in, reply_error(why.id, code::kInvalid, why.message), why.id, false);
            return;
        }
        JG_CHECK(req->args.is_object(), in, "args is an object");
        Reply r;
        try {
            r = dispatch(c, *req, in);
        } catch (const std::exception& e) {
            JG_CHECK(false, in,
                     "op " + req->op + " threw on arguments parse_request accepted (" + req->args.dump() +
                         "): " + e.what());
        }
        if (r.ok) {
            one_reply_line(in, reply_ok(req->id, r.result), req->id, true);
        } else {
            JG_CHECK(known_code(r.code) && !r.message.empty(), in, "a failure has a code and a message");
            one_reply_line(in, reply_error(req->id, r.code, r.message), req->id, false);
        }
    }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view in(reinterpret_cast<const char*>(data), size);
    auto store = Store::open(":memory:");
    if (!store) fuzz::broken(__FILE__, __LINE__, "an in-memory store opens", in, store.error());
    Harness h(std::move(*store));

    std::size_t start = 0;
    for (std::size_t i = 0; i < kMaxLines && start <= in.size(); ++i) {
        const std::size_t nl = std::min(in.find('\n', start), in.size());
        h.line(in, in.substr(start, nl - start), kCallers[i % std::size(kCallers)]);
        start = nl + 1;
        h.clock.boot += std::uint64_t(kStepSeconds) * 1000000000ULL;
        h.clock.wall += kStepSeconds * 1000000;
        h.wf.sweep();
    }

    if (h.log.records.empty()) return 0;
    std::istringstream log(h.log.text);
    const VerifyResult v = verify_chain({{"audit.jsonl", &log}});
    JG_CHECK(v.ok && v.records == h.log.records.size(), in,
             "the records the requests produced verify: " + v.problem);
    for (const auto& r : h.log.records) {
        const std::string shown = render_event_human(r);
        JG_CHECK(fuzz::terminal_safe(shown), in,
                 "a rendered record is safe for a terminal: " + fuzz::shown(shown));
    }
    return 0;
}
