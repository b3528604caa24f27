#include "web/session.h"

#include <algorithm>

#include "web/random.h"

namespace jg::web {

namespace {

// Removes the entry expiring first: the table is full.
template <typename Map>
void drop_oldest(Map& m) {
    auto oldest = std::min_element(
        m.begin(), m.end(), [](const auto& a, const auto& b) { return a.second.expires < b.second.expires; });
    if (oldest != m.end()) m.erase(oldest);
}

}  // namespace

void SessionStore::sweep(Clock::time_point now) {
    std::erase_if(sessions_, [&](const auto& kv) { return kv.second.expires <= now; });
    std::erase_if(logins_, [&](const auto& kv) { return kv.second.expires <= now; });
}

Session SessionStore::create(std::string id_token, std::string user, Clock::time_point token_expiry,
                             Clock::time_point now) {
    Session s{random_token(),
              random_token(),
              std::move(id_token),
              std::move(user),
              std::min(token_expiry, now + kMaxSessionLife),
              {}};
    std::lock_guard lock(mu_);
    sweep(now);
    while (sessions_.size() >= kMaxSessions) drop_oldest(sessions_);
    sessions_[s.id] = s;
    return s;
}

std::optional<Session> SessionStore::find(const std::string& id, Clock::time_point now) {
    std::lock_guard lock(mu_);
    auto it = sessions_.find(id);
    if (it == sessions_.end()) return std::nullopt;
    if (it->second.expires <= now) {
        sessions_.erase(it);
        return std::nullopt;
    }
    return it->second;
}

void SessionStore::set_notice(const std::string& id, std::string notice) {
    std::lock_guard lock(mu_);
    if (auto it = sessions_.find(id); it != sessions_.end()) it->second.notice = std::move(notice);
}

std::string SessionStore::take_notice(const std::string& id) {
    std::lock_guard lock(mu_);
    auto it = sessions_.find(id);
    if (it == sessions_.end()) return {};
    return std::exchange(it->second.notice, {});
}

void SessionStore::remove(const std::string& id) {
    std::lock_guard lock(mu_);
    sessions_.erase(id);
}

PendingLogin SessionStore::begin_login(std::string binding, Clock::time_point now) {
    PendingLogin p{random_token(), random_token(), random_token(), std::move(binding), now + kLoginTimeout};
    std::lock_guard lock(mu_);
    sweep(now);
    while (logins_.size() >= kMaxPendingLogins) drop_oldest(logins_);
    logins_[p.state] = p;
    return p;
}

std::optional<PendingLogin> SessionStore::finish_login(const std::string& state, const std::string& binding,
                                                       Clock::time_point now) {
    std::lock_guard lock(mu_);
    auto it = logins_.find(state);
    if (it == logins_.end()) return std::nullopt;
    PendingLogin p = std::move(it->second);
    logins_.erase(it);
    if (p.expires <= now || !equal_constant_time(p.binding, binding)) return std::nullopt;
    return p;
}

std::size_t SessionStore::size() {
    std::lock_guard lock(mu_);
    return sessions_.size();
}

}  // namespace jg::web
