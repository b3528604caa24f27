// History read back from the audit log file for `jitgate audit` and for a
// follower that resumes (jitgate notify): the newest records backwards from
// the end, or the records after a seq.  The log is appended in seq order, so
// the records after a seq are found by a binary search over byte offsets,
// not by reading (and parsing) everything newer than them: a resume from an
// old seq costs a few reads, whatever the size of the log.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <deque>
#include <functional>

#include "core/protocol.h"
#include "daemon/audit_log.h"

namespace jg {

namespace {

constexpr off_t kChunk = 1 << 16;

// Feeds each line of fd between floor and pos to take, the newest first, in
// 64 KiB reads, until take sets `done`; returns where reading stopped (0 once
// the whole file was read, its first line included).
off_t read_backwards(int fd, off_t pos, off_t floor, const std::function<void(const std::string&)>& take,
                     const bool& done) {
    std::string buf, carry;  // carry: the start of a line whose beginning is further back
    while (!done && pos > floor) {
        const off_t len = std::min<off_t>(pos - floor, kChunk);
        pos -= len;
        buf.assign(std::size_t(len), '\0');
        if (pread(fd, buf.data(), buf.size(), pos) != len) break;
        buf += carry;
        std::size_t end = buf.size();
        for (;;) {
            auto nl = end == 0 ? std::string::npos : buf.rfind('\n', end - 1);
            if (nl == std::string::npos) break;
            take(buf.substr(nl + 1, end - nl - 1));
            if (done) break;
            end = nl;
        }
        carry = buf.substr(0, end);
    }
    if (!done && pos == 0) take(carry);
    return pos;
}

// The whole lines of fd from a line start on, in 64 KiB reads, up to `end`
// (the file's size when the search began: records appended meanwhile are the
// followers' business).  A line longer than kMaxLine is passed over unread.
class LineReader {
public:
    static constexpr std::size_t kMaxLine = 1 << 20;

    LineReader(int fd, off_t from, off_t end) : fd_(fd), next_(from), end_(end) {}

    // The next whole line and where it starts; false at the end.
    bool next(std::string& line, off_t& start) {
        for (;;) {
            if (auto nl = buf_.find('\n', used_); nl != std::string::npos) {
                start = buf_start_ + off_t(used_);
                line.assign(buf_, used_, nl - used_);
                used_ = nl + 1;
                return true;
            }
            if (next_ >= end_) return false;  // a last line without its newline: still being written
            buf_.erase(0, used_);
            buf_start_ += off_t(used_);
            used_ = 0;
            if (buf_.size() > kMaxLine) {  // no newline in sight: skip to the next one
                buf_start_ += off_t(buf_.size());
                buf_.clear();
                skipping_ = true;
            }
            const off_t len = std::min<off_t>(end_ - next_, kChunk);
            std::string more(std::size_t(len), '\0');
            if (pread(fd_, more.data(), more.size(), next_) != len) return false;
            next_ += len;
            read_ += std::size_t(len);
            if (skipping_) {
                const auto nl = more.find('\n');
                if (nl == std::string::npos) {
                    buf_start_ += len;
                    continue;
                }
                buf_start_ += off_t(nl + 1);
                more.erase(0, nl + 1);
                skipping_ = false;
            }
            buf_ += more;
        }
    }
    // Where the line after the last one given starts.
    off_t position() const { return buf_start_ + off_t(used_); }
    std::size_t bytes_read() const { return read_; }

private:
    int fd_;
    off_t next_, end_;
    std::string buf_;
    off_t buf_start_ = next_;
    std::size_t used_ = 0, read_ = 0;
    bool skipping_ = false;
};

// The seq of a record line; nothing for a line that is no record.
std::optional<std::uint64_t> record_seq(const std::string& line, json* parsed = nullptr) {
    json j = parse_json_bounded(line);
    if (!j.is_object()) return std::nullopt;
    auto it = j.find("seq");
    if (it == j.end() || !it->is_number_unsigned()) return std::nullopt;
    const std::uint64_t seq = it->get<std::uint64_t>();
    if (parsed) *parsed = std::move(j);
    return seq;
}

// A line start at or after `pos` (pos itself when it is 0 or follows a
// newline), and its line; false when there is none before `end`.
bool line_from(int fd, off_t pos, off_t end, std::string& line, off_t& start, std::size_t& read) {
    // The first newline at or after pos-1 ends the line pos falls in; a
    // line starts after it.  Found by a plain scan, however long that line.
    off_t from = 0;
    if (pos > 0) {
        from = -1;
        std::string buf;
        for (off_t at = pos - 1; at < end && from < 0;) {
            const off_t len = std::min<off_t>(end - at, kChunk);
            buf.assign(std::size_t(len), '\0');
            if (pread(fd, buf.data(), buf.size(), at) != len) return false;
            read += std::size_t(len);
            if (auto nl = buf.find('\n'); nl != std::string::npos) from = at + off_t(nl) + 1;
            at += len;
        }
        if (from < 0) return false;
    }
    LineReader r(fd, from, end);
    const bool got = r.next(line, start);
    read += r.bytes_read();
    return got;
}

// A line start at or before the first record whose seq is above `after`:
// every record in [lo, the result) has a seq at or below it.  A binary search
// over offsets in [lo, end), each probe reading the first record at or after
// its middle (lines that are no record, damage, are passed over).  At most
// 64 KiB is left for the caller's reading forward.
off_t first_after(int fd, off_t lo, off_t end, std::uint64_t after, std::size_t& read) {
    std::string line;
    off_t start = 0;
    if (lo > 0) {
        if (!line_from(fd, lo, end, line, start, read)) return end;
        lo = start;
    }
    off_t hi = end;
    constexpr int kMaxProbes = 64;   // 2^64 bytes: never the bound in practice
    constexpr int kMaxSkipped = 16;  // lines that are no record, per probe
    for (int probe = 0; probe < kMaxProbes && hi - lo > kChunk; ++probe) {
        const off_t mid = lo + (hi - lo) / 2;
        std::optional<std::uint64_t> seq;
        off_t at = mid, found = 0;
        for (int skipped = 0; !seq && skipped < kMaxSkipped; ++skipped) {
            if (!line_from(fd, at, hi, line, found, read)) break;
            seq = record_seq(line);
            at = found + off_t(line.size()) + 1;
        }
        if (seq && *seq <= after)
            lo = found + off_t(line.size()) + 1;  // the line after it
        else
            hi = mid;  // the first record past `after` is before mid, or there is no record in between
    }
    return lo;
}

}  // namespace

std::vector<json> AuditLog::recent(const std::function<bool(const json&)>& keep, std::size_t limit,
                                   std::optional<std::int64_t> since_us, bool* more,
                                   const std::vector<std::string>& hints, std::size_t max_scan,
                                   std::size_t* scanned) const {
    *more = false;
    if (scanned) *scanned = 0;
    std::vector<json> out;
    if (limit == 0) return out;
    const unique_fd file(::open(o_.path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!file) return out;
    const int fd = file.get();
    struct stat st {};
    fstat(fd, &st);
    off_t pos = st.st_size;
    const off_t floor = pos > off_t(max_scan) ? pos - off_t(max_scan) : 0;
    const std::string since_ts = since_us ? rfc3339_us(*since_us) : std::string();
    bool done = false;
    constexpr std::string_view kTsPrefix = "{\"ts\":\"";
    auto take = [&](const std::string& line) {
        if (line.empty()) return;
        // The daemon writes ts first: compare it before parsing anything.
        if (since_us && line.compare(0, kTsPrefix.size(), kTsPrefix) == 0 &&
            line.compare(kTsPrefix.size(), since_ts.size(), since_ts) < 0) {
            done = true;
            return;
        }
        if (!hints.empty() && std::none_of(hints.begin(), hints.end(), [&](const std::string& h) {
                return line.find(h) != std::string::npos;
            }))
            return;
        json j = parse_json_bounded(line);
        if (j.is_discarded() || !j.is_object()) return;
        // ts is fixed-width RFC 3339 UTC: text order is time order.
        const std::string ts = j.value("ts", "");
        if (since_us && ts < since_ts) {
            done = true;
            return;
        }
        if (keep(j)) {
            out.push_back(std::move(j));
            if (out.size() >= limit) done = true;
        }
    };
    pos = read_backwards(fd, pos, floor, take, done);
    if (scanned) *scanned = std::size_t(st.st_size - pos);
    if (!done && pos > 0) *more = true;
    std::reverse(out.begin(), out.end());
    return out;
}

std::vector<json> AuditLog::after(const std::function<bool(const json&)>& keep, std::uint64_t after,
                                  std::size_t limit, bool* newer, bool* missing,
                                  const std::vector<std::string>& hints, std::size_t max_scan,
                                  std::size_t* scanned, std::uint64_t* oldest) const {
    *newer = false;
    *missing = false;
    if (oldest) *oldest = 0;
    if (scanned) *scanned = 0;
    std::vector<json> out;
    // Nothing sealed after it: nothing to read (a follower that is caught up).
    if (after >= head().seq || limit == 0) return out;
    const unique_fd file(::open(o_.path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!file) {
        *missing = true;
        return out;
    }
    const int fd = file.get();
    struct stat st {};
    fstat(fd, &st);
    const off_t size = st.st_size;
    const off_t floor = size > off_t(max_scan) ? size - off_t(max_scan) : 0;
    std::size_t read = 0;
    const off_t from = first_after(fd, floor, size, after, read);
    LineReader r(fd, from, size);
    std::string line;
    off_t start = 0;
    bool first = true;
    while (r.next(line, start)) {
        if (line.empty()) continue;
        // The first record read tells whether the file still holds the one
        // right after `after` (rotated away, or further back than max_scan).
        const bool wanted =
            first || hints.empty() || std::any_of(hints.begin(), hints.end(), [&](const std::string& h) {
                return line.find(h) != std::string::npos;
            });
        if (!wanted) continue;
        json j;
        const auto seq = record_seq(line, &j);
        if (!seq) continue;
        if (first) {
            first = false;
            if (*seq > after + 1) *missing = true;
            if (oldest) *oldest = *seq;
        }
        if (*seq <= after || !keep(j)) continue;
        if (out.size() == limit) {
            *newer = true;  // one more after the page: the caller asks again
            break;
        }
        out.push_back(std::move(j));
    }
    // An empty file (truncated, or a new one after a rotation) holds none of
    // the records after `after`; else they are in the batch being written.
    if (first && size == 0) *missing = true;
    if (scanned) *scanned = read + r.bytes_read();
    return out;
}

}  // namespace jg
