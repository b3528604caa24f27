#include "cli/web_transport.h"

#include <fmt/format.h>

#include <chrono>
#include <variant>

#include "cli/http_post.h"
#include "cli/idp_client.h"
#include "cli/token_store.h"
#include "core/protocol.h"
#include "core/text.h"
#include "util/unique_fd.h"

namespace jg {

namespace {

using json = nlohmann::json;

// An ID token this close to its expiry is renewed before it is sent.
constexpr std::int64_t kRenewBeforeS = 60;

json auth_error(const std::string& message) {
    return {{"ok", false}, {"error", {{"code", code::kAuthFailed}, {"message", message}}}};
}

std::int64_t unix_now() {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::string message_of(const json& reply) {
    auto e = reply.find("error");
    if (e == reply.end() || !e->is_object()) return {};
    auto m = e->find("message");
    return m != e->end() && m->is_string() ? m->get<std::string>() : std::string();
}

// The ID token to send, renewed when it is (nearly) expired; else the
// error reply that says what to do.
std::variant<std::string, json> usable_token(const std::string& url) {
    auto loaded = load_token(url);
    if (!loaded) return auth_error(loaded.error());
    if (!*loaded)
        return auth_error(fmt::format("you are not signed in to {}: run jitgate login {}", url, url));
    StoredToken t = std::move(**loaded);
    if (t.expires_at - unix_now() > kRenewBeforeS) return t.id_token;
    // One renewal at a time; one that ran while this waited is used as it is.
    auto lock = lock_token(url);
    if (!lock) return auth_error(lock.error());
    const unique_fd held(*lock);
    auto again = load_token(url);
    if (!again) return auth_error(again.error());
    if (!*again)  // signed out while this waited
        return auth_error(fmt::format("you are not signed in to {}: run jitgate login {}", url, url));
    t = std::move(**again);
    if (t.expires_at - unix_now() > kRenewBeforeS) return t.id_token;
    if (auto r = refresh_token(t); !r)
        return auth_error(
            fmt::format("your sign-in to {} has expired and cannot be renewed ({}): run "
                        "jitgate login {}",
                        url, r.error(), url));
    return t.id_token;
}

}  // namespace

Result<json> web_call(const std::string& web_url, const std::string& op, const json& args,
                      int reply_timeout_ms) {
    auto url = normalise_web_url(web_url);
    if (!url) return err(url.error());
    auto token = usable_token(*url);
    if (auto* e = std::get_if<json>(&token)) return *e;
    // cpp-httplib (Debian's, as jitgate-web is built) reads a header line of
    // at most 8 KiB: a longer token would come back as a bare HTTP 400.
    constexpr std::size_t kHeaderLine = 8192, kBearer = sizeof("Authorization: Bearer ") - 1;
    if (const auto& tok = std::get<std::string>(token); tok.size() + kBearer + 2 > kHeaderLine)
        return err(
            fmt::format("your ID token is {} bytes, and jitgate-web reads an Authorization header of "
                        "at most {} bytes: ask the identity provider's admin to put fewer claims in "
                        "it (groups), or use jitgate on the host itself",
                        tok.size(), kHeaderLine - 2));
    HttpBounds b;
    b.total_timeout_ms = reply_timeout_ms + 10000;  // jitgate-web waits for jitgated up to 30 s itself
    auto got = http_send(*url + "/api/v1/op",
                         {"Content-Type: application/json", "Accept: application/json",
                          "Authorization: Bearer " + std::get<std::string>(token)},
                         json_text({{"op", op}, {"args", args}}), true, b);
    if (!got) return err(fmt::format("cannot reach jitgate-web at {}: {}", *url, got.error()));
    json reply = parse_json_bounded(got->body);
    const bool is_reply = !reply.is_discarded() && reply.is_object() && reply.contains("ok");
    if (got->status == 401) {
        const std::string why = is_reply ? message_of(reply) : std::string();
        return auth_error(fmt::format("jitgate-web at {} refused your sign-in{}: run jitgate login {}", *url,
                                      why.empty() ? "" : " (" + why + ")", *url));
    }
    if (!is_reply)
        return err(
            fmt::format("jitgate-web at {} answered HTTP {} without a jitgated reply; is that the "
                        "jitgate-web base URL?",
                        *url, got->status));
    return reply;
}

}  // namespace jg
