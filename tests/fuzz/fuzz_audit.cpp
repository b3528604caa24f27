// libFuzzer: the audit log as `jitgate audit verify` and jitgated read it
// (core/audit.h: verify_chain, read_log_tail) on arbitrary text, since
// whoever tampers with a log writes what these read; and what the log
// holds as `jitgate audit` shows it (render_event_human).
//
// Properties: verify_chain answers (intact, or the first broken record with
// its line and one sentence) and agrees with itself when the same lines come
// in two files, and with the daemon's chain head taken from its own answer;
// read_log_tail finds the same last record an intact log ends with; a
// record of any content, raw bytes included (a process name), sealed as
// jitgated seals it, verifies; a rendered record is safe for a terminal.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "check.h"
#include "cli/audit_render.h"
#include "core/audit.h"
#include "reference_seal.h"

using namespace jg;

namespace {

constexpr std::size_t kMaxLines = 64;

VerifyResult verify(std::vector<std::string_view> parts, const ChainHead* head = nullptr) {
    std::vector<std::istringstream> streams;
    streams.reserve(parts.size());
    std::vector<std::pair<std::string, std::istream*>> files;
    for (std::size_t i = 0; i < parts.size(); ++i) {
        streams.emplace_back(std::string(parts[i]));
        files.emplace_back("audit-" + std::to_string(i) + ".jsonl", &streams.back());
    }
    return verify_chain(files, head);
}

std::string said(const VerifyResult& r) {
    return r.ok ? "intact, " + std::to_string(r.records) + " records"
                : "broken at line " + std::to_string(r.line) + ": " + r.problem;
}

void chain(std::string_view in) {
    const VerifyResult r = verify({in});
    if (r.ok) {
        JG_CHECK(r.problem.empty(), in, said(r));
        JG_CHECK(r.records == 0 || r.last_seq - r.first_seq + 1 == r.records, in,
                 "a gapless chain: " + said(r));
    } else {
        JG_CHECK(r.line >= 1 && !r.problem.empty() && r.problem.find('\n') == std::string::npos, in,
                 "a broken record has a line and one sentence: " + said(r));
    }

    // The daemon's head, where the chain ends: intact still; one record further: the tail is missing.
    if (r.ok && r.records > 0) {
        const ChainHead same{r.last_seq, r.last_hash};
        JG_CHECK(verify({in}, &same).ok, in, "intact against its own head");
        const ChainHead ahead{r.last_seq + 1, r.last_hash};
        JG_CHECK(!verify({in}, &ahead).ok, in, "a head past the end is a removed tail");
    }

    // The same lines cut into two files at a line boundary: the same verdict.
    const std::size_t nl = in.find('\n', in.size() / 2);
    if (nl != std::string_view::npos && nl + 1 < in.size()) {
        const VerifyResult two = verify({in.substr(0, nl + 1), in.substr(nl + 1)});
        JG_CHECK(two.ok == r.ok && (!r.ok || two.records == r.records), in,
                 "one file " + said(r) + "; two files " + said(two));
    }

    // jitgated's start reads the tail to continue the chain: the same last record.
    if (r.ok && r.records > 0 && in.back() == '\n' && in.size() <= kMaxAuditLineBytes) {
        const int fd = memfd_create("fuzz-audit", MFD_CLOEXEC);
        if (fd < 0) return;
        const bool written = write(fd, in.data(), in.size()) == static_cast<ssize_t>(in.size());
        auto tail = read_log_tail("/proc/self/fd/" + std::to_string(fd));
        close(fd);
        if (!written) return;
        JG_CHECK(tail && tail->head && tail->head->seq == r.last_seq && tail->head->hash == r.last_hash, in,
                 "read_log_tail finds the last record: " + said(r));
    }
}

// Each line that is JSON: rendered safely; and, as a record's content,
// sealed and verified.
void records(std::string_view in) {
    ChainHead head;
    std::string log;
    std::size_t sealed = 0;
    std::size_t start = 0;
    for (std::size_t i = 0; i < kMaxLines && start < in.size(); ++i) {
        const std::size_t nl = std::min(in.find('\n', start), in.size());
        const std::string_view line = in.substr(start, nl - start);
        start = nl + 1;

        const std::string p = printable(line);
        JG_CHECK(fuzz::terminal_safe(p), in, "printable() is safe: " + fuzz::shown(p));

        // Raw bytes, as a process name or a reason can hold them.
        json raw = {{"ts", "2027-01-15T08:00:00.000000Z"}, {"type", "deny"}, {"comm", std::string(line)}};
        seal(raw, head);
        log += render_line(raw);
        ++sealed;

        // No record nests this deep; the daemon never writes one, and
        // verify_chain refuses it (copying and rendering recurse per level).
        bool too_deep = false;
        json j = json::parse(
            line.begin(), line.end(),
            [&too_deep](int depth, json::parse_event_t, json&) {
                too_deep = too_deep || depth > 16;
                return !too_deep;
            },
            false);
        if (too_deep || j.is_discarded()) continue;
        const std::string shown = render_event_human(j);
        JG_CHECK(fuzz::terminal_safe(shown), in, "a rendered record is safe: " + fuzz::shown(shown));
        if (!j.is_object()) continue;
        for (const char* k : {"seq", "prev_hash", "hash"}) j.erase(k);
        seal(j, head);
        log += render_line(j);
        ++sealed;
    }
    std::istringstream s(log);
    const VerifyResult r = verify_chain({{"sealed.jsonl", &s}});
    JG_CHECK(r.ok && r.records == sealed, in, "sealed records verify: " + said(r));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view in(reinterpret_cast<const char*>(data), size);
    chain(in);
    records(in);
    return 0;
}
