#pragma once
// The audit log file: every record sealed into one chain (core/audit.h),
// appended, echoed to stdout in the foreground, and handed to the followers.
//
// Records are sealed as they come and written in batches: one write of
// their lines (and one head-file update before it) per flush(), which the
// daemon calls after each turn of its loop (all the events one poll of the
// ring drained) and before it answers a client.  A batch is also written
// when it reaches kMaxBatchBytes.
//
// The chain head (last seq and hash) is also kept in a small file under the
// state directory, rewritten in place before each batch is written, with
// the seq the batch starts at.  It lets the chain continue into a fresh file
// after log rotation while the daemon was down, shows when records were cut
// from the end of the log, and tells a batch cut short by a kill (its
// records sealed, not all written) from records removed.
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/audit.h"
#include "core/clock.h"
#include "core/result.h"
#include "core/workflow.h"
#include "util/unique_fd.h"

namespace jg {

// The head file's contents.
struct SavedHead {
    ChainHead head;               // written before the batch's lines: its last record
    std::uint64_t first = 0;      // the batch's first seq (0 = head.seq: one record)
    std::string prev_hash;        // the first record's prev_hash: the head before the batch
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
        // Every record's `node` (design.md §4, §7): the node's name in a
        // fleet, the host's name on a single host.
        std::string node;
    };
    // Each record's ts is `clock`'s wall time (the daemon's and the
    // workflow's clock; tests set it).  The clock must outlive the log's
    // last emit; the destructor does not read it.
    static Result<std::unique_ptr<AuditLog>> open(const Options& o, Clock& clock);
    ~AuditLog() override;

    void emit(json record) override;
    // The same, without a json object; the caller adds `node` (node()).
    void emit(const AuditFields& record);
    const std::string& node() const { return o_.node; }
    // Writes the records sealed since the last call (the head file first,
    // then every line in one write), then hands each kept record to
    // on_record.  False once the log has failed (failure()).
    bool flush() override;
    void sync();  // flush, then fdatasync when something was written since the last call
    // Why the head file or the log could not be written, or empty.  The
    // chain cannot skip a record silently, so from then on nothing is
    // written or sealed (emit, flush, sync and check_file do nothing, and no
    // clean stop is recorded): the daemon stops, exit status 1, and leaves
    // enforcement in the kernel and unrecorded events in the ring buffer
    // and the state store for the next start.
    const std::string& failure() const { return failure_; }
    bool failed() const { return !failure_.empty(); }
    static constexpr std::size_t kMaxBatchBytes = 64u << 10;
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
    // Records sealed but not written when the daemon last stopped (killed
    // while it wrote a batch): the first and last seq, or {0, 0}.
    std::pair<std::uint64_t, std::uint64_t> unwritten() const { return unwritten_; }

    // Called with every record, sealed (its ts, seq, prev_hash and hash in
    // it), after it was written; a record is kept for it only when
    // wants_records() said yes as it was sealed (someone follows the log), so
    // that no json is built, nor any line parsed back, for no one.
    std::function<void(const json& record)> on_record;
    std::function<bool()> wants_records;

    // The newest `limit` records of the current log file that `keep` accepts
    // and whose ts is at or after since_us, oldest first.  Reads backwards and
    // stops at max_scan (kMaxScanBytes); *more says the scan stopped there;
    // *scanned: the bytes read.
    // `hints`, when not empty: a line is parsed only if it contains one of
    // them (cheap text search first; `keep` still decides).
    static constexpr std::size_t kMaxScanBytes = 256u << 20;
    std::vector<json> recent(const std::function<bool(const json&)>& keep, std::size_t limit,
                             std::optional<std::int64_t> since_us, bool* more,
                             const std::vector<std::string>& hints = {}, std::size_t max_scan = kMaxScanBytes,
                             std::size_t* scanned = nullptr) const;

    // The oldest `limit` records of the current log file after seq `after`
    // that `keep` accepts, oldest first: where a follower that stopped
    // resumes (jitgate notify).  Found by a binary search over the last
    // max_scan bytes (the file is in seq order), then read forward.
    // *newer: more such records follow the last one given; *missing: the
    // file no longer holds the record right after `after` (further back than
    // max_scan, or before a rotation).  `hints` as for recent(); *scanned:
    // the bytes read; *oldest: the seq of the first record read (where a
    // caller told `missing` resumes).
    std::vector<json> after(const std::function<bool(const json&)>& keep, std::uint64_t after,
                            std::size_t limit, bool* newer, bool* missing,
                            const std::vector<std::string>& hints = {}, std::size_t max_scan = kMaxScanBytes,
                            std::size_t* scanned = nullptr, std::uint64_t* oldest = nullptr) const;

private:
    AuditLog(Options o, Clock& clock) : o_(std::move(o)), clock_(clock) {}
    Result<bool> open_log();
    // The line just appended to batch_: counted, `record` (null: not kept)
    // kept for on_record, and the batch written when full.
    void sealed(json record);
    bool write_head();  // false when it failed (fail())
    // The file holds `found` bytes where the daemon left end_: a change
    // (other than a copytruncate to zero) is queued for check_file().
    void judge_size(std::int64_t found);
    void fail(const std::string& what);  // records and logs the first failure

    Options o_;
    Clock& clock_;
    unique_fd fd_;
    unique_fd head_fd_;
    SavedHead saved_;
    std::vector<std::string> problems_;
    std::pair<std::uint64_t, std::uint64_t> unwritten_{0, 0};
    bool dirty_ = false;
    bool head_dirty_ = false;          // the head file is behind saved_ (lost_seen)
    std::string written_hash_;         // the hash of the last record written
    std::string batch_;                // lines sealed, not written yet
    std::vector<std::size_t> ends_;    // where each of them ends in batch_
    std::vector<json> records_;        // each of them for on_record (null: not kept)
    std::int64_t end_ = 0;             // the log's size after the daemon's last write
    std::deque<std::string> pending_;  // changes found, for check_file() to report
    std::string failure_;              // failure(): set once, never cleared
};

}  // namespace jg
