// Figure 7: the audit path.  (a) Events through a BPF ring buffer of the
// daemon's default size, consumed by libbpf's ring_buffer on another CPU:
// the rate the consumer sustains with no event lost.  (b) Records through
// the daemon's hash-chained log writer (daemon/audit_log.cpp), built from
// ring-buffer events as the daemon builds them (daemon/events.cpp), next to
// the same records written one by one without the chain.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <thread>

#include "bench.h"
#include "core/audit.h"
#include "core/keys.h"
#include "daemon/audit_log.h"
#include "daemon/event_loop.h"
#include "daemon/kernel_records.h"
#include "jitgate/abi.h"
#include "raw_progs.h"

namespace jgbench {

namespace {

struct Consumer {
    std::atomic<std::uint64_t> consumed{0};
    std::uint64_t denies = 0;  // a first look at each event, as the daemon's would
};

int on_event(void* ctx, void* data, size_t size) {
    auto* c = static_cast<Consumer*>(ctx);
    if (size >= sizeof(jg_event)) {
        jg_event e;
        std::memcpy(&e, data, sizeof(e));
        if (e.verdict == JG_VERDICT_DENY) ++c->denies;
    }
    c->consumed.fetch_add(1, std::memory_order_release);
    return 0;
}

// Runs `prog` `n` times in one test run; false on error.  (A tc program:
// an XDP test run flips a static key on entry and exit, milliseconds each.)
bool produce(int prog, std::uint32_t n) {
    std::uint8_t frame[64] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x08, 0x00};
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame, .data_size_in = sizeof(frame), .repeat = int(n));
    return bpf_prog_test_run_opts(prog, &opts) == 0;
}

// One paced run: `total` events produced on this CPU while a consumer on
// the next one takes them.  The producer waits while half the ring is
// unread, so the rate is what the consumer keeps up with.  The consumer
// waits in epoll when it has caught up, as jitgated does.
struct RingRun {
    bool ok = false;
    std::uint64_t produced = 0, consumed = 0;
    double rate = 0;           // consumed per second
    std::uint64_t sleeps = 0;  // the consumer thread's voluntary context switches
};

RingRun ring_run(int prog, ring_buffer* rb, Consumer& c, std::uint64_t total, std::uint64_t capacity,
                 std::uint32_t batch) {
    RingRun out;
    c.consumed = 0;
    std::atomic<bool> done{false};
    const int ncpu = int(std::thread::hardware_concurrency());
    const int here = sched_getcpu();
    std::thread consumer([&] {
        if (ncpu > 1) pin_to_cpu((here + 1) % ncpu);
        rusage before{}, after{};
        getrusage(RUSAGE_THREAD, &before);
        // jitgated's loop (daemon.cpp, event_loop.h): woken by the ring, or
        // draining it every JG_RING_DRAIN_MS, every kRingBusyWaitMs while
        // records came within kRingBusyMs (a wake-up the kernel held back).
        std::uint64_t last_record = 0;
        while (!done.load(std::memory_order_acquire)) {
            const bool busy = now_ns() - last_record < std::uint64_t(jg::kRingBusyMs) * 1000000;
            int got = ring_buffer__poll(rb, busy ? jg::kRingBusyWaitMs : JG_RING_DRAIN_MS);
            if (got == 0) got = ring_buffer__consume(rb);
            if (got > 0) last_record = now_ns();
        }
        while (ring_buffer__consume(rb) > 0) {
        }
        getrusage(RUSAGE_THREAD, &after);
        out.sleeps = std::uint64_t(after.ru_nvcsw - before.ru_nvcsw);
    });
    if (ncpu > 1) pin_to_cpu(here);
    bool ok = true;
    const std::uint64_t t0 = now_ns();
    while (out.produced < total && ok) {
        // Bounded: a consumer stuck for 10 s ends the run.
        const std::uint64_t wait_start = now_ns();
        while (out.produced - c.consumed.load(std::memory_order_acquire) > capacity / 2) {
            if (now_ns() - wait_start > 10000000000ULL) {
                ok = false;
                break;
            }
            sched_yield();
        }
        if (!ok || !produce(prog, batch)) ok = false;
        out.produced += batch;
    }
    const std::uint64_t wait_start = now_ns();
    while (c.consumed.load(std::memory_order_acquire) < out.produced &&
           now_ns() - wait_start < 10000000000ULL)
        sched_yield();
    const std::uint64_t t1 = now_ns();
    done = true;
    consumer.join();
    out.consumed = c.consumed.load();
    out.ok = ok || out.consumed > 0;
    out.rate = double(out.consumed) * 1e9 / double(t1 - t0);
    return out;
}

Row ring_rate(const Settings& s) {
    Row row{7, "ring_events", "ring-buffer events consumed, zero loss"};
    row.unit = "events/s";
    row.reference = "kernel producer alone (ring drained between batches)";
    const int ring = bpf_map_create(BPF_MAP_TYPE_RINGBUF, "jg_events", 0, 0, JG_RINGBUF_BYTES, nullptr);
    const int wake = bpf_map_create(BPF_MAP_TYPE_ARRAY, "jg_wake", 4, 8, 1, nullptr);
    const int prog = ring >= 0 && wake >= 0 ? load_ring_producer(ring, wake, sizeof(jg_event)) : -1;
    if (ring < 0 || wake < 0 || prog < 0) {
        row.note = std::string("not measured: cannot make the ring or its producer: ") + std::strerror(errno);
        if (ring >= 0) close(ring);
        if (wake >= 0) close(wake);
        return row;
    }
    Consumer c;
    ring_buffer* rb = ring_buffer__new(ring, on_event, &c, nullptr);
    // Records of 96 bytes plus an 8-byte header each; a batch is a quarter
    // of the ring, and the producer waits while half the ring is unread.
    const std::uint64_t capacity = JG_RINGBUF_BYTES / (sizeof(jg_event) + 8);
    const std::uint32_t batch = std::uint32_t(capacity / 4);
    const std::uint64_t total = s.quick ? 2000000 : 10000000;

    // Reference: the producer alone, one batch at a time into an empty ring.
    std::vector<double> alone;
    for (int i = 0; i < 20; ++i) {
        const std::uint64_t t0 = now_ns();
        produce(prog, batch);
        alone.push_back(double(batch) * 1e9 / double(now_ns() - t0));
        while (ring_buffer__consume(rb) > 0) {
        }
    }
    progress("figure 7: %llu ring-buffer events", (unsigned long long)total);
    const RingRun run = ring_run(prog, rb, c, total, capacity, batch);
    ring_buffer__free(rb);
    close(prog);
    close(ring);
    close(wake);
    if (!run.ok) {
        row.note = "not measured: the producer or the consumer failed";
        return row;
    }
    const std::uint64_t lost = run.produced - run.consumed;
    row.value = run.rate;
    row.reference_value = median(alone);
    row.comparison = num(*row.value / *row.reference_value * 100, 0) + " % of the producer";
    row.measures["lost"] = double(lost);
    row.measures["sleeps"] = double(run.sleeps);
    row.note =
        std::to_string(run.produced) + " events of " + std::to_string(sizeof(jg_event)) + " bytes in a " +
        std::to_string(JG_RINGBUF_BYTES >> 10) + " KiB ring, " + std::to_string(lost) +
        " lost; producer and consumer on two CPUs; the producer submits as jitgate's programs submit a "
        "denial (a record that finds the consumer caught up wakes it, at most once a millisecond); "
        "the consumer waits in epoll_wait (libbpf's ring_buffer__poll) when it has caught up and "
        "reads the ring every millisecond while records came within 20 ms, as jitgated does; it "
        "slept " +
        std::to_string(run.sleeps) + " times (one per " +
        num(double(run.consumed) / double(std::max<std::uint64_t>(run.sleeps, 1)), 0) + " events)";
    return row;
}

// A deny record as jitgated makes it from a ring-buffer event (daemon/kernel_records.h).
void deny_record(std::uint64_t i, jg::AuditFields& out) {
    jg_event e{};
    e.verdict = JG_VERDICT_DENY;
    e.hook = JG_HOOK_CONNECT4;
    e.proto = JG_PROTO_TCP;
    e.dport = 5432;
    e.uid = 1000;
    e.pid = 4242;
    e.cgroup_id = 12345;
    std::memcpy(e.comm, "psql", 4);
    const jg::Addr16 src = *jg::parse_addr("203.0.113.2");
    std::memcpy(e.src, src.data(), 16);
    e.src[15] = std::uint8_t(i % 250 + 2);
    std::memcpy(e.dst, src.data(), 16);
    e.dst[15] = 1;
    e.sport = std::uint16_t(40000 + i % 20000);
    e.suppressed = std::uint32_t(i % 7);
    jg::kernel_event_fields(e, "alice", out);
}

Row chained_rate(const Settings& s) {
    Row row{7, "audit_records", "audit records through the hash-chained log"};
    row.unit = "records/s";
    row.reference = "the same lines written unchained";
    char tmpl[] = "/tmp/jitgate-bench-audit-XXXXXX";
    if (!mkdtemp(tmpl)) {
        row.note = "not measured: cannot make a temporary directory";
        return row;
    }
    const std::string dir = tmpl;
    const std::uint64_t n = s.quick ? 100000 : 500000;
    std::vector<double> chained, plain;
    const int rounds = s.quick ? 1 : 3;
    std::string why;
    jg::SystemClock clock;
    for (int r = 0; r < rounds && why.empty(); ++r) {
        progress("figure 7: round %d/%d: %llu audit records", r + 1, rounds, (unsigned long long)n);
        const std::string log = dir + "/audit.jsonl", head = dir + "/audit.head";
        std::filesystem::remove(log);
        std::filesystem::remove(head);
        {
            auto a = jg::AuditLog::open({log, head, false, ""}, clock);
            if (!a) {
                why = a.error();
                break;
            }
            jg::AuditFields rec;
            const std::uint64_t t0 = now_ns();
            for (std::uint64_t i = 0; i < n; ++i) {
                deny_record(i, rec);
                (*a)->emit(rec);
            }
            (*a)->sync();
            chained.push_back(double(n) * 1e9 / double(now_ns() - t0));
        }
        // Reference: the same records stamped and rendered, one write each,
        // no seq, no hashes, no head file.
        const std::string plain_log = dir + "/plain.jsonl";
        const int fd = open(plain_log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
        if (fd < 0) {
            why = "cannot write a file in /tmp";
            break;
        }
        jg::AuditFields rec;
        std::string line;
        const std::uint64_t t0 = now_ns();
        for (std::uint64_t i = 0; i < n; ++i) {
            deny_record(i, rec);
            line = "{\"ts\":\"" + jg::rfc3339_us(jg::wall_us()) + "\"";
            for (const auto& [k, v] : rec.sorted()) ((((line += ",\"") += k) += "\":") += v);
            line += "}\n";
            if (write(fd, line.data(), line.size()) != ssize_t(line.size())) why = "write failed";
        }
        fdatasync(fd);
        plain.push_back(double(n) * 1e9 / double(now_ns() - t0));
        close(fd);
    }
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
    if (!why.empty()) {
        row.note = "not measured: " + why;
        return row;
    }
    row.value = median(chained);
    row.reference_value = median(plain);
    row.comparison = num(*row.value / *row.reference_value * 100, 0) + " % of unchained";
    row.note =
        std::to_string(n) + " deny records per round, median of " + std::to_string(chained.size()) +
        " rounds; built from ring-buffer events and sealed (SHA-256 chain) as jitgated does, written in "
        "batches of at most " +
        std::to_string(jg::AuditLog::kMaxBatchBytes >> 10) +
        " KiB (one write and one head-file update each; jitgated also writes one after each turn of "
        "its loop)";
    return row;
}

}  // namespace

void bench_audit(const Settings& s, std::vector<Row>& rows) {
    rows.push_back(ring_rate(s));
    rows.push_back(chained_rate(s));
}

}  // namespace jgbench
