#include "web/session.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>
#include <map>

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
    for (auto it = logins_.begin(); it != logins_.end();) {
        auto next = std::next(it);
        if (it->second.expires <= now) drop_login(it);
        it = next;
    }
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

std::string login_origin(const std::string& address) {
    in6_addr a{};
    if (address.find(':') == std::string::npos || inet_pton(AF_INET6, address.c_str(), &a) != 1)
        return address;
    std::memset(a.s6_addr + 8, 0, 8);
    char text[INET6_ADDRSTRLEN] = {};
    inet_ntop(AF_INET6, &a, text, sizeof(text));
    return std::string(text) + "/64";
}

void SessionStore::drop_login(std::map<std::string, PendingLogin>::iterator it) {
    auto o = by_origin_.find(it->second.origin);
    if (o != by_origin_.end()) {
        o->second.erase({it->second.expires, it->first});
        if (o->second.empty()) by_origin_.erase(o);
    }
    logins_.erase(it);
}

PendingLogin SessionStore::begin_login(std::string binding, std::string origin, Clock::time_point now) {
    PendingLogin p{random_token(),     random_token(),      random_token(),
                   std::move(binding), now + kLoginTimeout, std::move(origin)};
    std::lock_guard lock(mu_);
    sweep(now);
    // This client's own first, then (the table full) the oldest of whoever
    // holds the most: a flood from a few places pushes out only its own.
    auto drop_oldest_of = [&](const std::string& o) {
        drop_login(logins_.find(by_origin_.at(o).begin()->second));
    };
    while (by_origin_.count(p.origin) && by_origin_[p.origin].size() >= kMaxLoginsPerOrigin)
        drop_oldest_of(p.origin);
    while (logins_.size() >= kMaxPendingLogins) {
        auto most = std::max_element(by_origin_.begin(), by_origin_.end(), [](const auto& a, const auto& b) {
            return a.second.size() < b.second.size();
        });
        drop_oldest_of(most->first);
    }
    by_origin_[p.origin].insert({p.expires, p.state});
    logins_[p.state] = p;
    return p;
}

std::optional<PendingLogin> SessionStore::finish_login(const std::string& state, const std::string& binding,
                                                       Clock::time_point now) {
    std::lock_guard lock(mu_);
    auto it = logins_.find(state);
    if (it == logins_.end()) return std::nullopt;
    PendingLogin p = it->second;
    drop_login(it);
    if (p.expires <= now || !equal_constant_time(p.binding, binding)) return std::nullopt;
    return p;
}

std::size_t SessionStore::size() {
    std::lock_guard lock(mu_);
    return sessions_.size();
}

}  // namespace jg::web
