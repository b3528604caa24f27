#include "cli/audit_cmd.h"

#include <fmt/format.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <thread>

#include "cli/audit_render.h"
#include "cli/client.h"
#include "core/audit.h"
#include "core/clock.h"
#include "core/operations.h"
#include "core/protocol.h"
#include "core/text.h"

namespace jg {

namespace {

using nlohmann::json;

constexpr const char* kStdinName = "(standard input)";

std::string joined(const std::vector<std::string>& v, const char* sep) {
    std::string out;
    for (const auto& x : v) out += (out.empty() ? "" : sep) + x;
    return out;
}

// Whether two paths name the same file (same device and inode, or the same
// canonical path when one cannot be examined).
bool same_file(const std::string& a, const std::string& b) {
    struct stat sa {
    }, sb{};
    if (stat(a.c_str(), &sa) == 0 && stat(b.c_str(), &sb) == 0)
        return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
    std::error_code ea, eb;
    const auto ca = std::filesystem::weakly_canonical(a, ea);
    const auto cb = std::filesystem::weakly_canonical(b, eb);
    return !ea && !eb && ca == cb;
}

// What jitgated says about its audit log: where it is and its chain head.
struct DaemonLog {
    std::optional<std::string> path;
    std::optional<ChainHead> head;
    bool reachable = false;
    std::string why_not;  // when path or head is missing
    // In a fleet: the heads this node published (design.md §7.3), or why not.
    bool fleet = false;
    std::optional<std::vector<WitnessedHead>> witnessed;
    std::string witness_why_not;
};

// The heads status reports under fleet.witness (daemon/fleet_node.h).
void read_witness(const json& result, DaemonLog& d) {
    if (!result.contains("fleet") || !result["fleet"].is_object()) return;
    d.fleet = true;
    const json& f = result["fleet"];
    if (!f.contains("witness") || !f["witness"].is_object()) {
        d.witness_why_not =
            "jitgated did not report the audit heads it published (a jitgated older than this jitgate?)";
        return;
    }
    const json& w = f["witness"];
    if (!w.value("read", false)) {
        d.witness_why_not = "jitgated has not read etcd since it started";
        return;
    }
    std::vector<WitnessedHead> heads;
    if (w.contains("heads") && w["heads"].is_array())
        for (const auto& h : w["heads"])
            if (h.is_object() && h.value("seq", json()).is_number_unsigned() &&
                h.value("hash", json()).is_string())
                heads.push_back(
                    {h["seq"].get<std::uint64_t>(), h["hash"].get<std::string>(),
                     h.value("time_us", json()).is_number_integer() ? h["time_us"].get<std::int64_t>() : 0});
    d.witnessed = std::move(heads);
}

DaemonLog ask_daemon(const std::string& socket) {
    DaemonLog d;
    auto st = call_daemon(socket, op_name(Op::Status), json::object());
    if (!st) {
        d.why_not = st.error();
        return d;
    }
    d.reachable = true;
    const json& r = *st;
    if (!r.value("ok", false)) {
        d.why_not =
            fmt::format("jitgated refused status: {}", error_of(r).value("message", "no reason given"));
        return d;
    }
    const json* a = nullptr;
    if (r.contains("result") && r["result"].is_object() && r["result"].contains("audit"))
        a = &r["result"]["audit"];
    if (!a || !a->is_object() || !a->contains("log") || !(*a)["log"].is_string()) {
        d.why_not = "jitgated did not say where its audit log is (a jitgated older than this jitgate?)";
        return d;
    }
    d.path = (*a)["log"].get<std::string>();
    read_witness(r["result"], d);
    if (a->contains("seq") && (*a)["seq"].is_number_unsigned() && a->contains("hash") &&
        (*a)["hash"].is_string())
        d.head = ChainHead{(*a)["seq"].get<std::uint64_t>(), (*a)["hash"].get<std::string>()};
    else
        d.why_not = "jitgated did not report its audit chain head";
    return d;
}

// Opens every file ("-" is standard input, e.g. zcat audit.jsonl.1.gz |
// jitgate audit verify - audit.jsonl); an error sentence for the first that
// cannot be read.
std::string open_all(const std::vector<std::string>& files,
                     std::vector<std::unique_ptr<std::ifstream>>& owned,
                     std::vector<std::pair<std::string, std::istream*>>& out) {
    for (const auto& f : files) {
        if (f == "-") {
            out.emplace_back(kStdinName, &std::cin);
            continue;
        }
        std::error_code ec;
        if (std::filesystem::is_directory(f, ec)) return fmt::format("cannot read {}: it is a directory", f);
        auto in = std::make_unique<std::ifstream>(f, std::ios::binary);
        if (!*in) {
            const int e = errno;
            return fmt::format("cannot read {}: {}{}", f, std::strerror(e),
                               e == EACCES ? "; the audit log is readable by root (try sudo)" : "");
        }
        out.emplace_back(f, in.get());
        owned.push_back(std::move(in));
    }
    return {};
}

std::uint64_t top_seq(const std::vector<WitnessedHead>& heads) {
    std::uint64_t top = 0;
    for (const auto& h : heads) top = std::max(top, h.seq);
    return top;
}

// One node of audit verify --fleet, for a person (names and problems escaped).
std::string render_witness_node(const json& n) {
    const std::string name = escape_terminal(n.value("node", "?"));
    const std::string key = n.contains("key") && n["key"].is_string()
                                ? fmt::format("key from {}", escape_terminal(n["key"].get<std::string>()))
                                : std::string("no key");
    std::string out;
    const json& head = n.contains("head") ? n["head"] : json();
    if (n.value("ok", false) && head.is_object())
        out = fmt::format("{}: ok, head seq {} published {}, {} earlier heads consistent ({})\n", name,
                          head.value("seq", 0), rfc3339_us(head.value("time_us", std::int64_t(0))),
                          n.value("history", 0), key);
    else
        out = fmt::format("{}: {} ({})\n", name, n.value("ok", false) ? "ok" : "PROBLEM", key);
    if (n.contains("problems") && n["problems"].is_array())
        for (const auto& p : n["problems"])
            if (p.is_string()) out += "  " + escape_terminal(p.get<std::string>()) + "\n";
    if (const std::size_t n_unverified = n.value("unverified_count", std::size_t(0)); n_unverified > 0) {
        out += fmt::format("  note: {} history entr{} signed by no listed key, not counted:\n", n_unverified,
                           n_unverified == 1 ? "y" : "ies");
        if (n.contains("unverified") && n["unverified"].is_array())
            for (const auto& p : n["unverified"])
                if (p.is_string()) out += "    " + escape_terminal(p.get<std::string>()) + "\n";
    }
    return out;
}

}  // namespace

int run_audit_fleet(const CliState& s) {
    auto r = call_daemon(daemon_endpoint(s), op_name(Op::AuditFleet), json::object());
    if (!r) return fail(s, {{"code", code::kUnreachable}, {"message", r.error()}});
    if (!r->value("ok", false)) return fail(s, error_of(*r));
    const json& res = (*r)["result"];
    const bool ok = res.value("ok", false);
    if (s.json) {
        std::cout << res.dump(-1, ' ', false, json::error_handler_t::replace) << "\n";
        return ok ? 0 : 1;
    }
    std::size_t count = 0;
    if (res.contains("nodes") && res["nodes"].is_array())
        for (const auto& n : res["nodes"])
            if (n.is_object()) {
                std::cout << render_witness_node(n);
                ++count;
            }
    if (res.contains("stray") && res["stray"].is_array())
        for (const auto& k : res["stray"])
            if (k.is_string())
                std::cout << fmt::format("{}: not a key jitgate writes, under the heads of the fleet\n",
                                         escape_terminal(k.get<std::string>()));
    if (count == 0) std::cout << "no node has published an audit head yet\n";
    return ok ? 0 : 1;
}

int run_audit(const CliState& s) {
    // SIGINT and SIGTERM end a follower cleanly (exit 0) instead of killing it.
    const std::atomic<bool>* stop = s.follow ? &stop_on_signals({SIGINT, SIGTERM}) : nullptr;
    std::uint64_t lines = 0;
    bool following = false, finished = false;
    int rc = 0;
    auto on_line = [&](const json& l) -> bool {
        ++lines;
        if (!l.value("ok", false)) {
            rc = fail(s, error_of(l));
            return false;
        }
        if (auto ev = l.find("event"); ev != l.end()) {
            if (s.json)
                std::cout << (ev->is_object() ? render_line(*ev) : json_text(*ev) + "\n");
            else {
                std::cout << render_event_human(*ev);
                // A denial says how to ask for access.
                if (const std::string hint = access_hint(*ev); !hint.empty())
                    std::cout << "  to ask: " << hint;
                std::cout << "\n";
            }
            std::cout.flush();  // a SIEM pipe sees each record as it comes
            return true;
        }
        if (auto d = l.find("dropped"); d != l.end()) {
            std::cerr << fmt::format(
                "jitgate: {} audit records were not delivered to this follower because it read too slowly; "
                "the audit log has them\n",
                d->is_number_unsigned() ? d->get<std::uint64_t>() : 0);
            return true;
        }
        if (auto r = l.find("result"); r != l.end() && r->is_object()) {
            following = r->value("following", false);
            if (!s.json && r->value("scope", "") == "own")
                std::cerr << "jitgate: showing only the records about you; members of daemon.auditors see "
                             "every record\n";
            if (!s.json && r->contains("note") && (*r)["note"].is_string())
                std::cerr << "jitgate: " << escape_terminal((*r)["note"].get<std::string>()) << "\n";
            if (!s.json && !following && r->value("count", 0) == 0)
                std::cerr << "jitgate: no audit records match\n";
            finished = !following;
            return following;
        }
        return true;  // a kind of line this jitgate does not know: skip it
    };
    auto end = stream_daemon(daemon_endpoint(s), op_name(Op::Audit), s.args, on_line, stop);
    if (!end)
        return fail(s,
                    {{"code", lines == 0 ? code::kUnreachable : code::kInternal}, {"message", end.error()}});
    if (rc != 0) return rc;
    if (finished || *end == kStreamInterrupted) return 0;
    const std::string why =
        following ? "jitgated closed the stream" : "jitgated closed the connection before its reply";
    return fail(s, {{"code", code::kInternal}, {"message", why}});
}

int run_audit_verify(const CliState& s) {
    const DaemonLog d = ask_daemon(s.socket);
    std::vector<std::string> files = s.files;
    if (files.empty()) {
        if (!d.path) {
            const std::string msg = fmt::format(
                "cannot find the audit log to verify: {}; name it: jitgate audit verify "
                "/var/log/jitgate/audit.jsonl",
                d.why_not);
            return fail(s, {{"code", d.reachable ? code::kInternal : code::kUnreachable}, {"message", msg}});
        }
        files.push_back(*d.path);
    }
    const bool against_daemon = d.path && d.head && files.back() != "-" && same_file(files.back(), *d.path);
    if (!d.head)
        std::cerr << fmt::format(
            "jitgate: note: the end of the log is not checked against jitgated's chain head, so removed last "
            "records would not show: {}\n",
            d.why_not);
    const std::vector<WitnessedHead>* witnessed = against_daemon && d.witnessed ? &*d.witnessed : nullptr;
    if (against_daemon && d.fleet && !d.witnessed)
        std::cerr << fmt::format(
            "jitgate: note: the log is not checked against the audit heads this node published to the fleet: "
            "{}\n",
            d.witness_why_not);

    VerifyResult r;
    // The daemon may be writing its last line as we read it: a cut-off last
    // line after its chain head is read again once before it counts.
    for (int attempt = 0; attempt < 2; ++attempt) {
        std::vector<std::unique_ptr<std::ifstream>> owned;
        std::vector<std::pair<std::string, std::istream*>> in;
        if (auto e = open_all(files, owned, in); !e.empty()) {
            return fail(s, {{"code", "unreadable"}, {"message", e}});
        }
        r = verify_chain(in, against_daemon ? &*d.head : nullptr, witnessed);
        if (r.ok || !against_daemon || !r.truncated || r.last_seq < d.head->seq) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }

    std::vector<std::string> shown = files;
    std::replace(shown.begin(), shown.end(), std::string("-"), std::string(kStdinName));
    std::string names = joined(shown, ", ");
    if (s.json) {
        json out = {{"ok", r.ok},
                    {"files", shown},
                    {"records", r.records},
                    {"first_seq", r.first_seq},
                    {"last_seq", r.last_seq},
                    {"last_hash", r.last_hash},
                    {"continues", r.continues},
                    {"daemon_head",
                     against_daemon ? json{{"seq", d.head->seq}, {"hash", d.head->hash}} : json(nullptr)},
                    {"witnessed", witnessed ? json{{"heads", witnessed->size()}, {"seq", top_seq(*witnessed)}}
                                            : json(nullptr)}};
        if (!r.ok)
            out["broken"] = {{"file", r.file}, {"line", r.line}, {"seq", r.seq}, {"problem", r.problem}};
        std::cout << out.dump(-1, ' ', false, json::error_handler_t::replace) << "\n";
        return r.ok ? 0 : 1;
    }
    // A file name or a broken line may hold control characters: shown escaped.
    names = escape_terminal(names);
    r.file = escape_terminal(r.file);
    r.problem = escape_terminal(r.problem);
    if (r.ok) {
        std::string line = r.records == 0 ? fmt::format("{}: intact, no records", names)
                                          : fmt::format("{}: intact, {} records (seq {}-{})", names,
                                                        r.records, r.first_seq, r.last_seq);
        if (r.continues) line += ", continues an earlier file";
        if (against_daemon && d.head->seq > 0)
            line += fmt::format("; matches jitgated's chain head (seq {})", d.head->seq);
        if (witnessed && !witnessed->empty())
            line += fmt::format(" and the {} audit heads this node published to the fleet (up to seq {})",
                                witnessed->size(), top_seq(*witnessed));
        std::cout << line << "\n";
        return 0;
    }
    std::cout << (r.seq ? fmt::format("{}:{}: seq {}: {}\n", r.file, r.line, r.seq, r.problem)
                        : fmt::format("{}:{}: {}\n", r.file, r.line, r.problem));
    if (r.records > 0)
        std::cout << fmt::format("  the {} records before it (seq {}-{}) are intact\n", r.records,
                                 r.first_seq, r.last_seq);
    return 1;
}

}  // namespace jg
