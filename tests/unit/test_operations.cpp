// The operation table (core/operations.h): each operation's arguments parsed
// once into its typed struct, good and bad; the wire schema, the daemon's
// dispatcher (daemon/control.h) and the CLI's op names all come from it.
#include <doctest/doctest.h>

#include <fmt/format.h>

#include <algorithm>
#include <initializer_list>
#include <string>
#include <variant>
#include <vector>

#include "cli/app.h"
#include "core/operations.h"
#include "core/protocol.h"
#include "daemon/control.h"
#include "fakes.h"

namespace test_operations {
using namespace jg;
using namespace jg::testing;

namespace {

// The wire line for op with args: checked by parse_request (the schema),
// then parsed by the table.
ParsedArgs wire(const char* op, const json& args) {
    auto req = parse_request(json{{"id", 1}, {"op", op}, {"args", args}}.dump());
    REQUIRE_MESSAGE(req.ok(), req.error());
    CHECK(req->kind == find_operation(op)->op);
    return operation(req->kind).parse(req->args);
}

template <typename Args>
Args good(const char* op, const json& args) {
    ParsedArgs p = wire(op, args);
    if (const auto* e = std::get_if<OpError>(&p)) FAIL(e->message);
    return std::get<Args>(std::get<OpArgs>(p));
}

// The refusal of op with args: its code, and its sentence word for word.
void bad(const char* op, const json& args, const char* code, const std::string& message) {
    ParsedArgs p = wire(op, args);
    REQUIRE(std::holds_alternative<OpError>(p));
    CHECK(std::get<OpError>(p).code == code);
    CHECK(std::get<OpError>(p).message == message);
}

const json kAsk = {{"port", 5432}, {"proto", "tcp"}, {"duration_s", 600}, {"reason", "fix prod"}};

json with(json j, const char* key, json v) {
    j[key] = std::move(v);
    return j;
}

}  // namespace

TEST_SUITE("operations") {
    TEST_CASE("request: port, protocol, duration, reason, ticket and source, each checked") {
        auto r = good<RequestArgs>("request", with(with(kAsk, "ticket", "T-1"), "from", "203.0.113.7"));
        CHECK(r.ask.port == 5432);
        CHECK(r.ask.proto == Proto::Tcp);
        CHECK(r.ask.duration_s == 600);
        CHECK(r.ask.reason == "fix prod");
        CHECK(r.ticket == "T-1");
        REQUIRE(r.from);
        CHECK(format_source(*r.from) == "203.0.113.7");
        CHECK_FALSE(good<RequestArgs>("request", kAsk).from);

        bad("request", with(kAsk, "port", 0), code::kInvalid, "port must be from 1 to 65535");
        bad("request", with(kAsk, "port", 65536), code::kInvalid, "port must be from 1 to 65535");
        bad("request", with(kAsk, "duration_s", 0), code::kInvalid,
            "the duration must be longer than zero and at most a year");
        bad("request", with(kAsk, "ticket", std::string(kMaxTicketBytes + 1, 't')), code::kInvalid,
            "the ticket must be one line of at most 128 bytes");
        ParsedArgs proto = wire("request", with(kAsk, "proto", "sctp"));
        REQUIRE(std::holds_alternative<OpError>(proto));
        CHECK(std::get<OpError>(proto).message.find("sctp") != std::string::npos);
        ParsedArgs lines = wire("request", with(kAsk, "reason", "two\nlines"));
        REQUIRE(std::holds_alternative<OpError>(lines));
        CHECK(std::get<OpError>(lines).code == code::kRefused);
        ParsedArgs from = wire("request", with(kAsk, "from", "not an address"));
        REQUIRE(std::holds_alternative<OpError>(from));
        CHECK(std::get<OpError>(from).code == code::kInvalid);
    }

    TEST_CASE("break_glass: what request asks, with a reason that says something") {
        auto b = good<BreakGlassArgs>("break_glass", kAsk);
        CHECK(b.ask.port == 5432);
        CHECK(b.ask.reason == "fix prod");
        bad("break_glass", with(kAsk, "reason", "   "), code::kInvalid,
            "break-glass needs a reason (--reason TEXT): it is reviewed after the fact");
        bad("break_glass", with(kAsk, "port", 0), code::kInvalid, "port must be from 1 to 65535");
    }

    TEST_CASE("approve, deny, revoke, show: an id, and what each takes besides") {
        auto a = good<ApproveArgs>("approve", {{"id", 12}, {"duration_s", 300}});
        CHECK(a.id == 12);
        CHECK(a.duration_s == 300);
        CHECK_FALSE(good<ApproveArgs>("approve", {{"id", 12}}).duration_s);
        auto d = good<DenyArgs>("deny", {{"id", 7}, {"reason", "not now"}});
        CHECK(d.id == 7);
        CHECK(d.reason == "not now");
        CHECK(good<DenyArgs>("deny", {{"id", 7}}).reason.empty());
        bad("deny", {{"id", 7}, {"reason", std::string(kMaxReasonBytes + 1, 'r')}}, code::kInvalid,
            "the reason must be one line of at most 1024 bytes");
        ParsedArgs esc = wire("deny", {{"id", 7}, {"reason", "a\x1b[2Jb"}});
        REQUIRE(std::holds_alternative<OpError>(esc));
        CHECK(std::get<OpError>(esc).code == code::kRefused);
        CHECK(good<RevokeArgs>("revoke", {{"id", 3}}).id == 3);
        CHECK(good<ShowArgs>("show", {{"id", 4}}).id == 4);
        good<StatusArgs>("status", json::object());
        good<MetricsArgs>("metrics", json::object());
    }

    TEST_CASE("list: filter, page size and cursor, with their defaults") {
        auto l = good<ListArgs>("list", json::object());
        CHECK(l.filter == "default");
        CHECK(l.limit == 100);
        CHECK(l.after == 0);
        l = good<ListArgs>("list", {{"filter", "all"}, {"limit", 1000}, {"after", 77}});
        CHECK(l.filter == "all");
        CHECK(l.limit == 1000);
        CHECK(l.after == 77);
        bad("list", {{"filter", "mine"}}, code::kInvalid, "list filter must be pending, active or all");
        bad("list", {{"limit", 0}}, code::kInvalid, "list --limit must be from 1 to 1000");
        bad("list", {{"limit", 1001}}, code::kInvalid, "list --limit must be from 1 to 1000");
        bad("list", {{"after", -1}}, code::kInvalid, "list --after must be an id (a positive number)");
    }

    TEST_CASE("audit: the filter, follow, and how many past records") {
        auto a = good<AuditArgs>("audit", {{"types", {"deny"}}, {"port", 5432}, {"user", "alice"}});
        CHECK(a.filter.types == std::vector<std::string>{"deny"});
        CHECK(a.filter.port == 5432);
        CHECK(a.filter.user == "alice");
        CHECK_FALSE(a.follow);
        CHECK(a.limit == 50);
        CHECK(good<AuditArgs>("audit", {{"follow", true}}).limit == 0);
        CHECK(good<AuditArgs>("audit", {{"follow", true}, {"since_us", 5}}).limit == 50);
        CHECK(good<AuditArgs>("audit", {{"follow", true}, {"limit", 7}}).limit == 7);
        bad("audit", {{"limit", 10001}}, code::kInvalid, "limit must be 0-10000");
        bad("audit", {{"limit", -1}}, code::kInvalid, "limit must be 0-10000");
        bad("audit", {{"port", 0}}, code::kInvalid, "port must be a whole number from 1 to 65535");
        bad("audit", {{"types", {"nope"}}}, code::kInvalid,
            "unknown audit record type \"nope\"; the types are: " + audit_types_text());
    }

    TEST_CASE("the table is the wire schema: names and argument types come from it") {
        for (const auto& o : operations()) {
            CHECK(find_operation(o.name) == &o);
            CHECK(&operation(o.op) == &o);
            CHECK(parse_request(json{{"op", o.name}, {"args", {{"nonsense", 1}}}}.dump()).error() ==
                  fmt::format("{}: unknown argument \"nonsense\"", o.name));
        }
        CHECK_FALSE(find_operation("grant"));
        // The first missing argument by name, as the message always named it.
        CHECK(parse_request(R"({"op":"request","args":{}})").error() ==
              "request: argument \"duration_s\" is required");
    }

    TEST_CASE("the dispatcher has a handler for every operation of the table") {
        std::vector<Op> handled = handled_operations();
        CHECK(handled.size() == operations().size());
        for (const auto& o : operations())
            CHECK_MESSAGE(std::count(handled.begin(), handled.end(), o.op) == 1, o.name);
    }

    TEST_CASE("the CLI's commands send the table's op names") {
        const std::initializer_list<std::pair<std::vector<const char*>, Op>> cases = {
            {{"request", "5432", "--for", "10m"}, Op::Request},
            {{"break-glass", "5432", "--for", "10m", "--reason", "down"}, Op::BreakGlass},
            {{"approve", "3"}, Op::Approve},
            {{"deny", "3"}, Op::Deny},
            {{"revoke", "3"}, Op::Revoke},
            {{"list"}, Op::List},
            {{"status"}, Op::Status},
            {{"metrics"}, Op::Metrics},
            {{"audit"}, Op::Audit},
        };
        for (const auto& [args, op] : cases) {
            CliState s;
            auto app = build_app(s);
            std::vector<const char*> argv{"jitgate"};
            argv.insert(argv.end(), args.begin(), args.end());
            REQUIRE_NOTHROW(app->parse(static_cast<int>(argv.size()), argv.data()));
            CHECK(s.op == op_name(op));
            CHECK(find_operation(s.op) != nullptr);
        }
    }
}

TEST_SUITE("control") {
    // A workflow on an empty store and fakes; the daemon's hooks recorded.
    struct Fixture {
        Store store = memory_store();
        FakeDirectory dir;
        FakeSink sink;
        FakeAudit audit;
        FakeClock clock;
        Workflow wf{store, dir, sink, audit, clock, "boot-A"};
        std::vector<std::string> called;
        std::optional<AuditArgs> audit_args;
        std::optional<Caller> audit_caller;
        bool store_broken = false;
        ControlTarget target() {
            return {wf,
                    store,
                    audit,
                    [](std::uint32_t uid) { return "u" + std::to_string(uid); },
                    [this](const Caller& c) -> Result<json> {
                        called.push_back("status " + c.user);
                        if (store_broken) return err("database disk image is malformed");
                        return json{{"ok", 1}};
                    },
                    [this]() -> Result<json> {
                        called.push_back("metrics");
                        return json{{"m", 2}};
                    },
                    [this](const Peer&, const Caller& c, std::int64_t id, const AuditArgs& a) {
                        audit_args = a;
                        audit_caller = c;
                        return reply_ok(id, {{"count", 0}});
                    }};
        }
    };

    TEST_CASE("a line reaches its handler with typed arguments; refusals keep their words") {
        Fixture f;
        const Peer p{1001, 1001, 42, 5};
        CHECK(control_handle(f.target(), p, R"({"id":2,"op":"status"})") == reply_ok(2, {{"ok", 1}}));
        CHECK(control_handle(f.target(), p, R"({"id":3,"op":"metrics"})") == reply_ok(3, {{"m", 2}}));
        CHECK(f.called == std::vector<std::string>{"status u1001", "metrics"});
        CHECK(control_handle(f.target(), p, R"({"id":4,"op":"audit","args":{"follow":true}})") ==
              reply_ok(4, {{"count", 0}}));
        REQUIRE(f.audit_args);
        CHECK(f.audit_args->follow);
        CHECK(f.audit_args->limit == 0);
        CHECK(control_handle(f.target(), p,
                             R"({"id":5,"op":"request","args":{"port":0,"proto":"tcp","duration_s":60}})") ==
              reply_error(5, code::kInvalid, "port must be from 1 to 65535"));
        CHECK(control_handle(f.target(), p, R"({"id":6,"op":"show","args":{"id":9}})") ==
              reply_error(6, code::kNotFound, "there is no request 9"));
        CHECK(control_handle(f.target(), p, R"({"id":7,"op":"nope"})") ==
              reply_error(7, code::kInvalid, "unknown operation \"nope\""));
    }

    TEST_CASE("refused tokens: each answered; recorded while the budget says so, else only counted") {
        Fixture f;
        int asked = 0;
        bool whole = true;
        ControlTarget t = f.target();
        t.record_refusal = [&](std::uint32_t uid) {
            ++asked;
            CHECK(uid == 1001);
            return whole;
        };
        const Peer p{1001, 1001, 42, 5};
        const std::string line = R"({"id":1,"op":"status","token":"x.y.z"})";
        CHECK(control_handle(t, p, line).find("token refused") != std::string::npos);
        CHECK(f.audit.of("auth_failed").size() == 1);
        whole = false;
        CHECK(control_handle(t, p, line).find("token refused") != std::string::npos);
        CHECK(f.audit.of("auth_failed").size() == 1);
        CHECK(asked == 2);
        CHECK(f.called.empty());  // a refused token runs nothing
    }

    TEST_CASE("audit through a token: scoped to the token's user and its groups, not the presenter's") {
        Fixture f;
        ControlTarget t = f.target();
        t.verify_token = [](const std::string&) -> Result<TokenUser> {
            return TokenUser{"u1002", TokenAuth{"https://idp.example", "s-1", {"auditors"}}};
        };
        t.uid_of = [](const std::string& user) -> std::optional<std::uint32_t> {
            if (user == "u1002") return 1002u;
            return std::nullopt;
        };
        const Peer web{1001, 1001, 42, 5};  // jitgate-web presents it
        CHECK(control_handle(t, web, R"({"id":9,"op":"audit","token":"x.y.z"})") ==
              reply_ok(9, {{"count", 0}}));
        REQUIRE(f.audit_caller);
        CHECK(f.audit_caller->uid == 1002);
        CHECK(f.audit_caller->user == "u1002");
        REQUIRE(f.audit_caller->token);
        CHECK(f.audit_caller->token->groups == std::vector<std::string>{"auditors"});
    }

    TEST_CASE("a status the store cannot give is an internal error, worded as a failed operation") {
        Fixture f;
        f.store_broken = true;
        CHECK(control_handle(f.target(), Peer{0, 0, 1, 5}, R"({"id":8,"op":"status"})") ==
              reply_error(8, code::kInternal,
                          "jitgated could not complete status: database disk image is malformed"));
    }
}

}  // namespace test_operations
