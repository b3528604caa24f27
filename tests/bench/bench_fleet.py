#!/usr/bin/python3
"""The fleet's figures for BENCHMARKS.md (issue 19), with the real jitgated
and jitgate on three nodes of one private etcd (tests/e2e/fleet_harness.py:
db-1, db-2, web-1, each its own network namespace, cgroup, pins, socket and
state; all removed at the end):

  9. approve -> allowed on every target node: from `jitgate approve` issued
     (the wall clock in the approver's own process, just before it starts
     the command) to the last of the three nodes' first allowed connect
     (latency_probe.py as the grantee on each node), p50 and p99;
     revoke -> acknowledged by every target node: the largest of the three
     nodes' revoke_applied latency_ms (the decision to that node's maps),
     p50 and p99, beside what `jitgate revoke --wait --json` saw;
     a restarted node's convergence with 10,000 active grants in the fleet:
     from its start to its ack's applied_revision reaching the fleet's
     revision (the grants are written as documents straight into etcd, in
     transactions of 100, 100 of them changed while the node is down; remote
     principals, 2001:db8:19::/112, on one port of every node);
     etcd bytes per grant: the growth of etcd's dbSize (after compaction and
     defragmentation) over those 10,000 grants, per grant;
     the cost of trust (design.md §7.3): signing a grant document and
     checking its signature, µs each, through jitgated's own code
     (`jitgate_bench --sign-cost`: canonical JSON and Ed25519 by OpenSSL).
     The 10,000 grants above are signed by db-1's key, as a node writes
     them, so the convergence figure includes checking every signature.

Goals are judged by report.py.

    bench_fleet.py BUILD_DIR [--quick] --json FILE
"""
import argparse
import datetime
import ipaddress
import json
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
from fleet_harness import DocSigner, Fleet, b64  # noqa: E402
from harness import PY  # noqa: E402

GRANTS = 10000
TXN_OPS = 100  # etcd's --max-txn-ops is 128
PROBE_PAUSE_US = 200

POLICY = """
[[port]]
name = "bench"
port = {bench}
proto = "both"
max_duration = "1h"
approvers = ["{appr}"]
"""

# The approve command timed from inside the approver's own process tree
# (nsenter and setpriv not counted): the wall clock (ns) when it was issued,
# then its output.
TIMED = ("import subprocess, sys, time; w = time.time_ns(); "
         "r = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
         "print(w); print(r.stdout)")


def row(id_, what, unit, note=""):
    return dict(figure=9, id=id_, what=what, value=None, unit=unit, reference="", reference_value=None,
                comparison="", note=note, measures={})


def pct(values, p):
    v = sorted(values)
    if not v:
        return None
    pos = p / 100 * (len(v) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


def round_trip(f, probe):
    """One request to every node, approved on db-1, revoked --wait on web-1:
    (approve issued -> allowed on all three, ms), (revoke -> acked by all, ms), or a failure text."""
    db1, web1 = f.node("db-1"), f.node("web-1")
    port = f.ports["bench"]
    rc, req, err = db1.cli_json(f.user["req"], "request", f"{port}/udp", "--for", "10m", "--reason", "bench", "--on",
                                "env=e2e")
    if rc != 0:
        return None, None, f"request: {req} {err}"
    probers = [n.spawn(n.user_argv(f.user["req"], [PY, probe, str(port), "10", str(PROBE_PAUSE_US)]))
               for n in f.nodes]
    if any(p.stdout.readline().strip() != "ready" for p in probers):
        return None, None, "a prober did not start"
    r = db1.as_user(f.user["appr"], [PY, "-c", TIMED, f.jitgate, "--socket", db1.sock, "--json", "approve",
                                     str(req["request_id"])])
    lines = r.stdout.splitlines()
    try:
        issued_ns = int(lines[0])
        ans = json.loads("\n".join(lines[1:]))
    except (ValueError, IndexError):
        return None, None, f"approve: {r.stdout} {r.stderr}"
    allowed = []
    for p in probers:
        out = p.stdout.readline().strip()
        p.wait(timeout=15)
        allowed.append(int(out) if out.isdigit() else None)
    approve_ms = None if None in allowed else (max(allowed) - issued_ns) / 1e6
    gid = ans.get("grant_id")
    if not gid:
        return approve_ms, None, f"approve answered {ans}"
    rc, rev, err = web1.cli_json(f.user["appr"], "revoke", gid, "--wait", "--timeout", "10s")
    seen = [n.get("latency_ms") for n in rev.get("nodes", [])]
    if rc != 0 or len(seen) != len(f.nodes) or not all(isinstance(x, (int, float)) for x in seen):
        return approve_ms, None, f"revoke --wait: rc {rc} {rev} {err}"
    # Each node's own figure: its revoke_applied record's latency_ms (from the decision).
    applied = []
    for n in f.nodes:
        recs = [r for r in n.audit_records(type="revoke_applied") if str(r.get("grant_id")) == str(gid)]
        if not recs or not isinstance(recs[-1].get("latency_ms"), (int, float)):
            return approve_ms, None, f"{n.name} wrote no revoke_applied record with latency_ms for grant {gid}"
        applied.append(recs[-1]["latency_ms"])
    revoke = (max(applied), max(seen))
    if approve_ms is None:
        return None, revoke, "a node never allowed the grantee's connect"
    return approve_ms, revoke, None


def latencies(f, rounds, fig):
    shutil.copy2(os.path.join(HERE, "latency_probe.py"), os.path.join(f.tmp, "latency_probe.py"))
    probe = os.path.join(f.tmp, "latency_probe.py")
    appr, rev, seen, failures = [], [], [], []
    for _ in range(rounds):
        a, r, why = round_trip(f, probe)
        if a is not None:
            appr.append(a)
        if r is not None:
            rev.append(r[0])
            seen.append(r[1])
        if why:
            failures.append(why)
    fail_note = f"; {len(failures)} rounds failed, first: {failures[0]}" if failures else ""
    for (p50, p99), values, how in (
            ((fig["approve_p50"], fig["approve_p99"]), appr,
             f"{len(appr)} grants (of {rounds}) to env=e2e (3 nodes), approved on db-1; issued = the wall clock "
             "in the approver's process just before it starts `jitgate approve`; allowed = the last node's first "
             f"UDP connect() to 127.0.0.1 the kernel let through (a prober per node, {PROBE_PAUSE_US} µs "
             "between attempts)"),
            ((fig["revoke_p50"], fig["revoke_p99"]), rev,
             f"{len(rev)} revocations (of {rounds}) with `jitgate revoke --wait` on web-1: the largest of the "
             "three nodes' revoke_applied latency_ms (the revocation's decision to that node's maps); the "
             "reference is what `revoke --wait` itself saw (its largest per-node latency_ms: from sending "
             "the revocation to the confirm poll, every 50 ms, that saw the node's ack)")):
        if not values:
            p50["note"] = p99["note"] = "not measured" + (fail_note or ": no round completed")
            continue
        for x, p in ((p50, 50), (p99, 99)):
            if values is rev:
                x.update(value=pct(values, p), reference=f"`revoke --wait` saw, p{p}", reference_value=pct(seen, p))
            else:
                other = 99 if p == 50 else 50
                x.update(value=pct(values, p), reference=f"p{other}", reference_value=pct(values, other))
            x["note"] = how + fail_note


def grant_doc(gid, user, port, src, now_us, origin="db-1"):
    """A grant document as userspace/fleet/docs.cpp writes it (grant_doc)."""
    return {"id": gid, "request_id": 0, "user": user, "port": port, "proto": "tcp", "start_us": now_us,
            "expires_us": now_us + 3600 * 1000000, "state": "active", "ended_us": 0, "ended_by": "",
            "reason": "bench", "ticket": "", "approvers": [], "src": src, "kind": "", "on": "env=e2e",
            "origin": origin}


def put_docs(f, docs, signer=None):
    """Writes {key: document} in transactions of TXN_OPS puts (each signed as
    db-1 would when a signer is given): the last revision, the bytes written."""
    items = [(k, signer.sign("grant", d, "db-1") if signer else d) for k, d in docs.items()]
    rev, size = 0, 0
    for i in range(0, len(items), TXN_OPS):
        ops = []
        for k, d in items[i:i + TXN_OPS]:
            v = json.dumps(d, separators=(",", ":"))
            size += len(k) + len(v)
            ops.append({"requestPut": {"key": b64(k), "value": b64(v)}})
        r = f.gw.post("/v3/kv/txn", {"success": ops}, timeout=30)
        rev = int(r["header"]["revision"])
    return rev, size


def ack(f, node):
    v = f.gw.get(f"{f.prefix}/acks/{node}")
    try:
        return json.loads(v) if v else {}
    except ValueError:
        return {}


def wall_us(ts):
    """An audit record's ts (RFC 3339 UTC, µs) -> µs since the epoch, or None."""
    try:
        d = datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)
    except (TypeError, ValueError):
        return None
    return d.timestamp() * 1e6


def settled_size(f):
    f.compact()
    f.gw.defrag()
    return f.gw.db_size()


def many_grants(f, fig):
    """10,000 active grants (remote principals, one port, every node), the
    db size they take, and a restarted db-2's convergence."""
    n = GRANTS
    size0 = settled_size(f)
    first = int(f.gw.get(f"{f.prefix}/ids") or b"0") + 1
    now_us = int(time.time() * 1e6)
    port = f.ports["bench"]
    base = int(ipaddress.IPv6Address("2001:db8:19::"))
    # Requested by root: the remote principal is the address (the requester
    # only has to be a name every node resolves).
    docs = {f"{f.prefix}/grants/{gid:012d}": grant_doc(gid, "root", port,
                                                          str(ipaddress.IPv6Address(base + i + 1)), now_us)
            for i, gid in enumerate(range(first, first + n))}
    signer = DocSigner(os.path.join(f.node("db-1").state, "node.key"))
    rev, kv_bytes = put_docs(f, docs, signer)
    f.gw.put(f"{f.prefix}/ids", str(first + n + 200))
    # Every node applies them all before db-2 is stopped.
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if all(ack(f, x.name).get("applied_revision", 0) >= rev and ack(f, x.name).get("grants", 0) >= n
               for x in f.nodes):
            break
        time.sleep(0.5)
    else:
        raise RuntimeError(f"the nodes did not apply {n} grants within 180 s: "
                           + str({x.name: ack(f, x.name) for x in f.nodes}))
    size1 = settled_size(f)
    per = (size1 - size0) / n
    b = fig["bytes"]
    b.update(value=per, reference="keys + values written, per grant", reference_value=kv_bytes / n,
             note=f"etcd dbSize after compaction and defragmentation: {size0} B before, {size1} B with {n} "
                  "grant documents (JSON, remote principals, signed); the reference is what the documents' keys "
                  "and values weigh alone")

    db2 = f.node("db-2")
    db2.stop()
    # The fleet moves on while db-2 is down: 100 grants revoked, 100 new.
    changed = {}
    keys = list(docs)
    for k in keys[:100]:
        d = dict(docs[k], state="revoked", ended_us=int(time.time() * 1e6), ended_by="bench")
        changed[k] = d
    for i, gid in enumerate(range(first + n, first + n + 100)):
        changed[f"{f.prefix}/grants/{gid:012d}"] = grant_doc(gid, "root", port,
                                                             str(ipaddress.IPv6Address(base + n + i + 1)), now_us)
    target, _ = put_docs(f, changed, signer)
    launched_us = time.time() * 1e6
    start = time.monotonic()
    db2.launch()
    took = None
    while time.monotonic() - start < 60:
        a = ack(f, "db-2")
        if a.get("applied_revision", 0) >= target and a.get("time_us", 0) >= launched_us:
            took = time.monotonic() - start
            break
        time.sleep(0.02)
    if os.environ.get("JG_BENCH_FLEET_LOG"):
        print(db2.daemon_log(4000), file=sys.stderr)
    c = fig["converge"]
    if took is None:
        c["note"] = f"not measured: db-2 did not ack revision {target} within 60 s: {ack(f, 'db-2')}"
        return
    grants = ack(f, "db-2").get("grants")
    # Where the time went: the daemon_start record (maps restored from the
    # mirror, programs attached) splits the start from the catching up.
    starts = [r for r in db2.audit_records(type="daemon_start") if (wall_us(r.get("ts")) or 0) >= launched_us]
    split = ""
    if starts:
        started = (wall_us(starts[0]["ts"]) - launched_us) / 1e6
        split = f" ({started:.2f} s to its daemon_start record, {took - started:.2f} s from there to the ack)"
    c.update(value=took, measures={"grants": grants},
             note=f"db-2 stopped (SIGTERM) with {n} grants applied; while it was down 100 were revoked and 100 "
                  f"added; from its start (`jitgated` launched) to its ack in etcd with applied_revision >= "
                  f"{target}, polled every 20 ms{split}; its ack then counts {grants} grants")


def sign_cost(build, fig, quick):
    """Figure 9's sign_us and verify_us: jitgate_bench --sign-cost."""
    exe = os.path.join(build, "tests", "bench", "jitgate_bench")
    n = 2000 if quick else 20000
    r = subprocess.run([exe, "--sign-cost", str(n)], capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        raise RuntimeError(f"jitgate_bench --sign-cost failed: {r.stderr.strip()}")
    out = json.loads(r.stdout)
    how = (f"one grant document as the ledger writes it (a remote principal, a reason, an approver), "
           f"median of 5 rounds of {n} documents, one thread, through fleet/trust (canonical JSON, Ed25519 by "
           "OpenSSL EVP); a request's approval signs 3 times (origin, approval, document)")
    fig["sign"].update(value=out["sign_us"], note=how)
    fig["verify"].update(value=out["verify_us"], note=how + "; every node checks each grant once, when it arrives")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", required=True)
    a = ap.parse_args()
    fig = {"approve_p50": row("fleet_approve_p50", "approve -> allowed on every target node (3), p50", "ms"),
           "approve_p99": row("fleet_approve_p99", "approve -> allowed on every target node (3), p99", "ms"),
           "revoke_p50": row("fleet_revoke_p50", "revoke -> acknowledged by every target node (3), p50", "ms"),
           "revoke_p99": row("fleet_revoke_p99", "revoke -> acknowledged by every target node (3), p99", "ms"),
           "converge": row("fleet_converge", f"restarted node converges, {GRANTS:,} grants in the fleet", "s"),
           "bytes": row("fleet_etcd_bytes_per_grant", "etcd bytes per grant (dbSize growth)", "B"),
           "sign": row("fleet_sign_us", "signing a grant document (Ed25519, canonical JSON)", "µs"),
           "verify": row("fleet_verify_us", "checking a grant document's signature", "µs")}
    f = None
    try:
        sign_cost(os.path.abspath(a.build), fig, a.quick)
    except Exception as e:  # noqa: BLE001 - the figure says why it is missing
        for k in ("sign", "verify"):
            fig[k]["note"] = f"not measured: {type(e).__name__}: {e}"[:600]
    try:
        f = Fleet(os.path.abspath(a.build), POLICY, ("bench",), users=("req", "appr"))
        f.start_all()
        rc, pushed, err = f.push_policy()
        if rc != 0:
            raise RuntimeError(f"policy push failed: {pushed} {err}")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not all(
                ack(f, x.name).get("policy_version") == pushed.get("version") for x in f.nodes):
            time.sleep(0.2)
        latencies(f, 10 if a.quick else 50, fig)
        many_grants(f, fig)
    except Exception as e:  # noqa: BLE001 - every figure says why it is missing
        for x in fig.values():
            if x["value"] is None and not x["note"]:
                x["note"] = f"not measured: {type(e).__name__}: {e}"[:600]
    except SystemExit as e:  # the harness skips (77) when etcd or root is missing
        for x in fig.values():
            if x["value"] is None and not x["note"]:
                x["note"] = f"not measured: the fleet could not be set up (exit {e.code})"
    finally:
        if f:
            f.cleanup()
    rows = list(fig.values())
    with open(a.json, "w") as out:
        json.dump({"quick": a.quick, "rows": rows}, out, indent=2)
    for x in rows:
        print(f"{x['figure']} {x['what']}: {x['value']} {x['unit']} {x['note']}")


if __name__ == "__main__":
    main()
