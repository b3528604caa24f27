// The audit log read back (daemon/audit_history.cpp): the records after a seq
// found by a binary search (a resume from an old seq reads a few chunks, not
// the whole log), pages and `newer`, `missing` when the file no longer holds
// them, damaged lines passed over; and the feed's budget of bytes read for
// callers who see only their own records.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "core/protocol.h"
#include "daemon/audit_feed.h"
#include "daemon/audit_log.h"
#include "fakes.h"
#include "helpers.h"

namespace test_audit_history {
using namespace jg;
using namespace jg::testing;

namespace {

struct Log {
    TempDir dir;
    FakeClock clock;
    std::unique_ptr<AuditLog> log;
    Log() {
        auto a = AuditLog::open({dir.file("audit.jsonl"), dir.file("audit.head"), false, ""}, clock);
        REQUIRE(a.ok());
        log = std::move(*a);
    }
    // n records of about 1 KiB each; every tenth is alice's.
    void fill(int n) {
        for (int i = 0; i < n; ++i) {
            log->emit({{"type", "deny"},
                       {"user", i % 10 == 0 ? "alice" : "bob"},
                       {"uid", i % 10 == 0 ? 1000 : 1001},
                       {"pad", std::string(1000, 'x')}});
            if (i % 500 == 499) log->flush();
        }
        log->flush();
    }
    void append_raw(const std::string& text) {
        const int fd = ::open(dir.file("audit.jsonl").c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
        REQUIRE(fd >= 0);
        REQUIRE(write(fd, text.data(), text.size()) == ssize_t(text.size()));
        close(fd);
    }
};

const auto kAll = [](const json&) { return true; };

std::vector<std::uint64_t> seqs(const std::vector<json>& v) {
    std::vector<std::uint64_t> out;
    for (const auto& r : v) out.push_back(r.at("seq").get<std::uint64_t>());
    return out;
}

}  // namespace

TEST_SUITE("audit history") {
    TEST_CASE("the records after a seq: found by a binary search, a page at a time") {
        Log l;
        l.fill(20000);  // about 20 MiB
        bool newer = false, missing = false;
        std::size_t scanned = 0;
        for (std::uint64_t after : {0ull, 1ull, 777ull, 10000ull, 19990ull}) {
            CAPTURE(after);
            const auto page =
                l.log->after(kAll, after, 5, &newer, &missing, {}, AuditLog::kMaxScanBytes, &scanned);
            CHECK(seqs(page) ==
                  std::vector<std::uint64_t>{after + 1, after + 2, after + 3, after + 4, after + 5});
            CHECK(newer);
            CHECK_FALSE(missing);
            // Not the megabytes between the seq and the end: a few 64 KiB reads.
            CHECK(scanned < 2u << 20);
        }
        auto last = l.log->after(kAll, 19998, 5, &newer, &missing);
        CHECK(seqs(last) == std::vector<std::uint64_t>{19999, 20000});
        CHECK_FALSE(newer);
        CHECK_FALSE(missing);
        CHECK(l.log->after(kAll, 20000, 5, &newer, &missing).empty());
        CHECK_FALSE(newer);
        CHECK(l.log->after(kAll, 999999, 5, &newer, &missing).empty());
    }

    TEST_CASE("what `keep` refuses is passed over; hints spare the parse of other users' lines") {
        Log l;
        l.fill(3000);
        auto alice = [](const json& r) { return r.value("user", "") == "alice"; };
        bool newer = false, missing = false;
        std::size_t scanned = 0;
        const std::vector<std::string> hints = {"\"alice\"", "\"uid\":1000"};
        auto page = l.log->after(alice, 100, 3, &newer, &missing, hints, AuditLog::kMaxScanBytes, &scanned);
        CHECK(seqs(page) == std::vector<std::uint64_t>{101, 111, 121});
        CHECK(newer);
        page = l.log->after(alice, 2981, 3, &newer, &missing, hints);
        CHECK(seqs(page) == std::vector<std::uint64_t>{2991});
        CHECK_FALSE(newer);
    }

    TEST_CASE("missing: the record after the seq is further back than the scan, or rotated away") {
        Log l;
        l.fill(4000);  // about 4 MiB
        bool newer = false, missing = false;
        // 1 MiB back from the end: seq 10 is not there; the oldest records in reach are given.
        std::uint64_t oldest = 0;
        auto page = l.log->after(kAll, 10, 2, &newer, &missing, {}, 1u << 20, nullptr, &oldest);
        CHECK(missing);
        CHECK(oldest == page.at(0).at("seq").get<std::uint64_t>());  // where the caller goes on
        REQUIRE(page.size() == 2);
        CHECK(page[0].at("seq").get<std::uint64_t>() > 3000);
        CHECK(page[1].at("seq").get<std::uint64_t>() == page[0].at("seq").get<std::uint64_t>() + 1);
        // Moved away (a rotation): the new file starts after seq 4000.
        std::filesystem::rename(l.dir.file("audit.jsonl"), l.dir.file("audit.jsonl.1"));
        CHECK(l.log->check_file().empty());
        l.fill(3);
        page = l.log->after(kAll, 3990, 10, &newer, &missing);
        CHECK(missing);
        CHECK(seqs(page) == std::vector<std::uint64_t>{4001, 4002, 4003});
        page = l.log->after(kAll, 4000, 10, &newer, &missing);
        CHECK_FALSE(missing);
        CHECK(seqs(page) == std::vector<std::uint64_t>{4001, 4002, 4003});
    }

    TEST_CASE("lines that are no record (damage) are passed over, wherever the search lands") {
        Log l;
        l.fill(1500);
        l.append_raw("not json at all\n{\"seq\":\"x\"}\n" + std::string(300000, 'z') + "\n");
        l.fill(1500);
        bool newer = false, missing = false;
        for (std::uint64_t after : {1ull, 1499ull, 1500ull, 1501ull, 2998ull}) {
            CAPTURE(after);
            auto page = l.log->after(kAll, after, 2, &newer, &missing);
            CHECK(seqs(page) == std::vector<std::uint64_t>{after + 1, after + 2});
            CHECK_FALSE(missing);
        }
    }

    TEST_CASE("the scan's floor inside a line longer than 1 MiB: the record after it is still found") {
        Log l;
        l.fill(8);
        const auto garbage_at = std::filesystem::file_size(l.dir.file("audit.jsonl"));
        l.append_raw(std::string(1536 * 1024, 'z') + "\n");
        l.fill(4);
        const auto size = std::filesystem::file_size(l.dir.file("audit.jsonl"));
        bool newer = false, missing = false;
        // The floor 1000 bytes into the long line.
        auto page = l.log->after(kAll, 8, 10, &newer, &missing, {}, size - (garbage_at + 1000));
        CHECK_FALSE(missing);
        CHECK(seqs(page) == std::vector<std::uint64_t>{9, 10, 11, 12});
    }

    TEST_CASE("callers who see only their own records share a budget of bytes read a second") {
        Log l;
        l.fill(20000);  // about 23 MiB
        const std::size_t size = std::filesystem::file_size(l.dir.file("audit.jsonl"));
        // Queries that start below the budget: each reads the whole log.
        const std::size_t allowed = (AuditFeed::kScanBytesPerSecond + size - 1) / size;
        REQUIRE(allowed >= 2);
        REQUIRE(allowed <= 4);  // under carol's own 5 a second
        FakeDirectory names;
        names.names = {{1000, "alice"}, {1001, "bob"}, {1002, "carol"}};
        AuditFeed feed(*l.log, l.clock, [](const Caller& c) { return c.uid == 0; });
        auto ask = [&](std::uint32_t uid, json args) {
            const auto parsed = parse_as<AuditArgs>(args);
            REQUIRE(std::holds_alternative<AuditArgs>(parsed));
            const Caller who{uid, 0, names.user_name(uid).value_or(std::to_string(uid))};
            const std::string reply = feed.query(Peer{uid, 0, 0, 1}, who, 1, std::get<AuditArgs>(parsed));
            const auto last = reply.rfind('\n', reply.size() - 2);
            return json::parse(last == std::string::npos ? reply : reply.substr(last + 1));
        };
        // carol has no record: each of her queries reads the whole log.
        for (std::size_t i = 0; i < allowed; ++i) CHECK(ask(1002, {{"limit", 10}}).at("ok") == true);
        // Then bob, who has not asked yet, is refused too: the budget is everyone's.
        const json r = ask(1001, {{"limit", 10}});
        REQUIRE(r.at("ok") == false);
        CHECK(r.at("error").at("message").get<std::string>().find("MiB of its log for such queries") !=
              std::string::npos);
        // Root is not counted, and the next second has a new budget.
        CHECK(ask(0, {{"limit", 10}}).at("ok") == true);
        l.clock.advance(1);
        CHECK(ask(1001, {{"limit", 10}}).at("ok") == true);
    }
}

}  // namespace test_audit_history
