// What the fleet suites share: the etcd key prefix, fixed node keys and a
// directory that knows users by name.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "core/ed25519.h"
#include "core/result.h"
#include "core/store.h"
#include "fakes.h"

namespace jg::testing {

// The fleet's key prefix in every fleet test.
inline const std::string P = "/jitgate/v1";

// A node key from a fixed seed: the same character 32 times.
inline Ed25519Key key_of(char c) { return value_or_throw(Ed25519Key::from_seed(std::string(32, c))); }

// Active grant `id` of request id-1: alice on port 5432, started a second
// before `now_us`, ending `seconds` after it (reason INC-7, approved by bob).
inline GrantRow active_grant_row(std::int64_t id, std::int64_t now_us, std::int64_t seconds) {
    GrantRow g;
    g.id = id;
    g.request_id = id - 1;
    g.user = "alice";
    g.port = 5432;
    g.start_us = now_us - 1000000;
    g.expires_us = now_us + seconds * 1000000;
    g.state = "active";
    g.reason = "INC-7";
    g.approvers = {"bob"};
    return g;
}

// A directory that resolves the names it knows to their uids, as NSS would.
class NamesDirectory : public FakeDirectory {
public:
    std::optional<std::uint32_t> uid_of(const std::string& user) override {
        for (const auto& [uid, name] : names)
            if (name == user) return uid;
        return std::nullopt;
    }
};

}  // namespace jg::testing
