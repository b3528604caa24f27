#!/usr/bin/python3
"""End to end, `jitgate extend` in a fleet (issue 22, design.md §7 and §9):
three jitgated nodes on a private etcd (fleet_harness.py), db-1 and db-2
labelled role=db, web-1 role=web.  Cases, in order:

  - a grant to role=db with a TCP connection open under it on db-1 and on
    db-2; its holder asks for more time on web-1 (a node the grant does not
    target): a pending extension request in etcd, signed, naming the grant;
    the holder, an approver of the port, may not approve it (self_approve =
    false); the port's approver does (approve --wait on db-2): the grant
    document's end moves (signed), both target nodes apply it and their acks'
    digests say so; an extension past max_duration from the grant's start is
    refused; both connections live past the old end and are cut at the new
    one; each target node writes one extend record (latency_ms) and one
    expiry_warning, warn_before before the new end (armed again), none
    before the old;
  - auto_approve: an extension the rule covers is granted at once, one it
    does not (the grant would outgrow the rule's max_duration) waits;
  - a grant revoked while its extension waits: the approval is refused, the
    grant stays revoked in etcd and on its node, nothing is let in, and
    extending it again is refused.

usage: e2e_fleet_extend.py BUILD_DIR
"""
import hashlib
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleet_harness import Fleet  # noqa: E402
from harness import Keeper, Results, verify_chain, wait_for, wall  # noqa: E402

PORT_NAMES = ("ext", "auto")
POLICY = """
[[port]]
name = "ext"
port = {ext}
proto = "tcp"
max_duration = "40s"
approvers = ["{appr}", "{req}"]
self_approve = false
on_expiry = "cut"
warn_before = "3s"

[[port]]
name = "auto"
port = {auto}
proto = "tcp"
max_duration = "1m"
approvers = ["{appr}"]

[[port.auto_approve]]
user = "{req}"
max_duration = "20s"
"""
USERS = ("req", "appr")
DB = ("db-1", "db-2")
ALL = ("db-1", "db-2", "web-1")
CUT_ERRORS = ("ECONNRESET", "ECONNABORTED", "EPIPE")
GRANT_S = 15       # the grant extended while connections are open under it
EXTEND_S = 10      # the time it gains
WARN_S = 3         # the port's warn_before
ALIVE_AFTER_S = 2  # the connections are checked alive this long after the old end
CUT_BOUND_S = 3.0  # and ended at most this long after the new one
WAIT = ("--wait", "--timeout", "15s")


def said(out, err):
    """What a refusal said: the error's message (--json) and stderr."""
    return ((out.get("error") or {}).get("message", "") if isinstance(out, dict) else "") + err


def states(answer):
    return {n.get("node"): n.get("state") for n in answer.get("nodes", [])} if isinstance(answer, dict) else {}


class Suite:
    def __init__(self, fleet, t):
        self.f = fleet
        self.t = t
        self.u = fleet.user
        self.n = {n.name: n for n in fleet.nodes}
        self.p = fleet.ports

    def cli(self, node, user, *args):
        return self.n[node].cli_json(self.u[user], *args)

    def doc(self, kind, doc_id):
        raw = self.f.gw.get(f"{self.f.prefix}/{kind}/{int(doc_id):012d}")
        return json.loads(raw) if raw else {}

    def ack(self, name):
        raw = self.f.gw.get(f"{self.f.prefix}/acks/{name}")
        return json.loads(raw) if raw else {}

    def grant(self, label, port, on, dur):
        """A grant of `dur` to req on `port` --on `on`, approved --wait by appr on db-1: the answer."""
        rc, req, err = self.cli("db-1", "req", "request", self.p[port], "--for", dur, "--on", on, "--reason", label)
        if req.get("state") == "granted":  # auto_approve
            return req
        rc2, ans, err2 = self.cli("db-1", "appr", "approve", req.get("request_id"), *WAIT)
        self.t.check(f"{label}: granted for {dur} on {on}", rc == 0 and rc2 == 0 and ans.get("state") == "granted",
                     f"{rc} {req} {err} / {rc2} {ans} {err2}")
        return ans

    def records(self, name, since, kind, gid):
        return [r for r in self.n[name].audit_records(since, type=kind) if r.get("grant_id") == gid]

    # --- the cases ----------------------------------------------------
    def start(self):
        print("-- three nodes, the fleet policy")
        self.f.start_all()
        rc, pushed, err = self.f.push_policy()
        self.t.check("policy pushed", rc == 0, f"{rc} {pushed} {err}")
        self.t.check("every node runs it", self.f.wait_applied(pushed.get("revision", 1 << 60), ALL, 20),
                     str(self.f.nodes_view()[2]))

    def extend_open_connections(self):
        print(f"-- a grant of {GRANT_S}s to role=db, connections open on db-1 and db-2, +{EXTEND_S}s")
        since = {x: self.n[x].audit_mark() for x in ALL}
        g = self.grant("long query", "ext", "role=db", f"{GRANT_S}s")
        gid, old_end = g.get("grant_id"), wall(g.get("expires_at"))
        if not gid or old_end is None:
            return
        keep = {x: Keeper(self.n[x], self.u["req"], self.p["ext"], GRANT_S + EXTEND_S + 10) for x in DB}
        for x, k in keep.items():
            self.t.check(f"{x}: a connection open under the grant", k.connected, k.first)

        rc, x, err = self.cli("web-1", "req", "extend", gid, "--for", f"{EXTEND_S}s", "--reason", "still running")
        self.t.check("extend on web-1 (not a target): a new request, pending, naming the grant, answered by web-1",
                     rc == 0 and x.get("state") == "pending" and x.get("extends") == gid and x.get("node") == "web-1"
                     and x.get("request_id") not in (None, gid), f"{rc} {x} {err}")
        xid = x.get("request_id")
        doc = self.doc("requests", xid) if xid else {}
        self.t.check("its document in etcd: pending, extends the grant, signed by web-1 (origin and whole)",
                     doc.get("state") == "pending" and doc.get("extends") == gid and doc.get("signer") == "web-1"
                     and doc.get("origin") == "web-1" and doc.get("sig") and doc.get("origin_sig"), str(doc))
        rc, ans, err = self.cli("db-1", "req", "approve", xid)
        self.t.check("the holder, an approver of the port, may not approve their own extension: exit 3",
                     rc == 3 and "your own request" in said(ans, err), f"{rc} {ans} {err}")
        rc, ans, err = self.cli("db-2", "appr", "approve", xid, *WAIT)
        approved_at = time.time()
        new_end = wall(ans.get("expires_at"))
        self.t.check(f"approve --wait on db-2: granted, the same grant, its end {EXTEND_S}s later",
                     rc == 0 and ans.get("state") == "granted" and ans.get("grant_id") == gid and new_end is not None
                     and abs(new_end - old_end - EXTEND_S) < 0.01, f"{rc} {ans} {err}")
        self.t.eq("... applied on both target nodes", states(ans), {n: "applied" for n in DB})
        if new_end is None:
            return
        # Everything below assumes the extension was in force well before the old end.
        self.t.check(f"(the approval came {old_end - approved_at:.1f} s before the old end: at least {WARN_S + 1})",
                     approved_at < old_end - WARN_S - 1, "the machine is too loaded for this check")
        gdoc = self.doc("grants", gid)
        new_us = int(round(new_end * 1e6))
        self.t.check("the grant document in etcd: active, its new end, signed by db-2",
                     gdoc.get("state") == "active" and gdoc.get("expires_us") == new_us and gdoc.get("signer") == "db-2"
                     and gdoc.get("sig"), str(gdoc))
        digest = hashlib.sha256(f"{gid}:{new_us}\n".encode()).hexdigest()
        for n in DB:
            self.t.check(f"{n}: its ack's digest covers the new end",
                         self.ack(n).get("digest") == digest and self.ack(n).get("grants") == 1, str(self.ack(n)))
        rc, more, err = self.cli("db-1", "req", "extend", gid, "--for", "30s")
        self.t.check("more than max_duration (40s) from the grant's start: refused, exit 3, naming what is left",
                     rc == 3 and "or less" in said(more, err),
                     f"{rc} {more} {err}")

        time.sleep(max(0.0, old_end + ALIVE_AFTER_S - time.time()))
        got = {n: self.n[n].connect(self.u["req"], self.p["ext"]) for n in ALL}
        self.t.eq(f"{ALIVE_AFTER_S}s after the old end: new connections let in on the targets only", got,
                  {"db-1": "ok", "db-2": "ok", "web-1": "EPERM"})
        for n, k in keep.items():
            out = k.result()
            parts = out.split()
            cut_at = float(parts[3]) if len(parts) == 4 and parts[0] == "stopped" else None
            self.t.check(f"{n}: the open connection lived past the old end and was cut within {CUT_BOUND_S:.0f} s "
                         f"of the new end", cut_at is not None and parts[2] in CUT_ERRORS
                         and new_end - 0.3 <= cut_at <= new_end + CUT_BOUND_S and old_end + ALIVE_AFTER_S < cut_at,
                         f"{out} (old end {old_end:.3f}, new end {new_end:.3f})")
        got = {n: self.n[n].connect(self.u["req"], self.p["ext"]) for n in DB}
        self.t.eq("after the new end: refused on both", got, {n: "EPERM" for n in DB})

        for n in DB:
            applied = [r for r in self.records(n, since[n], "extend", gid) if "latency_ms" in r]
            r = applied[0] if len(applied) == 1 else {}
            self.t.check(f"{n}: one extend record of the new end applied here: the extension, its approver, "
                         f"old and new ends, +{EXTEND_S}s, latency_ms",
                         r.get("request_id") == xid and r.get("approvers") == [self.u["appr"]]
                         and r.get("old_expires_at") == g.get("expires_at") and r.get("expires_at") == ans.get("expires_at")
                         and r.get("duration_s") == EXTEND_S and isinstance(r.get("latency_ms"), int), str(applied))
            warned = self.records(n, since[n], "expiry_warning", gid)
            w = warned[0] if len(warned) == 1 else {}
            at = wall(w.get("ts"))
            self.t.check(f"{n}: one expiry_warning, for the new end, about {WARN_S}s before it",
                         w.get("expires_at") == ans.get("expires_at") and at is not None
                         and new_end - WARN_S - 1.5 <= at <= new_end - 1.0, str(warned))
            # The end as this node's kernel saw it (with the connections it
            # cut); the node that took the request also records marking it
            # expired in etcd (an expire record without connections_ended).
            ended = [r for r in self.n[n].audit_records(since[n]) if r.get("grant_id") == gid
                     and r.get("type") in ("expire", "revoke_applied") and "connections_ended" in r]
            self.t.check(f"{n}: ended once here, at the new end, its connection counted",
                         len(ended) == 1 and ended[0].get("connections_ended") == 1
                         and new_end - 0.5 <= (wall(ended[0].get("ts")) or 0) <= new_end + CUT_BOUND_S, str(ended))
        decided = [r for r in self.records("db-2", since["db-2"], "extend", gid) if "latency_ms" not in r]
        self.t.check("db-2, the deciding node, wrote the decision's extend record too",
                     len(decided) == 1 and decided[0].get("request_id") == xid, str(decided))
        self.t.eq("web-1 (not a target) applied nothing", self.records("web-1", since["web-1"], "extend", gid), [])

    def auto_approve(self):
        print("-- auto_approve: within the rule's max_duration at once, beyond it pending")
        since = self.n["db-1"].audit_mark()
        g = self.grant("auto", "auto", "db-1", "8s")
        gid = g.get("grant_id")
        self.t.check("a request the rule covers: granted at once, and applied on db-1 (its document names the rule)",
                     g.get("state") == "granted" and wait_for(
                         lambda: self.n["db-1"].connect(self.u["req"], self.p["auto"]) == "ok", 4), str(g))
        rc, x, err = self.cli("db-1", "req", "extend", gid, "--for", "10s")
        end = wall(x.get("expires_at"))
        self.t.check("extend by 10s (18s from the start, the rule allows 20s): granted at once, the end 10s later",
                     rc == 0 and x.get("state") == "granted" and x.get("grant_id") == gid and end is not None
                     and abs(end - wall(g.get("expires_at")) - 10) < 0.01, f"{rc} {x} {err}")
        self.t.eq("... the grant document's end in etcd", self.doc("grants", gid).get("expires_us"),
                  int(round(end * 1e6)) if end else None)
        self.t.check("... applied on db-1 (an extend record of the new end)", wait_for(
            lambda: any("latency_ms" in r and r.get("expires_at") == x.get("expires_at")
                        for r in self.records("db-1", since, "extend", gid)), 5),
            str(self.records("db-1", since, "extend", gid)))
        rc, x, err = self.cli("db-1", "req", "extend", gid, "--for", "10s")
        self.t.check("extend by 10s more (28s: beyond the rule): pending", rc == 0 and x.get("state") == "pending",
                     f"{rc} {x} {err}")
        self.cli("db-1", "req", "revoke", gid, *WAIT)

    def revoked_meanwhile(self):
        print("-- a grant revoked while its extension waits: nothing comes back")
        since = self.n["db-1"].audit_mark()
        g = self.grant("revoked", "ext", "db-1", "30s")
        gid = g.get("grant_id")
        rc, x, err = self.cli("db-1", "req", "extend", gid, "--for", "5s")
        self.t.check("extension asked: pending", rc == 0 and x.get("state") == "pending", f"{rc} {x} {err}")
        rc, rv, err = self.cli("db-1", "req", "revoke", gid, *WAIT)
        self.t.check("the grant revoked by its holder", rc == 0, f"{rc} {rv} {err}")
        rc, ans, err = self.cli("db-2", "appr", "approve", x.get("request_id"))
        self.t.check("its extension approved after that: refused (exit 1), the grant ended before",
                     rc == 1 and "ended before its extension was decided" in said(ans, err), f"{rc} {ans} {err}")
        gdoc, xdoc = self.doc("grants", gid), self.doc("requests", x.get("request_id"))
        self.t.check("in etcd the grant stays revoked with its end, the extension rejected",
                     gdoc.get("state") == "revoked" and gdoc.get("expires_us") == int(round(wall(g["expires_at"]) * 1e6))
                     and xdoc.get("state") == "rejected", f"{gdoc} {xdoc}")
        time.sleep(1)  # room for a (wrong) revival to arrive
        self.t.eq("db-1 lets nothing in", self.n["db-1"].connect(self.u["req"], self.p["ext"]), "EPERM")
        self.t.eq("db-1 wrote no extend record for it", self.records("db-1", since, "extend", gid), [])
        rc, again, err = self.cli("db-2", "req", "extend", gid, "--for", "5s")
        self.t.check("extending the revoked grant: refused (exit 1), it has ended",
                     rc == 1 and "has already ended (revoked)" in said(again, err),
                     f"{rc} {again} {err}")

    def finish(self):
        for x in ALL:
            node = self.n[x]
            self.t.check(f"{x}: jitgated still runs", node.running(), node.daemon_log())
            self.t.eq(f"{x}: audit chain verifies", verify_chain(node.audit_records()), None)


def main():
    started = time.monotonic()
    fleet = Fleet(sys.argv[1], POLICY, PORT_NAMES, users=USERS)
    t = Results()
    try:
        s = Suite(fleet, t)
        s.start()
        s.extend_open_connections()
        s.auto_approve()
        s.revoked_meanwhile()
        s.finish()
    except Exception as e:  # a crash in the test is a failure, with context
        logs = "\n".join(f"--- {n.name}\n{n.daemon_log(2000)}" for n in fleet.nodes)
        t.check("suite ran to the end", False, f"{type(e).__name__}: {e}\n{logs}")
    finally:
        if t.failed:
            for n in fleet.nodes:
                print(f"--- {n.name}'s log (tail)\n{n.daemon_log(3000)}")
        fleet.cleanup()
    print(f"e2e_fleet_extend: {time.monotonic() - started:.0f} s")
    sys.exit(t.finish())


if __name__ == "__main__":
    main()
