#!/usr/bin/python3
"""jitgate notify's figures for BENCHMARKS.md (issue 22), with the real
jitgated, jitgate notify (as an auditor) and a local receiver on 127.0.0.1
(Python's threading HTTP server, which checks nothing: the figures are the
notifier's and the receiver's together):

  10. delivery latency: from an audit record's ts (jitgated sealed it) to the
      receiver holding its webhook, for request and reject records made one
      at a time, p50 and p99;
      throughput: a backlog of records (notify_failed, written by an auditor
      as fast as jitgated takes them) delivered from the state file's seq,
      to one target and to ten targets at once, records per second per
      target and in all.

    bench_notify.py BUILD_DIR [--quick] --json FILE
"""
import argparse
import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
from harness import Env  # noqa: E402

POLICY = """
[daemon]
auditors = ["@{group}"]

[[port]]
name = "bench"
port = {port}
proto = "tcp"
max_duration = "1h"
approvers = ["{appr}"]
"""


def row(id_, what, unit, note=""):
    return dict(figure=10, id=id_, what=what, value=None, unit=unit, reference="", reference_value=None,
                comparison="", note=note, measures={})


def pct(values, p):
    v = sorted(values)
    if not v:
        return None
    pos = p / 100 * (len(v) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


class Receiver:
    def __init__(self):
        self.lock = threading.Lock()
        self.at = {}  # (path, seq) -> wall time received
        rx = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                now = time.time()
                with rx.lock:
                    rx.at.setdefault((self.path, int(self.headers["webhook-id"])), now)
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def count(self, path):
        with self.lock:
            return sum(1 for p, _ in self.at if p == path)


def tables(rx, names, types):
    return "".join(f'\n[[notify]]\nname = "{n}"\nurl = "http://127.0.0.1:{rx.port}/{n}"\ntypes = {json.dumps(types)}\n'
                   for n in names)


def start_notifier(env, config, state):
    subprocess.run(["chown", "-R", f"{env.grp}:{env.grp}", state], check=True)
    argv = ["setpriv", f"--reuid={env.grp}", f"--regid={env.grp}", "--init-groups", "--", env.jitgate,
            "--socket", env.sock, "notify", "--config", config, "--state-dir", state]
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    env.procs.append(p)
    return p


def stop(p):
    p.terminate()
    try:
        p.wait(timeout=20)
    except subprocess.TimeoutExpired:
        p.kill()


def head(env):
    return env.audit_records()[-1]["seq"]


def latency(env, rx, rounds, fig):
    state = os.path.join(env.tmp, "lat-state")
    os.mkdir(state)
    config = os.path.join(env.tmp, "lat.toml")
    with open(config, "w") as f:
        f.write(tables(rx, ["lat"], ["request", "reject"]))
    p = start_notifier(env, config, state)
    deadline = time.monotonic() + 30
    while not os.path.exists(os.path.join(state, "lat.json")) and time.monotonic() < deadline:
        time.sleep(0.1)
    first = head(env)
    for _ in range(rounds):
        rc, req = env.cli_json(env.req, "request", str(env.port), "--for", "5m", "--reason", "bench")
        env.cli(env.req, "deny", str(req.get("request_id")))
        time.sleep(0.05)
    recs = [r for r in env.audit_records() if r["seq"] > first and r["type"] in ("request", "reject")]
    deadline = time.monotonic() + 60
    while rx.count("/lat") < len(recs) and time.monotonic() < deadline:
        time.sleep(0.1)
    stop(p)
    ms = []
    for r in recs:
        got = rx.at.get(("/lat", r["seq"]))
        if got is not None:
            sealed = time.mktime(time.strptime(r["ts"][:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone + \
                float("0." + r["ts"][20:26])
            ms.append((got - sealed) * 1000)
    note = f"{len(ms)} of {len(recs)} records"
    for key, p_ in (("lat_p50", 50), ("lat_p99", 99)):
        fig[key]["value"] = round(pct(ms, p_), 1) if ms else None
        fig[key]["note"] = note


def backlog(env, n):
    """n notify_failed records written by the auditor, one connection, as fast as jitgated answers."""
    code = ("import json,socket,sys\n"
            "s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); f=s.makefile('rb')\n"
            "for i in range(int(sys.argv[2])):\n"
            "    s.sendall(json.dumps({'id':i,'op':'notify_failed','args':{'target':'bench','url':"
            "'https://bench.example.test','error':'bench'}}).encode()+b'\\n'); f.readline()\n")
    r = env.as_user(env.grp, [sys.executable, "-c", code, env.sock, str(n)], timeout=600)
    if r.returncode != 0:
        raise RuntimeError(f"backlog writer failed: {r.stderr[-500:]}")


def throughput(env, rx, n_targets, records, fig, key):
    names = [f"t{n_targets}x{i}" for i in range(n_targets)]
    state = os.path.join(env.tmp, f"tp{n_targets}-state")
    os.mkdir(state)
    config = os.path.join(env.tmp, f"tp{n_targets}.toml")
    with open(config, "w") as f:
        f.write(tables(rx, names, ["notify_failed"]))
    start_seq = head(env)
    for nm in names:
        with open(os.path.join(state, f"{nm}.json"), "w") as f:
            json.dump({"seq": start_seq, "delivered_us": 0}, f)
    backlog(env, records)
    t0 = time.monotonic()
    p = start_notifier(env, config, state)
    deadline = t0 + 300
    while any(rx.count("/" + nm) < records for nm in names) and time.monotonic() < deadline:
        time.sleep(0.05)
    took = time.monotonic() - t0
    stop(p)
    done = min(rx.count("/" + nm) for nm in names)
    fig[key]["value"] = round(done / took, 1)
    fig[key]["measures"] = {"records": records, "targets": n_targets, "seconds": round(took, 2),
                            "total_per_s": round(done * n_targets / took, 1)}
    fig[key]["note"] = f"{records} records each, {done * n_targets / took:.0f}/s in all (start included)"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", required=True)
    a = ap.parse_args()
    fig = {"lat_p50": row("notify_latency_p50", "audit record written -> webhook received, p50", "ms"),
           "lat_p99": row("notify_latency_p99", "audit record written -> webhook received, p99", "ms"),
           "tp1": row("notify_throughput_1", "webhooks delivered per second, one target", "/s"),
           "tp10": row("notify_throughput_10", "webhooks delivered per second per target, ten targets", "/s")}
    env = None
    rx = Receiver()
    try:
        sys.argv = [sys.argv[0], os.path.abspath(a.build)]
        env = Env(os.path.abspath(a.build), POLICY)
        env.start_daemon()
        latency(env, rx, 20 if a.quick else 100, fig)
        records = 300 if a.quick else 2000
        throughput(env, rx, 1, records, fig, "tp1")
        throughput(env, rx, 10, records, fig, "tp10")
    except Exception as e:  # noqa: BLE001 - every figure says why it is missing
        for x in fig.values():
            if x["value"] is None and not x["note"]:
                x["note"] = f"not measured: {type(e).__name__}: {e}"[:600]
    except SystemExit as e:
        for x in fig.values():
            if x["value"] is None and not x["note"]:
                x["note"] = f"not measured: could not be set up (exit {e.code})"
    finally:
        if env:
            env.cleanup()
        rx.server.shutdown()
    rows = list(fig.values())
    with open(a.json, "w") as out:
        json.dump({"quick": a.quick, "rows": rows}, out, indent=2)
    for x in rows:
        print(f"{x['figure']} {x['what']}: {x['value']} {x['unit']} {x['note']}")


if __name__ == "__main__":
    main()
