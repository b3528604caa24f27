#include "notify/notifier.h"

#include <fmt/format.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <iostream>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "cli/client.h"
#include "core/clock.h"
#include "core/text.h"
#include "notify/payload.h"
#include "notify/signature.h"
#include "notify/state.h"

namespace jg::notify {

namespace {

using json = nlohmann::json;

// Records held for a target that sends slower than they come; past this it
// drops them and reads them back from the log when it gets there.
constexpr std::size_t kQueueMax = 4096;
// Records asked of jitgated at a time while catching up.
constexpr int kPage = 500;

void say(const std::string& line) {
    std::cerr << "jitgate notify: " + escape_terminal(line) + "\n" << std::flush;
}

std::int64_t steady_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

// One target: its records to send, and where it stands.
struct Lane {
    Target t;
    TargetState st;
    std::mutex m;
    std::deque<json> queue;    // records after `cursor`, seq order
    bool behind = true;        // read the log after `cursor` before the queue
    std::uint64_t cursor = 0;  // the last record sent or passed over
    std::uint64_t generation = 0;
    Poster poster;  // used by the lane's own thread only
    // The target took a message since this lane last passed one it refused
    // (deliver): only then is a refusal the message's, not the target's.
    bool may_pass = false;
};

struct Shared {
    const Config& cfg;
    const Options& o;
    const std::atomic<bool>& stop;
    std::mutex m;
    std::condition_variable cv;
    bool subscribed = false;  // the reader follows the stream: a catch-up that ends is complete
    std::uint64_t generation = 0;
    std::vector<std::unique_ptr<Lane>> lanes;
};

bool wanted(const Target& t, const json& r) {
    if (!t.types.count(r.value("type", ""))) return false;
    // A record of no port (events lost, tampering) concerns every port.
    if (t.ports.empty() || !r.contains("port") || !r["port"].is_number_integer()) return true;
    return t.ports.count(r["port"].get<int>()) > 0;
}

std::uint64_t seq_of(const json& r) { return r.value("seq", std::uint64_t(0)); }

// Waits ms, or less when stopping.
void pause(const Shared& s, std::int64_t ms) {
    const std::int64_t end = steady_ms() + ms;
    while (!s.stop && steady_ms() < end) std::this_thread::sleep_for(std::chrono::milliseconds(50));
}

json type_list(const std::vector<std::unique_ptr<Lane>>& lanes) {
    std::set<std::string> all;
    for (const auto& l : lanes) all.insert(l->t.types.begin(), l->t.types.end());
    return json(std::vector<std::string>(all.begin(), all.end()));
}

// The reader: jitgated's stream, record by record, into the lanes' queues.
// When the stream ends (jitgated restarts, this reader was too slow) every
// lane reads from the log again where it is.
void reader(Shared& s) {
    const json args = {{"follow", true}, {"limit", 0}, {"types", type_list(s.lanes)}};
    while (!s.stop) {
        auto on_line = [&](const json& l) -> bool {
            if (!l.value("ok", false)) {
                say(fmt::format("jitgated refused to stream the audit records: {}",
                                l.contains("error") ? l["error"].value("message", "") : "no reason given"));
                return false;
            }
            if (auto r = l.find("result"); r != l.end()) {
                if (r->value("scope", "") != "all") {
                    say("this user sees only its own audit records: run jitgate notify as a member of "
                        "daemon.auditors");
                    return false;
                }
                std::lock_guard g(s.m);
                s.subscribed = true;
                s.cv.notify_all();
                return true;
            }
            if (l.contains("dropped")) return false;  // read again from the log
            auto ev = l.find("event");
            if (ev == l.end() || !ev->is_object()) return true;
            for (auto& lane : s.lanes) {
                if (!wanted(lane->t, *ev)) continue;
                std::lock_guard g(lane->m);
                if (lane->queue.size() >= kQueueMax) {
                    lane->queue.clear();
                    lane->behind = true;
                    continue;
                }
                if (seq_of(*ev) > lane->cursor) lane->queue.push_back(*ev);
            }
            { std::lock_guard g(s.m); }  // a sender between its look and its wait is waiting now
            s.cv.notify_all();
            return true;
        };
        auto end = stream_daemon(s.o.socket, "audit", args, on_line, &s.stop);
        {
            std::lock_guard g(s.m);
            s.subscribed = false;
            ++s.generation;
            for (auto& lane : s.lanes) {
                std::lock_guard lg(lane->m);
                lane->queue.clear();
                lane->behind = true;
            }
        }
        if (s.stop) break;
        if (!end) say(fmt::format("{}; trying again", end.error()));
        pause(s, 1000);
    }
}

bool report_failure(const Shared& s, const Lane& lane, const std::string& error, std::int64_t failing_s,
                    std::uint64_t pending);

// The next records of a lane that is behind, from the log: a page after its
// cursor.  Sets behind = false when the page reached the present.
std::vector<json> catch_up(Shared& s, Lane& lane) {
    std::uint64_t gen = 0;
    {
        std::unique_lock g(s.m);
        s.cv.wait_for(g, std::chrono::milliseconds(200), [&] { return s.subscribed || s.stop; });
        if (!s.subscribed) return {};
        gen = s.generation;
    }
    std::vector<json> got;
    bool newer = true, done = false;
    std::string missing;
    std::uint64_t resume_after = 0;
    const json args = {{"after_seq", lane.cursor},
                       {"limit", kPage},
                       {"types", std::vector<std::string>(lane.t.types.begin(), lane.t.types.end())}};
    auto end = stream_daemon(s.o.socket, "audit", args, [&](const json& l) -> bool {
        if (!l.value("ok", false)) {
            say(fmt::format("{}: jitgated refused to read the log: {}", lane.t.name,
                            l.contains("error") ? l["error"].value("message", "") : "no reason given"));
            return false;
        }
        if (auto ev = l.find("event"); ev != l.end() && ev->is_object()) {
            got.push_back(*ev);
            return true;
        }
        if (auto r = l.find("result"); r != l.end()) {
            newer = r->value("newer", true);
            if (r->value("missing", false)) {
                missing = r->value("note", "records after its seq are missing");
                if (auto ra = r->find("resume_after"); ra != r->end() && ra->is_number_unsigned())
                    resume_after = ra->get<std::uint64_t>();
            }
            done = true;
            return false;
        }
        return true;
    });
    if (!end || !done) {
        pause(s, 1000);
        return {};
    }
    if (!missing.empty()) {
        // Records this lane will never send (further back than jitgated
        // reads, or rotated away): in the audit log, not only in ours.
        say(fmt::format("{}: {}", lane.t.name, missing));
        if (!report_failure(s, lane, missing.substr(0, 240) + "; not delivered", 0, lane.cursor + 1)) {
            pause(s, 1000);
            return {};  // asked again: nothing is passed without a record
        }
        // Recorded once: the lane goes on where the log's records begin
        // again (its state too), not back to the gap at the next catch-up.
        if (resume_after > lane.cursor) {
            {
                std::lock_guard lg(lane.m);
                lane.cursor = resume_after;
            }
            lane.st = {resume_after, wall_us()};
            if (auto w = write_state(s.o.state_dir, lane.t.name, lane.st); !w)
                say(fmt::format("{}: {}", lane.t.name, w.error()));
        }
    }
    std::lock_guard g(s.m);
    if (!newer && gen == s.generation) {
        std::lock_guard lg(lane.m);
        lane.behind = false;
    }
    return got;
}

std::string body_of(const Shared& s, const Lane& lane, const json& r) {
    const json p = lane.t.format == Format::Slack ? slack_payload(r, s.cfg.web_url, wall_us())
                                                  : json_payload(r, s.cfg.web_url);
    return p.dump(-1, ' ', false, json::error_handler_t::replace);
}

// notify_failed through jitgated; true once recorded.
bool report_failure(const Shared& s, const Lane& lane, const std::string& error, std::int64_t failing_s,
                    std::uint64_t pending) {
    const json args = {{"target", lane.t.name},
                       {"url", origin_of(lane.t.url)},
                       {"error", error.substr(0, 300)},
                       {"failing_s", failing_s},
                       {"pending_seq", pending}};
    auto r = call_daemon(s.o.socket, "notify_failed", args, 10000);
    if (!r) return false;
    if (!r->value("ok", false)) {
        say(fmt::format("jitgated refused notify_failed: {}",
                        (*r).contains("error") ? (*r)["error"].value("message", "") : ""));
        return false;
    }
    return true;
}

// Answers that refuse this message, not the target: the same body is never
// taken (a 400 for blocks Slack will not show, 413, 422).  A target that
// refuses everything (401, 403, 404: a revoked or mistyped webhook) is not
// among them: its lane waits, and delivers every record once it is mended.
bool refuses_message(long status) { return status == 400 || status == 413 || status == 422; }
constexpr int kMessageRefusals = 3;  // tries before such a record is given up

// One record to one target, tried until delivered (or stopping): the
// queue behind it waits, so nothing is skipped; except a record the target
// refused kMessageRefusals times in a row as a message, which is recorded
// as notify_failed (it names the seq) and then passed: one record the
// target will never take must not hold back every later one (a hostile
// reason could otherwise stop a channel's break-glass alerts for good).
// Only when the target took another message since the last such pass: a
// target that refuses everything with 400 (a wrong secret) loses at most one
// record and then waits, as for any failure, and delivers all once mended;
// and never a notify_failed record of this very target (each pass writes
// one: a lane that wants them would feed itself).
bool deliver(Shared& s, Lane& lane, const json& r, std::int64_t& failing_since_ms, bool& reported) {
    const std::string id = std::to_string(seq_of(r));
    const std::string body = body_of(s, lane, r);
    std::int64_t wait_ms = s.o.retry_first_ms;
    int refusals = 0;
    while (!s.stop) {
        const std::int64_t ts = wall_us() / 1000000;
        std::vector<std::string> headers = {"Content-Type: application/json", "webhook-id: " + id,
                                            fmt::format("webhook-timestamp: {}", ts)};
        if (!lane.t.secret.empty())
            headers.push_back("webhook-signature: " + sign(lane.t.secret, id, ts, body));
        PostLimits limits = s.o.limits;
        limits.total_timeout_ms = lane.t.timeout_s * 1000;
        limits.connect_timeout_ms = std::min<long>(limits.connect_timeout_ms, limits.total_timeout_ms);
        const PostOutcome out = lane.poster.post(lane.t.url, headers, body, limits);
        if (out.delivered) {
            lane.may_pass = true;
            if (reported) say(fmt::format("{}: delivering again (seq {})", lane.t.name, id));
            failing_since_ms = 0;
            reported = false;
            return true;
        }
        const std::int64_t now = steady_ms();
        if (failing_since_ms == 0) {
            failing_since_ms = now;
            say(fmt::format("{}: seq {} not delivered: {}; trying again", lane.t.name, id, out.error));
        }
        const std::int64_t failing_s = (now - failing_since_ms) / 1000;
        refusals = refuses_message(out.status) ? refusals + 1 : 0;
        const bool own_failure =
            r.value("type", "") == "notify_failed" && r.value("target", "") == lane.t.name;
        if (refusals >= kMessageRefusals && lane.may_pass && !own_failure &&
            report_failure(s, lane, out.error + ": the receiver refuses this message; passed, not delivered",
                           failing_s, seq_of(r))) {
            lane.may_pass = false;
            say(fmt::format("{}: seq {} refused {} times ({}): recorded as notify_failed and passed",
                            lane.t.name, id, refusals, out.error));
            failing_since_ms = 0;
            reported = false;
            return true;
        }
        if (!reported && failing_s >= lane.t.give_up_after_s) {
            reported = report_failure(s, lane, out.error, failing_s, seq_of(r));
            if (reported)
                say(fmt::format("{}: failing for {}s ({}); recorded as notify_failed, still trying",
                                lane.t.name, failing_s, out.error));
        }
        pause(s, wait_ms);
        wait_ms = std::min(wait_ms * 2, s.o.retry_max_ms);
    }
    return false;
}

// The next record the lane sends: from the log while behind, else its queue.
std::vector<json> next_records(Shared& s, Lane& lane) {
    {
        std::unique_lock g(lane.m);
        if (!lane.behind) {
            std::vector<json> out;
            while (!lane.queue.empty()) {
                json r = std::move(lane.queue.front());
                lane.queue.pop_front();
                if (seq_of(r) > lane.cursor) out.push_back(std::move(r));
            }
            return out;
        }
    }
    return catch_up(s, lane);
}

void sender(Shared& s, Lane& lane) {
    std::int64_t failing_since_ms = 0;
    bool reported = false;
    while (!s.stop) {
        std::vector<json> batch = next_records(s, lane);
        if (batch.empty()) {
            std::unique_lock g(s.m);
            s.cv.wait_for(g, std::chrono::milliseconds(500), [&] {
                std::lock_guard lg(lane.m);
                return !lane.queue.empty() || lane.behind || s.stop;
            });
            continue;
        }
        for (const json& r : batch) {
            if (s.stop) return;
            const std::uint64_t seq = seq_of(r);
            if (seq <= lane.cursor) continue;
            if (wanted(lane.t, r)) {
                if (!deliver(s, lane, r, failing_since_ms, reported)) return;
                lane.st = {seq, wall_us()};
                if (auto w = write_state(s.o.state_dir, lane.t.name, lane.st); !w)
                    say(fmt::format("{}: {}", lane.t.name, w.error()));
            }
            std::lock_guard g(lane.m);
            lane.cursor = seq;
        }
    }
}

// Where each target starts: its state file, or (a new target) the newest
// record now, so that a target added later does not receive the history.
bool load_lanes(Shared& s) {
    std::optional<std::uint64_t> head;
    for (const auto& t : s.cfg.targets) {
        auto lane = std::make_unique<Lane>();
        lane->t = t;
        auto st = read_state(s.o.state_dir, t.name);
        if (!st) {
            say(st.error());
            return false;
        }
        if (!*st) {
            if (!head) {
                auto r = call_daemon(s.o.socket, "status", json::object(), 10000);
                if (!r || !r->value("ok", false)) {
                    say(r ? "jitgated refused status: " + (*r)["error"].value("message", "")
                          : r.error() + " (a new target starts at jitgated's newest record)");
                    return false;
                }
                head = (*r)["result"]["audit"].value("seq", std::uint64_t(0));
            }
            lane->st = {*head, 0};
            if (auto w = write_state(s.o.state_dir, t.name, lane->st); !w) {
                say(w.error());
                return false;
            }
            say(fmt::format("{}: a new target; it receives the records after seq {}", t.name, *head));
        } else {
            lane->st = **st;
        }
        lane->cursor = lane->st.seq;
        s.lanes.push_back(std::move(lane));
    }
    return true;
}

}  // namespace

int run(const Config& cfg, const Options& o, const std::atomic<bool>& stop) {
    if (auto api = curl_api_check(); !api.empty()) {
        say(api);
        return 1;
    }
    Shared s{cfg, o, stop, {}, {}, false, 0, {}};
    if (!load_lanes(s)) return 1;
    say(fmt::format("delivering to {} targets", s.lanes.size()));
    std::vector<std::thread> threads;
    threads.emplace_back([&] { reader(s); });
    for (auto& lane : s.lanes) threads.emplace_back([&s, l = lane.get()] { sender(s, *l); });
    for (auto& t : threads) t.join();
    return 0;
}

}  // namespace jg::notify
