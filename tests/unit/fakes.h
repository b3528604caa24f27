#pragma once
// Fakes of what the workflow reaches outside itself (core/workflow.h): the
// user database, the kernel's grant maps and cut pass, the audit sink and the
// clocks.  Shared by the workflow and connection-cut unit tests.
#include <doctest/doctest.h>

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/workflow.h"
#include "helpers.h"

namespace jg::testing {

constexpr std::uint64_t kBoot0 = 5000ULL * 1000000000ULL;  // CLOCK_BOOTTIME at start, ns
constexpr std::int64_t kWall0 = 1800000000LL * 1000000;    // 2027-01-15T08:00:00Z, us
constexpr std::uint64_t kSec = 1000000000ULL;
constexpr std::int64_t kUs = 1000000;

class FakeDirectory : public Directory {
public:
    std::map<std::uint32_t, std::string> names;
    std::map<std::string, std::set<std::string>> groups;  // user -> groups
    std::vector<std::string> asked;                       // "user@group" per in_group call

    std::optional<std::string> user_name(std::uint32_t uid) override {
        auto it = names.find(uid);
        if (it == names.end()) return std::nullopt;
        return it->second;
    }
    bool in_group(std::uint32_t, const std::string& user, const std::string& group) override {
        asked.push_back(user + "@" + group);
        auto it = groups.find(user);
        return it != groups.end() && it->second.count(group) > 0;
    }
    // A uid in `names` is that account; any other is whatever its caller says
    // (tests that do not care about accounts), unless listed in `gone`.
    std::set<std::uint32_t> gone;
    bool unanswered = false;                  // the user database does not answer
    std::set<std::uint32_t> unanswered_uids;  // ... nor for these uids
    std::optional<bool> is_account(std::uint32_t uid, const std::string& user) override {
        if (unanswered || unanswered_uids.count(uid)) return std::nullopt;
        if (auto it = names.find(uid); it != names.end()) return it->second == user;
        return gone.count(uid) == 0;
    }
};

// What the kernel was given for one grant; the source in its canonical text
// (format_source of the typed net the sink received), to compare with what
// was asked for.
struct FakeGrant {
    std::uint32_t uid = 0;
    std::string src;  // "" for a local grant
    std::uint16_t port = 0;
    Proto proto = Proto::Tcp;
    std::uint64_t expires_boot_ns = 0;
};

class FakeSink : public GrantSink {
public:
    std::map<std::int64_t, FakeGrant> live;  // by grant id
    std::vector<std::int64_t> puts, removes;
    std::optional<std::string> fail_with;
    std::vector<CutConnection> next_cut;  // what the next cut pass ends
    int cut_calls = 0;

    Result<bool> put(const KernelGrant& g) override {
        if (fail_with) return err(*fail_with);
        puts.push_back(g.id);
        live[g.id] = FakeGrant{g.uid, g.src ? format_source(*g.src) : "", g.port, g.proto, g.expires_boot_ns};
        return true;
    }
    void remove(const KernelGrant& g) override {
        removes.push_back(g.id);
        live.erase(g.id);
    }
    std::vector<CutConnection> cut_connections() override {
        ++cut_calls;
        return std::exchange(next_cut, {});
    }
};

class FakeAudit : public AuditSink {
public:
    std::vector<json> records;
    bool unwritable = false;  // flush() fails, as a full disk makes the daemon's log fail
    std::size_t flushed = 0;  // how many of `records` a flush() has written
    void emit(json record) override { records.push_back(std::move(record)); }
    bool flush() override {
        if (!unwritable) flushed = records.size();
        return !unwritable;
    }
    std::vector<std::string> types() const {
        std::vector<std::string> t;
        for (auto& r : records) t.push_back(r.at("type").get<std::string>());
        return t;
    }
    std::vector<json> of(const std::string& type) const {
        std::vector<json> out;
        for (auto& r : records)
            if (r.at("type") == type) out.push_back(r);
        return out;
    }
    const json& last(const std::string& type) const {
        for (auto it = records.rbegin(); it != records.rend(); ++it)
            if (it->at("type") == type) return *it;
        FAIL("no audit record of type " << type);
        static const json none;
        return none;
    }
};

class FakeClock : public Clock {
public:
    std::uint64_t boot = kBoot0;
    std::int64_t wall = kWall0;
    std::uint64_t boot_ns() override { return boot; }
    std::int64_t wall_us() override { return wall; }
    void advance(std::int64_t seconds) {
        boot += std::uint64_t(seconds) * kSec;
        wall += seconds * kUs;
    }
};

}  // namespace jg::testing
