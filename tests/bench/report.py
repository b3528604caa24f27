#!/usr/bin/env python3
"""Merges the figures of jitgate_bench, bench_daemon.py and bench_fleet.py (JSON rows), prints
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
    9: "Fleet (three nodes, one etcd)",
    10: "Notifications (jitgate notify to a local receiver)",
}


def _m(row, key):
    return (row.get("measures") or {}).get(key)


def _connect(nft_id, limit_pct=None):
    """jitgate's overhead at most nftables' in the same run (and at most limit_pct)."""
    def judge(row, by_id):
        mine, nft = _m(row, "pct"), _m(by_id.get(nft_id, {}), "pct")
        if mine is None or nft is None:
            return None
        return mine <= nft and (limit_pct is None or mine <= limit_pct)
    return judge


def _flood_random(row, _):
    # No ratio when the generator could not outrun nftables; a lower bound when jitgate took all it got.
    if not _m(row, "nft_saturated") or _m(row, "vs_nft") is None:
        return None
    if _m(row, "vs_nft") >= 1.5:
        return True
    return False if _m(row, "saturated") else None


def _flood_single(row, _):
    if _m(row, "vs_ceiling") is None:
        return None
    if not _m(row, "ceiling_saturated"):
        # The ceiling took all it was offered: the ratio is an upper bound,
        # which decides only when it is already below the goal.
        return False if _m(row, "vs_ceiling") < 0.8 else None
    return _m(row, "vs_ceiling") >= 0.8


def _rss_grants(row, _):
    grants = _m(row, "grants")
    return None if grants is None else row["value"] <= 16 + grants * 64 / 2 ** 20


def _delta(limit):
    return lambda row, _: None if _m(row, "delta_ns") is None else _m(row, "delta_ns") <= limit


def _ratio(limit):
    return lambda row, _: None if _m(row, "ratio") is None else _m(row, "ratio") <= limit


def _at_most(limit):
    return lambda row, _: row["value"] <= limit


# Every goal, from issue 18 (and the no-regression goals of issue 7): id ->
# (the goal as the table shows it, a judge of the row: True, False, or None
# when this run cannot tell).  Rows without an entry have no goal.
GOALS = {
    "xdp_unprotected": ("<= 5 ns above the empty program", _delta(5)),
    "xdp_deny": ("<= 30 ns above the empty program", _delta(30)),
    "xdp_allow": ("<= 50 ns above the empty program", _delta(50)),
    **{k: ("<= 3x the empty program", _ratio(3)) for k in (
        "ingress_unprotected", "ingress_deny", "ingress_allow",
        "egress_unprotected", "egress_deny", "egress_allow")},
    "connect_udp": ("<= nftables' overhead (this run) and <= 15 % over no program",
                    _connect("connect_udp_nft", 15)),
    "connect_tcp": ("<= nftables' overhead (this run)", _connect("connect_tcp_nft")),
    "flood_gen": (">= 2x the fastest dropper",
                  lambda row, _: None if _m(row, "vs_fastest") is None else _m(row, "vs_fastest") >= 2),
    "flood_xdp_random": (">= 1.5x nftables (stretch 2.5x)", _flood_random),
    "flood_xdp_single": (">= 0.8x the ceiling", _flood_single),
    "approve_latency_p50": ("<= 5 ms", _at_most(5)),
    "approve_latency_p99": ("<= 20 ms", _at_most(20)),
    "grant_latency_p99": ("<= 1 ms", _at_most(1000)),
    "grant_load": ("1M grants in <= 1 s and >= 5x faster than nft -f",
                   lambda row, _: _m(row, "per_million_s") <= 1 and _m(row, "vs_nft") >= 5),
    "kmem_per_remote_grant": ("<= 96 B per grant at 1M grants", _at_most(96)),
    "kmem_per_local_grant": ("<= 96 B per grant at 1M grants", _at_most(96)),
    "ring_events": (">= 2M events/s with zero loss (no regression)",
                    lambda row, _: row["value"] >= 2e6 and _m(row, "lost") == 0),
    "audit_records": (">= 250k records/s (no regression)", lambda row, _: row["value"] >= 250000),
    "rss_idle": ("<= 16 MiB (no regression)", _at_most(16)),
    "rss_grants": ("<= 16 MiB + 64 B per grant (no regression)", _rss_grants),
    # issue 19: the fleet on a local etcd.
    "fleet_approve_p99": ("<= 1000 ms", _at_most(1000)),
    "fleet_revoke_p99": ("<= 1000 ms", _at_most(1000)),
    "fleet_converge": ("<= 2 s", _at_most(2)),
    # issue 22: jitgate notify.
    "notify_latency_p99": ("<= 1000 ms", _at_most(1000)),
}
REFERENCE_ROWS = ("connect_udp_nft", "connect_tcp_nft")


def judge(rows):
    """Sets each row's goal and verdict (met: True, False, None) from GOALS."""
    by_id = {r["id"]: r for r in rows}
    for r in rows:
        goal, check = GOALS.get(r["id"], ("reference" if r["id"] in REFERENCE_ROWS else "", None))
        r["goal"] = goal
        r["met"] = None
        if check is not None and r.get("value") is not None:
            try:
                r["met"] = check(r, by_id)
            except (TypeError, KeyError):  # a measure the part did not report
                r["met"] = None


# A cost of the flood's path that weighs more on a slower dropper (seen
# with perf: both CPUs wait in native_queued_spin_lock_slowpath under
# page_pool_put_unrefed_netmem).
FLOOD_PATH = ("The frames the full veth refuses go back to the generator's page pool under the same lock the "
              "receiving CPU takes for every frame it drops; the slower the dropper, the more frames the "
              "generator returns that way meanwhile.")

# Why a goal is missed and what would close it: shown only for rows whose
# goal this run judged missed.  Each must stay true for what is measured;
# the BPF-cost ones (figures 1-4) describe the programs of ABI 3.
WHY = {
    "fleet_converge": "a restarting node reads every document of the fleet (one etcd range, parsed on one "
                      "thread) and checks each one's Ed25519 signature against [fleet] signers as they are now "
                      "(design.md §7.3; on every core, at the cost of 'checking a grant document's signature' "
                      "below). Keeping what was verified (key, revision, signers) in the mirror, so that a "
                      "restart checks only what changed, would close it.",
    "xdp_unprotected": "the unprotected path parses the headers and looks the port up (jg_ports); on this VM a "
                       "BPF_PROG_TEST_RUN figure moves by a few ns from round to round, as much as the budget.",
    "xdp_deny": "a repeat denial pays the parse, the port, the bloom filter's hash (or, without a "
                "filter, the grant hash's miss), this CPU's memo (the coarse clock, a 20-byte compare and an "
                "atomic add on its own cache line) and two per-CPU counters; what is left is helper calls "
                "(clock, CPU id) and the hashes, which a per-port 'no remote grants' flag could skip.",
    "xdp_allow": "the allow path pays the bloom filter (one hash), the grant hash (1M entries) and the "
                 "CLOCK_BOOTTIME read (design §1: expiry is checked in the kernel on every packet); the row "
                 "'the clock alone' is that read's share, measured in the same rounds.",
    "ingress_deny": "the receiving socket's port, the in-place parse, the host-netns check (a helper call), "
                    "the flow entry's lookup (a miss), the bloom filter or the grant hash, and the denial's "
                    "memo and counters, against an empty program that does nothing at all; checking the "
                    "grant before the flow cache would move a lookup from the deny to the allow path.",
    "ingress_allow": "an admitted flow pays the socket's port, the in-place parse, the host-netns check, the "
                     "flow entry's lookup and the clock read; the test run's packets are all one flow, so this "
                     "is the cached path. The clock read alone (the row 'the clock alone', design §1: expiry "
                     "is checked on every packet) costs about twice the empty program, which leaves the rest "
                     "of the path less than one empty program's time: the goal cannot be met while every "
                     "packet reads CLOCK_BOOTTIME on this machine.",
    "egress_deny": "the parse (in place), the socket-storage lookup, the port, the host-netns check, the uid "
                   "grant lookup's miss and the drop's counters and (first drop of a socket) event.",
    "egress_allow": "the test run's socket has no socket storage (BPF_PROG_TEST_RUN's stand-in socket), so "
                    "this is the uncached path: storage lookup (a miss), the port, the host-netns check, the "
                    "uid grant hash and the clock. A real connection takes the cached path (one storage lookup "
                    "and the clock): figure 3. The clock alone (the row 'the clock alone') costs about twice "
                    "the empty program.",
    "connect_udp": "on each iteration connect4 runs (the port, the destination, the host-netns check, the "
                   "uid grant lookup, the clock and the socket's storage; a UDP connect() again under the same "
                   "grant is the same flow and writes no allow record), then egress (storage and the clock) "
                   "and ingress on lo; the kernel takes the socket lock around a connect hook. Against it, one "
                   "nftables chain with one set lookup per packet. Measured with kernel.bpf_stats_enabled in "
                   "this loop, connect4 went from about 620 to 450 ns a run when the re-connect stopped "
                   "recording; trusting the socket's cached admission instead of the grant lookup saved "
                   "another 100 ns, but a connect() opens a flow, and the cache is only egress's shortcut for "
                   "flows already opened (a cache left from another grant must never open one), so the "
                   "hooks ask the grant map.",
    "connect_tcp": "the same programs run on every segment of the loopback handshake and close (SYN, SYN-ACK, "
                   "ACK, FIN or RST each cross egress and both ingress programs), and the connect hook gives "
                   "every new socket its storage (an allocation, freed after an RCU grace period) for the "
                   "egress cache and the drain rule, against one nftables chain per segment. On this VM the "
                   "run-to-run noise of a connect/close cycle is several per cent: in six runs of figure 3 "
                   "alone (jitgate_bench --only 3), jitgate's overhead was 0 to 9 points above nftables'.",
    "flood_gen": "the generator's CPU also takes back, through a locked ring, the page of every frame the "
                 "other CPU dropped (page pool recycling across CPUs), and both CPUs are shared with other "
                 "work; a machine with more CPUs could run more generators (one per CPU, one veth queue each).",
    "flood_xdp_random": "every frame comes from a new /64: the bloom filter answers for the grants, but "
                        "each new source still costs a lookup in the rate-limit table (full within the first "
                        "65536 frames, then each denial is counted as rl_full) and the ring is full (nobody "
                        "drains it here); the note gives the receiving CPU's time per frame of each dropper. "
                        + FLOOD_PATH,
    "flood_xdp_single": "besides the program (parse, the port, the bloom filter, the memo's compare and atomic "
                        "add, against nothing for the trivial drop), both pay the path's fixed costs; the note "
                        "gives the receiving CPU's time per frame of each. " + FLOOD_PATH,
    "approve_latency_p50": "starting the command is most of it on this shared machine: `jitgate --version`, run "
                           "the same way, is the reference; the daemon's own part (decision to the allowed "
                           "connection) is the diagnostic row below. A page fault costs about 15 µs on this VM, so "
                           "starting any process is dear: a C program that does nothing takes about 2 ms to run "
                           "here. jitgate maps only libc and libm (fmt and toml++ compiled in, the C++ runtime "
                           "linked statically, libcurl and libcrypto loaded only by the commands that use them); "
                           "what is left of its start is about 80 page faults more than that empty program's (the "
                           "heap CLI11's command table takes, the binary's relocations). A client that does not "
                           "start a process per decision (the web page, a pipeline on the socket) pays none of it.",
    "approve_latency_p99": "scheduling on a shared 2-core VM (the approver's command, the daemon and the busy "
                           "prober compete): compare the process start's own p99, the reference.",
    "grant_latency_p99": "between the decision (the `approve` record, written before the grant takes effect) and "
                         "the map update the daemon runs one SQLite transaction (about 15 pages into the "
                         "write-ahead log, no fsync) and the map write, and the prober must be scheduled to "
                         "notice. SQLite's own checkpoint, which ran inside every commit that took the log past "
                         "1000 frames, now runs in the daemon's tick (userspace/core/store_wal.cpp); what is "
                         "left in the tail is the scheduling of a shared 2-core VM.",
    "ring_events": "the rate follows this VM's scheduling of two vCPUs: the note gives how often the "
                   "consumer caught up and slept (each time, a record that finds it caught up wakes it, "
                   "an interrupt, at most once a millisecond); before jitgate's programs held those "
                   "wake-ups back the same figure was 0.35M-0.4M events/s here, one wake-up per few "
                   "records.",
    "audit_records": "each record is built as JSON, serialised canonically, hashed (SHA-256), rendered again "
                     "and written; a faster canonical serialiser than nlohmann::json and hashing from the "
                     "rendered line would close it.",
    "kmem_per_remote_grant": "a preallocated BPF hash element carries a 48-byte htab_elem header, the "
                             "24-byte key (20 rounded up: a 16-byte address, port and protocol) and the "
                             "16-byte value, the bucket array 16 bytes per entry, and the bloom filter about "
                             "one more. An 8-byte value (expiry in seconds, 32-bit id) would leave about 98 B: "
                             "the key has to shrink too. An IPv4 map of its own (8-byte key) would bring IPv4 "
                             "grants to about 90 B but preallocate a second map of max_grants; a hash of the "
                             "address as the key would let two sources share a grant, which an access-control "
                             "map must not.",
    "kmem_per_local_grant": "a preallocated BPF hash element carries a 48-byte header besides its 8-byte key "
                            "and 16-byte value, and the buckets add 16 bytes per entry.",
    "grant_load": "the kernel inserts batched elements one at a time (a hash insert each).",
    "rss_idle": "",
    "rss_grants": "at start the daemon reads every active grant into a vector of GrantRow (strings, approver "
                  "lists) and a std::map to reconcile the maps; glibc keeps that memory after it is freed. "
                  "Reconciling from a row-by-row cursor (or malloc_trim after it) would close it.",
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
    if row.get("goal") and row["goal"] != "reference":
        return "not judged"
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
        "Generated by `scripts/bench.sh` (the figures come from `tests/bench/jitgate_bench`, "
        "`tests/bench/bench_daemon.py`, `tests/bench/bench_fleet.py` and `tests/bench/bench_notify.py`; this file is rewritten by every full run). Each figure stands "
        "next to its reference measured in the same run, in interleaved rounds, medians reported: on a "
        "shared machine absolute times drift, the ratios are what counts.",
        "",
        f"- command: `{doc['command']}`",
        f"- date: {doc['date']}",
        f"- machine: {m['cpu']}, {m['cores']} cores, {m['memory_mib']} MiB"
        + (" — a virtual machine (hypervisor flag set), shared with other work while measured" if m["virtual_machine"] else ""),
        f"- kernel: {m['kernel']} ({m['os']})",
        f"- goals met: {doc['summary']['met']}, missed: {doc['summary']['missed']}, "
        f"not measured: {doc['summary']['not_measured']}, not judged (see the notes): "
        f"{doc['summary']['not_judged']}",
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
    judge(rows)
    doc = {
        "command": a.command,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "quick": quick,
        "summary": {"met": sum(r.get("met") is True for r in rows),
                    "missed": sum(r.get("met") is False for r in rows),
                    "not_measured": sum(r.get("value") is None for r in rows),
                    "not_judged": sum(verdict(r) == "not judged" for r in rows)},
        "rows": rows,
    }
    print("\n".join(table_lines(rows)))
    s = doc["summary"]
    print(f"goals met: {s['met']}, missed: {s['missed']}, not measured: {s['not_measured']}, "
          f"not judged: {s['not_judged']}")
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
