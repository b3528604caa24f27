#include "core/audit.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <istream>
#include <limits>
#include <set>

#include "core/duration.h"
#include "core/protocol.h"
#include "core/text.h"

namespace jg {

std::string canonical(const json& record) {
    json copy = record;
    copy.erase("hash");
    return copy.dump(-1, ' ', false, json::error_handler_t::replace);
}

namespace {

// SHA-256 fetched once: an implicit fetch on every digest costs more than
// hashing a record.
const EVP_MD* sha256_md() {
    static EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    return md ? md : EVP_sha256();
}

void append_sha256_hex(std::string_view data, std::string& out) {
    static constexpr char kHex[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_Digest(data.data(), data.size(), md, &len, sha256_md(), nullptr);
    for (unsigned i = 0; i < len; ++i) {
        out += kHex[md[i] >> 4];
        out += kHex[md[i] & 15];
    }
}

// The JSON string `t` as dump(-1, ' ', false, replace) writes it, appended
// to `out`: printable ASCII as it is, anything else through nlohmann.
void append_string(std::string_view t, std::string& out) {
    const bool plain = std::all_of(t.begin(), t.end(), [](char c) {
        const auto b = static_cast<unsigned char>(c);
        return b >= 0x20 && b < 0x80 && c != '"' && c != '\\';
    });
    if (plain) {
        out += '"';
        out += t;
        out += '"';
    } else {
        out += json(t).dump(-1, ' ', false, json::error_handler_t::replace);
    }
}

template <typename Int>
void append_int(Int n, std::string& out) {
    char buf[24];
    out.append(buf, std::to_chars(buf, buf + sizeof(buf), n).ptr);
}

// `v` as dump(-1, ' ', false, replace) writes it, appended to `out`; plain
// strings and integers without nlohmann's serialiser.
void append_value(const json& v, std::string& out) {
    if (v.is_string()) {
        append_string(v.get_ref<const std::string&>(), out);
        return;
    }
    if (v.is_number_unsigned() || v.is_number_integer()) {
        if (v.is_number_unsigned())
            append_int(v.get<std::uint64_t>(), out);
        else
            append_int(v.get<std::int64_t>(), out);
        return;
    }
    out += v.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace

std::string sha256_hex(std::string_view data) {
    std::string out;
    out.reserve(64);
    append_sha256_hex(data, out);
    return out;
}

// Replaces key's value with what `write` appends to text_.
template <typename Write>
AuditFields& AuditFields::put(std::string_view key, Write write) {
    std::erase_if(fields_, [&](const Field& f) { return f.key == key; });
    const std::size_t off = text_.size();
    write(text_);
    fields_.push_back({key, off, text_.size() - off});
    return *this;
}

AuditFields& AuditFields::add(std::string_view key, std::string_view text) {
    return put(key, [&](std::string& out) { append_string(text, out); });
}

AuditFields& AuditFields::add(std::string_view key, std::uint64_t n) {
    return put(key, [&](std::string& out) { append_int(n, out); });
}

AuditFields& AuditFields::add(std::string_view key, std::int64_t n) {
    return put(key, [&](std::string& out) { append_int(n, out); });
}

AuditFields& AuditFields::add_json(std::string_view key, const json& v) {
    return put(key, [&](std::string& out) { append_value(v, out); });
}

void AuditFields::clear() {
    text_.clear();
    fields_.clear();
}

std::vector<std::pair<std::string_view, std::string_view>> AuditFields::sorted() const {
    std::vector<std::pair<std::string_view, std::string_view>> out;
    out.reserve(fields_.size());
    for (const auto& f : fields_) out.emplace_back(f.key, std::string_view(text_).substr(f.off, f.len));
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    return out;
}

json AuditFields::to_json() const {
    json j = json::object();
    for (const auto& [k, v] : sorted()) j[std::string(k)] = json::parse(v, nullptr, false);
    return j;
}

void seal_line(const AuditFields& record, std::string_view ts, ChainHead& head, std::string& out) {
    thread_local std::vector<std::pair<std::string_view, std::string_view>> fields;
    thread_local std::string canon;
    const std::uint64_t seq = head.seq + 1;
    std::string seq_text, ts_text, prev_text = "\"" + head.hash + "\"";
    append_int(seq, seq_text);
    append_string(ts, ts_text);
    // ts, seq and prev_hash are the seal's; a record's own are not kept.
    fields.clear();
    fields.emplace_back("ts", ts_text);
    fields.emplace_back("seq", seq_text);
    fields.emplace_back("prev_hash", prev_text);
    for (const auto& [k, v] : record.sorted())
        if (k != "ts" && k != "seq" && k != "prev_hash" && k != "hash") fields.emplace_back(k, v);
    std::sort(fields.begin(), fields.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    auto put = [](std::string& to, std::size_t from, std::string_view k, std::string_view v) {
        if (to.size() > from + 1) to += ',';
        append_string(k, to);
        to += ':';
        to += v;
    };
    canon.assign(1, '{');
    for (const auto& [k, v] : fields) put(canon, 0, k, v);
    canon += '}';
    std::string hash;
    hash.reserve(64);
    append_sha256_hex(canon, hash);

    // The line: ts, seq, type first, the context, then prev_hash and hash.
    const std::size_t from = out.size();
    out += '{';
    auto first = [](std::string_view k) { return k == "ts" || k == "seq" || k == "type"; };
    for (std::string_view k : {"ts", "seq", "type"})
        for (const auto& [fk, v] : fields)
            if (fk == k) put(out, from, fk, v);
    for (const auto& [k, v] : fields)
        if (!first(k) && k != "prev_hash") put(out, from, k, v);
    put(out, from, "prev_hash", prev_text);
    out += ",\"hash\":\"";
    out += hash;
    out += "\"}\n";
    head.seq = seq;
    head.hash = std::move(hash);
}

void seal_line(const json& record, std::string_view ts, ChainHead& head, std::string& out) {
    thread_local AuditFields f;
    f.clear();
    for (const auto& [k, v] : record.items()) f.add_json(k, v);
    seal_line(f, ts, head, out);
}

void seal(json& record, ChainHead& head) {
    record["seq"] = head.seq + 1;
    record["prev_hash"] = head.hash;
    record.erase("hash");
    std::string h = sha256_hex(canonical(record));
    record["hash"] = h;
    head.seq += 1;
    head.hash = std::move(h);
}

std::string render_line(const json& sealed) {
    nlohmann::ordered_json o;
    for (const char* k : {"ts", "seq", "type"})
        if (sealed.contains(k)) o[k] = sealed[k];
    for (auto& [k, v] : sealed.items())
        if (k != "ts" && k != "seq" && k != "type" && k != "prev_hash" && k != "hash") o[k] = v;
    for (const char* k : {"prev_hash", "hash"})
        if (sealed.contains(k)) o[k] = sealed[k];
    return o.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
}

Result<LogTail> read_log_tail(const std::string& path) {
    LogTail t;
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) return t;
        return err(fmt::format("cannot read the audit log {}: {}", path, std::strerror(errno)));
    }
    struct stat st {};
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return err(fmt::format("the audit log {} is not a regular file", path));
    }
    const off_t size = st.st_size;
    const off_t window = static_cast<off_t>(kMaxAuditLineBytes);
    const off_t start = size > window ? size - window : 0;
    std::string tail(static_cast<std::size_t>(size - start), '\0');
    std::size_t got = 0;
    while (got < tail.size()) {
        const ssize_t n = pread(fd, tail.data() + got, tail.size() - got, start + off_t(got));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got += std::size_t(n);
    }
    close(fd);
    tail.resize(got);
    if (tail.empty()) return t;
    t.empty = false;
    if (tail.back() != '\n') {
        t.incomplete = true;
        const auto nl = tail.rfind('\n');
        tail.resize(nl == std::string::npos ? 0 : nl + 1);
    }
    t.complete_bytes = std::uint64_t(start) + tail.size();
    while (!tail.empty() && tail.back() == '\n') tail.pop_back();
    if (tail.empty()) return t;
    const auto nl = tail.rfind('\n');
    const std::string last = nl == std::string::npos ? tail : tail.substr(nl + 1);
    const json j = parse_json_bounded(last);
    if (j.is_discarded() || !j.is_object() || !j.contains("seq") || !j.contains("hash") ||
        !j["seq"].is_number_unsigned() || !j["hash"].is_string()) {
        t.unreadable_last = true;
        return t;
    }
    t.head = ChainHead{j["seq"].get<std::uint64_t>(), j["hash"].get<std::string>()};
    if (j.contains("prev_hash") && j["prev_hash"].is_string())
        t.prev_hash = j["prev_hash"].get<std::string>();
    return t;
}

// --- Verification -----------------------------------------------------------

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

}  // namespace

VerifyResult verify_chain(const std::vector<std::pair<std::string, std::istream*>>& files,
                          const ChainHead* head) {
    VerifyResult r;
    std::vector<char> buf(kMaxAuditLineBytes + 2);
    auto broken = [&r](const std::string& file, std::uint64_t line, std::uint64_t seq, std::string problem) {
        r.ok = false;
        r.file = file;
        r.line = line;
        r.seq = seq;
        r.problem = std::move(problem);
        return r;
    };
    std::uint64_t lines_in_last_file = 0;
    for (std::size_t f = 0; f < files.size(); ++f) {
        const std::string& name = files[f].first;
        std::istream* in = files[f].second;
        if (!in || !*in) return broken(name, 1, 0, fmt::format("{} cannot be read", name));
        std::uint64_t line_no = 0;
        for (;;) {
            std::string_view text;
            const LineRead lr = read_line(*in, buf, text);
            if (lr == LineRead::End) break;
            ++line_no;
            if (lr == LineRead::Error)
                return broken(name, line_no, 0,
                              fmt::format("reading stopped at line {}: an input/output error", line_no));
            if (lr == LineRead::TooLong)
                return broken(name, line_no, 0,
                              fmt::format("line {} is not an audit record: it is longer than {} bytes",
                                          line_no, kMaxAuditLineBytes));
            if (text.empty())
                return broken(name, line_no, 0,
                              fmt::format("line {} is not an audit record: it is empty", line_no));
            bool too_deep = false;
            const json j = parse_json_bounded(text, &too_deep);
            const bool last = in->peek() == std::istream::traits_type::eof();
            if (lr == LineRead::Partial || (last && j.is_discarded() && !too_deep)) {
                r.truncated = true;
                return broken(name, line_no, seq_of(j), "the last line is incomplete: the log was truncated");
            }
            if (too_deep)
                return broken(name, line_no, 0,
                              fmt::format("line {} is not an audit record: it nests deeper than {} levels",
                                          line_no, kMaxJsonDepth));
            if (j.is_discarded())
                return broken(name, line_no, 0,
                              fmt::format("line {} is not an audit record: it is not valid JSON", line_no));
            if (auto why = not_a_record(j); !why.empty())
                return broken(name, line_no, seq_of(j),
                              fmt::format("line {} is not an audit record: {}", line_no, why));
            const std::uint64_t seq = j["seq"].get<std::uint64_t>();
            const std::string& hash = j["hash"].get_ref<const std::string&>();
            const std::string& prev_hash = j["prev_hash"].get_ref<const std::string&>();
            if (sha256_hex(canonical(j)) != hash)
                return broken(name, line_no, seq,
                              fmt::format("record seq {} (line {}) was changed: its hash does not match its "
                                          "content",
                                          seq, line_no));
            // The hash covers the parsed record; the bytes must be exactly what
            // jitgated wrote, or a reader could see another record than the
            // one hashed (a duplicate key, a BOM, CRLF, 1.0 for 1).
            if (render_line(j) != std::string(text) + "\n")
                return broken(name, line_no, seq,
                              fmt::format("record seq {} (line {}) is not byte for byte as jitgated wrote it "
                                          "(a duplicate key, extra bytes or another number form): readers "
                                          "could see other values than the ones hashed",
                                          seq, line_no));
            if (r.records == 0) {
                if (seq == 1 && prev_hash != kGenesisHash)
                    return broken(
                        name, line_no, seq,
                        fmt::format("record seq 1 (line {}) does not start a chain: its prev_hash is "
                                    "not the genesis hash",
                                    line_no));
                r.continues = seq > 1;
            } else {
                const std::uint64_t prev = r.last_seq;
                // At a file boundary, say which file fails to continue which.
                const std::string where =
                    r.last_file != name ? fmt::format("{} does not continue {}: ", name, r.last_file) : "";
                if (seq <= prev)
                    return broken(name, line_no, seq,
                                  fmt::format("{}seq {} follows seq {}: records were reordered or duplicated",
                                              where, seq, prev));
                if (seq > prev + 1) {
                    const std::string later = find_later(files, f, line_no, prev + 1, seq - 1, buf);
                    return broken(
                        name, line_no, seq,
                        later.empty()
                            ? fmt::format("{}seq {} follows seq {}: {}", where, seq, prev,
                                          removed(prev + 1, seq - 1))
                            : fmt::format("{}seq {} follows seq {}, and a record between them comes "
                                          "later ({}): records were reordered",
                                          where, seq, prev, later));
                }
                if (prev_hash != r.last_hash)
                    return broken(name, line_no, seq,
                                  fmt::format("{}record seq {} (line {}) does not chain to the record before "
                                              "it: its prev_hash is not the hash of seq {}",
                                              where, seq, line_no, prev));
            }
            if (head && head->seq == seq && head->hash != hash)
                return broken(name, line_no, seq,
                              fmt::format("record seq {} (line {}) does not match the daemon's record: "
                                          "jitgated holds another hash for seq {}",
                                          seq, line_no, seq));
            if (r.records == 0) r.first_seq = seq;
            ++r.records;
            r.last_seq = seq;
            r.last_hash = hash;
            r.last_file = name;
        }
        lines_in_last_file = line_no;
    }
    if (head && head->seq > r.last_seq && !files.empty()) {
        const std::string& name = files.back().first;
        if (r.records == 0)
            return broken(name, lines_in_last_file + 1, 1,
                          fmt::format("the log has no records but jitgated has written up to seq {}: they "
                                      "were removed, or the log was rotated (then verify the earlier file "
                                      "with it)",
                                      head->seq));
        return broken(name, lines_in_last_file + 1, r.last_seq + 1,
                      fmt::format("the log ends at seq {} but jitgated has written up to seq {}: the tail "
                                  "was removed",
                                  r.last_seq, head->seq));
    }
    return r;
}

// --- Reading the stream ---------------------------------------------------------

const std::vector<std::string>& audit_types() {
    static const std::vector<std::string> types = {
        "deny",          "would_deny",   "allow",       "request",     "approve",        "reject",
        "grant",         "revoke",       "expire",      "break_glass", "events_lost",    "tamper_detected",
        "policy_reload", "daemon_start", "daemon_stop", "bind_denied", "approval_lapsed"};
    return types;
}

std::string audit_types_text() {
    std::string all;
    for (const auto& k : audit_types()) all += (all.empty() ? "" : ", ") + k;
    return all;
}

bool is_audit_type(std::string_view type) {
    const auto& t = audit_types();
    return std::find(t.begin(), t.end(), type) != t.end();
}

namespace {

bool string_is(const json& r, const char* key, std::string_view want) {
    auto it = r.find(key);
    return it != r.end() && it->is_string() && it->get_ref<const std::string&>() == want;
}

std::optional<std::uint64_t> decimal(std::string_view s) {
    if (s.empty() || s.size() > 10) return std::nullopt;
    std::uint64_t v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return std::nullopt;
        v = v * 10 + std::uint64_t(c - '0');
    }
    return v;
}

bool uid_is(const json& r, std::uint64_t uid) {
    auto it = r.find("uid");
    // Built in C++ a uid may be a signed number; parsed from a line, an unsigned one.
    return it != r.end() && it->is_number_integer() && it->get<std::int64_t>() >= 0 &&
           it->get<std::uint64_t>() == uid;
}

}  // namespace

bool matches(const AuditFilter& f, const json& r) {
    if (!r.is_object()) return false;
    if (!f.types.empty()) {
        auto t = r.find("type");
        if (t == r.end() || !t->is_string() ||
            std::find(f.types.begin(), f.types.end(), t->get_ref<const std::string&>()) == f.types.end())
            return false;
    }
    if (f.port) {
        auto p = r.find("port");
        if (p == r.end() || !p->is_number_integer() || p->get<std::int64_t>() != *f.port) return false;
    }
    if (f.user) {
        const auto uid = decimal(*f.user);
        if (!string_is(r, "user", *f.user) && !string_is(r, "requester", *f.user) &&
            !(uid && uid_is(r, *uid)))
            return false;
    }
    if (f.since_us) {
        auto ts = r.find("ts");
        if (ts == r.end() || !ts->is_string()) return false;
        auto t = parse_rfc3339_us(ts->get_ref<const std::string&>());
        if (!t || *t < *f.since_us) return false;
    }
    return true;
}

Result<AuditFilter> audit_filter_from_args(const json& args) {
    AuditFilter f;
    if (auto t = args.find("types"); t != args.end()) {
        if (!t->is_array()) return err("types must be a list of record types");
        for (const auto& v : *t) {
            if (!v.is_string() || !is_audit_type(v.get_ref<const std::string&>()))
                return err(fmt::format("unknown audit record type {}; the types are: {}",
                                       v.dump(-1, ' ', false, json::error_handler_t::replace),
                                       audit_types_text()));
            f.types.push_back(v.get<std::string>());
        }
    }
    if (auto p = args.find("port"); p != args.end()) {
        if (!p->is_number_integer() || p->get<std::int64_t>() < 1 || p->get<std::int64_t>() > 65535)
            return err("port must be a whole number from 1 to 65535");
        f.port = p->get<int>();
    }
    if (auto u = args.find("user"); u != args.end()) {
        if (!u->is_string() || u->get_ref<const std::string&>().empty())
            return err("user must be a user name or a decimal uid");
        f.user = u->get<std::string>();
    }
    if (auto s = args.find("since_us"); s != args.end()) {
        if (!s->is_number_integer()) return err("since_us must be a whole number of microseconds");
        f.since_us = s->get<std::int64_t>();
    }
    return f;
}

bool belongs_to(const json& r, std::uint32_t uid, const std::string& name) {
    if (!r.is_object()) return false;
    if (uid_is(r, uid)) return true;
    if (name.empty()) return false;
    if (string_is(r, "user", name) || string_is(r, "requester", name)) return true;
    auto a = r.find("approvers");
    if (a == r.end() || !a->is_array()) return false;
    return std::any_of(a->begin(), a->end(), [&](const json& v) {
        return v.is_string() && v.get_ref<const std::string&>() == name;
    });
}

Result<std::int64_t> parse_since(std::string_view text, std::int64_t now_us) {
    if (auto t = parse_rfc3339_us(text)) return *t;
    if (auto d = parse_duration(text)) return now_us - *d * 1000000;
    // Say what went wrong with the form the text was meant to have.
    if (text.size() > 4 && text[4] == '-') return parse_rfc3339_us(text);
    const bool duration_like = !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
        return (c >= '0' && c <= '9') || c == 'd' || c == 'h' || c == 'm' || c == 's';
    });
    if (duration_like) return parse_duration(text);
    return err(fmt::format(
        "invalid time '{}': give an RFC 3339 time such as 2026-11-21T09:56:00Z, or how long ago, such "
        "as 10m, 2h or 1h30m",
        text));
}

namespace {

// `s` safe to print (core/text.h escape_terminal, quotes escaped too);
// `quote` is set when the value needs quotes to read as one (a space, an
// escape, empty).
std::string escaped(std::string_view s, bool& quote) {
    std::string out = escape_terminal(s, true);
    quote = quote || s.empty() || out != s || s.find(' ') != std::string_view::npos;
    return out;
}

std::string safe_text(std::string_view s) {
    bool quote = false;
    std::string e = escaped(s, quote);
    return quote ? "\"" + e + "\"" : e;
}

std::string value_text(const json& v) {
    if (v.is_string()) return safe_text(v.get_ref<const std::string&>());
    if (v.is_array()) {
        std::string joined;
        for (const auto& e : v) {
            if (!joined.empty()) joined += ',';
            joined +=
                e.is_string() ? e.get<std::string>() : e.dump(-1, ' ', false, json::error_handler_t::replace);
        }
        return safe_text(joined);
    }
    return safe_text(v.dump(-1, ' ', false, json::error_handler_t::replace));
}

}  // namespace

std::string printable(std::string_view text) {
    bool quote = false;
    return escaped(text, quote);
}

std::string render_event_human(const json& r) {
    if (!r.is_object()) return value_text(r);
    std::set<std::string, std::less<>> shown = {"ts", "seq", "type", "prev_hash", "hash"};
    std::string ts = r.contains("ts") && r["ts"].is_string() ? r["ts"].get<std::string>() : "-";
    if (ts.size() > 10 && ts[10] == 'T') ts[10] = ' ';
    bool unquoted = false;
    std::string out = escaped(ts, unquoted);
    out += " #";
    out += r.contains("seq") && r["seq"].is_number_integer() ? r["seq"].dump() : "?";
    out += " ";
    out += r.contains("type") ? value_text(r["type"]) : "?";

    // An empty list (no approvers yet, or none: break-glass) says nothing.
    auto has = [&](const char* k) {
        return r.contains(k) && !shown.count(k) && !(r[k].is_array() && r[k].empty());
    };
    auto field = [&](const char* key, const char* label) {
        if (!has(key)) return;
        out += fmt::format(" {}={}", label, value_text(r[key]));
        shown.insert(key);
    };
    field("grant_id", "grant");
    field("request_id", "request");
    if (has("user")) {
        out += " user=" + value_text(r["user"]);
        if (r.contains("uid")) out += "(" + value_text(r["uid"]) + ")";
        shown.insert({"user", "uid"});
    }
    field("uid", "uid");
    if (has("requester") && !(r.contains("user") && r["requester"] == r["user"]))
        field("requester", "requester");
    shown.insert("requester");
    field("principal", "principal");
    field("src", "src");
    field("sport", "sport");
    field("dst", "dst");
    if (has("port")) {
        out += " port=" + value_text(r["port"]);
        if (r.contains("proto")) out += "/" + value_text(r["proto"]);
        shown.insert({"port", "proto"});
    }
    field("proto", "proto");
    field("hook", "hook");
    field("pid", "pid");
    field("comm", "comm");
    field("cgroup_id", "cgroup_id");
    field("suppressed", "suppressed");
    field("count", "count");
    if (has("duration_s") && r["duration_s"].is_number_integer()) {
        out += " for=" + format_duration(r["duration_s"].get<std::int64_t>());
        shown.insert("duration_s");
    }
    field("duration_s", "duration_s");
    field("approvers", "by");
    field("reason", "reason");
    field("ticket", "ticket");
    field("expires_at", "expires");
    for (const auto& [k, v] : r.items()) {
        if (shown.count(k) || (v.is_array() && v.empty())) continue;
        bool q = false;
        out += fmt::format(" {}={}", escaped(k, q), value_text(v));
    }
    return out;
}

std::string access_hint(const json& r) {
    if (!r.is_object() || r.value("type", "") != "deny") return {};
    const auto port = r.find("port");
    const auto proto = r.find("proto");
    if (port == r.end() || !port->is_number_integer() || proto == r.end() || !proto->is_string()) return {};
    const std::int64_t number = port->get<std::int64_t>();
    if (number < 1 || number > 65535) return {};
    const std::string p = proto->get<std::string>();
    if (p != "tcp" && p != "udp") return {};
    std::string from;
    if (auto src = r.find("src"); src != r.end() && src->is_string()) {
        const std::string a = src->get<std::string>();
        if (a.empty() || a.find_first_not_of("0123456789abcdefABCDEF.:/") != std::string::npos) return {};
        from = " --from " + a;
    }
    return fmt::format("jitgate request {}/{}{} --for 30m --reason WHY", number, p, from);
}

}  // namespace jg
