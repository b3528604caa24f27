#include "daemon/audit_log.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <functional>

#include "core/clock.h"
#include "core/protocol.h"
#include "daemon/system.h"
#include "util/log.h"

namespace jg {

namespace {

constexpr const char* kHeadMagic = "jitgate-audit-head 1";

// The head file rewritten in place: why not, or empty.
std::string put_head(int fd, const SavedHead& h, const std::string& path) {
    const std::string text = format_saved_head(h);
    if (pwrite(fd, text.data(), text.size(), 0) == ssize_t(text.size())) return {};
    return fmt::format("cannot write the audit chain head {}: {}", path, std::strerror(errno));
}

std::optional<SavedHead> read_saved_head(const std::string& path) {
    const unique_fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return std::nullopt;
    char buf[512];
    const ssize_t n = read(fd.get(), buf, sizeof(buf) - 1);
    if (n <= 0) return std::nullopt;
    return parse_saved_head(std::string(buf, std::size_t(n)));
}

}  // namespace

// `first` comes last, so that an earlier jitgated still reads the rest.
std::string format_saved_head(const SavedHead& h) {
    return fmt::format("{} seq={:020} hash={:64} prev={:64} lost={:020} closed={} first={:020}\n", kHeadMagic,
                       h.head.seq, h.head.hash, h.prev_hash.empty() ? kGenesisHash : h.prev_hash, h.lost_seen,
                       h.closed ? 1 : 0, h.first ? h.first : h.head.seq);
}

std::optional<SavedHead> parse_saved_head(const std::string& text) {
    unsigned long long seq = 0, lost = 0, first = 0;
    int closed = 0;
    char hash[65] = {}, prev[65] = {};
    char magic_a[32] = {}, magic_b[8] = {};
    const int n =
        std::sscanf(text.c_str(), "%31s %7s seq=%llu hash=%64s prev=%64s lost=%llu closed=%d first=%llu",
                    magic_a, magic_b, &seq, hash, prev, &lost, &closed, &first);
    if (n != 7 && n != 8) return std::nullopt;
    // Written by an earlier jitgated (one record at a time), or not a batch's first.
    if (n == 7 || first == 0 || first > seq) first = seq;
    if (fmt::format("{} {}", magic_a, magic_b) != kHeadMagic || std::strlen(hash) != 64 ||
        std::strlen(prev) != 64)
        return std::nullopt;
    SavedHead h;
    h.head.seq = seq;
    h.head.hash = hash;
    h.prev_hash = prev;
    h.lost_seen = lost;
    h.closed = closed == 1;
    h.first = first;
    return h;
}

Result<std::unique_ptr<AuditLog>> AuditLog::open(const Options& o, Clock& clock) {
    auto dir = std::filesystem::path(o.path).parent_path();
    if (!dir.empty())
        if (auto r = make_dir(dir.string(), 0750); !r) return err(r.error());
    auto tail = read_log_tail(o.path);
    if (!tail) return err(tail.error());
    const std::optional<SavedHead> saved = read_saved_head(o.head_path);

    std::unique_ptr<AuditLog> a(new AuditLog(o, clock));
    if (saved) a->saved_ = *saved;
    if (tail->unreadable_last || (tail->incomplete && !tail->head && !saved))
        return err(
            fmt::format("the last line of the audit log {} is not a sealed audit record; move the file "
                        "aside (it is evidence) and start again",
                        o.path));
    bool cut_batch = false;
    if (tail->head && saved) {
        const ChainHead& log_head = *tail->head;
        const ChainHead& mine = saved->head;
        const std::uint64_t first = saved->first ? saved->first : mine.seq;
        // The daemon stopped after sealing a batch [first, mine.seq] (and
        // saving its head) but before all of it was written: the log ends
        // inside the batch, chained to the head before it.
        cut_batch = !saved->closed && log_head.seq + 1 >= first && log_head.seq < mine.seq &&
                    (log_head.seq + 1 == first ? log_head.hash == saved->prev_hash
                     : log_head.seq == first   ? tail->prev_hash == saved->prev_hash
                                               : true);
        if (cut_batch) {
            // The chain goes on from the log; the daemon reports the rest as lost.
            a->unwritten_ = {log_head.seq + 1, mine.seq};
            a->saved_.head = log_head;
            a->saved_.prev_hash.clear();
            a->saved_.first = 0;
        } else if (log_head.seq < mine.seq) {
            // Records were cut from the end: continue after what was written,
            // so that the gap stays visible to audit verify.
            a->problems_.push_back(fmt::format(
                "the audit log ends at seq {} but seq {} had been written: records {}-{} were removed "
                "from its end (or lost in a power failure before they reached the disk)",
                log_head.seq, mine.seq, log_head.seq + 1, mine.seq));
        } else if (log_head.seq == mine.seq && log_head.hash != mine.hash) {
            a->problems_.push_back(fmt::format(
                "the last record of the audit log (seq {}) is not the one written: it was replaced",
                log_head.seq));
        } else if (log_head.seq > mine.seq) {
            // Someone appended records, however well chained: the daemon goes
            // on from what it wrote, and verify shows the seq repeating.
            a->problems_.push_back(fmt::format(
                "the audit log ends at seq {} but jitgated wrote only up to seq {}: records {}-{} were "
                "added by something else",
                log_head.seq, mine.seq, mine.seq + 1, log_head.seq));
        }
    } else if (tail->head) {
        a->saved_.head = *tail->head;
    }
    // A record of that batch cut in the middle by the kill is the daemon's
    // own unfinished write, reported as unwritten: it goes.  Any other
    // incomplete line stays as found.
    if (tail->incomplete && cut_batch) {
        if (truncate(o.path.c_str(), off_t(tail->complete_bytes)) != 0)
            return err(fmt::format("cut the unfinished last record off the audit log {}: {}", o.path,
                                   std::strerror(errno)));
    } else if (tail->incomplete) {
        a->problems_.push_back(
            "the audit log's last line was incomplete (cut in the middle of a record); it was left as "
            "found and closed with a newline");
    }
    // An empty or missing log with a saved head: the log was rotated; the
    // chain goes on from the saved head.
    if (auto r = a->open_log(); !r) return err(r.error());
    if (tail->incomplete && !cut_batch) {
        const char nl = '\n';
        if (write(a->fd_.get(), &nl, 1) != 1)
            return err(fmt::format("write the audit log {}: {}", o.path, std::strerror(errno)));
        a->end_ += 1;
    }
    a->head_fd_.reset(::open(o.head_path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!a->head_fd_)
        return err(fmt::format("open the audit chain head {}: {}", o.head_path, std::strerror(errno)));
    if (auto why = put_head(a->head_fd_.get(), a->saved_, o.head_path); !why.empty()) return err(why);
    a->written_hash_ = a->saved_.head.hash;
    return a;
}

Result<bool> AuditLog::open_log() {
    unique_fd fd(::open(o_.path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0640));
    if (!fd) return err(fmt::format("open the audit log {}: {}", o_.path, std::strerror(errno)));
    if (fd_) fdatasync(fd_.get());
    fd_ = std::move(fd);
    struct stat st {};
    end_ = fstat(fd_.get(), &st) == 0 ? st.st_size : 0;
    return true;
}

AuditLog::~AuditLog() {
    if (failed()) return;  // not a clean stop: the next start finds what was cut
    if (fd_ && head_fd_) flush();
    if (fd_) fdatasync(fd_.get());
    if (head_fd_) {
        // A clean stop: the log must end exactly at this head.
        saved_.closed = true;
        write_head();
        fdatasync(head_fd_.get());
    }
}

void AuditLog::fail(const std::string& what) {
    if (failed()) return;
    failure_ = what;
    log(fmt::format("{}; stopping (enforcement stays attached)", what));
}

bool AuditLog::write_head() {
    if (failed()) return false;
    if (auto why = put_head(head_fd_.get(), saved_, o_.head_path); !why.empty()) {
        fail(why);
        return false;
    }
    head_dirty_ = false;
    return true;
}

void AuditLog::set_lost_seen(std::uint64_t n) {
    saved_.lost_seen = n;
    head_dirty_ = true;  // with the batch that reports it
}

void AuditLog::emit(json r) {
    if (failed()) return;
    if (!o_.node.empty() && r.is_object() && !r.contains("node")) r["node"] = o_.node;
    seal_line(r, rfc3339_us(clock_.wall_us()), saved_.head, batch_);
    sealed(wants_records && wants_records() ? std::move(r) : json());
}

void AuditLog::emit(const AuditFields& r) {
    if (failed()) return;
    seal_line(r, rfc3339_us(clock_.wall_us()), saved_.head, batch_);
    sealed(wants_records && wants_records() ? r.to_json() : json());
}

void AuditLog::sealed(json record) {
    const std::string_view line = std::string_view(batch_).substr(ends_.empty() ? 0 : ends_.back());
    ends_.push_back(batch_.size());
    if (record.is_object()) {
        // What the seal added, as the line has it: it starts with ts and
        // ends with prev_hash and hash (core/audit.h seal_line).
        constexpr std::string_view kTs = "{\"ts\":\"", kPrev = "\"prev_hash\":\"";
        record["ts"] = std::string(line.substr(kTs.size(), line.find('"', kTs.size()) - kTs.size()));
        record["seq"] = saved_.head.seq;
        record["prev_hash"] = std::string(line.substr(line.rfind(kPrev) + kPrev.size(), 64));
        record["hash"] = saved_.head.hash;
    }
    records_.push_back(std::move(record));
    if (batch_.size() >= kMaxBatchBytes) flush();
}

bool AuditLog::flush() {
    if (failed()) return false;
    if (ends_.empty()) return !head_dirty_ || write_head();
    // Taken out first: on_record may emit again.
    const std::string lines = std::exchange(batch_, {});
    const std::vector<std::size_t> ends = std::exchange(ends_, {});
    const std::vector<json> records = std::exchange(records_, {});
    saved_.first = saved_.head.seq - ends.size() + 1;
    saved_.prev_hash = written_hash_;
    saved_.closed = false;
    // The head first: a log that ends after it was written by someone else.
    if (!write_head()) return false;
    std::size_t off = 0;
    while (off < lines.size()) {
        ssize_t n = write(fd_.get(), lines.data() + off, lines.size() - off);
        if (n < 0) {
            if (errno == EINTR) continue;
            fail(fmt::format("cannot write the audit log {}: {}", o_.path, std::strerror(errno)));
            return false;
        }
        off += static_cast<std::size_t>(n);
    }
    written_hash_ = saved_.head.hash;
    // With O_APPEND the offset is now the end of the file: did it change
    // since our last write?
    const off_t pos = lseek(fd_.get(), 0, SEEK_CUR);
    if (pos >= 0) {
        judge_size(std::int64_t(pos) - std::int64_t(lines.size()));
        end_ = pos;
    } else {
        end_ += std::int64_t(lines.size());
    }
    dirty_ = true;
    if (o_.echo) {
        std::fwrite(lines.data(), 1, lines.size(), stdout);
        std::fflush(stdout);
    }
    if (!on_record) return true;
    for (const json& r : records)
        if (!r.is_null()) on_record(r);
    return true;
}

void AuditLog::sync() {
    if (!flush() || !dirty_) return;
    fdatasync(fd_.get());
    fdatasync(head_fd_.get());
    dirty_ = false;
}

std::string AuditLog::check_file() {
    if (!flush()) return {};  // what was sealed goes to the file the daemon had
    struct stat now {
    }, mine{};
    if (fstat(fd_.get(), &mine) != 0) return {};
    if (stat(o_.path.c_str(), &now) != 0 || now.st_dev != mine.st_dev || now.st_ino != mine.st_ino) {
        if (auto r = open_log(); !r) {
            log(
                fmt::format("the audit log was moved away and a new one cannot be opened ({}); writing on "
                            "to the moved file",
                            r.error()));
            return {};
        }
        log(fmt::format("the audit log {} was rotated; the chain continues in the new file at seq {}",
                        o_.path, saved_.head.seq + 1));
        return {};
    }
    judge_size(mine.st_size);
    end_ = mine.st_size;
    if (pending_.empty()) return {};
    std::string why = std::move(pending_.front());
    pending_.pop_front();
    return why;
}

void AuditLog::judge_size(std::int64_t found) {
    if (found == end_) return;
    if (found == 0) {
        log(
            fmt::format("the audit log {} was truncated to zero bytes (a copytruncate rotation?); the chain "
                        "continues after seq {}",
                        o_.path, saved_.head.seq));
        return;
    }
    pending_.push_back(
        found < end_
            ? fmt::format("the audit log shrank from {} to {} bytes while jitgated ran: records were "
                          "removed from its end (the chain head is seq {})",
                          end_, found, saved_.head.seq)
            : fmt::format("{} bytes were added to the audit log by something other than jitgated "
                          "(the chain head is seq {})",
                          found - end_, saved_.head.seq));
}

}  // namespace jg
