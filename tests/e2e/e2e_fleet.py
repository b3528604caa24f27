#!/usr/bin/python3
"""End to end, the fleet on etcd (issue 19, design.md §7): a private etcd and
three jitgated nodes on this machine (fleet_harness.py: each its own network
namespace, child cgroup, pin dir, socket, state and audit log), db-1 and db-2
labelled role=db, web-1 role=web.  Cases, in order:

  - a local [[port]] table in fleet mode is refused with one sentence; a
    node's first start with etcd unreachable: it starts and says so, and a
    request fails fast with fleet_unreachable;
  - `jitgate nodes --json` and `policy push` / `policy show`; a port with
    hosts = { role = "db" } is protected on db-1 and db-2 only;
  - a grant to role=db applied on exactly db-1 and db-2, allowed there within
    1 s of the decision, denied on web-1, with grant_applied records;
  - two approvers approving at once on two nodes (approvals_required = 2, and
    1), several rounds: exactly one grant each time, in etcd and in `list`;
  - revoke --wait: each target node's state, revoke_applied records, denied;
  - a remote-peer grant (--from) to role=db: applied there and kept;
  - db-2 stopped with SIGSTOP: revoke and approve --wait report it pending
    and exit 5 naming it; after SIGCONT it catches up;
  - a name unknown on db-2 (its daemon sees an /etc/passwd without the
    user): state unresolved there, applied on db-1;
  - etcd stopped: grants keep working and expire on time in the kernel, new
    requests fail within seconds with fleet_unreachable, strict ports' grants
    end after grace (ended_by fleet_partition) and best_effort ones stay,
    fleet_disconnected / fleet_reconnected, a node restarted while etcd is
    down keeps what its mirror holds, and everything works again afterwards;
  - db-2 alone cut off (its line to etcd killed): its strict grant ends there
    after grace and stays on db-1; a strict grant made meanwhile reaches db-2
    only once it is back and has caught up;
  - db-2 stopped (SIGTERM) while grants change and etcd is compacted, then
    converging on start;
  - bad input: unknown selectors and labels matching nothing, garbage under
    the prefix (grants, requests, policy), never applied, each recorded.

Throughout, storms (probe.py storm) try forbidden connects on every node and
port, as a user who never holds a grant, and as the grantee on web-1 for the
"db" and "dual" ports (no grant of theirs targets web-1): none may succeed.
At the end every daemon still runs and every node's audit chain verifies,
each record naming its node.

usage: e2e_fleet.py BUILD_DIR
"""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleet_harness import GRACE_S, Fleet, Storm  # noqa: E402
from harness import PY, Results, verify_chain, wait_for, wall  # noqa: E402

PORT_NAMES = ("db", "dual", "strict", "loose", "dbonly")
# Every port but dbonly is protected on every node, so that a node a grant
# does not target denies it.
POLICY = """
[[port]]
name = "db"
port = {db}
proto = "both"
max_duration = "10m"
approvers = ["{appr}", "{appr2}"]

[[port]]
name = "dual"
port = {dual}
proto = "tcp"
max_duration = "10m"
approvers = ["{appr}", "{appr2}"]
approvals_required = 2

[[port]]
name = "dbonly"
port = {dbonly}
proto = "tcp"
max_duration = "10m"
approvers = ["{appr}"]
hosts = {{ role = "db" }}

[[port]]
name = "strict"
port = {strict}
proto = "tcp"
max_duration = "10m"
approvers = ["{appr}"]
fleet_mode = "strict"

[[port]]
name = "loose"
port = {loose}
proto = "tcp"
max_duration = "10m"
approvers = ["{appr}"]
fleet_mode = "best_effort"
"""
USERS = ("req", "req2", "appr", "appr2", "other", "ghost")
DB = ("db-1", "db-2")
ALL = ("db-1", "db-2", "web-1")
STORM_MAX_S = 600      # a storm's own bound; the suite stops them sooner
MIN_ATTEMPTS = 20      # fewer: the storm did not really run
APPLY_BOUND_S = 1.0    # issue 19: allowed on every target node within 1 s of the decision
WAIT_S = 15            # generous bound for whatever the issue sets no figure for
FAST_FAIL_S = 8        # a command with etcd down fails within this ("within seconds")


def one_sentence(text):
    """True when text is one line holding one sentence (the daemon's and the CLI's refusals)."""
    lines = [x for x in text.strip().splitlines() if x.strip()]
    return len(lines) == 1 and len(lines[0]) < 400


def err_code(out):
    return (out.get("error") or {}).get("code") if isinstance(out, dict) else None


def node_states(answer):
    """{node: state} of a --wait answer's "nodes"."""
    return {n.get("node"): n.get("state") for n in answer.get("nodes", [])} if isinstance(answer, dict) else {}


class Suite:
    def __init__(self, fleet, t):
        self.f = fleet
        self.t = t
        self.u = fleet.user
        self.n = {n.name: n for n in fleet.nodes}
        self.p = fleet.ports
        self.storms = []

    # --- helpers --------------------------------------------------------
    def request(self, node, user, port, on=None, dur="10m", reason="e2e fleet"):
        args = ["request", str(self.p[port]), "--for", dur, "--reason", reason]
        if on:
            args += ["--on", on]
        return self.n[node].cli_json(self.u[user], *args)

    def approve(self, node, approver, rid, *more):
        return self.n[node].cli_json(self.u[approver], "approve", str(rid), *more)

    def grant(self, label, user, port, on, dur="10m", via="db-1", approver="appr", wait=True):
        """A request by `user` on `via` and its approval --wait there: the approve answer ({} if it failed)."""
        rc, req, err = self.request(via, user, port, on, dur, reason=label)
        if not self.t.check(f"{label}: request {port} --on {on} accepted (pending)",
                            rc == 0 and req.get("state") == "pending", f"rc {rc} {req} {err}"):
            return {}
        more = ("--wait", "--timeout", "10s") if wait else ()
        rc, ans, err = self.approve(via, approver, req["request_id"], *more)
        self.t.check(f"{label}: approved, grant {ans.get('grant_id')}", rc == 0 and ans.get("state") == "granted"
                     and ans.get("grant_id"), f"rc {rc} {ans} {err}")
        return ans if rc == 0 else {}

    def revoke(self, node, user, gid, *more):
        return self.n[node].cli_json(self.u[user], "revoke", str(gid), *more)

    def connects(self, user, port, names):
        """{node: probe outcome} of one connect as `user` to `port` on each node."""
        return {x: self.n[x].connect(self.u[user], self.p[port]) for x in names}

    def expect(self, label, user, port, want):
        """Checks one connect per node: want is {node: "ok" | "EPERM"}."""
        got = self.connects(user, port, want)
        return self.t.check(f"{label}: {user} -> {port}: {want}", got == want, f"got {got}")

    def expect_before(self, label, user, port, want, deadline):
        """expect(), for a state that lasts until `deadline` (monotonic).  A node's probe that
        ended after it (a machine so loaded that the probes took that long) proves nothing
        either way and is reported as not checked; one that ended before it must match."""
        got, late = {}, []
        for x, w in want.items():
            got.update(self.connects(user, port, {x: w}))
            if got[x] != w and time.monotonic() >= deadline:
                late.append(x)
        wrong = {x: g for x, g in got.items() if g != want[x] and x not in late}
        if late:
            print(f"  n/a   {label} on {late}: the probe ended after the window closed "
                  f"({time.monotonic() - deadline:.1f} s ago)")
        return self.t.check(f"{label}: {user} -> {port}: {want}", not wrong, f"got {got}")

    def expect_soon(self, label, user, port, want, seconds=WAIT_S):
        got = {}

        def reached():
            got.update(self.connects(user, port, want))
            return got == want
        ok = wait_for(reached, seconds)
        return self.t.check(f"{label}: {user} -> {port} within {seconds} s: {want}", ok, f"got {got}")

    def ledger_grants(self, rid):
        """Grant documents in etcd (P/grants/...) that came from request rid."""
        docs, _ = self.f.gw.prefix(self.f.prefix + "/grants/")
        out = []
        for key, value in docs.items():
            try:
                d = json.loads(value)
            except ValueError:
                continue
            if isinstance(d, dict) and str(d.get("request_id")) == str(rid):
                out.append(key)
        return out

    def applied_records(self, kind, gid, names, since):
        """{node: [records of type kind for grant gid]} on each node, after the marks `since`."""
        return {x: [r for r in self.n[x].audit_records(since[x], type=kind) if str(r.get("grant_id")) == str(gid)]
                for x in names}

    def marks(self):
        return {x: self.n[x].audit_mark() for x in ALL}

    # --- cases ----------------------------------------------------------
    def local_ports_refused(self):
        print("-- a local [[port]] table in fleet mode is refused")
        node = self.n["db-1"]
        node.write_config(tail=f'[[port]]\nname = "local"\nport = {self.p["loose"]}\napprovers = ["{self.u["appr"]}"]\n')
        p = node.launch()
        try:
            rc = p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            rc = None
            node.stop()
            node.uninstall()
        node.daemon = None
        log = node.daemon_log()
        self.t.check("jitgated refuses to start (exit != 0)", rc not in (None, 0), f"rc {rc}\n{log}")
        said = [x for x in log.splitlines() if "[[port]]" in x]
        self.t.check("and says why in one sentence naming [[port]] and policy push",
                     len(said) == 1 and one_sentence(said[0]) and "policy push" in said[0], log)
        os.remove(node.log)

        print("-- etcd unreachable at a node's first start")
        node.write_config(etcd=["http://127.0.0.1:1"])  # nothing listens there in the node's namespace
        try:
            node.start()
            started = True
        except RuntimeError as e:
            started = False
            self.t.check("jitgated starts while etcd is unreachable", False, str(e))
        if started:
            self.t.check("its log says etcd is unreachable",
                         wait_for(lambda: "etcd" in node.daemon_log() and "127.0.0.1:1" in node.daemon_log(), 10),
                         node.daemon_log())
            start = time.monotonic()
            rc, out, err = self.request("db-1", "req", "db", reason="no etcd yet")
            took = time.monotonic() - start
            self.t.check(f"a request fails in {took:.1f} s: exit 1, fleet_unreachable, one sentence",
                         rc == 1 and err_code(out) == "fleet_unreachable" and one_sentence(err)
                         and took < FAST_FAIL_S, f"rc {rc} {out} {err}")
            node.stop()
        os.remove(node.log)
        node.write_config()

    def start(self):
        print("-- three nodes, the fleet policy, jitgate nodes")
        self.n["db-2"].hide_users([self.u["ghost"]])
        self.f.start_all()
        view = []

        def registered():
            view[:] = [self.f.nodes_view()]
            return sorted(view[0][0]) == sorted(ALL) and isinstance(view[0][1], int)
        self.t.check("jitgate nodes --json: the three nodes and the revision", wait_for(registered, WAIT_S),
                     str(view[0][2]))
        rows = view[0][0]
        keys = {"node", "labels", "alive", "applied_revision", "lag", "policy_version", "grants", "ack_age_s"}
        for name, labels in ((n.name, n.labels) for n in self.f.nodes):
            row = rows.get(name, {})
            self.t.check(f"nodes: {name} has every field, its labels {labels}, alive",
                         keys <= set(row) and row.get("labels") == labels and row.get("alive") is True, str(row))
        rc, pushed, err = self.f.push_policy(via=self.n["web-1"])
        self.t.check("policy push as root: version and revision", rc == 0 and isinstance(pushed.get("version"), int)
                     and isinstance(pushed.get("revision"), int), f"rc {rc} {pushed} {err}")
        rc, shown, err = self.n["db-2"].cli_json("root", "policy", "show")
        self.t.check(f"policy show on another node: that version, its {len(PORT_NAMES)} ports",
                     rc == 0 and shown.get("version") == pushed.get("version")
                     and sorted(shown.get("ports", [])) == sorted(PORT_NAMES), f"rc {rc} {shown} {err}")
        mine = os.path.join(self.f.tmp, "policy-by-a-user.toml")
        with open(mine, "w") as f:
            f.write(self.f.render())
        os.chmod(mine, 0o644)
        r = self.n["db-1"].cli(self.u["req"], "policy", "push", mine)
        self.t.check("policy push as a user is refused (exit 3)", r.returncode == 3, r.stdout + r.stderr)
        self.policy_version = pushed.get("version")

        def running_it():
            rows, _, _ = self.f.nodes_view()
            return all((rows.get(x) or {}).get("policy_version") == self.policy_version for x in ALL)
        self.t.check(f"every node runs policy version {self.policy_version} within {WAIT_S} s",
                     wait_for(running_it, WAIT_S), str(self.f.nodes_view()[2]))
        self.expect("hosts = { role = \"db\" }: protected on db-1 and db-2 only", "other", "dbonly",
                    {"db-1": "EPERM", "db-2": "EPERM", "web-1": "ok"})

    def start_storms(self):
        for x in ALL:
            for port in PORT_NAMES:
                if port != "dbonly" or x in DB:
                    self.storms.append(Storm(self.n[x], self.u["other"], self.p[port], STORM_MAX_S))
        # The grantee of the role=db grants, on the node none of them targets.
        for port in ("db", "dual"):
            self.storms.append(Storm(self.n["web-1"], self.u["req"], self.p[port], STORM_MAX_S))

    def stop_storms(self):
        print("-- the storms")
        for s in self.storms:
            tally = s.stop()
            ok = isinstance(tally, dict) and tally.get("successes") == 0 and tally.get("attempts", 0) >= MIN_ATTEMPTS
            self.t.check(f"storm {s.label}: no forbidden connect "
                         f"({tally.get('attempts') if isinstance(tally, dict) else '?'} attempts)", ok, str(tally))

    def role_db_grant(self):
        print("-- a grant to role=db: applied on db-1 and db-2 within 1 s, denied on web-1")
        since = self.marks()
        rc, req, err = self.request("web-1", "req", "db", on="role=db", reason="role db")
        self.t.check("request --on role=db on web-1: pending, answered by web-1, on role=db",
                     rc == 0 and req.get("state") == "pending" and req.get("node") == "web-1"
                     and req.get("on") == "role=db", f"rc {rc} {req} {err}")
        if rc != 0:
            return None
        probers = {x: self.n[x].spawn(self.n[x].user_argv(self.u["req"], [
            PY, os.path.join(self.f.tmp, "probe.py"), "until", "tcp", "127.0.0.1", str(self.p["db"]), "20", "200"]))
            for x in DB}
        for x, p in probers.items():
            self.t.eq(f"prober on {x} ready", p.stdout.readline().strip(), "ready")
        issued = time.time()
        rc, ans, err = self.approve("db-1", "appr", req["request_id"], "--wait")
        self.t.check("approve --wait on db-1: granted, targets db-1 and db-2, a revision",
                     rc == 0 and ans.get("state") == "granted" and sorted(ans.get("targets", [])) == list(DB)
                     and isinstance(ans.get("revision"), int), f"rc {rc} {ans} {err}")
        self.t.eq("approve --wait: each target node applied", node_states(ans), {x: "applied" for x in DB})
        gid = ans.get("grant_id")
        decided = [r for r in self.n["db-1"].audit_records(since["db-1"], type="approve")
                   if str(r.get("request_id")) == str(req["request_id"])]
        decided_at = wall(decided[-1]["ts"]) if decided else None
        self.t.check("db-1 wrote the approve record", decided_at is not None, str(decided))
        for x, p in probers.items():
            out = p.stdout.readline().strip()
            p.wait(timeout=25)
            allowed = int(out) / 1e9 if out.isdigit() else None
            if allowed is None or decided_at is None:
                self.t.check(f"{x}: the grantee's connect was allowed", False, out)
                continue
            self.t.check(f"{x}: allowed {allowed - decided_at:.3f} s after the decision "
                         f"({allowed - issued:.3f} s after approve was issued), bound {APPLY_BOUND_S} s",
                         allowed - decided_at <= APPLY_BOUND_S, out)
        self.expect("role=db grant", "req", "db", {"db-1": "ok", "db-2": "ok", "web-1": "EPERM"})
        recs = self.applied_records("grant_applied", gid, ALL, since)
        for x in DB:
            self.t.check(f"{x}: one grant_applied record with latency_ms",
                         len(recs[x]) == 1 and isinstance(recs[x][0].get("latency_ms"), (int, float)), str(recs[x]))
        self.t.eq("web-1: no grant_applied record for it", recs["web-1"], [])
        return gid

    def two_approvers(self, rounds=4):
        print("-- approvals from two nodes at once: one grant")
        for port, required, n in (("dual", 2, rounds), ("db", 1, 2)):
            for i in range(n):
                label = f"{port} (approvals_required {required}) round {i + 1}"
                rc, req, err = self.request("db-1", "req2", port, on="role=db", reason=label)
                if not self.t.check(f"{label}: request", rc == 0, f"rc {rc} {req} {err}"):
                    continue
                rid = req["request_id"]
                procs = [self.n["db-1"].popen_cli(self.u["appr"], "approve", rid),
                         self.n["db-2"].popen_cli(self.u["appr2"], "approve", rid)]
                answers = []
                for p in procs:
                    out, perr = p.communicate(timeout=60)
                    try:
                        answers.append((p.returncode, json.loads(out), perr))
                    except ValueError:
                        answers.append((p.returncode, {"raw": out}, perr))
                gids = {a.get("grant_id") for _, a, _ in answers if a.get("grant_id")}
                if required == 2:
                    self.t.check(f"{label}: both approvals accepted, one grant id in the answers",
                                 all(rc == 0 for rc, _, _ in answers) and len(gids) == 1, str(answers))
                else:
                    self.t.check(f"{label}: one approval makes the grant, one grant id in the answers",
                                 any(rc == 0 for rc, _, _ in answers) and len(gids) == 1, str(answers))
                self.t.eq(f"{label}: grant documents in etcd for request {rid}", len(self.ledger_grants(rid)), 1)
                rc, listed, err = self.n["db-2"].cli_json(self.u["req2"], "list", "--all")
                mine = [g for g in listed.get("grants", []) if str(g.get("request_id")) == str(rid)]
                want = sorted([self.u["appr"], self.u["appr2"]]) if required == 2 else None
                self.t.check(f"{label}: list --all on db-2: one grant for request {rid}"
                             + (", approved by both" if want else ""),
                             rc == 0 and len(mine) == 1 and (want is None or sorted(mine[0].get("approvers", [])) == want),
                             f"{mine} {err}")
                for gid in gids:
                    rc, ans, err = self.revoke("db-2", "appr", gid, "--wait")
                    self.t.check(f"{label}: revoke --wait", rc == 0, f"rc {rc} {ans} {err}")
        self.expect("after the rounds", "req2", "dual", {x: "EPERM" for x in ALL})

    def revoke_wait(self, gid):
        print("-- revoke --wait: per-node states, revoke_applied, denied")
        if not gid:
            self.t.check("revoke --wait: a grant to revoke", False, "the role=db case made none")
            return
        since = self.marks()
        rc, ans, err = self.revoke("web-1", "appr", gid, "--wait")
        self.t.check("revoke --wait on web-1 (not a target): exit 0, a revision, targets db-1 and db-2",
                     rc == 0 and isinstance(ans.get("revision"), int) and sorted(ans.get("targets", [])) == list(DB),
                     f"rc {rc} {ans} {err}")
        self.t.eq("revoke --wait: each target node applied", node_states(ans), {x: "applied" for x in DB})
        self.t.check("revoke --wait: a latency_ms for each node",
                     all(isinstance(n.get("latency_ms"), (int, float)) for n in ans.get("nodes", [])) and
                     ans.get("nodes"), str(ans))
        self.expect("confirmed revoked", "req", "db", {x: "EPERM" for x in ALL})
        recs = self.applied_records("revoke_applied", gid, ALL, since)
        for x in DB:
            self.t.check(f"{x}: one revoke_applied record with latency_ms",
                         len(recs[x]) == 1 and isinstance(recs[x][0].get("latency_ms"), (int, float)), str(recs[x]))
        self.t.eq("web-1: no revoke_applied record", recs["web-1"], [])

    def remote_peer(self):
        print("-- a remote-peer grant (--from) to role=db: applied on db-1 and db-2, and it stays")
        since = self.marks()
        src = "2001:db8:19::5"
        rc, req, err = self.n["web-1"].cli_json(self.u["req"], "request", self.p["db"], "--from", src, "--for", "10m",
                                                "--reason", "remote peer", "--on", "role=db")
        if not self.t.check(f"request --from {src} --on role=db", rc == 0, f"rc {rc} {req} {err}"):
            return
        rc, ans, err = self.approve("web-1", "appr", req["request_id"], "--wait")
        self.t.eq("approve --wait: db-1 and db-2 applied", node_states(ans), {x: "applied" for x in DB})
        gid = ans.get("grant_id")
        time.sleep(3)  # a local sweep (expiry, removed accounts) would have ended it by now
        for x in DB:
            ended = [r for r in self.n[x].audit_records(since[x]) if str(r.get("grant_id")) == str(gid)
                     and r.get("ended_by")]
            self.t.eq(f"{x}: nothing ended the remote grant locally", ended, [])
            rc, st, err = self.n[x].cli_json("root", "status")
            active = [g for g in st.get("grants", []) if str(g.get("grant_id")) == str(gid)]
            self.t.check(f"{x}: status lists it active, for {src}",
                         len(active) == 1 and active[0].get("src") == src and active[0].get("state") == "active",
                         str(active or st))
        if gid:
            rc, _, err = self.revoke("web-1", "appr", gid, "--wait")
            self.t.check("the remote grant revoked --wait", rc == 0, err)

    def paused_node(self):
        print("-- db-2 stopped (SIGSTOP): pending, exit 5, then catching up")
        g = self.grant("before the pause", "req", "db", "role=db")
        if not g:
            return
        rc, req, err = self.request("db-1", "req2", "db", on="role=db", reason="during the pause")
        since = self.marks()
        self.n["db-2"].pause()
        try:
            start = time.monotonic()
            rc, ans, err = self.revoke("db-1", "appr", g["grant_id"], "--wait", "--timeout", "3s")
            took = time.monotonic() - start
            self.t.check(f"revoke --wait --timeout 3s: exit 5 after {took:.1f} s, naming db-2",
                         rc == 5 and "db-2" in err and took < 3 + FAST_FAIL_S, f"rc {rc} {ans} {err}")
            self.t.eq("revoke: db-1 applied, db-2 pending", node_states(ans), {"db-1": "applied", "db-2": "pending"})
            revoked_at = ans.get("revision") or self.f.gw.revision()
            rc, ans2, err = self.approve("db-1", "appr", req.get("request_id"), "--wait", "--timeout", "3s")
            self.t.check("approve --wait --timeout 3s: granted, exit 5 naming db-2",
                         rc == 5 and "db-2" in err and ans2.get("grant_id"), f"rc {rc} {ans2} {err}")
            self.t.eq("approve: db-1 applied, db-2 pending", node_states(ans2),
                      {"db-1": "applied", "db-2": "pending"})
            self.expect("db-1 during the pause", "req", "db", {"db-1": "EPERM", "web-1": "EPERM"})
            self.expect("db-1 during the pause", "req2", "db", {"db-1": "ok", "web-1": "EPERM"})
        finally:
            self.n["db-2"].resume()
        self.expect_soon("db-2 after SIGCONT", "req", "db", {"db-2": "EPERM"})
        self.expect_soon("db-2 after SIGCONT", "req2", "db", {"db-2": "ok"})
        self.t.check("db-2's ack reaches the revocation's revision after SIGCONT",
                     self.f.wait_applied(revoked_at, ["db-2"], WAIT_S), str(self.f.nodes_view()[2]))
        for kind, gid in (("revoke_applied", g["grant_id"]), ("grant_applied", ans2.get("grant_id"))):
            self.t.check(f"db-2 wrote {kind} for {gid} after SIGCONT",
                         wait_for(lambda: self.applied_records(kind, gid, ["db-2"], since)["db-2"], WAIT_S),
                         str(self.n["db-2"].audit_records(since["db-2"])[-5:]))
        if ans2.get("grant_id"):
            rc, _, err = self.revoke("db-1", "appr", ans2["grant_id"], "--wait")
            self.t.check("the paused case's second grant revoked on both", rc == 0, err)

    def unresolved(self):
        print("-- a name unknown on db-2: unresolved there, applied on db-1")
        rc, req, err = self.request("db-1", "ghost", "db", on="role=db", reason="unknown on db-2")
        if not self.t.check("request by a user db-2 cannot resolve", rc == 0, f"rc {rc} {req} {err}"):
            return
        rc, ans, err = self.approve("db-1", "appr", req["request_id"], "--wait", "--timeout", "5s")
        self.t.check("approve --wait: granted, exit 0 (unresolved is an answer), a warning naming db-2",
                     rc == 0 and ans.get("grant_id") and "db-2" in err, f"rc {rc} {ans} {err}")
        self.t.eq("approve --wait: db-1 applied, db-2 unresolved", node_states(ans),
                  {"db-1": "applied", "db-2": "unresolved"})
        self.expect("the unresolved user", "ghost", "db", {"db-1": "ok", "db-2": "EPERM", "web-1": "EPERM"})
        if ans.get("grant_id"):
            self.revoke("db-1", "appr", ans["grant_id"], "--wait", "--timeout", "5s")
        self.expect("the unresolved user after the revocation", "ghost", "db", {x: "EPERM" for x in ALL})

    def etcd_down(self):
        print("-- etcd stopped: grants keep working and expire, new requests fail fast, strict vs best_effort")
        # etcd hung (SIGSTOP): a command still ends within seconds, with a clear error.
        self.f.etcd.pause()
        try:
            start = time.monotonic()
            rc, out, err = self.request("db-2", "req", "db", on="role=db", reason="etcd hangs")
            took = time.monotonic() - start
        finally:
            self.f.etcd.resume()
        self.t.check(f"a request with etcd hung (SIGSTOP) fails in {took:.1f} s: exit 1, fleet_unreachable",
                     rc == 1 and err_code(out) == "fleet_unreachable" and took < FAST_FAIL_S, f"rc {rc} {out} {err}")
        self.t.check("the fleet answers again once etcd resumes",
                     wait_for(lambda: self.f.nodes_view()[1] is not None, WAIT_S), str(self.f.nodes_view()[2]))
        loose = self.grant("best_effort grant", "req", "loose", "env=e2e")
        strict = self.grant("strict grant", "req", "strict", "env=e2e", via="web-1")
        short = self.grant("short grant", "req2", "loose", "env=e2e", dur="12s", via="web-1")
        short_end = wall(short.get("expires_at")) if short else None
        # Every node connected again after the hang (its status says so), so that
        # grace counts from the stop below, not from the hang.
        def all_connected():
            for x in ALL:
                rc, st, _ = self.n[x].cli_json("root", "status")
                if rc != 0 or not (st.get("fleet") or {}).get("connected"):
                    return False
            return True
        since = self.marks()
        self.t.check("every node reports itself connected before etcd stops", wait_for(all_connected, WAIT_S),
                     str({x: (self.n[x].cli_json("root", "status")[1].get("fleet") or {}).get("error") for x in ALL}))
        self.f.etcd_stop()
        stopped_at = time.monotonic()
        stopped_wall = time.time()
        try:
            if strict:
                self.expect_before("the strict grant within grace", "req", "strict", {x: "ok" for x in ALL},
                                   stopped_at + GRACE_S - 1.5)
            if short_end:
                self.expect_before("the short grant before its end", "req2", "loose", {x: "ok" for x in ALL},
                                   time.monotonic() + (short_end - time.time()))
            start = time.monotonic()
            rc, out, err = self.request("db-1", "req", "db", on="role=db", reason="etcd is down")
            took = time.monotonic() - start
            self.t.check(f"a new request with etcd down fails in {took:.1f} s: exit 1, fleet_unreachable, "
                         "one sentence", rc == 1 and err_code(out) == "fleet_unreachable" and one_sentence(err)
                         and took < FAST_FAIL_S, f"rc {rc} {out} {err}")
            for x in ALL:
                self.t.check(f"{x}: fleet_disconnected recorded",
                             wait_for(lambda: self.n[x].audit_records(since[x], type="fleet_disconnected"),
                                      GRACE_S + WAIT_S), str(self.n[x].audit_records(since[x])[-5:]))
            # strict: ended after grace everywhere; best_effort: kept.
            self.expect_soon("strict grant after grace", "req", "strict", {x: "EPERM" for x in ALL},
                             GRACE_S + WAIT_S)
            self.t.check(f"grace ({GRACE_S} s) passed before the strict grant ended",
                         time.monotonic() - stopped_at >= GRACE_S)
            for x in ALL:
                ended = [r for r in self.n[x].audit_records(since[x]) if r.get("ended_by") == "fleet_partition"
                         and str(r.get("grant_id")) == str(strict.get("grant_id"))]
                self.t.check(f"{x}: the strict grant ended with ended_by fleet_partition", len(ended) == 1,
                             str(self.n[x].audit_records(since[x])[-5:]))
                if ended:
                    # Grace counts from the node's own fleet_disconnected (a node may
                    # lose etcd a moment before the stop, under load): the last one
                    # before the end, which must not be long before the stop.
                    end_ts = wall(ended[0].get("ts")) or 0
                    downs = [wall(r.get("ts")) or 0 for r in self.n[x].audit_records(since[x], type="fleet_disconnected")]
                    down = max([d for d in downs if d <= end_ts], default=None)
                    self.t.check(f"{x}: it went down with etcd's stop (at most 5 s before it)",
                                 down is not None and down >= stopped_wall - 5, f"{downs} stop {stopped_wall}")
                    after = end_ts - (down if down is not None else stopped_wall)
                    self.t.check(f"{x}: it ended {after:.1f} s after its fleet_disconnected: after grace "
                                 f"({GRACE_S} s), within 10 s more", GRACE_S - 0.1 <= after <= GRACE_S + 10,
                                 str(ended[0]))
            self.expect("best_effort grant with etcd down", "req", "loose", {x: "ok" for x in ALL})
            self.restart_without_etcd(loose)
            if short_end:
                wait_for(lambda: time.time() > short_end + 1.5, 30)
                self.expect("the short grant after its end (kernel expiry, no etcd)", "req2", "loose",
                            {x: "EPERM" for x in ALL})
        finally:
            self.f.etcd_start()
        for x in ALL:
            self.t.check(f"{x}: fleet_reconnected recorded after etcd is back",
                         wait_for(lambda: self.n[x].audit_records(since[x], type="fleet_reconnected"), WAIT_S + 15),
                         str(self.n[x].audit_records(since[x])[-5:]))
        again = self.grant("strict after reconnecting", "req2", "strict", "role=web", via="web-1")
        if again:
            self.expect("strict after reconnecting", "req2", "strict", {"web-1": "ok", "db-1": "EPERM"})
            self.revoke("web-1", "appr", again["grant_id"], "--wait")
        self.expect("best_effort grant after reconnecting", "req", "loose", {x: "ok" for x in ALL})
        self.loose_gid = loose.get("grant_id")
        if strict:  # ended on every node by the partition; whatever etcd still says of it, it ends now
            self.revoke("web-1", "appr", strict["grant_id"], "--wait")
            self.expect("the strict grant after its revocation", "req", "strict", {x: "EPERM" for x in ALL})

    def one_node_cut(self):
        """db-2 alone loses etcd (its line cut): its strict grant ends after grace there only,
        a strict grant made meanwhile is not applied on it until it has caught up."""
        print("-- db-2 alone cut off from etcd: strict ends there only, new grants wait for its catching up")
        first = self.grant("strict grant before the cut", "req", "strict", "role=db")
        node = self.n["db-2"]
        since = self.marks()
        node.cut_etcd()
        cut_at = time.monotonic()
        later = {}
        try:
            later = self.grant("strict grant made while db-2 is cut off", "req2", "strict", "role=db", wait=False)
            if later:
                self.t.eq("its targets are db-1 and db-2", sorted(later.get("targets") or []), list(DB))
                self.expect_soon("the new strict grant on the connected node", "req2", "strict", {"db-1": "ok"},
                                 WAIT_S)
                self.expect("the new strict grant on the cut-off node", "req2", "strict", {"db-2": "EPERM"})
            self.t.check("db-2: fleet_disconnected recorded",
                         wait_for(lambda: node.audit_records(since["db-2"], type="fleet_disconnected"),
                                  GRACE_S + WAIT_S), str(node.audit_records(since["db-2"])[-5:]))
            if first:
                self.expect_soon("the older strict grant on db-2 after grace", "req", "strict", {"db-2": "EPERM"},
                                 GRACE_S + WAIT_S)
                self.t.check(f"grace ({GRACE_S} s) passed before db-2 ended it", time.monotonic() - cut_at >= GRACE_S)
                ended = [r for r in node.audit_records(since["db-2"]) if r.get("ended_by") == "fleet_partition"]
                self.t.eq("db-2 ended exactly that grant, ended_by fleet_partition",
                          [str(r.get("grant_id")) for r in ended], [str(first.get("grant_id"))])
                self.expect("the older strict grant on the connected db-1", "req", "strict", {"db-1": "ok"})
                self.t.eq("db-1 ended nothing (it never lost etcd)",
                          [r for r in self.n["db-1"].audit_records(since["db-1"])
                           if r.get("ended_by") == "fleet_partition" or r.get("type") == "fleet_disconnected"], [])
            if later:  # still cut off, past grace: nothing new reaches it
                self.expect("the new strict grant on db-2 while still cut off", "req2", "strict", {"db-2": "EPERM"})
        finally:
            node.connect_etcd()
        self.t.check("db-2: fleet_reconnected once its line is back",
                     wait_for(lambda: node.audit_records(since["db-2"], type="fleet_reconnected"), WAIT_S),
                     str(node.audit_records(since["db-2"])[-5:]))
        if later:
            self.expect_soon("the new strict grant on db-2 once it caught up", "req2", "strict", {"db-2": "ok"},
                             WAIT_S)
        if first:  # ended there by the partition: never put back (README), while db-1 keeps it
            self.expect("the older strict grant after db-2 caught up", "req", "strict", {"db-2": "EPERM", "db-1": "ok"})
        for g in (first, later):
            if g:
                self.revoke("db-1", "appr", g["grant_id"], "--wait")

    def restart_without_etcd(self, loose):
        """db-1 restarted while etcd is down: it starts, says etcd is unreachable, keeps its mirror's grants."""
        node = self.n["db-1"]
        node.stop()
        log_before = len(node.daemon_log(tail=10 ** 7))
        try:
            node.start()
            started = True
        except RuntimeError as e:
            started = False
            self.t.check("db-1 starts with etcd unreachable", False, str(e))
        if started:
            self.t.check("db-1 started with etcd down and its log says etcd is unreachable",
                         wait_for(lambda: "etcd" in node.daemon_log(tail=10 ** 7)[log_before:], 10),
                         node.daemon_log(tail=10 ** 7)[log_before:][-1000:])
            if loose:
                self.expect("db-1 restarted without etcd: the mirror's grant", "req", "loose", {"db-1": "ok"})
            self.expect("db-1 restarted without etcd: the strict grant stays ended", "req", "strict", {"db-1": "EPERM"})
            self.expect("db-1 restarted without etcd: nothing else", "req", "db", {"db-1": "EPERM"})
            rc, out, err = self.request("db-1", "req", "db", on="role=db", reason="still down")
            self.t.check("db-1: a request fails with fleet_unreachable", rc == 1 and err_code(out) == "fleet_unreachable",
                         f"rc {rc} {out} {err}")

    def converge_after_stop(self):
        print("-- db-2 stopped (SIGTERM) while grants change and etcd is compacted, then converging")
        kept = self.grant("granted before the stop", "req", "db", "role=db")
        self.n["db-2"].stop()
        if kept:
            rc, _, err = self.revoke("db-1", "appr", kept["grant_id"])
            self.t.check("revoked while db-2 is down", rc == 0, err)
        new = self.grant("granted while db-2 is down", "req2", "db", "role=db", wait=False)
        churn = self.grant("granted and revoked while db-2 is down", "req2", "loose", "db-2", wait=False)
        if churn:
            self.revoke("db-1", "appr", churn["grant_id"])
        if self.loose_gid:
            self.revoke("db-1", "appr", self.loose_gid)
        rev = self.f.compact()
        self.t.check(f"etcd compacted at revision {rev}", rev > 0)
        start = time.monotonic()
        self.n["db-2"].start()
        ok = self.f.wait_applied(rev, ["db-2"], WAIT_S)
        self.t.check(f"db-2 converged (applied_revision >= {rev}) {time.monotonic() - start:.1f} s after its start",
                     ok, str(self.f.nodes_view()[2]))
        want = {"db-2": "EPERM", "db-1": "EPERM", "web-1": "EPERM"}
        self.expect("revoked while down", "req", "db", want)
        self.expect("granted while down", "req2", "db", {"db-2": "ok", "db-1": "ok", "web-1": "EPERM"} if new else want)
        self.expect("granted and revoked while down", "req2", "loose", want)
        self.expect("the best_effort grant revoked while down", "req", "loose", want)
        # Its maps say what the fleet says: one active grant for db-2 (req2's).
        rows, _, _ = self.f.nodes_view()
        self.t.eq("db-2's ack counts the grants it applied", (rows.get("db-2") or {}).get("grants"), 1 if new else 0)
        rc, st, err = self.n["db-2"].cli_json("root", "status")
        ids = sorted(str(g.get("grant_id")) for g in st.get("grants", [])) if rc == 0 else None
        self.t.eq("status on db-2 lists exactly the fleet's grant for it", ids,
                  [str(new.get("grant_id"))] if new else [])
        if new:
            self.revoke("db-1", "appr", new["grant_id"], "--wait")

    def bad_selectors(self):
        print("-- bad input: selectors")
        for sel, what in (("no-such-node", "an unknown node name"), ("role=nothing", "labels that match no node"),
                          ("=db", "a malformed selector")):
            rc, out, err = self.request("db-1", "req", "db", on=sel, reason="bad selector")
            self.t.check(f"--on {sel} ({what}): refused in one sentence", rc not in (0, 4, 5) and one_sentence(err)
                         and err_code(out) != "fleet_unreachable", f"rc {rc} {out} {err}")

    def garbage(self):
        print("-- bad input: garbage under the prefix")
        since = self.marks()
        P = self.f.prefix
        self.f.gw.put(P + "/grants/000000000999", b"\xff{not json at all")
        self.f.gw.put(P + "/grants/000000000998", json.dumps({"grant_id": 998, "user": 5, "port": "x"}))
        self.f.gw.put(P + "/requests/000000000997", b"garbage")
        self.f.gw.put(P + "/policy", b"[[port]] not json")
        for x in ALL:
            for gid in ("999", "998"):
                self.t.check(f"{x}: a record about the garbage grant {gid}",
                             wait_for(lambda: any("000000000" + gid in json.dumps(r) or str(r.get("grant_id")) == gid
                                                  for r in self.n[x].audit_records(since[x])), WAIT_S),
                             str(self.n[x].audit_records(since[x])[-5:]))
            self.t.check(f"{x}: a record about the garbage request 997",
                         wait_for(lambda: any("000000000997" in json.dumps(r) or str(r.get("request_id")) == "997"
                                              for r in self.n[x].audit_records(since[x])), WAIT_S),
                         str(self.n[x].audit_records(since[x])[-5:]))
            self.t.check(f"{x}: a record about the garbage policy",
                         wait_for(lambda: self.n[x].audit_records(since[x], type="policy_rejected"), WAIT_S),
                         str(self.n[x].audit_records(since[x])[-5:]))
        self.t.check("every daemon still runs and answers", all(
            self.n[x].running() and self.n[x].cli("root", "status").returncode == 0 for x in ALL))
        rows, _, _ = self.f.nodes_view()
        self.t.check("every node keeps the last good policy version",
                     all((rows.get(x) or {}).get("policy_version") == self.policy_version for x in ALL), str(rows))
        for port in ("db", "loose"):
            self.expect(f"garbage applies nothing ({port})", "other", port, {x: "EPERM" for x in ALL})
        self.f.gw.delete(P + "/grants/000000000999")
        self.f.gw.delete(P + "/grants/000000000998")
        self.f.gw.delete(P + "/requests/000000000997")
        rc, pushed, err = self.f.push_policy()
        self.t.check("a good policy pushed again after the garbage", rc == 0, f"rc {rc} {pushed} {err}")
        g = self.grant("a grant after the garbage", "req", "db", "role=db")
        if g:
            self.expect("a grant after the garbage", "req", "db", {"db-1": "ok", "db-2": "ok", "web-1": "EPERM"})
            self.revoke("db-1", "appr", g["grant_id"], "--wait")

    def finish(self):
        print("-- the end: daemons alive, audit chains")
        for x in ALL:
            node = self.n[x]
            self.t.check(f"{x}: jitgated still runs", node.running(), node.daemon_log())
            recs = node.audit_records()
            self.t.eq(f"{x}: audit chain verifies", verify_chain(recs), None)
            self.t.eq(f"{x}: every record names the node", sorted({str(r.get("node")) for r in recs}), [x])


def run(fleet, t):
    s = Suite(fleet, t)
    s.local_ports_refused()
    s.start()
    s.start_storms()
    try:
        gid = s.role_db_grant()
        s.two_approvers()
        s.revoke_wait(gid)
        s.remote_peer()
        s.paused_node()
        s.unresolved()
        s.bad_selectors()
        s.etcd_down()
        s.one_node_cut()
        s.converge_after_stop()
        s.garbage()
    finally:
        s.stop_storms()
    s.finish()


def main():
    started = time.monotonic()
    fleet = Fleet(sys.argv[1], POLICY, PORT_NAMES, users=USERS)
    t = Results()
    try:
        run(fleet, t)
    except Exception as e:  # a crash in the test is a failure, with context
        logs = "\n".join(f"--- {n.name}\n{n.daemon_log(2000)}" for n in fleet.nodes)
        t.check("suite ran to the end", False, f"{type(e).__name__}: {e}\n{logs}")
    finally:
        if t.failed:
            for n in fleet.nodes:
                print(f"--- {n.name}'s log (tail)\n{n.daemon_log(3000)}")
        fleet.cleanup()
    print(f"e2e_fleet: {time.monotonic() - started:.0f} s")
    sys.exit(t.finish())


if __name__ == "__main__":
    main()
