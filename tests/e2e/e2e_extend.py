#!/usr/bin/python3
"""End to end, expiry warnings and extending a grant (issue 22, design.md §9):
an expiry_warning record warn_before before a short grant's end, once, also
across a restart of jitgated; `jitgate extend` decided like a request (the
self-approval rule, approve by the port's approver), keeping an open TCP
connection alive past the grant's old end and ending it at the new one;
an extension beyond max_duration (counted from the grant's start) refused;
an ended grant refused.  Real daemon, real CLI, real unprivileged users, a
private netns and child cgroup (harness.py).

usage: e2e_extend.py BUILD_DIR
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Keeper, run_suite, verify_chain, wait_for, wall  # noqa: E402

POLICY = """
[[port]]
name = "warn"
port = {port}
max_duration = "10m"
approvers = ["{appr}"]
warn_before = "3s"

[[port]]
name = "ext"
port = {port2}
max_duration = "20s"
approvers = ["{appr}", "{req}"]
self_approve = false
on_expiry = "cut"

[[port]]
name = "self"
port = {port3}
max_duration = "1m"
approvers = ["{appr}", "{req}"]
self_approve = true
"""

# What a client may see when its connection is ended under it.
CUT_ERRORS = ("ECONNRESET", "ECONNABORTED", "EPIPE")
GRANT_S = 6        # the grant extended while a connection is open under it
EXTEND_S = 6       # the time it gains
ALIVE_AFTER_S = 2  # the connection is checked alive this long after the old end
CUT_BOUND_S = 3.0  # and ended at most this long after the new one


def connect(env, user, port):
    return env.probe(user, "connect", "tcp", "127.0.0.1", port)


def one(recs):
    return recs[0] if len(recs) == 1 else None


def check_warning(env, t):
    print("-- expiry_warning: warn_before = 3s, a grant of 7s; once, also across a restart")
    g = env.grant(env.req, f"{env.port}/tcp", "7s", reason="warn me")
    t.eq("a grant of 7s", (g.rc, g.answer.get("state")), (0, "granted"))
    gid = g.answer.get("grant_id")
    end = wall(g.answer.get("expires_at"))
    t.check("an expiry_warning record before the grant's end",
            wait_for(lambda: env.audit_records(type="expiry_warning", grant_id=gid), 10),
            str(env.audit_records(type="expiry_warning")))
    w = one(env.audit_records(type="expiry_warning", grant_id=gid))
    at = wall(w.get("ts")) if w else None
    t.check("it is written about warn_before before the end (at least 1 s before it)",
            w is not None and at is not None and end is not None and end - 4.5 <= at <= end - 1.0,
            f"{w} end {end}")
    t.check("it names the grant, its port, its holder, its end and the seconds left",
            w is not None and w.get("port") == env.port and w.get("user") == env.req and
            w.get("request_id") == g.req.get("request_id") and w.get("expires_at") == g.answer.get("expires_at") and
            isinstance(w.get("remaining_s"), int) and 1 <= w["remaining_s"] <= 3, str(w))
    # A restart of jitgated before the end: the warning is not written again.
    env.stop_daemon()
    env.start_daemon()
    t.check("the grant expires (after the restart)",
            wait_for(lambda: env.audit_records(type="expire", grant_id=gid), 10),
            str(env.audit_records(type="expire")))
    t.eq("one expiry_warning for the grant, not repeated by the restart",
         len(env.audit_records(type="expiry_warning", grant_id=gid)), 1)


def check_extend(env, t):
    print(f"-- extend: a grant of {GRANT_S}s with a connection open, +{EXTEND_S}s approved")
    P = env.port2
    g = env.grant(env.req, f"{P}/tcp", f"{GRANT_S}s", reason="long query")
    t.eq(f"a grant of {GRANT_S}s", (g.rc, g.answer.get("state")), (0, "granted"))
    gid = g.answer.get("grant_id")
    old_end = wall(g.answer.get("expires_at"))
    keep = Keeper(env, env.req, P, GRANT_S + EXTEND_S + 10)
    t.check("a connection open under the grant", keep.connected, keep.first)

    rc, x = env.cli_json(env.req, "extend", str(g.req.get("request_id")), "--for", f"{EXTEND_S}s",
                         "--reason", "query still running")
    t.eq("extend by the request's id: a new request, pending, naming the grant",
         (rc, x.get("state"), x.get("extends")), (0, "pending", gid))
    xid = x.get("request_id")
    t.check("its id is new", xid not in (None, gid, g.req.get("request_id")), str(x))
    r = env.cli(env.req, "approve", str(xid))
    t.check("the holder, an approver of the port, may not approve their own extension (self_approve = false): "
            "exit 3", r.returncode == 3 and "your own request" in r.stderr, f"{r.returncode} {r.stderr}")
    rc, a = env.cli_json(env.appr, "approve", str(xid))
    new_end = wall(a.get("expires_at"))
    t.check(f"approved by the port's approver: granted, the same grant, its end {EXTEND_S}s later",
            rc == 0 and a.get("state") == "granted" and a.get("grant_id") == gid and new_end is not None and
            old_end is not None and abs(new_end - old_end - EXTEND_S) < 0.01, f"{rc} {a}")
    r = env.cli(env.req, "extend", str(gid), "--for", "30s")
    t.check("more than max_duration from the grant's start: refused, exit 3, saying what is left",
            r.returncode == 3 and "or less" in r.stderr and "20s" in r.stderr, f"{r.returncode} {r.stderr}")

    time.sleep(max(0.0, old_end + ALIVE_AFTER_S - time.time()))
    t.eq(f"{ALIVE_AFTER_S}s after the old end: a new connection is let in", connect(env, env.req, P), "ok")
    out = keep.result()
    print(f"     {out}  (old end {old_end:.3f}, new end {new_end:.3f})")
    parts = out.split()
    cut_at = float(parts[3]) if len(parts) == 4 and parts[0] == "stopped" else None
    t.check(f"the open connection lived past the old end and was cut within {CUT_BOUND_S:.0f} s of the new end",
            cut_at is not None and parts[2] in CUT_ERRORS and new_end - 0.3 <= cut_at <= new_end + CUT_BOUND_S and
            int(parts[1]) >= 20, out)
    t.eq("after the new end: a new connection is refused", connect(env, env.req, P), "EPERM")

    ev = one(env.audit_records(type="extend", grant_id=gid))
    t.check("one extend record: the grant, the extension's request, who approved, old and new ends, +6s",
            ev is not None and ev.get("request_id") == xid and ev.get("approvers") == [env.appr] and
            ev.get("old_expires_at") == g.answer.get("expires_at") and ev.get("expires_at") == a.get("expires_at")
            and ev.get("duration_s") == EXTEND_S and ev.get("user") == env.req, str(ev))
    exp = one(env.audit_records(type="expire", grant_id=gid))
    t.check("the grant expired once, at its new end, its connection counted",
            exp is not None and exp.get("connections_ended") == 1 and exp.get("duration_s") == GRANT_S + EXTEND_S,
            str(exp))
    r = env.cli(env.req, "extend", str(gid), "--for", "5s")
    t.check("extending the ended grant: refused in one sentence (exit 1)",
            r.returncode == 1 and "has already ended (expired)" in r.stderr and r.stderr.count("\n") == 1,
            f"{r.returncode} {r.stderr}")


def check_self_approve(env, t):
    print("-- self_approve = true: the holder, an approver, approves their own extension")
    P = env.port3
    rc, req = env.cli_json(env.req, "request", f"{P}/tcp", "--for", "20s", "--reason", "self")
    rc2, a = env.cli_json(env.req, "approve", str(req.get("request_id")))
    t.eq("granted by the requester (self_approve)", (rc, rc2, a.get("state")), (0, 0, "granted"))
    gid = a.get("grant_id")
    rc, x = env.cli_json(env.req, "extend", str(gid), "--for", "10s")
    rc2, xa = env.cli_json(env.req, "approve", str(x.get("request_id")))
    t.check("their extension, approved by themselves: granted, 10 s more",
            rc == 0 and rc2 == 0 and xa.get("state") == "granted" and xa.get("grant_id") == gid and
            abs(wall(xa.get("expires_at")) - wall(a.get("expires_at")) - 10) < 0.01, f"{x} {xa}")
    r = env.cli(env.other, "extend", str(gid), "--for", "10s")
    t.check("someone else may not ask to extend it: exit 3",
            r.returncode == 3 and "only the holder" in r.stderr, f"{r.returncode} {r.stderr}")
    r = env.cli(env.req, "revoke", str(gid))
    t.eq("revoked", r.returncode, 0)


def run(env, t):
    env.start_daemon()
    check_self_approve(env, t)
    check_extend(env, t)
    check_warning(env, t)
    t.check("the audit chain verifies", verify_chain(env.audit_records()) is None, verify_chain(env.audit_records()))


if __name__ == "__main__":
    run_suite(POLICY, run)
