// The control-socket wire protocol: request validation, replies, exit codes.
#include <doctest/doctest.h>

#include <string>

#include "core/protocol.h"

namespace test_protocol {
using namespace jg;

namespace {

// Parses a line that must be rejected; returns the WireError it reports.
WireError rejected(const std::string& line) {
    WireError why{-99, "untouched"};
    auto r = parse_request(line, &why);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error() == why.message);
    return why;
}

}  // namespace

TEST_SUITE("protocol") {
    TEST_CASE("a valid request comes back with id, op and args") {
        auto r = parse_request(R"({"id": 7, "op": "approve", "args": {"id": 12, "duration_s": 600}})");
        REQUIRE(r.ok());
        CHECK(r->id == 7);
        CHECK(r->op == "approve");
        CHECK(r->args.at("id").get<int>() == 12);
        CHECK(r->args.at("duration_s").get<int>() == 600);

        auto q = parse_request(
            R"({"op":"request","id":1,"args":{"port":5432,"proto":"udp","duration_s":5400,"reason":"r","ticket":"T-1"}})");
        REQUIRE(q.ok());
        CHECK(q->op == "request");
        CHECK(q->args.size() == 5);
        CHECK(q->args.at("proto") == "udp");
    }

    TEST_CASE("id and args may be left out where nothing is required") {
        auto r = parse_request(R"({"op": "status"})");
        REQUIRE(r.ok());
        CHECK(r->id == 0);
        CHECK(r->op == "status");
        CHECK(r->args.is_object());
        CHECK(r->args.empty());

        auto l = parse_request(R"({"id": 3, "op": "list", "args": {}})");
        REQUIRE(l.ok());
        CHECK(l->id == 3);
        CHECK(l->op == "list");

        auto n = parse_request(R"({"id": -4, "op": "list", "args": {"filter": "all"}})");
        REQUIRE(n.ok());
        CHECK(n->id == -4);
    }

    TEST_CASE("invalid JSON and non-objects") {
        CHECK(rejected("").message == "message is not valid JSON");
        CHECK(rejected("{").message == "message is not valid JSON");
        CHECK(rejected("{\"op\":\"status\"} trailing").message == "message is not valid JSON");
        CHECK(rejected("{'op':'status'}").message == "message is not valid JSON");
        CHECK(rejected("[1,2]").message == "message must be a JSON object");
        CHECK(rejected("\"status\"").message == "message must be a JSON object");
        CHECK(rejected("42").message == "message must be a JSON object");
        CHECK(rejected("null").message == "message must be a JSON object");
        CHECK(rejected("{}").message == "\"op\" must name an operation");
        // Before the id is known, the error carries id 0.
        CHECK(rejected("nope").id == 0);
    }

    TEST_CASE("the id must be a whole number") {
        auto w = rejected(R"({"id": "7", "op": "status"})");
        CHECK(w.id == 0);
        const std::string msg = "\"id\" must be a whole number that fits in 64 bits";
        CHECK(w.message == msg);
        CHECK(rejected(R"({"id": 1.5, "op": "status"})").message == msg);
        CHECK(rejected(R"({"id": null, "op": "status"})").message == msg);
        // Too large for int64: refused, not wrapped to a negative id.
        CHECK(rejected(R"({"id": 18446744073709551615, "op": "status"})").message == msg);
        CHECK(rejected(R"({"id": 1, "op": "revoke", "args": {"id": 9223372036854775808}})").message ==
              "revoke: argument \"id\" must be a whole number");
    }

    TEST_CASE("envelope: unknown fields, bad op") {
        auto w = rejected(R"({"id": 9, "op": "status", "extra": 1})");
        CHECK(w.id == 9);
        CHECK(w.message == "unknown field \"extra\"");

        auto u = rejected(R"({"id": 10, "op": "reboot"})");
        CHECK(u.id == 10);
        CHECK(u.message == "unknown operation \"reboot\"");

        CHECK(rejected(R"({"id": 11, "op": 5})").message == "\"op\" must name an operation");
        CHECK(rejected(R"({"id": 11, "op": "REQUEST"})").message == "unknown operation \"REQUEST\"");
        CHECK(rejected(R"({"id": 12, "op": "status", "args": []})").message ==
              "\"args\" must be a JSON object");
        CHECK(rejected(R"({"id": 12, "op": "status", "args": "x"})").id == 12);
    }

    TEST_CASE("arguments: unknown, wrong type, missing") {
        auto a = rejected(R"({"id": 5, "op": "revoke", "args": {"id": 1, "force": true}})");
        CHECK(a.id == 5);
        CHECK(a.message == "revoke: unknown argument \"force\"");

        CHECK(rejected(R"({"id": 5, "op": "status", "args": {"verbose": true}})").message ==
              "status: unknown argument \"verbose\"");

        auto t = rejected(R"({"id": 6, "op": "approve", "args": {"id": "12"}})");
        CHECK(t.id == 6);
        CHECK(t.message == "approve: argument \"id\" must be a whole number");
        CHECK(rejected(R"({"id": 6, "op": "approve", "args": {"id": 12.0}})").message ==
              "approve: argument \"id\" must be a whole number");
        CHECK(rejected(R"({"id": 6, "op": "request", "args": {"port": 1, "proto": 6, "duration_s": 1}})")
                  .message == "request: argument \"proto\" must be a string");
        CHECK(rejected(R"({"id": 6, "op": "deny", "args": {"id": 1, "reason": null}})").message ==
              "deny: argument \"reason\" must be a string");
        CHECK(rejected(R"({"id": 6, "op": "list", "args": {"filter": ["all"]}})").message ==
              "list: argument \"filter\" must be a string");

        auto m = rejected(R"({"id": 8, "op": "request", "args": {"port": 5432, "proto": "tcp"}})");
        CHECK(m.id == 8);
        CHECK(m.message == "request: argument \"duration_s\" is required");
        CHECK(rejected(R"({"id": 8, "op": "approve"})").message == "approve: argument \"id\" is required");
        CHECK(rejected(R"({"id": 8, "op": "revoke", "args": {}})").message ==
              "revoke: argument \"id\" is required");
    }

    TEST_CASE("a message larger than kMaxMessageBytes is refused before parsing") {
        // A valid request padded with whitespace to exactly the limit is accepted...
        std::string base = R"({"id": 1, "op": "status"})";
        std::string at_limit = base + std::string(kMaxMessageBytes - base.size(), ' ');
        REQUIRE(at_limit.size() == kMaxMessageBytes);
        CHECK(parse_request(at_limit).ok());
        // ...and one byte more is not.
        auto w = rejected(at_limit + " ");
        CHECK(w.id == 0);
        CHECK(w.message == "message is larger than 65536 bytes");
        // Even when the excess is an otherwise valid string argument.
        std::string big = R"({"id": 2, "op": "deny", "args": {"id": 1, "reason": ")" +
                          std::string(kMaxMessageBytes, 'a') + "\"}}";
        CHECK(rejected(big).message == "message is larger than 65536 bytes");
    }

    TEST_CASE("parse_request without a WireError pointer still reports the message") {
        auto r = parse_request("{", nullptr);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error() == "message is not valid JSON");
    }

    TEST_CASE("reply_ok and reply_error are one JSON line") {
        const std::string ok = reply_ok(7, json{{"request_id", 12}, {"state", "pending"}});
        REQUIRE(!ok.empty());
        CHECK(ok.back() == '\n');
        CHECK(ok.find('\n') == ok.size() - 1);
        auto j = json::parse(ok);
        CHECK(j == json{{"id", 7}, {"ok", true}, {"result", {{"request_id", 12}, {"state", "pending"}}}});

        const std::string er = reply_error(8, code::kForbidden, "bob is not an approver\nof port 'db'");
        CHECK(er.back() == '\n');
        CHECK(er.find('\n') == er.size() - 1);  // the newline in the message is escaped
        auto e = json::parse(er);
        CHECK(e ==
              json{{"id", 8},
                   {"ok", false},
                   {"error", {{"code", "forbidden"}, {"message", "bob is not an approver\nof port 'db'"}}}});
        CHECK(er ==
              "{\"error\":{\"code\":\"forbidden\",\"message\":\"bob is not an approver\\nof port 'db'\"},"
              "\"id\":8,\"ok\":false}\n");
    }

    TEST_CASE("replies survive invalid UTF-8 instead of throwing") {
        std::string bad = "caf\xC3";  // truncated sequence
        std::string line;
        CHECK_NOTHROW(line = reply_error(1, code::kInvalid, bad));
        auto e = json::parse(line);
        CHECK(e["error"]["message"].get<std::string>() == "caf\xEF\xBF\xBD");
        CHECK_NOTHROW(line = reply_ok(2, json{{"reason", bad}}));
        CHECK(json::parse(line)["result"]["reason"].get<std::string>() == "caf\xEF\xBF\xBD");
    }

    TEST_CASE("exit_code_for maps error codes to CLI exit codes") {
        CHECK(exit_code_for(code::kInvalid) == 2);
        CHECK(exit_code_for(code::kRefused) == 3);
        CHECK(exit_code_for(code::kForbidden) == 3);
        CHECK(exit_code_for(code::kNotFound) == 1);
        CHECK(exit_code_for(code::kConflict) == 1);
        CHECK(exit_code_for(code::kCapacity) == 1);
        CHECK(exit_code_for(code::kInternal) == 1);
        CHECK(exit_code_for(code::kUnreachable) == 4);
        CHECK(exit_code_for("") == 1);
        CHECK(exit_code_for("something-new") == 1);
    }

    TEST_CASE("request takes an optional string \"from\" (a remote source)") {
        auto r = parse_request(
            R"({"op":"request","args":{"port":1,"proto":"tcp","duration_s":60,"from":"203.0.113.0/24"}})");
        REQUIRE(r.ok());
        CHECK(r->args.at("from") == "203.0.113.0/24");
        // Its meaning is checked by the workflow; here only its type.
        CHECK(rejected(R"({"id":2,"op":"request","args":{"port":1,"proto":"tcp","duration_s":1,"from":7}})")
                  .message == "request: argument \"from\" must be a string");
        CHECK(
            rejected(R"({"id":2,"op":"request","args":{"port":1,"proto":"tcp","duration_s":1,"from":null}})")
                .message == "request: argument \"from\" must be a string");
        CHECK(rejected(R"({"id":2,"op":"request","args":{"port":1,"proto":"tcp","duration_s":1,"src":"x"}})")
                  .message == "request: unknown argument \"src\"");
        CHECK(rejected(R"({"id":2,"op":"approve","args":{"id":1,"from":"203.0.113.7"}})").message ==
              "approve: unknown argument \"from\"");
    }

    TEST_CASE("break_glass: port, proto, duration_s and reason, all required") {
        const json args = {{"port", 5432}, {"proto", "tcp"}, {"duration_s", 900}, {"reason", "down"}};
        auto line = [](const json& a) { return json{{"id", 9}, {"op", "break_glass"}, {"args", a}}.dump(); };
        auto r = parse_request(line(args));
        REQUIRE(r.ok());
        CHECK(r->id == 9);
        CHECK(r->op == "break_glass");
        CHECK(r->args == args);
        for (const char* missing : {"port", "proto", "duration_s", "reason"}) {
            CAPTURE(missing);
            json a = args;
            a.erase(missing);
            CHECK(rejected(line(a)).message ==
                  std::string("break_glass: argument \"") + missing + "\" is required");
        }
        json ticket = args;
        ticket["ticket"] = "T";
        CHECK(rejected(line(ticket)).message == "break_glass: unknown argument \"ticket\"");
        json text = args;
        text["duration_s"] = "1m";
        CHECK(rejected(line(text)).message == "break_glass: argument \"duration_s\" must be a whole number");
    }

    TEST_CASE("show: one required id") {
        auto r = parse_request(R"({"id":4,"op":"show","args":{"id":12}})");
        REQUIRE(r.ok());
        CHECK(r->op == "show");
        CHECK(r->args.at("id") == 12);
        CHECK(rejected(R"({"op":"show"})").message == "show: argument \"id\" is required");
        CHECK(rejected(R"({"op":"show","args":{"id":"12"}})").message ==
              "show: argument \"id\" must be a whole number");
        CHECK(rejected(R"({"op":"show","args":{"id":12,"follow":true}})").message ==
              "show: unknown argument \"follow\"");
    }

    TEST_CASE("audit: every argument optional; types is a list of strings") {
        auto none = parse_request(R"({"id":5,"op":"audit"})");
        REQUIRE(none.ok());
        CHECK(none->op == "audit");
        auto all = parse_request(
            R"({"id":5,"op":"audit","args":{"follow":true,"since_us":1795255560000000,"types":["deny","grant"],"port":5432,"user":"alice","limit":50}})");
        REQUIRE(all.ok());
        CHECK(all->args.at("types") == json{"deny", "grant"});
        CHECK(parse_request(R"({"op":"audit","args":{"types":[]}})").ok());
        CHECK(parse_request(R"({"op":"audit","args":{"since_us":-5}})").ok());

        CHECK(rejected(R"({"id":6,"op":"audit","args":{"types":"deny"}})").message ==
              "audit: argument \"types\" must be a list of strings");
        CHECK(rejected(R"({"id":6,"op":"audit","args":{"types":["deny",7]}})").message ==
              "audit: argument \"types\" must be a list of strings");
        CHECK(rejected(R"({"id":6,"op":"audit","args":{"types":[["deny"]]}})").message ==
              "audit: argument \"types\" must be a list of strings");
        CHECK(rejected(R"({"id":6,"op":"audit","args":{"follow":1}})").message ==
              "audit: argument \"follow\" must be true or false");
        CHECK(rejected(R"({"id":6,"op":"audit","args":{"port":"5432"}})").message ==
              "audit: argument \"port\" must be a whole number");
        CHECK(rejected(R"({"id":6,"op":"audit","args":{"limit":1.5}})").message ==
              "audit: argument \"limit\" must be a whole number");
        CHECK(rejected(R"({"id":6,"op":"audit","args":{"user":1001}})").message ==
              "audit: argument \"user\" must be a string");
        CHECK(rejected(R"({"id":6,"op":"audit","args":{"since":"10m"}})").message ==
              "audit: unknown argument \"since\"");
        CHECK(rejected(R"({"id":6,"op":"audit","args":{"types":["deny"]}, "x":1})").id == 6);
    }

    TEST_CASE("reply_event and reply_dropped: one JSON line each, with the id") {
        const json record = {{"ts", "2026-11-21T09:56:00.123456Z"},
                             {"seq", 42},
                             {"type", "deny"},
                             {"comm", std::string("ps\xC3")}};
        const std::string e = reply_event(7, record);
        REQUIRE(e.back() == '\n');
        CHECK(e.find('\n') == e.size() - 1);
        const json ej = json::parse(e);
        CHECK(ej.at("id") == 7);
        CHECK(ej.at("ok") == true);
        CHECK(ej.at("event").at("seq") == 42);
        CHECK(ej.at("event").at("comm") == "ps\xEF\xBF\xBD");
        CHECK_FALSE(ej.contains("result"));

        const std::string d = reply_dropped(7, 12);
        CHECK(d == "{\"dropped\":12,\"id\":7,\"ok\":true}\n");
    }

}  // TEST_SUITE

}  // namespace test_protocol
