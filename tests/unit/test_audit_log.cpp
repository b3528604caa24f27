// The daemon's audit log writer: records sealed as they come and written in
// batches, the head file before each batch, and a batch cut short by a kill
// (sealed, not all written) told apart from records removed.
#include <doctest/doctest.h>

#include <signal.h>
#include <sys/resource.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/audit.h"
#include "daemon/audit_log.h"
#include "fakes.h"
#include "helpers.h"
#include "util/log.h"

namespace test_audit_log {
using namespace jg;
using namespace jg::testing;

namespace {

std::string slurp(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string l; std::getline(in, l);) out.push_back(l);
    return out;
}

VerifyResult verify_file(const std::string& path) {
    std::ifstream in(path);
    return verify_chain({{path, &in}});
}

// RLIMIT_FSIZE lowered to `bytes` while it lives, with SIGXFSZ ignored:
// a write past it fails with EFBIG (as a full disk fails with ENOSPC).
class FileSizeLimit {
public:
    explicit FileSizeLimit(std::uintmax_t bytes) {
        REQUIRE(getrlimit(RLIMIT_FSIZE, &old_) == 0);
        old_sig_ = signal(SIGXFSZ, SIG_IGN);
        rlimit lower = old_;
        lower.rlim_cur = rlim_t(bytes);
        REQUIRE(setrlimit(RLIMIT_FSIZE, &lower) == 0);
    }
    ~FileSizeLimit() {
        setrlimit(RLIMIT_FSIZE, &old_);
        signal(SIGXFSZ, old_sig_);
    }
    FileSizeLimit(const FileSizeLimit&) = delete;
    FileSizeLimit& operator=(const FileSizeLimit&) = delete;

private:
    rlimit old_{};
    sighandler_t old_sig_ = SIG_DFL;
};

json deny(int i) { return {{"type", "deny"}, {"port", 5432}, {"uid", 1000 + i}}; }

}  // namespace

TEST_SUITE("audit log") {
    TEST_CASE("the head file: first seq of the batch, read back; a head without it is one record") {
        SavedHead h;
        h.head = {12, std::string(64, 'a')};
        h.first = 10;
        h.prev_hash = std::string(64, 'b');
        h.lost_seen = 3;
        auto back = parse_saved_head(format_saved_head(h));
        REQUIRE(back);
        CHECK(back->head.seq == 12);
        CHECK(back->first == 10);
        CHECK(back->prev_hash == h.prev_hash);
        CHECK(back->lost_seen == 3);
        // As an earlier jitgated wrote it: no first=.
        std::string old = format_saved_head(h);
        old = old.substr(0, old.find(" first=")) + "\n";
        back = parse_saved_head(old);
        REQUIRE(back);
        CHECK(back->first == 12);
    }

    TEST_CASE("records are written when flushed, in one batch; the head file matches after it") {
        TempDir dir;
        const std::string log = dir.file("audit.jsonl"), head = dir.file("audit.head");
        FakeClock clock;
        auto a = AuditLog::open({log, head, false, ""}, clock);
        REQUIRE(a.ok());
        std::vector<json> seen;
        (*a)->wants_records = [] { return true; };
        (*a)->on_record = [&](const json& r) { seen.push_back(r); };
        for (int i = 0; i < 5; ++i) (*a)->emit(deny(i));
        CHECK(slurp(log).empty());
        (*a)->flush();
        const auto lines = lines_of(slurp(log));
        REQUIRE(lines.size() == 5);
        REQUIRE(seen.size() == 5);
        // Each record as written, without its line parsed back.
        for (std::size_t i = 0; i < 5; ++i) CHECK(seen[i] == json::parse(lines[i]));
        auto saved = parse_saved_head(slurp(head));
        REQUIRE(saved);
        CHECK(saved->head.seq == 5);
        CHECK(saved->first == 1);
        CHECK(saved->head.hash == json::parse(lines[4])["hash"]);
        CHECK(verify_file(log).ok);
    }

    TEST_CASE("a batch cut short by a kill: the log verifies, the chain goes on, the rest is reported") {
        TempDir dir;
        const std::string log = dir.file("audit.jsonl"), head = dir.file("audit.head");
        FakeClock clock;
        std::string saved_head;
        {
            auto a = AuditLog::open({log, head, false, ""}, clock);
            REQUIRE(a.ok());
            for (int i = 0; i < 3; ++i) (*a)->emit(deny(i));
            (*a)->flush();
            for (int i = 3; i < 9; ++i) (*a)->emit(deny(i));
            (*a)->flush();
            saved_head = slurp(head);  // as it was while the batch was written (not closed)
        }
        // The kill: only part of the second batch reached the file, the last
        // record of it cut in the middle.
        const auto lines = lines_of(slurp(log));
        REQUIRE(lines.size() == 9);
        {
            std::ofstream out(log, std::ios::trunc);
            for (int i = 0; i < 5; ++i) out << lines[std::size_t(i)] << "\n";
            out << lines[5].substr(0, 40);
            std::ofstream(head, std::ios::trunc) << saved_head;
        }
        auto a = AuditLog::open({log, head, false, ""}, clock);
        REQUIRE(a.ok());
        CHECK((*a)->problems().empty());
        CHECK((*a)->unwritten() == std::pair<std::uint64_t, std::uint64_t>{6, 9});
        CHECK((*a)->head().seq == 5);
        (*a)->emit(deny(10));
        (*a)->flush();
        const auto after = lines_of(slurp(log));
        REQUIRE(after.size() == 6);
        CHECK(json::parse(after[5])["seq"] == 6);
        CHECK(verify_file(log).ok);
    }

    TEST_CASE("records removed from the end of a written batch are still found out") {
        TempDir dir;
        const std::string log = dir.file("audit.jsonl"), head = dir.file("audit.head");
        FakeClock clock;
        {
            auto a = AuditLog::open({log, head, false, ""}, clock);
            REQUIRE(a.ok());
            for (int i = 0; i < 4; ++i) (*a)->emit(deny(i));
        }  // a clean stop: the head says closed
        const auto lines = lines_of(slurp(log));
        {
            std::ofstream out(log, std::ios::trunc);
            for (int i = 0; i < 2; ++i) out << lines[std::size_t(i)] << "\n";
        }
        auto a = AuditLog::open({log, head, false, ""}, clock);
        REQUIRE(a.ok());
        CHECK((*a)->unwritten().first == 0);
        REQUIRE((*a)->problems().size() == 1);
        CHECK((*a)->problems()[0].find("records 3-4 were removed") != std::string::npos);
    }

    TEST_CASE("each record's ts is the wall time of the clock the log was given") {
        TempDir dir;
        const std::string log = dir.file("audit.jsonl"), head = dir.file("audit.head");
        FakeClock clock;
        auto a = AuditLog::open({log, head, false, ""}, clock);
        REQUIRE(a.ok());
        (*a)->emit(deny(0));
        clock.advance(90);
        AuditFields f;
        f.add("type", "deny").add("port", std::uint16_t(5432));
        (*a)->emit(f);
        (*a)->flush();
        const auto lines = lines_of(slurp(log));
        REQUIRE(lines.size() == 2);
        CHECK(json::parse(lines[0])["ts"] == "2027-01-15T08:00:00.000000Z");
        CHECK(json::parse(lines[1])["ts"] == "2027-01-15T08:01:30.000000Z");
        CHECK(verify_file(log).ok);
    }

    TEST_CASE("a log that cannot be written reports it, writes nothing more and records no clean stop") {
        TempDir dir;
        const std::string log = dir.file("audit.jsonl"), head = dir.file("audit.head");
        FakeClock clock;
        std::vector<std::string> logged;
        set_log_sink([&](std::string_view m) { logged.emplace_back(m); });
        {
            auto a = AuditLog::open({log, head, false, ""}, clock);
            REQUIRE(a.ok());
            for (int i = 0; i < 4; ++i) (*a)->emit(deny(i));
            REQUIRE((*a)->flush());
            const auto written = std::filesystem::file_size(log);
            REQUIRE(written > std::filesystem::file_size(head));
            // The log may not grow (a full disk): its write fails with EFBIG,
            // the head file (rewritten in place) still takes the next batch.
            bool flushed = true;
            {
                FileSizeLimit limit(written);
                (*a)->emit(deny(4));
                flushed = (*a)->flush();
            }
            CHECK_FALSE(flushed);
            CHECK((*a)->failed());
            CHECK((*a)->failure().find("cannot write the audit log " + log) != std::string::npos);
            REQUIRE(logged.size() == 1);
            CHECK(logged[0].find("; stopping (enforcement stays attached)") != std::string::npos);
            // Nothing is sealed or written after it, though the disk has room again.
            (*a)->emit(deny(5));
            CHECK_FALSE((*a)->flush());
            (*a)->sync();
            CHECK((*a)->check_file().empty());
            CHECK((*a)->head().seq == 5);
            CHECK(std::filesystem::file_size(log) == written);
        }
        set_log_sink(nullptr);
        CHECK(lines_of(slurp(log)).size() == 4);
        auto saved = parse_saved_head(slurp(head));
        REQUIRE(saved);
        CHECK_FALSE(saved->closed);
        // The next start reports the record sealed and not written, and goes on.
        auto again = AuditLog::open({log, head, false, ""}, clock);
        REQUIRE(again.ok());
        CHECK((*again)->unwritten() == std::pair<std::uint64_t, std::uint64_t>{5, 5});
        CHECK((*again)->problems().empty());
        CHECK((*again)->head().seq == 4);
    }
}

}  // namespace test_audit_log
