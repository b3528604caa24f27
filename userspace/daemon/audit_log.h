#pragma once
// The audit log file: every record sealed into one chain (core/audit.h),
// appended, echoed to stdout in the foreground, and handed to the followers.
//
// The chain head (last seq and hash) is also kept in a small file under the
// state directory, rewritten in place with each record.  It lets the chain
// continue into a fresh file after log rotation while the daemon was down,
// and shows when records were cut from the end of the log.
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/audit.h"
#include "core/result.h"
#include "core/workflow.h"

namespace jg {

// The head file's contents.
struct SavedHead {
    ChainHead head;               // written before the record's line
    std::string prev_hash;        // the record's prev_hash: the head before it
    std::uint64_t lost_seen = 0;  // the kernel's events_lost counter, reported up to here
    bool closed = false;          // the daemon stopped cleanly after its last record
};
std::string format_saved_head(const SavedHead& h);  // fixed length, one line
std::optional<SavedHead> parse_saved_head(const std::string& text);

class AuditLog : public AuditSink {
public:
    struct Options {
        std::string path;       // the log
        std::string head_path;  // the head file (state dir)
        bool echo = false;      // also write each line to stdout
    };
    static Result<std::unique_ptr<AuditLog>> open(const Options& o);
    ~AuditLog() override;

    void emit(json record) override;
    void sync();  // fdatasync when something was written since the last call
    // Once a tick: a rotated (renamed or removed) log is followed into a new
    // file.  Returns a sentence when the file changed under the daemon: it
    // shrank (records cut from its end; a copytruncate rotation to zero bytes
    // is not that) or grew by bytes the daemon did not write.
    std::string check_file();

    const ChainHead& head() const { return saved_.head; }
    const std::string& path() const { return o_.path; }
    std::uint64_t lost_seen() const { return saved_.lost_seen; }
    void set_lost_seen(std::uint64_t n);
    // What open() found wrong with the log it continued (records cut from its
    // end, an incomplete last line); empty when nothing.  The daemon records
    // it as tamper_detected once the workflow runs.
    const std::vector<std::string>& problems() const { return problems_; }
    // A record sealed but not written when the daemon last stopped (killed
    // between the two writes): its seq, or 0.
    std::uint64_t unwritten() const { return unwritten_; }

    // Called with every sealed record, after it was written.
    std::function<void(const json&)> on_record;

    // The newest `limit` records of the current log file that `keep` accepts
    // and whose ts is at or after since_us, oldest first.  Reads backwards and
    // stops at kMaxScanBytes; *more says the scan stopped there.
    // `hints`, when not empty: a line is parsed only if it contains one of
    // them (cheap text search first; `keep` still decides).
    static constexpr std::size_t kMaxScanBytes = 256u << 20;
    std::vector<json> recent(const std::function<bool(const json&)>& keep, std::size_t limit,
                             std::optional<std::int64_t> since_us, bool* more,
                             const std::vector<std::string>& hints = {},
                             std::size_t max_scan = kMaxScanBytes) const;

private:
    explicit AuditLog(Options o) : o_(std::move(o)) {}
    Result<bool> open_log();
    void write_head();
    // The file holds `found` bytes where the daemon left end_: a change
    // (other than a copytruncate to zero) is queued for check_file().
    void judge_size(std::int64_t found);
    [[noreturn]] void fail(const std::string& what);

    Options o_;
    int fd_ = -1;
    int head_fd_ = -1;
    SavedHead saved_;
    std::vector<std::string> problems_;
    std::uint64_t unwritten_ = 0;
    bool dirty_ = false;
    std::int64_t end_ = 0;             // the log's size after the daemon's last write
    std::deque<std::string> pending_;  // changes found, for check_file() to report
};

}  // namespace jg
