#!/usr/bin/env python3
"""Merges the figures of jitgate_bench and bench_daemon.py (JSON rows), prints
the table, writes the merged JSON and, when asked, BENCHMARKS.md.

    report.py --command TEXT [--json FILE] [--markdown FILE] PART.json...

Every figure comes from the parts; this file only lays them out, and says
for each missed goal why it is missed and what would close it.
"""
import argparse
import datetime
import json
import os
import platform
import sys

FIGURES = {
    1: "XDP cost per packet",
    2: "cgroup_skb cost per packet",
    3: "connect() cost",
    4: "Deny flood",
    5: "Grant latency",
    6: "Loading grants",
    7: "Audit throughput",
    8: "Memory",
}

# Why a goal is missed and what would close it: shown only for rows whose
# goal this run judged missed.
WHY = {
    "xdp_allow": "the allow path must read CLOCK_BOOTTIME (design §1: expiry checked in the kernel on every "
                 "packet); on this VM that helper alone costs more than the 25 ns budget (compare "
                 "`tests/bpf/bench_xdp`, which measures it). Closing it means a cheaper clock on the allow path "
                 "(bpf_ktime_get_coarse_ns has ~4 ms resolution), which the design rules out for now.",
    "xdp_deny": "the deny path pays the local-address hash lookup, the grant hash lookup, an (empty) LPM trie "
                "lookup and the per-source rate-limit window update. A bloom filter or a per-port 'has remote grants' "
                "flag in front of the grant maps, skipping the empty trie (a count in jg_config) and a per-CPU "
                "rate limit would cut most of it.",
    "ingress_deny": "same lookups as XDP plus bpf_skb_load_bytes copies of the headers and the rate limiter; "
                    "reading headers in place (direct packet access) when linear would close most of the gap.",
    "ingress_allow": "grant lookup, CLOCK_BOOTTIME and the per-flow LRU lookup (one allow record per flow) on "
                     "every packet of an admitted flow; a per-socket 'admitted under grant G until T' cache "
                     "(sk_storage) would replace two hash lookups with one.",
    "egress_deny": "the test run's socket has no sk_storage, so every denied packet reserves a ring-buffer "
                   "record (the ring fills and the reserve fails); the parse uses bpf_skb_load_bytes. Direct "
                   "packet access would close part of it.",
    "egress_allow": "every packet to a protected port re-checks the grant: sk_storage lookup, grant hash "
                    "lookup, CLOCK_BOOTTIME. Caching the grant's expiry in sk_storage (one lookup, one clock "
                    "read) would close part of it; the clock read remains.",
    "connect_udp": "allow records no longer wake the consumer (BPF_RB_NO_WAKEUP, drained every 50 ms), "
                   "which took most of the cost away; what remains is four programs on each connect and send "
                   "(connect4, egress, both ingress programs on lo), each with a port lookup, and on connect a "
                   "grant hash lookup, CLOCK_BOOTTIME, the sk_storage update and the allow record. Caching the "
                   "grant's expiry in sk_storage for egress and letting the ingress programs skip loopback "
                   "before the parse would close part of it.",
    "connect_tcp": "the same programs on every segment of the loopback handshake and close (SYN, SYN-ACK, "
                   "ACK, FIN or RST each cross egress and both ingress programs); 1 % is also below this VM's "
                   "run-to-run noise for a 35 µs cycle.",
    "ring_events": "the libbpf consumer cannot keep up on this machine; batching wake-ups helps.",
    "audit_records": "each record is built as JSON, serialised canonically, hashed (SHA-256), rendered again "
                     "and written with two syscalls (the line and the head file). Sealing batches of records "
                     "(one write and one head update per batch), a faster canonical serialiser than "
                     "nlohmann::json and hashing from the rendered line would close it.",
    "kmem_per_remote_grant": "a BPF hash element carries a 48-byte htab_elem header plus the 24-byte key "
                             "(20 rounded up) and the 16-byte value, and the bucket array adds 16 bytes per "
                             "entry. An 8-byte value (32-bit expiry in seconds + 32-bit grant id) or a 16-byte "
                             "address hash key would bring it under 96 B.",
    "kmem_per_local_grant": "a BPF hash element carries a 48-byte header besides its 8-byte key and 16-byte "
                            "value, and the buckets add 16 bytes per entry; an 8-byte value would close it.",
    "grant_load": "the kernel inserts batched elements one at a time (an allocation and a hash insert each); "
                  "a preallocated map would trade memory for speed.",
    "flood_pps": "every frame comes from a new /64, so jitgate's deny path misses the caches: the lookup in "
                 "a grant hash of a million entries (about 100 MB with its buckets), the rate-limit table of 65536 "
                 "windows (full after the first 65536 sources: a failed insert and a second lookup before the "
                 "denial is counted as rl_full) and the ring reserve (full too: nobody drains it here). The nftables set "
                 "holds fewer elements (see the note), so its lookups stay in cache. A bloom filter in front of "
                 "the grant map (a few cache lines instead of a bucket walk in 100 MB) and no rate-limit state for "
                 "sources once the table is full (count them per CPU) would close it.",
    "grant_latency_p50": "between the decision (the `approve` record, written before the grant takes effect) and the map "
                         "update the daemon runs one SQLite transaction (the grant, its id and its request; about 150 µs "
                         "here, mostly writing some ten WAL pages, no longer fsynced per commit) and the map write (about "
                         "10 µs); the probe needs some 40 µs to notice. Writing the map before the commit is ruled out by "
                         "design §2 (a grant is persisted before it reaches a map); fewer indexes on grants and requests, "
                         "or one pre-built statement for the whole grant, would shorten the transaction.",
    "grant_latency_p99": "scheduling on a shared 2-core VM (the daemon, the prober and the receiver compete) on top of "
                         "the p50's transaction.",
    "approve_command": "",
    "rss_idle": "",
    "rss_grants": "at start the daemon reads every active grant into a vector of GrantRow (strings, approver "
                  "lists) and a std::map to reconcile the maps; glibc keeps that memory after it is freed. "
                  "Reconciling from a row-by-row cursor (or malloc_trim after it) would close it. 1M grants "
                  "needs a way to size the daemon's maps (a [daemon] max_grants setting), not done here.",
}


def fmt_value(v, unit):
    if v is None:
        return "not measured"
    if abs(v) >= 100000:
        return f"{v:,.0f}"
    if abs(v) >= 100:
        return f"{v:.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.3g}"


def verdict(row):
    if row.get("met") is True:
        return "met"
    if row.get("met") is False:
        return "**missed**"
    if row.get("value") is None:
        return "not measured"
    return "-"


def machine():
    cpu = "unknown CPU"
    virt = False
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and cpu == "unknown CPU":
                    cpu = line.split(":", 1)[1].strip()
                if line.startswith("flags") and " hypervisor" in line:
                    virt = True
    except OSError:
        pass
    mem = 0
    try:
        with open("/proc/meminfo") as f:
            mem = int(f.readline().split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        pass
    osname = ""
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    osname = line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_mib": mem, "virtual_machine": virt,
            "kernel": platform.release(), "os": osname}


def table_lines(rows):
    out = []
    head = f"{'fig':<3} {'what':<58} {'value':>13} {'unit':<10} {'reference':>12} {'comparison':<22} goal"
    out.append(head)
    for r in rows:
        out.append(f"{r['figure']:<3} {r['what'][:58]:<58} {fmt_value(r['value'], r['unit']):>13} "
                   f"{r['unit']:<10} {fmt_value(r['reference_value'], r['unit']) if r['reference_value'] is not None else '-':>12} "
                   f"{r['comparison'][:22]:<22} {r['goal']} {verdict(r).strip('*')}")
        if r["value"] is None:
            out.append(f"    {r['note']}")
    return out


def markdown(doc):
    m = doc["machine"]
    lines = [
        "# Benchmarks",
        "",
        "Generated by `scripts/bench.sh` (the figures come from `tests/bench/jitgate_bench` and "
        "`tests/bench/bench_daemon.py`; this file is rewritten by every full run). Each figure stands "
        "next to its reference measured in the same run, in interleaved rounds, medians reported: on a "
        "shared machine absolute times drift, the ratios are what counts.",
        "",
        f"- command: `{doc['command']}`",
        f"- date: {doc['date']}",
        f"- machine: {m['cpu']}, {m['cores']} cores, {m['memory_mib']} MiB"
        + (" — a virtual machine (hypervisor flag set), shared with other work while measured" if m["virtual_machine"] else ""),
        f"- kernel: {m['kernel']} ({m['os']})",
        f"- goals met: {doc['summary']['met']}, missed: {doc['summary']['missed']}, "
        f"not measured: {doc['summary']['not_measured']}",
        "",
    ]
    if doc["quick"]:
        lines += ["**This is a `--quick` run: fewer rounds and smaller sets; see each note.**", ""]
    for fig, title in FIGURES.items():
        rows = [r for r in doc["rows"] if r["figure"] == fig]
        lines += [f"## {fig}. {title}", ""]
        if not rows:
            lines += ["Not measured: no part of the benchmark reported this figure.", ""]
            continue
        lines += ["| measurement | value | reference | comparison | goal | verdict |",
                  "|---|---:|---|---|---|---|"]
        for r in rows:
            ref = r["reference"]
            if r["reference_value"] is not None:
                ref += f": {fmt_value(r['reference_value'], r['unit'])} {r['unit']}"
            val = fmt_value(r["value"], r["unit"]) + (f" {r['unit']}" if r["value"] is not None else "")
            lines.append(f"| {r['what']} | {val} | {ref} | {r['comparison']} | {r['goal']} | {verdict(r)} |")
        lines.append("")
        notes = [r for r in rows if r.get("note")]
        for r in notes:
            lines.append(f"- {r['what']}: {r['note']}")
        missed = [r for r in rows if r.get("met") is False and WHY.get(r["id"])]
        for r in missed:
            lines.append(f"- **Why missed ({r['what']})**: {WHY[r['id']]}")
        lines.append("")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--command", required=True)
    ap.add_argument("--json")
    ap.add_argument("--markdown")
    ap.add_argument("parts", nargs="+")
    a = ap.parse_args()
    rows, quick = [], False
    for p in a.parts:
        try:
            with open(p) as f:
                part = json.load(f)
        except (OSError, ValueError) as e:
            print(f"report: cannot read {p}: {e}", file=sys.stderr)
            continue
        quick = quick or part.get("quick", False)
        rows += part.get("rows", [])
    rows.sort(key=lambda r: r["figure"])
    doc = {
        "command": a.command,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "quick": quick,
        "summary": {"met": sum(r.get("met") is True for r in rows),
                    "missed": sum(r.get("met") is False for r in rows),
                    "not_measured": sum(r.get("value") is None for r in rows)},
        "rows": rows,
    }
    print("\n".join(table_lines(rows)))
    s = doc["summary"]
    print(f"goals met: {s['met']}, missed: {s['missed']}, not measured: {s['not_measured']}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(doc, f, indent=2)
            f.write("\n")
    if a.markdown:
        with open(a.markdown, "w") as f:
            f.write(markdown(doc))
            f.write("\n")
        print(f"wrote {a.markdown}")


if __name__ == "__main__":
    main()
