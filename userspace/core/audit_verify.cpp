#include "core/audit_verify.h"

#include <fmt/format.h>

#include <algorithm>
#include <istream>
#include <limits>
#include <map>
#include <optional>

#include "core/clock.h"
#include "core/protocol.h"

namespace jg {

namespace {

enum class LineRead { Line, Partial, TooLong, End, Error };

// One line into `buf` (kMaxAuditLineBytes + 2 bytes), without holding more:
// Line ends with '\n'; Partial ends at the end of the stream without one;
// TooLong is skipped up to its newline.
LineRead read_line(std::istream& in, std::vector<char>& buf, std::string_view& line) {
    in.getline(buf.data(), static_cast<std::streamsize>(buf.size()));
    const auto n = static_cast<std::size_t>(in.gcount());
    if (in.bad()) return LineRead::Error;
    if (in.eof()) {
        if (n == 0) return LineRead::End;
        line = {buf.data(), n};
        return n > kMaxAuditLineBytes ? LineRead::TooLong : LineRead::Partial;
    }
    if (in.fail()) {  // the buffer filled before a newline
        in.clear();
        in.ignore(std::numeric_limits<std::streamsize>::max(), '\n');
        return in.bad() ? LineRead::Error : LineRead::TooLong;
    }
    line = {buf.data(), n - 1};  // gcount counted the newline
    return n - 1 > kMaxAuditLineBytes ? LineRead::TooLong : LineRead::Line;
}

bool is_hash(const json& v) {
    if (!v.is_string()) return false;
    const auto& s = v.get_ref<const std::string&>();
    return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
               return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
           });
}

// Why `j` is not a sealed record; empty when it is one.
std::string not_a_record(const json& j) {
    if (!j.is_object()) return "it is not a JSON object";
    auto seq = j.find("seq");
    if (seq == j.end()) return "it has no seq";
    if (!seq->is_number_unsigned() || seq->get<std::uint64_t>() == 0)
        return "its seq is not a positive whole number";
    for (const char* k : {"prev_hash", "hash"}) {
        auto h = j.find(k);
        if (h == j.end()) return fmt::format("it has no {}", k);
        if (!is_hash(*h)) return fmt::format("its {} is not 64 hex digits", k);
    }
    return {};
}

std::uint64_t seq_of(const json& j) {
    auto seq = j.is_object() ? j.find("seq") : j.end();
    return seq != j.end() && seq->is_number_unsigned() ? seq->get<std::uint64_t>() : 0;
}

// Where a record with seq in [lo, hi] is, reading the rest of `files` from
// `from` on (the current position of the first); empty if none.
std::string find_later(const std::vector<std::pair<std::string, std::istream*>>& files, std::size_t from,
                       std::uint64_t line_no, std::uint64_t lo, std::uint64_t hi, std::vector<char>& buf) {
    for (std::size_t f = from; f < files.size(); ++f) {
        std::istream* in = files[f].second;
        if (f != from) line_no = 0;
        if (!in || !*in) continue;
        for (;;) {
            std::string_view text;
            const LineRead lr = read_line(*in, buf, text);
            if (lr == LineRead::End || lr == LineRead::Error) break;
            ++line_no;
            if (lr == LineRead::TooLong || text.find("\"seq\"") == std::string_view::npos) continue;
            const std::uint64_t s = seq_of(parse_json_bounded(text));
            if (s >= lo && s <= hi)
                return f == from ? fmt::format("line {}", line_no)
                                 : fmt::format("line {} of {}", line_no, files[f].first);
        }
    }
    return {};
}

std::string removed(std::uint64_t lo, std::uint64_t hi) {
    return lo == hi ? fmt::format("record {} was removed", lo)
                    : fmt::format("records {}-{} were removed", lo, hi);
}

// A broken record: its seq (0 when unreadable) and the sentence naming it.
struct Problem {
    std::uint64_t seq = 0;
    std::string text;
    bool truncated = false;  // an incomplete last line
};

using Files = std::vector<std::pair<std::string, std::istream*>>;
using Witnessed = std::multimap<std::uint64_t, const WitnessedHead*>;

// Why line `line_no` (`text`, read as `lr`) is not a sealed record written
// byte for byte by jitgated; nothing when it is one, parsed into `j`.
std::optional<Problem> record_problem(LineRead lr, std::string_view text, std::uint64_t line_no,
                                      std::istream& in, json& j) {
    if (lr == LineRead::Error)
        return Problem{0, fmt::format("reading stopped at line {}: an input/output error", line_no)};
    if (lr == LineRead::TooLong)
        return Problem{0, fmt::format("line {} is not an audit record: it is longer than {} bytes", line_no,
                                      kMaxAuditLineBytes)};
    if (text.empty()) return Problem{0, fmt::format("line {} is not an audit record: it is empty", line_no)};
    bool too_deep = false;
    j = parse_json_bounded(text, &too_deep);
    const bool last = in.peek() == std::istream::traits_type::eof();
    if (lr == LineRead::Partial || (last && j.is_discarded() && !too_deep))
        return Problem{seq_of(j), "the last line is incomplete: the log was truncated", true};
    if (too_deep)
        return Problem{0, fmt::format("line {} is not an audit record: it nests deeper than {} levels",
                                      line_no, kMaxJsonDepth)};
    if (j.is_discarded())
        return Problem{0, fmt::format("line {} is not an audit record: it is not valid JSON", line_no)};
    if (auto why = not_a_record(j); !why.empty())
        return Problem{seq_of(j), fmt::format("line {} is not an audit record: {}", line_no, why)};
    const std::uint64_t seq = j["seq"].get<std::uint64_t>();
    if (sha256_hex(canonical(j)) != j["hash"].get_ref<const std::string&>())
        return Problem{seq, fmt::format("record seq {} (line {}) was changed: its hash does not match its "
                                        "content",
                                        seq, line_no)};
    // The hash covers the parsed record; the bytes must be exactly what
    // jitgated wrote, or a reader could see another record than the one
    // hashed (a duplicate key, a BOM, CRLF, 1.0 for 1).
    if (render_line(j) != std::string(text) + "\n")
        return Problem{seq, fmt::format("record seq {} (line {}) is not byte for byte as jitgated wrote it "
                                        "(a duplicate key, extra bytes or another number form): readers "
                                        "could see other values than the ones hashed",
                                        seq, line_no)};
    return std::nullopt;
}

// Why sealed record `j` (line `line_no` of files[f]) does not continue the
// chain `r` holds so far, or disagrees with the daemon's `head`.
std::optional<Problem> link_problem(const VerifyResult& r, const json& j, const Files& files, std::size_t f,
                                    std::uint64_t line_no, const ChainHead* head, const Witnessed& witnessed,
                                    std::vector<char>& buf) {
    const std::string& name = files[f].first;
    const std::uint64_t seq = j["seq"].get<std::uint64_t>();
    const std::string& prev_hash = j["prev_hash"].get_ref<const std::string&>();
    if (r.records == 0) {
        if (seq == 1 && prev_hash != kGenesisHash)
            return Problem{seq, fmt::format("record seq 1 (line {}) does not start a chain: its prev_hash is "
                                            "not the genesis hash",
                                            line_no)};
    } else {
        const std::uint64_t prev = r.last_seq;
        // At a file boundary, say which file fails to continue which.
        const std::string where =
            r.last_file != name ? fmt::format("{} does not continue {}: ", name, r.last_file) : "";
        if (seq <= prev)
            return Problem{seq, fmt::format("{}seq {} follows seq {}: records were reordered or duplicated",
                                            where, seq, prev)};
        if (seq > prev + 1) {
            const std::string later = find_later(files, f, line_no, prev + 1, seq - 1, buf);
            return Problem{seq, later.empty() ? fmt::format("{}seq {} follows seq {}: {}", where, seq, prev,
                                                            removed(prev + 1, seq - 1))
                                              : fmt::format("{}seq {} follows seq {}, and a record between "
                                                            "them comes later ({}): records were reordered",
                                                            where, seq, prev, later)};
        }
        if (prev_hash != r.last_hash)
            return Problem{seq, fmt::format("{}record seq {} (line {}) does not chain to the record before "
                                            "it: its prev_hash is not the hash of seq {}",
                                            where, seq, line_no, prev)};
    }
    if (head && head->seq == seq && head->hash != j["hash"].get_ref<const std::string&>())
        return Problem{seq, fmt::format("record seq {} (line {}) does not match the daemon's record: "
                                        "jitgated holds another hash for seq {}",
                                        seq, line_no, seq)};
    for (auto [w, end] = witnessed.equal_range(seq); w != end; ++w)
        if (w->second->hash != j["hash"].get_ref<const std::string&>())
            return Problem{seq,
                           fmt::format("record seq {} (line {}) is not the one this node published to the "
                                       "fleet at {}: the log was rewritten from seq {} on",
                                       seq, line_no, rfc3339_us(w->second->time_us), seq)};
    return std::nullopt;
}

// Why an intact chain `r` falls short of the highest head this node
// published to the fleet.
std::optional<Problem> short_of_witness(const VerifyResult& r, const Witnessed& witnessed) {
    if (witnessed.empty()) return std::nullopt;
    const WitnessedHead& top = *witnessed.rbegin()->second;
    if (top.seq <= r.last_seq) return std::nullopt;
    return Problem{
        r.records ? r.last_seq + 1 : 1,
        fmt::format("the log ends at seq {} but this node published seq {} to the fleet at {}: {}",
                    r.last_seq, top.seq, rfc3339_us(top.time_us),
                    r.records ? removed(r.last_seq + 1, top.seq) : std::string("its records were removed"))};
}

// Why an intact chain `r` falls short of the daemon's `head`: its tail, or
// every record, was removed.
std::optional<Problem> short_of_head(const VerifyResult& r, const ChainHead& head) {
    if (head.seq <= r.last_seq) return std::nullopt;
    if (r.records == 0)
        return Problem{1, fmt::format("the log has no records but jitgated has written up to seq {}: they "
                                      "were removed, or the log was rotated (then verify the earlier file "
                                      "with it)",
                                      head.seq)};
    return Problem{r.last_seq + 1,
                   fmt::format("the log ends at seq {} but jitgated has written up to seq {}: "
                               "the tail was removed",
                               r.last_seq, head.seq)};
}

void accept(VerifyResult& r, const json& j, const std::string& file) {
    const std::uint64_t seq = j["seq"].get<std::uint64_t>();
    if (r.records == 0) r.first_seq = seq;
    ++r.records;
    r.last_seq = seq;
    r.last_hash = j["hash"].get<std::string>();
    r.last_file = file;
}

}  // namespace

VerifyResult verify_chain(const Files& files, const ChainHead* head,
                          const std::vector<WitnessedHead>* witnessed) {
    VerifyResult r;
    Witnessed w;
    if (witnessed)
        for (const auto& h : *witnessed) w.emplace(h.seq, &h);
    std::vector<char> buf(kMaxAuditLineBytes + 2);
    auto broken = [&r](const std::string& file, std::uint64_t line, Problem p) {
        r.ok = false;
        r.truncated = p.truncated;
        r.file = file;
        r.line = line;
        r.seq = p.seq;
        r.problem = std::move(p.text);
        return r;
    };
    std::uint64_t lines_in_last_file = 0;
    for (std::size_t f = 0; f < files.size(); ++f) {
        const std::string& name = files[f].first;
        std::istream* in = files[f].second;
        if (!in || !*in) return broken(name, 1, {0, fmt::format("{} cannot be read", name)});
        std::uint64_t line_no = 0;
        for (;;) {
            std::string_view text;
            const LineRead lr = read_line(*in, buf, text);
            if (lr == LineRead::End) break;
            ++line_no;
            json j;
            if (auto p = record_problem(lr, text, line_no, *in, j))
                return broken(name, line_no, std::move(*p));
            if (r.records == 0) r.continues = j["seq"].get<std::uint64_t>() > 1;
            if (auto p = link_problem(r, j, files, f, line_no, head, w, buf))
                return broken(name, line_no, std::move(*p));
            accept(r, j, name);
        }
        lines_in_last_file = line_no;
    }
    if (head && !files.empty())
        if (auto p = short_of_head(r, *head)) return broken(files.back().first, lines_in_last_file + 1, *p);
    if (!files.empty())
        if (auto p = short_of_witness(r, w)) return broken(files.back().first, lines_in_last_file + 1, *p);
    return r;
}

}  // namespace jg
