#!/usr/bin/python3
"""The daemon's figures for BENCHMARKS.md, with the real jitgated and jitgate
in the end-to-end harness's private set-up (network namespaces, a child
cgroup, a private bpffs, test users; all removed at the end):

  5. grant latency: from `jitgate approve` issued (as the approver's shell
     would start it) to the grantee's first connection the kernel lets
     through, p50 and p99; as a diagnostic, from the daemon's decision (the
     `approve` audit record's timestamp) to that connection; and the whole
     `jitgate approve` command, as the approver runs it.

Goals are judged by report.py.
  8. daemon RSS, idle and with the most grants its maps hold.

    bench_daemon.py BUILD_DIR [--quick] --json FILE
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
from harness import PY, Env  # noqa: E402

GRANT_ENTRIES = 65536  # [daemon] max_grants by default

# The latency loop asks many times a minute as one user: above the default request_rate.
POLICY = """
[daemon]
request_rate = "1000/s"

[[port]]
name = "bench"
port = {port}
proto = "both"
max_duration = "1h"
approvers = ["{appr}"]
"""

# The approve command timed from inside the approver's own process tree, so
# that nsenter and setpriv are not counted: its duration, the wall-clock
# moment it was issued (ns, the probe's clock), then its output.
TIMED = ("import subprocess, sys, time; w = time.time_ns(); t = time.perf_counter(); "
         "r = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
         "print(time.perf_counter() - t); print(w); print(r.stdout)")
# The same, N times in one process: each run's duration.
TIMED_MANY = ("import subprocess, sys, time\n"
              "for _ in range(int(sys.argv[1])):\n"
              "    t = time.perf_counter(); subprocess.run(sys.argv[2:], capture_output=True)\n"
              "    print(time.perf_counter() - t)")


def row(fig, id_, what, unit, value=None, reference="", reference_value=None, comparison="", note="",
        measures=None):
    return dict(figure=fig, id=id_, what=what, value=value, unit=unit, reference=reference,
                reference_value=reference_value, comparison=comparison, note=note, measures=measures or {})


def pct(values, p):
    v = sorted(values)
    if not v:
        return None
    pos = p / 100 * (len(v) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return None


def latency(env, iterations):
    """(approve issued -> first allowed connection) in ms, (decision -> first allowed connection) in µs,
    and approve command times in ms."""
    shutil.copy2(os.path.join(HERE, "latency_probe.py"), os.path.join(env.tmp, "latency_probe.py"))
    probe = os.path.join(env.tmp, "latency_probe.py")
    issued_ms, lat_us, approve_ms, failures = [], [], [], []
    for i in range(iterations):
        p = subprocess.Popen(env.user_argv(env.req, [PY, probe, str(env.port), "10"]), stdout=subprocess.PIPE,
                             text=True, start_new_session=True)
        env.procs.append(p)
        if p.stdout.readline().strip() != "ready":
            failures.append("the probe did not start")
            continue
        rc, req = env.cli_json(env.req, "request", f"{env.port}/udp", "--for", "10m", "--reason", "bench")
        if rc != 0:
            failures.append(f"request: {req}")
            p.kill()
            continue
        rid = str(req["request_id"])
        r = env.as_user(env.appr, [PY, "-c", TIMED, env.jitgate, "--socket", env.sock, "--json", "approve", rid])
        lines = r.stdout.splitlines()
        try:
            approve_ms.append(float(lines[0]) * 1000)
            issued_ns = int(lines[1])
            answer = json.loads("\n".join(lines[2:]))
        except (ValueError, IndexError):
            failures.append(f"approve: {r.stdout} {r.stderr}")
            p.kill()
            continue
        out = p.stdout.readline().strip()
        p.wait(timeout=15)
        if not out.isdigit():
            failures.append(f"the probe saw no allowed connection ({out})")
        else:
            allowed_ns = int(out)
            issued_ms.append((allowed_ns - issued_ns) / 1e6)
            recs = [x for x in env.audit_records(type="approve") if str(x.get("request_id")) == rid]
            if not recs:
                failures.append("no approve record")
            else:
                ts = recs[-1]["ts"]
                decided = time_of(ts)
                lat_us.append((allowed_ns / 1000) - decided)
        if answer.get("grant_id"):
            env.cli(env.req, "revoke", str(answer["grant_id"]))
    return issued_ms, lat_us, approve_ms, failures


def process_start_ms(env, n):
    """Wall times (ms) of `jitgate --version` run as the approver runs `approve`: what starting the
    command alone costs on this machine."""
    r = env.as_user(env.appr, [PY, "-c", TIMED_MANY, str(n), env.jitgate, "--version"])
    try:
        return [float(x) * 1000 for x in r.stdout.split()]
    except ValueError:
        return []


def time_of(ts):
    """RFC 3339 with microseconds, UTC -> µs since the epoch."""
    import datetime
    d = datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)
    return (d - datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)) // datetime.timedelta(microseconds=1)


def grants_in_map(env):
    """Entries of the daemon's pinned jg_grants_addr (under its one v<ABI> directory), or None."""
    top = os.path.join(env.bpffs, "jitgate")
    dirs = [d for d in os.listdir(top) if d.startswith("v")] if os.path.isdir(top) else []
    if len(dirs) != 1:
        return None
    r = subprocess.run(["bpftool", "-j", "map", "dump", "pinned", os.path.join(top, dirs[0], "jg_grants_addr")],
                       capture_output=True, text=True)
    try:
        entries = json.loads(r.stdout)
    except ValueError:
        return None
    return len(entries) if r.returncode == 0 and isinstance(entries, list) else None


def start_big_daemon(env):
    """Starts jitgated on a store of many grants. `status` lists every grant,
    too much for one reply, so readiness is its log line instead."""
    log_path = os.path.join(env.tmp, "jitgated.log")
    before = env.daemon_log().count("enforcing ")
    log = open(log_path, "a")
    env.daemon = subprocess.Popen(["nsenter", f"--net=/run/netns/{env.ns}"] + env.daemon_args("--quiet"),
                                  stdout=log, stderr=log, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if env.daemon.poll() is not None:
            raise RuntimeError("jitgated exited at start:\n" + env.daemon_log())
        with open(log_path) as f:
            if f.read().count("enforcing ") > before:
                return
        time.sleep(0.2)
    raise RuntimeError("jitgated did not start within 120 s")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", required=True)
    a = ap.parse_args()
    rows = []
    env = None
    lat_rows = [row(5, "approve_latency_p50", "grant latency p50: `jitgate approve` issued to the grantee's first "
                    "allowed connection", "ms"),
                row(5, "approve_latency_p99", "grant latency p99: `jitgate approve` issued to the grantee's first "
                    "allowed connection", "ms"),
                row(5, "grant_latency_p50", "diagnostic p50: the daemon's decision to the first allowed connection",
                    "µs"),
                row(5, "grant_latency_p99", "diagnostic p99: the daemon's decision to the first allowed connection",
                    "µs"),
                row(5, "approve_command", "the whole `jitgate approve` command (p50)", "ms")]
    rss_rows = [row(8, "rss_idle", "daemon RSS, idle (no grants)", "MiB"),
                row(8, "rss_grants", "daemon RSS with grants", "MiB")]
    try:
        env = Env(os.path.abspath(a.build), POLICY)
        env.start_daemon()
        time.sleep(1)
        idle = rss_kib(env.daemon.pid)
        r = rss_rows[0]
        r.update(value=idle / 1024, reference="16 MiB", reference_value=16.0,
                 comparison=f"{idle / 1024 / 16 * 100:.0f} % of the budget",
                 note="VmRSS of jitgated 1 s after start, policy with one port")

        n = 20 if a.quick else 100
        issued, lat, appr, failures = latency(env, n)
        start = process_start_ms(env, n)
        how = (f"{len(lat)} grants (of {n} tried); local user, UDP connect() to 127.0.0.1 refused with EPERM "
               "until the grant is in the map, tried in a busy loop")
        if failures:
            how += f"; {len(failures)} failed: {failures[0]}"
        for x, values, p in ((lat_rows[0], issued, 50), (lat_rows[1], issued, 99), (lat_rows[2], lat, 50),
                             (lat_rows[3], lat, 99)):
            if not values:
                x["note"] = "not measured: " + (failures[0] if failures else "no iteration completed")
                continue
            other = 99 if p == 50 else 50
            x.update(value=pct(values, p), reference=f"p{other}", reference_value=pct(values, other))
            if values is issued and start:
                ref = pct(start, p)
                x.update(reference=f"`jitgate --version` run the same way (process start alone), p{p}",
                         reference_value=ref, comparison=f"{x['value'] / ref:.1f}x the process start")
            x["note"] = how + ("; issued = the wall clock just before the approver's process starts `jitgate "
                               "approve` (process start, connect, request, reply and print included)"
                               if values is issued else "; decision = ts of the `approve` audit record")
        if appr:
            lat_rows[4].update(value=pct(appr, 50), reference="p99", reference_value=pct(appr, 99),
                               comparison="", note=f"{len(appr)} runs, wall time of the process as the "
                               "approver runs it (connect, request, reply, print)")
        else:
            lat_rows[4]["note"] = "not measured: no approve completed"

        # RSS with grants: a store of GRANT_ENTRIES grants (the most the maps
        # hold), loaded into the maps by the daemon at start.
        env.stop_daemon()
        state2 = os.path.join(env.tmp, "state-grants")
        os.mkdir(state2, 0o700)
        made = subprocess.run([os.path.join(a.build, "tests", "bench", "jitgate_bench"), "--make-store",
                               os.path.join(state2, "state.db"), str(GRANT_ENTRIES), str(env.port)],
                              capture_output=True, text=True)
        r = rss_rows[1]
        if made.returncode != 0:
            r["note"] = "not measured: cannot make the state store: " + made.stderr.strip()
        else:
            env.state = state2
            start_big_daemon(env)
            time.sleep(1)
            kib = rss_kib(env.daemon.pid)
            in_map = grants_in_map(env)
            if in_map != GRANT_ENTRIES:
                said = [x for x in env.daemon_log().splitlines() if "grant" in x][-3:]
                raise RuntimeError(f"the daemon's map holds {in_map} grants, not the {GRANT_ENTRIES} of its store "
                                   f"(its log: {' / '.join(said)})")
            budget = 16 + GRANT_ENTRIES * 64 / 2 ** 20
            r.update(what=f"daemon RSS with {GRANT_ENTRIES} grants", value=kib / 1024,
                     reference=f"16 MiB + 64 B x {GRANT_ENTRIES}", reference_value=budget,
                     comparison=f"{kib / 1024 / budget * 100:.0f} % of the budget",
                     measures={"grants": in_map},
                     note=f"{in_map} remote grants (one host each) in jg_grants_addr after the daemon's start, "
                          f"[daemon] max_grants at "
                          f"its default ({GRANT_ENTRIES}); a store of 1M grants is not timed here (restoring it "
                          "takes the daemon several seconds)")
    except Exception as e:  # noqa: BLE001 - every figure says why it is missing
        for x in lat_rows + rss_rows:
            if x["value"] is None and not x["note"]:
                x["note"] = f"not measured: {type(e).__name__}: {e}"
    finally:
        if env:
            env.cleanup()
    rows = lat_rows + rss_rows
    with open(a.json, "w") as f:
        json.dump({"quick": a.quick, "rows": rows}, f, indent=2)
    for x in rows:
        print(f"{x['figure']} {x['what']}: {x['value']} {x['unit']} {x['note']}")


if __name__ == "__main__":
    main()
