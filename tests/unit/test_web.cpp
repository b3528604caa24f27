// jitgate-web's pure parts (userspace/web): escaping, CSRF, sessions, the
// API's routes to socket operations, the caller's address behind proxies.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <string>

#include "core/policy.h"
#include "web/api_routes.h"
#include "web/cookies.h"
#include "web/csrf.h"
#include "web/html.h"
#include "web/oidc_client.h"
#include "web/pages.h"
#include "web/peer.h"
#include "web/random.h"
#include "web/session.h"
#include "web/web_app.h"

namespace test_web {
using namespace jg::web;
using json = nlohmann::json;

TEST_CASE("web: html_escape leaves no markup") {
    CHECK(html_escape("<script>alert(1)</script>") == "&lt;script&gt;alert(1)&lt;/script&gt;");
    CHECK(html_escape(R"(a" onmouseover='x' & b)") == "a&quot; onmouseover=&#39;x&#39; &amp; b");
    CHECK(html_escape("plain text") == "plain text");
}

TEST_CASE("web: a pending request's reason and name show as text on the page") {
    json list = {{"requests",
                  {{{"request_id", 7},
                    {"state", "pending"},
                    {"user", "<b>mallory</b>"},
                    {"port", 5432},
                    {"proto", "tcp"},
                    {"duration_s", 900},
                    {"reason", "<script>alert(1)</script>"},
                    {"ticket", "\"><img src=x onerror=alert(2)>"},
                    {"approvers", json::array()},
                    {"approvals_required", 1},
                    {"expires_at", "2999-01-01T00:00:00.000000Z"}}}}};
    PageContext c;
    c.user = "alice";
    c.csrf = "tok";
    const std::string page = requests_page(c, list);
    CHECK(page.find("<script>alert") == std::string::npos);
    CHECK(page.find("&lt;script&gt;alert(1)&lt;/script&gt;") != std::string::npos);
    CHECK(page.find("<img") == std::string::npos);
    CHECK(page.find("<b>mallory") == std::string::npos);
    // Every form carries the session's CSRF token; no inline script at all.
    std::size_t forms = 0, tokens = 0;
    for (auto p = page.find("<form"); p != std::string::npos; p = page.find("<form", p + 1)) ++forms;
    for (auto p = page.find(R"(name="csrf" value="tok")"); p != std::string::npos;
         p = page.find(R"(name="csrf" value="tok")", p + 1))
        ++tokens;
    CHECK(forms == 3);  // approve, deny, sign out
    CHECK(tokens == forms);
    CHECK(page.find("<script>") == std::string::npos);
    CHECK(page.find(R"(<script src="/static/countdown.js" defer></script>)") != std::string::npos);
}

TEST_CASE("web: in a fleet, a grant's state on each node, escaped") {
    json list = {{"grants",
                  {{{"grant_id", 9},
                    {"request_id", 8},
                    {"state", "active"},
                    {"user", "alice"},
                    {"port", 5432},
                    {"proto", "tcp"},
                    {"on", "role=db"},
                    {"reason", "r"},
                    {"approvers", {"bob"}},
                    {"expires_at", "2999-01-01T00:00:00.000000Z"},
                    {"node_states",
                     {{{"node", "db-1"}, {"state", "applied"}, {"alive", true}},
                      {{"node", "<i>db-2</i>"}, {"state", "pending"}, {"alive", false}}}}}}}};
    PageContext c;
    c.csrf = "tok";
    const std::string page = grants_page(c, list, json());
    CHECK(page.find("<li>db-1: applied</li>") != std::string::npos);
    CHECK(page.find("<li>&lt;i&gt;db-2&lt;/i&gt;: pending (not alive)</li>") != std::string::npos);
    CHECK(page.find("<i>db-2") == std::string::npos);
}

TEST_CASE("web: format_left and seconds_until") {
    CHECK(format_left(0) == "0s");
    CHECK(format_left(59) == "59s");
    CHECK(format_left(61) == "1m01s");
    CHECK(format_left(3725) == "1h02m05s");
    const auto t0 = std::chrono::system_clock::from_time_t(1000000000);  // 2001-09-09T01:46:40Z
    CHECK(seconds_until("2001-09-09T01:48:40.123456Z", t0) == 120);
    CHECK(seconds_until("2001-09-09T01:40:00Z", t0) == 0);
    CHECK(seconds_until("not a time", t0) == 0);
}

TEST_CASE("web: CSRF: the session's token, from our own origin") {
    const std::string own = "https://jit.example.org";
    CHECK_FALSE(csrf_refusal({"secret", own, "same-origin"}, "secret", own));
    CHECK_FALSE(csrf_refusal({"secret", "", ""}, "secret", own));  // an old browser: the token alone
    CHECK(csrf_refusal({"", own, "same-origin"}, "secret", own));
    CHECK(csrf_refusal({"secreT", own, "same-origin"}, "secret", own));
    CHECK(csrf_refusal({"secret", "https://evil.example", ""}, "secret", own));
    CHECK(csrf_refusal({"secret", "null", ""}, "secret", own));
    CHECK(csrf_refusal({"secret", "", "cross-site"}, "secret", own));
    CHECK(csrf_refusal({"secret", "", "same-site"}, "secret", own));
    CHECK(csrf_refusal({"", "", ""}, "", own));  // an empty token never matches
}

TEST_CASE("web: constant-time comparison and tokens") {
    CHECK(equal_constant_time("abc", "abc"));
    CHECK_FALSE(equal_constant_time("abc", "abd"));
    CHECK_FALSE(equal_constant_time("abc", "abcd"));
    CHECK_FALSE(equal_constant_time("", ""));
    const std::string a = random_token(), b = random_token();
    CHECK(a.size() == 43);  // 256 bits
    CHECK(a != b);
    std::string back;
    CHECK(base64url_decode(a, back));
    CHECK(back.size() == 32);
    // RFC 7636 appendix B.
    CHECK(pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") ==
          "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
}

TEST_CASE("web: sessions expire, are bounded and carry their own CSRF token") {
    SessionStore st;
    const auto now = Clock::now();
    Session s = st.create("id-token", "alice", now + std::chrono::minutes(5), now);
    CHECK(s.id.size() == 43);
    CHECK(s.csrf != s.id);
    CHECK(st.find(s.id, now));
    CHECK(st.find(s.id, now)->id_token == "id-token");
    CHECK_FALSE(st.find(s.id, now + std::chrono::minutes(6)));
    CHECK_FALSE(st.find(s.id, now));  // removed once seen expired
    Session long_lived = st.create("t", "bob", now + std::chrono::hours(100), now);
    CHECK(long_lived.expires == now + kMaxSessionLife);
    st.set_notice(long_lived.id, "done");
    CHECK(st.take_notice(long_lived.id) == "done");
    CHECK(st.take_notice(long_lived.id).empty());
    st.remove(long_lived.id);
    CHECK_FALSE(st.find(long_lived.id, now));
}

TEST_CASE("web: a login finishes once, in the browser that began it, in time") {
    SessionStore st;
    const auto now = Clock::now();
    PendingLogin p = st.begin_login("browser-1", "198.51.100.7", now);
    CHECK_FALSE(st.finish_login(p.state, "browser-2", now));  // wrong browser: and the state is spent
    CHECK_FALSE(st.finish_login(p.state, "browser-1", now));
    PendingLogin q = st.begin_login("browser-1", "198.51.100.7", now);
    CHECK_FALSE(st.finish_login(q.state, "browser-1", now + kLoginTimeout + std::chrono::seconds(1)));
    PendingLogin r = st.begin_login("browser-1", "198.51.100.7", now);
    auto done = st.finish_login(r.state, "browser-1", now);
    REQUIRE(done);
    CHECK(done->nonce == r.nonce);
    CHECK(done->verifier != r.nonce);
}

TEST_CASE("web: a flood of sign-ins from one place pushes out only its own") {
    SessionStore st;
    const auto now = Clock::now();
    PendingLogin mine = st.begin_login("browser-1", login_origin("198.51.100.7"), now);
    // 20000 from one /64 (each address another): the table never holds more than 16 of theirs.
    for (int i = 0; i < 20000; ++i)
        st.begin_login("b", login_origin(fmt::format("2001:db8:0:1::{:x}", i + 1)),
                       now + std::chrono::milliseconds(i));
    CHECK(st.finish_login(mine.state, "browser-1", now + std::chrono::seconds(30)));
    CHECK(login_origin("2001:db8:0:1::5") == "2001:db8:0:1::/64");
    CHECK(login_origin("2001:db8:0:1:ffff::5") == "2001:db8:0:1::/64");
    CHECK(login_origin("2001:db8:0:2::5") == "2001:db8:0:2::/64");
    CHECK(login_origin("198.51.100.7") == "198.51.100.7");
    // Many places at once, the table full: the oldest of the place holding the most goes first.
    SessionStore full;
    PendingLogin early = full.begin_login("browser-1", "203.0.113.1", now);
    for (std::size_t i = 0; i < kMaxPendingLogins + 100; ++i)
        full.begin_login("b", fmt::format("198.51.100.{}", i % 250), now + std::chrono::milliseconds(i));
    CHECK(full.finish_login(early.state, "browser-1", now + std::chrono::seconds(30)));
}

TEST_CASE("web: cookies") {
    CHECK(cookie_value("a=1; jg_session=xyz; b=2", "jg_session") == "xyz");
    CHECK(cookie_value("xjg_session=no", "jg_session").empty());
    CHECK(cookie_value("", "jg_session").empty());
    const std::string c = set_cookie("jg_session", "v", 60, true, "Strict");
    CHECK(c.find("HttpOnly") != std::string::npos);
    CHECK(c.find("SameSite=Strict") != std::string::npos);
    CHECK(c.find("Secure") != std::string::npos);
    CHECK(set_cookie("jg_session", "v", 60, false, "Strict").find("Secure") == std::string::npos);
    // Under TLS the session cookie is a __Host- cookie: Secure, Path=/, no Domain.
    CHECK(session_cookie(false) == "jg_session");
    CHECK(session_cookie(true) == "__Host-jg_session");
    const std::string h = set_cookie(session_cookie(true), "v", 60, true, "Strict");
    CHECK(h.starts_with("__Host-jg_session=v; Path=/;"));
    CHECK(h.find("Domain") == std::string::npos);
    // Behind a TLS proxy: public_url says https, so the cookies are Secure too.
    WebOptions o;
    o.public_url = "http://127.0.0.1:8080";
    CHECK_FALSE(o.secure_cookies());
    o.public_url = "https://jit.example.org";
    CHECK(o.secure_cookies());
}

namespace {
std::variant<ApiCall, ApiError> route(const char* method, const char* path, const char* body = "",
                                      std::map<std::string, std::string> q = {}) {
    return route_api({method, path, &q, body, "203.0.113.9"});
}
const ApiCall& call(const std::variant<ApiCall, ApiError>& v) { return std::get<ApiCall>(v); }
}  // namespace

TEST_CASE("web: API routes become socket operations") {
    CHECK(call(route("GET", "/api/v1/requests")).op == "list");
    CHECK(call(route("GET", "/api/v1/requests")).args == json{{"filter", "pending"}});
    CHECK(call(route("GET", "/api/v1/grants")).args == json{{"filter", "active"}});
    CHECK(call(route("GET", "/api/v1/nodes")).op == "nodes");
    CHECK(call(route("POST", "/api/v1/requests/12/approve", R"({"duration_s": 60})")).args ==
          json{{"id", 12}, {"duration_s", 60}});
    CHECK(call(route("POST", "/api/v1/requests/12/deny", R"({"reason": "no"})")).op == "deny");
    // The path's id wins over one in the body.
    CHECK(call(route("POST", "/api/v1/grants/3/revoke", R"({"id": 99})")).args == json{{"id", 3}});
    auto audit = call(route("GET", "/api/v1/audit", "", {{"type", "grant"}, {"limit", "5"}}));
    CHECK(audit.op == "audit");
    CHECK(audit.args == json{{"limit", 5}, {"types", {"grant"}}});
}

TEST_CASE("web: POST /api/v1/requests: from_me is the address jitgate-web saw") {
    auto r = call(route("POST", "/api/v1/requests",
                        R"({"port": 5432, "duration": "15m", "reason": "r", "from_me": true})"));
    CHECK(r.op == "request");
    CHECK(
        r.args ==
        json{
            {"port", 5432}, {"proto", "tcp"}, {"duration_s", 900}, {"reason", "r"}, {"from", "203.0.113.9"}});
    CHECK(std::get<ApiError>(route("POST", "/api/v1/requests", R"({"from_me": true, "from": "1.2.3.4"})"))
              .status == 400);
    CHECK(std::get<ApiError>(route("POST", "/api/v1/requests", R"({"duration": "soon"})")).status == 400);
}

TEST_CASE("web: API refusals") {
    CHECK(std::get<ApiError>(route("GET", "/api/v1/nope")).status == 404);
    CHECK(std::get<ApiError>(route("POST", "/api/v1/requests/abc/approve")).status == 400);
    CHECK(std::get<ApiError>(route("POST", "/api/v1/requests/0/approve")).status == 400);
    CHECK(std::get<ApiError>(route("POST", "/api/v1/requests/1/approve", "[1]")).status == 400);
    CHECK(std::get<ApiError>(route("POST", "/api/v1/requests/1/approve", "{")).status == 400);
    CHECK(std::get<ApiError>(route("DELETE", "/api/v1/requests")).status == 405);
    std::string big(kMaxApiBodyBytes + 1, ' ');
    CHECK(std::get<ApiError>(route("POST", "/api/v1/requests", big.c_str())).status == 413);
    CHECK(std::get<ApiError>(route("GET", "/api/v1/audit", "", {{"limit", "x"}})).status == 400);
}

TEST_CASE("web: HTTP status of jitgated's replies") {
    auto e = [](const char* c) { return json{{"ok", false}, {"error", {{"code", c}, {"message", "m"}}}}; };
    CHECK(status_for_reply(json{{"ok", true}, {"result", json::object()}}) == 200);
    CHECK(status_for_reply(e("forbidden")) == 403);
    CHECK(status_for_reply(e("refused")) == 403);
    CHECK(status_for_reply(e("unauthenticated")) == 401);
    CHECK(status_for_reply(e("not_found")) == 404);
    CHECK(status_for_reply(e("unreachable")) == 503);
}

TEST_CASE("web: every X-Forwarded-For line counts, in order") {
    WebOptions o;
    REQUIRE(o.proxies.add("198.51.100.0/24"));
    WebApp app(o);
    httplib::Request req;
    req.remote_addr = "198.51.100.7";
    req.headers.emplace("X-Forwarded-For", "203.0.113.66");  // the client's own line
    req.headers.emplace("X-Forwarded-For", "203.0.113.1");   // the one the proxy added
    CHECK(*caller_address(req, app) == "203.0.113.1");
}

TEST_CASE("web: X-Forwarded-For only from a trusted proxy") {
    TrustedProxies none;
    CHECK(*client_address("198.51.100.7", "203.0.113.1", none) == "198.51.100.7");
    TrustedProxies p;
    REQUIRE(p.add("198.51.100.0/24"));
    CHECK_FALSE(p.add("not-a-net"));
    CHECK(*client_address("198.51.100.7", "203.0.113.1", p) == "203.0.113.1");
    // A client's own forged entry left of the proxy's is not believed.
    CHECK(*client_address("198.51.100.7", "192.0.2.66, 203.0.113.1", p) == "203.0.113.1");
    // Chains of trusted proxies are walked right to left.
    CHECK(*client_address("198.51.100.7", "203.0.113.1, 198.51.100.8", p) == "203.0.113.1");
    CHECK(*client_address("203.0.113.5", "198.51.100.1", p) == "203.0.113.5");
    CHECK_FALSE(client_address("198.51.100.7", "garbage", p));
    CHECK(*client_address("198.51.100.7", "", p) == "198.51.100.7");
}

TEST_CASE("web: a reverse proxy on this host may be trusted") {
    TrustedProxies p;
    REQUIRE(p.add("127.0.0.1"));
    REQUIRE(p.add("::1"));
    CHECK_FALSE(p.add("10.0.0.0/0"));
    CHECK_FALSE(p.add("10.0.0.0/33"));
    CHECK(*client_address("127.0.0.1", "198.51.100.4", p) == "198.51.100.4");
    CHECK(*client_address("::1", "2001:db8::4", p) == "2001:db8::4");
}

TEST_CASE("web: POST /api/v1/op: the socket's operation, from_me filled, nothing else") {
    auto call = [](std::string_view body) { return route_op(body, "203.0.113.9"); };
    auto ok = call(R"({"op":"request","args":{"port":5432,"from_me":true}})");
    REQUIRE(std::holds_alternative<ApiCall>(ok));
    CHECK(std::get<ApiCall>(ok).op == "request");
    CHECK(std::get<ApiCall>(ok).args == json{{"port", 5432}, {"from", "203.0.113.9"}});
    auto list = call(R"({"op":"list"})");
    REQUIRE(std::holds_alternative<ApiCall>(list));
    CHECK(std::get<ApiCall>(list).args == json::object());
    // from_me only fills "from" for a request; elsewhere it is passed on for jitgated to refuse.
    for (const char* bad :
         {R"({"op":"list","token":"x"})", R"({"op":"list","from":"1.2.3.4"})", R"({"args":{}})",
          R"({"op":"list","args":[]})", R"({"op":"request","args":{"from":"198.51.100.1","from_me":true}})",
          R"({"op":"request","args":{"from_me":"yes"}})", R"({"op":"audit","args":{"follow":true}})",
          "[1]"}) {
        CAPTURE(bad);
        auto r = call(bad);
        REQUIRE(std::holds_alternative<ApiError>(r));
        CHECK(std::get<ApiError>(r).status == 400);
    }
    auto nf = call(R"({"op":"notify_failed","args":{"target":"t"}})");
    REQUIRE(std::holds_alternative<ApiError>(nf));
    CHECK(std::get<ApiError>(nf).status == 403);
    auto tok = call(R"({"op":"list","token":"x"})");
    CHECK(std::get<ApiError>(tok).message.find("Authorization") != std::string::npos);
}

TEST_CASE("web: issuer URLs: https, or http to loopback only") {
    CHECK(split_issuer_url("https://idp.example.org/realms/x")->origin == "https://idp.example.org");
    CHECK(split_issuer_url("https://idp.example.org/realms/x")->path == "/realms/x");
    CHECK(split_issuer_url("http://127.0.0.1:8080")->origin == "http://127.0.0.1:8080");
    CHECK_FALSE(split_issuer_url("http://idp.example.org"));
    CHECK_FALSE(split_issuer_url("ftp://idp.example.org"));
    CHECK_FALSE(split_issuer_url("http://127.evil.example"));  // a name, not a loopback address
    CHECK_FALSE(split_issuer_url("http://localhost.evil.example:80/x"));
}

TEST_CASE("web: read_claims reads a JWT's payload") {
    const std::string payload = base64url(R"({"nonce":"n1","preferred_username":"alice","exp":2000000000})");
    auto c = read_claims("e30." + payload + ".sig", "preferred_username");
    REQUIRE(c);
    CHECK(c->nonce == "n1");
    CHECK(c->user == "alice");
    CHECK_FALSE(read_claims("garbage", "preferred_username"));
    CHECK_FALSE(read_claims("e30." + base64url(R"({"nonce":"n"})") + ".s", "preferred_username"));
}

TEST_CASE("web: jitgated accepts the [web] table of the shared configuration file") {
    auto load = jg::parse_policy("[web]\npublic_url = \"https://jit.example.org\"\n", "jitgate.toml");
    CHECK(load.errors.empty());
}

TEST_CASE("web: far-off times from untrusted input do not overflow the clock") {
    auto c = read_claims("e30." + base64url(R"({"exp":9223372036854775807})") + ".s", "preferred_username");
    REQUIRE(c);
    CHECK(c->expires > Clock::now());
    CHECK(seconds_until("9999-12-31T23:59:59Z", Clock::now()) > 0);
}

}  // namespace test_web
