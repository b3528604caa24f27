#include "cli/login_cmd.h"

#include <fmt/format.h>

#include <chrono>
#include <csignal>
#include <iostream>
#include <thread>

#include "cli/client.h"
#include "cli/http_post.h"
#include "cli/idp_client.h"
#include "cli/token_store.h"
#include "core/clock.h"
#include "core/protocol.h"
#include "core/text.h"

namespace jg {

namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

std::string string_of(const json& j, const char* key) {
    auto v = j.find(key);
    return v != j.end() && v->is_string() ? v->get<std::string>() : std::string();
}

std::int64_t int_of(const json& j, const char* key, std::int64_t fallback) {
    auto v = j.find(key);
    return v != j.end() && v->is_number_integer() ? v->get<std::int64_t>() : fallback;
}

// The failure for fail(): its code (the exit code) and message.
json failure(const char* code, std::string message) {
    return {{"code", code}, {"message", std::move(message)}};
}

// What jitgate-web signs people in with.
struct WebLogin {
    std::string issuer, client_id, scopes;
};

// GET URL/api/v1/login: the issuer, client id and scopes.
std::variant<WebLogin, json> ask_web(const std::string& url) {
    HttpBounds b;
    b.total_timeout_ms = 15000;
    b.max_bytes = 64 * 1024;
    auto got = http_send(url + "/api/v1/login", {"Accept: application/json"}, "", false, b);
    if (!got)
        return failure(code::kUnreachable,
                       fmt::format("cannot reach jitgate-web at {}: {}", url, got.error()));
    json j = parse_json_bounded(got->body);
    const json r = !j.is_discarded() && j.is_object() && j.contains("result") ? j["result"] : json();
    WebLogin w;
    if (got->status == 200 && r.is_object())
        w = {string_of(r, "issuer"), string_of(r, "client_id"), string_of(r, "scopes")};
    if (w.issuer.empty() || w.client_id.empty())
        return failure(code::kInternal, fmt::format("jitgate-web at {} answered HTTP {} without its sign-in "
                                                    "settings (GET /api/v1/login); is that the jitgate-web "
                                                    "base URL, and is it this version or newer?",
                                                    url, got->status));
    return w;
}

// The scopes to ask for: jitgate-web's, and offline_access (a refresh token).
std::string device_scopes(std::string scopes) {
    if (scopes.empty()) scopes = "openid profile email groups";
    if ((" " + scopes + " ").find(" offline_access ") == std::string::npos) scopes += " offline_access";
    return scopes;
}

struct DeviceGrant {
    std::string device_code;
    std::int64_t interval_s = 5;
    Clock::time_point deadline;
};

// POST device_authorization, and what to do told to the person.
std::variant<DeviceGrant, json> start_device(const StoredToken& t, const std::string& endpoint,
                                             const std::string& scopes) {
    auto a = idp_post(endpoint, form_body({{"client_id", t.client_id}, {"scope", device_scopes(scopes)}}));
    if (!a) return failure(code::kUnreachable, a.error());
    const json& b = a->body;
    const std::string uri = string_of(b, "verification_uri").empty() ? string_of(b, "verification_url")
                                                                     : string_of(b, "verification_uri");
    DeviceGrant g{string_of(b, "device_code"), std::clamp<std::int64_t>(int_of(b, "interval", 5), 1, 60), {}};
    if (a->status != 200 || g.device_code.empty() || uri.empty() || string_of(b, "user_code").empty())
        return failure(
            code::kRefused,
            fmt::format("the identity provider refused to start a device login ({}); ask its "
                        "administrator to allow the device grant for client {}",
                        escape_terminal(string_of(b, "error").empty() ? fmt::format("HTTP {}", a->status)
                                                                      : string_of(b, "error")),
                        escape_terminal(t.client_id)));
    const std::int64_t expires_in = std::clamp<std::int64_t>(int_of(b, "expires_in", 600), 10, 3600);
    g.deadline = Clock::now() + std::chrono::seconds(expires_in);
    // Named before the code is entered: a look-alike jitgate-web could send a
    // person to sign in at the real provider for a client that is not ours.
    std::cerr << fmt::format(
        "{} signs you in at {} as its client {}: go on only if that is your "
        "company's identity provider and jitgate.\n",
        t.url, escape_terminal(t.issuer), escape_terminal(t.client_id));
    std::cerr << fmt::format("To sign in to {}, open {}\nand enter the code:  {}\n", t.url,
                             escape_terminal(uri), escape_terminal(string_of(b, "user_code")));
    if (const std::string full = string_of(b, "verification_uri_complete"); !full.empty())
        std::cerr << fmt::format("(or open {} , which holds the code)\n", escape_terminal(full));
    std::cerr << fmt::format("Waiting for the sign-in (the code expires in {} minutes; Ctrl-C stops)...\n",
                             (expires_in + 59) / 60)
              << std::flush;
    return g;
}

// Sleeps `s` seconds unless *stop comes first; false when it did.
bool pause(std::int64_t s, const std::atomic<bool>& stop) {
    const auto until = Clock::now() + std::chrono::seconds(s);
    while (Clock::now() < until)
        if (stop.load())
            return false;
        else
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
    return !stop.load();
}

// Polls the token endpoint at the server's pace until the code is approved
// (t filled), denied, expired, or Ctrl-C; empty json when signed in.
json poll_device(StoredToken& t, DeviceGrant g, const std::atomic<bool>& stop) {
    const std::string form = form_body({{"grant_type", "urn:ietf:params:oauth:grant-type:device_code"},
                                        {"device_code", g.device_code},
                                        {"client_id", t.client_id}});
    for (;;) {
        if (!pause(g.interval_s, stop)) return failure("stopped", "stopped waiting; you are not signed in");
        if (Clock::now() >= g.deadline) break;
        auto a = idp_post(t.token_endpoint, form);
        if (!a) return failure(code::kUnreachable, a.error());
        if (a->status == 200) {
            if (auto ok = take_tokens(a->body, t); !ok) return failure(code::kInternal, ok.error());
            return json();
        }
        const std::string e = string_of(a->body, "error");
        if (e == "authorization_pending") continue;
        if (e == "slow_down") {
            g.interval_s += 5;  // RFC 8628 §3.5
            continue;
        }
        if (e == "access_denied")
            return failure(code::kRefused, fmt::format("the sign-in was denied at the identity provider; run "
                                                       "jitgate login {} to try again",
                                                       t.url));
        if (e == "expired_token") break;
        return failure(
            code::kRefused,
            fmt::format("the identity provider refused the device login ({}); run "
                        "jitgate login {} to try again",
                        escape_terminal(e.empty() ? fmt::format("HTTP {}", a->status) : e), t.url));
    }
    return failure(code::kRefused,
                   fmt::format("the code expired before the sign-in was approved; run jitgate "
                               "login {} to get a new one",
                               t.url));
}

void report(const CliState& s, const StoredToken& t, const std::string& path) {
    const std::string until = rfc3339_us(t.expires_at * 1000000).substr(0, 19) + "Z";
    if (s.json) {
        std::cout << json_text({{"url", t.url},
                                {"user", t.user},
                                {"issuer", t.issuer},
                                {"expires_at", until},
                                {"refresh_token", !t.refresh_token.empty()},
                                {"token_file", path}})
                  << "\n";
        return;
    }
    std::cout << fmt::format("Signed in to {} as {}; the token is kept in {} (valid until {}{})\n", t.url,
                             escape_terminal(t.user.empty() ? "(no preferred_username)" : t.user),
                             escape_terminal(path), until,
                             t.refresh_token.empty() ? "; then run jitgate login again" : ", then renewed");
}

}  // namespace

int run_login(const CliState& s) {
    if (s.forget) return run_logout(s);
    auto url = normalise_web_url(s.login_url);
    if (!url) return fail(s, failure(code::kInvalid, url.error()));
    auto asked = ask_web(*url);
    if (auto* e = std::get_if<json>(&asked)) return fail(s, *e);
    const WebLogin w = std::get<WebLogin>(std::move(asked));
    StoredToken t;
    t.url = *url;
    t.issuer = w.issuer;
    t.client_id = w.client_id;
    auto idp = discover_idp(t.issuer);
    if (!idp) return fail(s, failure(code::kUnreachable, idp.error()));
    if (idp->device_authorization_endpoint.empty())
        return fail(s, failure(code::kInternal,
                               fmt::format("the identity provider {} offers no device login "
                                           "(device_authorization_endpoint); sign in on the page {} instead",
                                           escape_terminal(t.issuer), *url)));
    t.token_endpoint = idp->token_endpoint;
    const std::atomic<bool>& stop = stop_on_signals({SIGINT, SIGTERM});
    auto started = start_device(t, idp->device_authorization_endpoint, w.scopes);
    if (auto* e = std::get_if<json>(&started)) return fail(s, *e);
    if (json e = poll_device(t, std::get<DeviceGrant>(started), stop); !e.is_null()) {
        if (e.value("code", "") == "stopped") {
            std::cerr << "jitgate: " << e.value("message", "") << "\n";
            return 130;
        }
        return fail(s, e);
    }
    auto path = save_token(t);
    if (!path) return fail(s, failure(code::kInternal, path.error()));
    report(s, t, *path);
    return 0;
}

int run_logout(const CliState& s) {
    auto url = normalise_web_url(s.login_url);
    if (!url) return fail(s, failure(code::kInvalid, url.error()));
    auto path = token_path(*url);
    auto gone = forget_token(*url);
    if (!gone) return fail(s, failure(code::kInternal, gone.error()));
    if (s.json)
        std::cout << json_text({{"url", *url}, {"removed", *gone}, {"token_file", path ? *path : ""}})
                  << "\n";
    else
        std::cout << (*gone ? fmt::format("Signed out of {}: removed {}\n", *url, escape_terminal(*path))
                            : fmt::format("No token was kept for {}\n", *url));
    return 0;
}

}  // namespace jg
