#pragma once
// Server-side sessions of signed-in browsers, and the logins under way.
// The browser holds only a random 256-bit id (the cookie); the ID token,
// the CSRF token and the expiry stay here. Bounded: past kMaxSessions the
// oldest are dropped (their users sign in again).
#include <chrono>
#include <cstddef>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>

namespace jg::web {

using Clock = std::chrono::system_clock;

struct Session {
    std::string id;
    std::string csrf;      // per session: every form carries it
    std::string id_token;  // forwarded to jitgated, never sent to the browser
    std::string user;      // the token's name, for display only
    Clock::time_point expires;
    std::string notice;  // shown once on the next page
};

// An authorization code flow started by /login and not yet returned.
struct PendingLogin {
    std::string state;
    std::string nonce;
    std::string verifier;  // PKCE
    std::string binding;   // the login cookie of the browser that started it
    Clock::time_point expires;
    std::string origin;  // the client's address (an IPv6 one as its /64): login_origin()
};

inline constexpr std::size_t kMaxSessions = 10000;
inline constexpr std::size_t kMaxPendingLogins = 10000;
inline constexpr std::chrono::minutes kLoginTimeout{10};
// Sign-ins under way from one address (IPv6: one /64) at most: a client that
// starts more pushes out its own oldest, never another's (a flood of GET
// /login from one place would otherwise push out every real sign-in).
inline constexpr std::size_t kMaxLoginsPerOrigin = 16;

// The address a sign-in counts against: an IPv6 address as its /64 (one
// sender owns all of it), anything else as given.
std::string login_origin(const std::string& address);
inline constexpr std::chrono::hours kMaxSessionLife{12};

class SessionStore {
public:
    // A new session for `id_token`, expiring at `token_expiry` (at most
    // kMaxSessionLife from now).
    Session create(std::string id_token, std::string user, Clock::time_point token_expiry,
                   Clock::time_point now = Clock::now());
    // The live session with this id, or none (unknown or expired: removed).
    std::optional<Session> find(const std::string& id, Clock::time_point now = Clock::now());
    void set_notice(const std::string& id, std::string notice);
    // The notice of session `id`, cleared.
    std::string take_notice(const std::string& id);
    void remove(const std::string& id);

    PendingLogin begin_login(std::string binding, std::string origin = {},
                             Clock::time_point now = Clock::now());
    // The login with this state, once (removed), if it is live and was
    // started by the browser holding `binding`.
    std::optional<PendingLogin> finish_login(const std::string& state, const std::string& binding,
                                             Clock::time_point now = Clock::now());

    std::size_t size();

private:
    void sweep(Clock::time_point now);
    std::mutex mu_;
    std::map<std::string, Session> sessions_;
    std::map<std::string, PendingLogin> logins_;
    // The same, by origin, oldest first: (expires, state).
    std::map<std::string, std::set<std::pair<Clock::time_point, std::string>>> by_origin_;
    void drop_login(std::map<std::string, PendingLogin>::iterator it);
};

}  // namespace jg::web
