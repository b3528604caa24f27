#!/usr/bin/python3
"""End to end, fleet trust (issue 20, design.md §7.3): write access to etcd is
not access to a port.  The fleet test's three nodes (fleet_harness.py), each
key printed with `jitgated --print-key` before the first start and listed in
every node's [fleet] signers.  Documents are forged the way a writer to etcd
would, with etcdctl (or the JSON gateway when etcdctl is missing).  Cases:

  - a real grant's document copied with another principal, written straight
    into etcd with its old signature, without one, and signed by a key nobody
    lists: nothing opens on any node (probe connects fail) and every node
    records grant_rejected naming the key; `jitgate nodes` counts them;
  - a forged approval (approvals_required = 2) does not count: the spoiled
    request is refused whole (no approval is added to it, nothing opens);
    with the genuine document put back, two real approvals grant it;
  - a forged policy version is not run (policy_rejected, version unchanged);
  - a signer removed from the targets' signers (SIGHUP reload): its new
    grants are refused there, and a grant it made before keeps working;
  - a signers change re-checks what a node holds (SIGHUP reload): web-1
    pushes a policy where port dual is only web-1's and grants it on
    env=e2e (held, not applied, on db-2); web-1 removed from db-2's
    signers: db-2 records policy_rejected for the version it runs (web-1
    signed it) and decides nothing new; once db-1 pushes a version making
    dual db-2's too, db-2 still does not apply web-1's held grant;
  - a node's ack forged in etcd (an applied revision it never reached):
    `revoke --wait` still reports that node pending (exit 5) and `jitgate
    nodes` takes nothing from it; one nested 300000 deep crashes no node;
  - an applied grant whose signature an etcd writer broke keeps its
    deadline, and `jitgate revoke --wait` of it still works: every target
    ends it and acks;
  - an older, validly signed version written back: a grant revoked while
    db-2 was stopped (db-2 saw only its end) put back active opens nothing;
    a granted request put back pending cannot be approved again;
  - a grant's document rewritten for another principal while db-2 was
    stopped: db-2's restart checks it again (it keeps the checks it made,
    fleet/verified.h, but these bytes are new) and refuses it;
  - a grant key deleted with no signed revocation ends the grant (fail
    closed) with a record saying so;
  - approvals through an ID token's groups (the test IdP, tests/web/idp.py,
    on the machine's loopback; each node reads its keys from a jwks_file):
    port sso needs two approvals from @GROUP, a group no host has; appr's
    token approves on db-1, appr2's on db-2, and the first still counts on
    db-2 (its groups travel in its signed approval): granted and applied.

usage: e2e_fleet_trust.py BUILD_DIR
"""
import base64
import copy
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleet_harness import DocSigner, Fleet  # noqa: E402
from harness import PY, Results, verify_chain, wait_for  # noqa: E402

PORT_NAMES = ("db", "dual", "sso")
IDP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "web", "idp.py")
POLICY = """
[[port]]
name = "db"
port = {db}
proto = "tcp"
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
name = "sso"
port = {sso}
proto = "tcp"
max_duration = "10m"
approvers = ["@{appr}-sso"]  # a group only the IdP has
approvals_required = 2
"""
# The same, but port dual is only web-1's (hosts) and needs one approval.
WEB_DUAL = POLICY.replace("approvals_required = 2\n", 'hosts = {{ role = "web" }}\n', 1)
ALL = ("db-1", "db-2", "web-1")
DB = ("db-1", "db-2")
WAIT_S = 15  # generous bound for what the issue sets no figure for


class Suite:
    def __init__(self, fleet, t):
        self.f = fleet
        self.t = t
        self.u = fleet.user
        self.n = {n.name: n for n in fleet.nodes}
        self.p = fleet.ports
        self.rogue = DocSigner()  # a key no node lists
        self.etcdctl = shutil.which("etcdctl")
        self.oidc = ""  # each node's [identity.oidc] table (its file's tail)
        self.sso_group = f"{self.u['appr']}-sso"  # port sso's approvers, a group of the IdP alone
        self.idp = None

    # --- helpers --------------------------------------------------------
    def forge(self, key, doc):
        """Writes doc under key straight into etcd, as an etcd writer would."""
        value = doc.decode() if isinstance(doc, bytes) else doc if isinstance(doc, str) else json.dumps(doc)
        if self.etcdctl:
            r = subprocess.run([self.etcdctl, f"--endpoints={self.f.etcd.url}", "put", key, value],
                               capture_output=True, text=True, timeout=30, env=dict(os.environ, ETCDCTL_API="3"))
            if r.returncode == 0:
                return
            print(f"etcdctl put failed ({r.stderr.strip()}): using the gateway")
        self.f.gw.put(key, value)

    def doc(self, key):
        value = self.f.gw.get(key)
        return json.loads(value) if value else None

    def key(self, kind, ident):
        return f"{self.f.prefix}/{kind}/{int(ident):012d}"

    def request(self, node, user, port, on, reason="e2e trust"):
        return self.n[node].cli_json(self.u[user], "request", str(self.p[port]), "--for", "10m", "--reason",
                                     reason, "--on", on)

    def grant(self, label, user, port, on, via="db-1", wait=True):
        rc, req, err = self.request(via, user, port, on, reason=label)
        if not self.t.check(f"{label}: request accepted", rc == 0 and req.get("state") == "pending",
                            f"rc {rc} {req} {err}"):
            return {}
        more = ("--wait", "--timeout", "10s") if wait else ()
        rc, ans, err = self.n[via].cli_json(self.u["appr"], "approve", str(req["request_id"]), *more)
        self.t.check(f"{label}: granted", rc == 0 and ans.get("state") == "granted" and ans.get("grant_id"),
                     f"rc {rc} {ans} {err}")
        return ans if rc == 0 else {}

    def connects(self, user, port, names):
        return {x: self.n[x].connect(self.u[user], self.p[port]) for x in names}

    def expect(self, label, user, port, want):
        got = self.connects(user, port, want)
        return self.t.check(f"{label}: {user} -> {port}: {want}", got == want, f"got {got}")

    def marks(self):
        return {x: self.n[x].audit_mark() for x in ALL}

    def rejected_on(self, names, since, kind, key):
        """Waits for a `kind` record naming key on each node: {node: record or None}."""
        out = {}
        for x in names:
            found = []

            def seen():
                found[:] = [r for r in self.n[x].audit_records(since[x], type=kind) if r.get("key") == key]
                return bool(found)
            wait_for(seen, WAIT_S)
            out[x] = found[0] if found else None
        return out

    def mod_revision(self, key):
        kvs = self.f.gw.post("/v3/kv/range", {"key": base64.b64encode(key.encode()).decode()}).get("kvs", [])
        return int(kvs[0]["mod_revision"]) if kvs else 0

    def settle(self, key, names=ALL):
        """Waits until every node of names applied the change of key (a grant, the policy)."""
        rev = self.mod_revision(key)
        self.t.check(f"{', '.join(names)} applied revision {rev}", self.f.wait_applied(rev, names, WAIT_S),
                     str(self.f.nodes_view()[2]))

    def reload(self, names, signers):
        """Gives names these [fleet] signers (None: the fleet's) and waits for their SIGHUP reload."""
        for x in names:
            node = self.n[x]
            done = node.daemon_log(1 << 20).count(f"policy reloaded from {node.config}")
            node.signers = signers
            node.write_config(tail=self.oidc)
            node.daemon.send_signal(signal.SIGHUP)
            self.t.check(f"{x} reloaded its file", wait_for(
                lambda: node.daemon_log(1 << 20).count(f"policy reloaded from {node.config}") > done, WAIT_S),
                node.daemon_log())

    def idp_call(self, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        r = urllib.request.Request(self.idp + path, data=data, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(r, timeout=20) as resp:
            return json.loads(resp.read().decode())

    def token(self, user):
        return self.idp_call("/test/mint", {"kind": "good", "user": self.u[user]})["token"]

    def approve_with_token(self, node, user, rid):
        """An approval on node's socket with user's ID token (presented by root): the reply."""
        with socket.socket(socket.AF_UNIX) as c:
            c.settimeout(60)
            c.connect(self.n[node].sock)
            c.sendall(json.dumps({"id": 1, "op": "approve", "token": self.token(user),
                                  "args": {"id": rid}}).encode() + b"\n")
            return json.loads(c.makefile().readline())

    # --- cases ----------------------------------------------------------
    def identity(self):
        print("-- the test IdP; every node verifies its ID tokens with the keys in a jwks_file")
        f = self.f
        users = {self.u[r]: {"password": "pw", "groups": [self.sso_group]} for r in ("appr", "appr2")}
        path = os.path.join(f.tmp, "idp-users.json")
        with open(path, "w") as out:
            json.dump({"users": users}, out)
        url_file = os.path.join(f.tmp, "idp.url")
        f.spawn([PY, IDP, "--users", path, "--url-file", url_file, "--test-hooks"])
        if not self.t.check("the test IdP serves", wait_for(lambda: os.path.exists(url_file), 30)):
            return
        with open(url_file) as src:
            self.idp = src.read().strip()
        jwks = os.path.join(f.tmp, "jwks.json")
        with open(jwks, "w") as out:
            json.dump(self.idp_call("/jwks"), out)
        os.chmod(jwks, 0o644)
        self.oidc = f'[identity.oidc]\nissuer = "{self.idp}"\nclient_id = "jitgate"\njwks_file = "{jwks}"\n'
        for node in f.nodes:
            node.write_config(tail=self.oidc)

    def start(self):
        print("-- three nodes, each key listed everywhere, the fleet policy")
        self.t.check("every signers entry is NODE:BASE64 of its node",
                     [s.split(":")[0] for s in self.f.signers] == [n.name for n in self.f.nodes]
                     and all(len(base64.b64decode(s.split(":", 1)[1])) == 32 for s in self.f.signers),
                     str(self.f.signers))
        again = self.n["db-1"].print_key()
        self.t.eq("--print-key again prints the same key", again, self.f.signers[0])
        self.f.start_all()
        self.t.check("the nodes register", wait_for(lambda: sorted(self.f.nodes_view()[0]) == sorted(ALL), WAIT_S),
                     str(self.f.nodes_view()[2]))
        for x in ALL:
            self.t.check(f"{x}: no warning about its own key", "not in [fleet] signers" not in self.n[x].daemon_log(),
                         self.n[x].daemon_log())
        rc, pushed, err = self.f.push_policy()
        self.t.check("policy push", rc == 0, f"rc {rc} {pushed} {err}")
        self.version = pushed.get("version")
        policy = self.doc(self.f.prefix + "/policy") or {}
        self.t.check("the policy version in etcd is signed by the node that pushed it",
                     policy.get("signer") == "db-1" and policy.get("sig"), str(policy)[:300])
        self.settle(self.f.prefix + "/policy")

    def forged_grants(self):
        print("-- a real grant's document copied for another principal: old signature, none, an unlisted key")
        real = self.grant("a real grant", "req", "db", "role=db")
        if not real:
            return
        gid = real["grant_id"]
        doc = self.doc(self.key("grants", gid))
        self.t.check("the grant document carries its signer and signature",
                     doc and doc.get("signer") == "db-1" and doc.get("sig"), str(doc)[:300])
        self.expect("the real grant opens its targets", "req", "db", {"db-1": "ok", "db-2": "ok", "web-1": "EPERM"})
        since = self.marks()
        base = dict(doc, user=self.u["other"], on="env=e2e")
        forged = {}
        fid = 900
        old_sig = dict(base, id=fid)
        no_sig = {k: v for k, v in dict(base, id=fid + 1).items() if k not in ("sig", "signer")}
        rogue = self.rogue.sign("grant", dict(base, id=fid + 2), "db-1")
        for ident, d, what in ((fid, old_sig, "its old signature"), (fid + 1, no_sig, "no signature"),
                               (fid + 2, rogue, "an unlisted key under db-1's name")):
            k = self.key("grants", ident)
            self.forge(k, d)
            forged[k] = what
        self.settle(k)
        self.expect("the forged grants open nothing", "other", "db", {x: "EPERM" for x in ALL})
        for k, what in forged.items():
            recs = self.rejected_on(ALL, since, "grant_rejected", k)
            self.t.check(f"with {what}: grant_rejected on every node, naming the signer and why",
                         all(r and r.get("signer") == (None if "no signature" == what else "db-1")
                             and "not applied" in r.get("reason", "") for r in recs.values()), str(recs))
        rows, _, _ = self.f.nodes_view()
        self.t.check("jitgate nodes: every node counts at least 3 rejected documents",
                     all((rows.get(x) or {}).get("rejected", 0) >= 3 for x in ALL), str(rows))
        r = self.n["db-1"].cli("root", "nodes")
        self.t.check("jitgate nodes shows the REJECTED column", r.returncode == 0 and "REJECTED" in r.stdout,
                     r.stdout + r.stderr)
        for k in forged:
            self.f.gw.delete(k)
        self.real = real

    def forged_approval(self):
        print("-- a forged approval does not count toward approvals_required = 2")
        since = self.marks()
        rc, req, err = self.request("db-1", "req", "dual", "role=db", reason="two approvers")
        if not self.t.check("request for dual (two approvals) pending", rc == 0 and req.get("state") == "pending",
                            f"rc {rc} {req} {err}"):
            return
        rid = req["request_id"]
        key = self.key("requests", rid)
        doc = self.doc(key)
        self.t.check("the request carries its origin's signature", doc and doc.get("origin_sig")
                     and doc.get("signer") == "db-1", str(doc)[:300])
        forged = copy.deepcopy(doc)
        forged["approvers"] = [self.u["appr2"]]
        forged["approvals"] = [{"user": self.u["appr2"], "node": "db-2", "sig": doc["sig"]}]
        self.forge(key, forged)
        # The whole document no longer verifies: no node counts anything in it,
        # and no approval can be added to it (a spoiled request is left undecided).
        rc, ans, err = self.n["db-2"].cli_json(self.u["appr"], "approve", str(rid))
        self.t.check("an approval of the spoiled request is refused, nothing decided", rc != 0
                     and ans.get("state") != "granted", f"rc {rc} {ans} {err}")
        self.t.check("no grant document was made for it", not any(
            (json.loads(v) or {}).get("request_id") == rid for v in self.f.gw.prefix(self.f.prefix + "/grants/")[0].values()))
        self.expect("the forged approval opens nothing", "req", "dual", {x: "EPERM" for x in ALL})
        recs = self.rejected_on(DB, since, "grant_rejected", key)
        self.t.check("grant_rejected on each node names the signature that does not verify",
                     all(r and "sig" in r.get("reason", "") for r in recs.values()), str(recs))
        # The genuine document back: two real approvals grant it.
        self.f.gw.put(key, json.dumps(doc))
        rc, ans, err = self.n["db-2"].cli_json(self.u["appr"], "approve", str(rid))
        self.t.check("the genuine request: one real approval leaves it pending (1 of 2)",
                     rc == 0 and ans.get("state") == "pending", f"rc {rc} {ans} {err}")
        rc, ans, err = self.n["web-1"].cli_json(self.u["appr2"], "approve", str(rid), "--wait", "--timeout", "10s")
        self.t.check("the real second approval grants it", rc == 0 and ans.get("state") == "granted",
                     f"rc {rc} {ans} {err}")
        self.expect("now open on its targets", "req", "dual", {"db-1": "ok", "db-2": "ok", "web-1": "EPERM"})
        if ans.get("grant_id"):
            self.n["db-1"].cli_json(self.u["appr"], "revoke", str(ans["grant_id"]), "--wait")

    def forged_policy(self):
        print("-- a forged policy version is not run")
        since = self.marks()
        key = self.f.prefix + "/policy"
        doc = self.doc(key)
        opened = self.f.render().replace(f'approvers = ["{self.u["appr"]}", "{self.u["appr2"]}"]',
                                         f'approvers = ["{self.u["other"]}"]')
        forged = dict(doc, version=doc["version"] + 1, text=opened)
        for what, d in (("its old signature", forged), ("an unlisted key", self.rogue.sign("policy", forged, "db-1"))):
            self.forge(key, d)
            recs = {x: None for x in ALL}

            def seen():
                for x in ALL:
                    recs[x] = recs[x] or next(iter(self.n[x].audit_records(since[x], type="policy_rejected")), None)
                return all(recs.values())
            self.t.check(f"with {what}: policy_rejected on every node", wait_for(seen, WAIT_S), str(recs))
            since = self.marks()
        rows, _, _ = self.f.nodes_view()
        self.t.check("every node still runs the pushed version",
                     all((rows.get(x) or {}).get("policy_version") == self.version for x in ALL), str(rows))
        rc, pushed, err = self.f.push_policy()
        self.t.check("a real push after the forgery is run", rc == 0, f"rc {rc} {pushed} {err}")
        self.version = pushed.get("version")
        self.settle(self.f.prefix + "/policy")

    def removed_signer(self):
        print("-- web-1 removed from the signers of db-1 and db-2 (SIGHUP): its new grants are refused there")
        before = self.grant("granted by web-1 before", "req2", "db", "role=db", via="web-1")
        self.reload(DB, [s for s in self.f.signers if not s.startswith("web-1:")])
        since = self.marks()
        new = self.grant("granted by web-1 after", "req", "db", "role=db", via="web-1", wait=False)
        if new:
            # web-1's ack is signed by a key db-1 no longer lists: db-1 takes
            # nothing from it (an ack says what `--wait` confirms).
            self.settle(self.key("grants", new["grant_id"]), DB)
            rows, _, _ = self.f.nodes_view()
            self.t.eq("db-1 believes no ack of web-1, which it no longer lists",
                      (rows.get("web-1") or {}).get("applied_revision"), 0)
            self.expect("web-1's new grant opens nothing", "req", "db", {x: "EPERM" for x in ALL})
            recs = self.rejected_on(DB, since, "grant_rejected", self.key("grants", new["grant_id"]))
            self.t.check("grant_rejected on db-1 and db-2 naming web-1", all(
                r and r.get("signer") == "web-1" for r in recs.values()), str(recs))
        if before:
            self.expect("the grant web-1 made before keeps working", "req2", "db",
                        {"db-1": "ok", "db-2": "ok", "web-1": "EPERM"})
        self.reload(DB, None)
        for g in (before, new):
            if g:
                self.n["db-1"].cli_json(self.u["appr"], "revoke", str(g["grant_id"]))

    def held_then_untrusted(self):
        print("-- web-1's policy and held grant, then web-1 removed from db-2's signers (SIGHUP)")
        rc, pushed, err = self.f.push_policy(via=self.n["web-1"], text=self.f.render(WEB_DUAL))
        self.t.check("web-1 pushes a version where dual is web-1's only", rc == 0, f"rc {rc} {pushed} {err}")
        web_version = pushed.get("version")
        self.settle(self.f.prefix + "/policy")
        g = self.grant("dual on env=e2e, signed by web-1", "req", "dual", "env=e2e", via="web-1", wait=False)
        if not g:
            return
        gkey = self.key("grants", g["grant_id"])
        self.settle(gkey)
        self.expect("open on web-1 (dual is not protected on db-2 yet)", "req", "dual",
                    {"web-1": "ok", "db-2": "ok"})
        since = self.marks()
        self.reload(["db-2"], [s for s in self.f.signers if not s.startswith("web-1:")])
        db2 = self.n["db-2"]
        recs = []
        self.t.check("db-2: policy_rejected for the version it runs, which web-1 signed",
                     wait_for(lambda: recs.extend(r for r in db2.audit_records(since["db-2"], type="policy_rejected")
                                                  if r.get("version") == web_version) or recs, WAIT_S),
                     str(db2.audit_records(since["db-2"])[-5:]))
        rc, ans, err = self.request("db-2", "req", "db", "db-2", reason="under an untrusted policy")
        self.t.check("db-2 decides nothing new under it: a request there is refused",
                     rc != 0 and "not signed by a key" in err + json.dumps(ans), f"rc {rc} {ans} {err}")
        rc, ans, err = db2.cli_json(self.u["req"], "extend", str(g["grant_id"]), "--for", "5m")
        self.t.check("... nor an extension (its auto_approve rules may be anyone's)",
                     rc != 0 and "not signed by a key" in err + json.dumps(ans), f"rc {rc} {ans} {err}")
        recs = self.rejected_on(["db-2"], since, "grant_rejected", gkey)
        self.t.check("db-2 verified the held grant again: grant_rejected naming web-1",
                     recs["db-2"] and recs["db-2"].get("signer") == "web-1", str(recs))
        rc, pushed, err = self.f.push_policy()  # db-1's: dual protected on every node again
        self.t.check("db-1 pushes a version where dual is every node's", rc == 0, f"rc {rc} {pushed} {err}")
        self.version = pushed.get("version")
        self.settle(self.f.prefix + "/policy")
        rows, _, _ = self.f.nodes_view()
        self.t.eq("db-2 runs db-1's version", (rows.get("db-2") or {}).get("policy_version"), self.version)
        self.expect("web-1's held grant is not applied on db-2 (db-1, which lists web-1, applies it)", "req",
                    "dual", {"db-1": "ok", "db-2": "EPERM"})
        rc, ans, err = self.request("db-2", "req2", "db", "db-2", reason="trusted again")
        self.t.check("db-2 decides again under db-1's version", rc == 0, f"rc {rc} {ans} {err}")
        self.reload(["db-2"], None)
        self.n["db-1"].cli_json(self.u["appr"], "revoke", str(g["grant_id"]))
        if rc == 0:
            self.n["db-1"].cli_json(self.u["appr"], "deny", str(ans["request_id"]))

    def forged_ack(self):
        print("-- forged acks: nobody takes an applied revision from one; one nested too deep crashes nobody")
        g = self.grant("confirmed by real acks only", "req", "db", "role=db")
        if not g:
            return
        key = f"{self.f.prefix}/acks/db-2"
        lie = {"node": "db-2", "labels": {"role": "db", "env": "e2e"}, "applied_revision": 2**53 - 1,
               "time_us": int(time.time() * 1e6)}
        db2 = self.n["db-2"]
        db2.daemon.send_signal(signal.SIGSTOP)  # db-2 applies nothing meanwhile
        try:
            self.f.gw.put(key, json.dumps(lie).encode())
            rc, ans, err = self.n["db-1"].cli_json(self.u["appr"], "revoke", str(g["grant_id"]), "--wait",
                                                   "--timeout", "3s")
            states = {x.get("node"): x.get("state") for x in (ans.get("nodes") or [])}
            self.t.check("revoke --wait does not take db-2's forged ack: exit 5, db-2 pending",
                         rc == 5 and states.get("db-2") == "pending" and states.get("db-1") == "applied",
                         f"rc {rc} {ans} {err}")
        finally:
            db2.daemon.send_signal(signal.SIGCONT)
        self.settle(self.key("grants", g["grant_id"]), DB)
        real = self.f.gw.get(key)
        deep = json.dumps(lie)[:-1] + ', "audit_head": ' + "[" * 300000 + "]" * 300000 + "}"
        self.f.gw.put(key, deep.encode())
        time.sleep(2)  # the watch brings it to db-2 (its own ack) and db-1
        self.t.check("an ack nested 300000 deep: db-2 and db-1 keep running",
                     db2.daemon.poll() is None and self.n["db-1"].daemon.poll() is None,
                     db2.daemon_log(2000))
        # db-2 may have written its own ack over it meanwhile (its real revision then): never the forged one.
        rows, _, _ = self.f.nodes_view()
        self.t.check("jitgate nodes takes no applied revision from it",
                     (rows.get("db-2") or {}).get("applied_revision") != lie["applied_revision"],
                     str(rows.get("db-2")))
        self.f.gw.put(key, real)

    def spoiled_revoke(self):
        print("-- an applied grant's signature broken in etcd; jitgate revoke still ends it everywhere")
        g = self.grant("to be spoiled", "req", "db", "role=db")
        if not g:
            return
        gid = g["grant_id"]
        key = self.key("grants", gid)
        doc = self.doc(key)
        sig = doc["sig"]
        self.forge(key, dict(doc, sig=sig[:10] + ("A" if sig[10] != "A" else "B") + sig[11:]))
        self.settle(key)
        self.expect("the spoiled grant keeps its deadline where it was applied", "req", "db",
                    {"db-1": "ok", "db-2": "ok", "web-1": "EPERM"})
        since = self.marks()
        rc, ans, err = self.n["db-1"].cli_json(self.u["appr"], "revoke", str(gid), "--wait", "--timeout", "10s")
        self.t.check("jitgate revoke --wait of it: exit 0, every target applied it",
                     rc == 0 and {n.get("node"): n.get("state") for n in ans.get("nodes", [])}
                     == {x: "applied" for x in DB}, f"rc {rc} {ans} {err}")
        self.expect("ended on every node", "req", "db", {x: "EPERM" for x in ALL})
        after = self.doc(key) or {}
        self.t.check("etcd holds the revocation, signed by db-1", after.get("state") == "revoked"
                     and after.get("signer") == "db-1" and after.get("sig") != doc["sig"], str(after)[:300])
        for x in DB:
            recs = [r for r in self.n[x].audit_records(since[x], type="revoke_applied")
                    if str(r.get("grant_id")) == str(gid)]
            self.t.check(f"{x}: revoke_applied", bool(recs), str(recs))

    def replayed(self):
        print("-- older signed versions written back: a grant db-2 saw end, a request decided")
        db2 = self.n["db-2"]
        db2.stop()
        g, key, active, revoked = {}, None, None, None
        try:
            g = self.grant("ended while db-2 was down", "req", "db", "role=db", wait=False)
            if g:
                key = self.key("grants", g["grant_id"])
                active = self.f.gw.get(key)
                rc, ans, err = self.n["db-1"].cli_json(self.u["appr"], "revoke", str(g["grant_id"]))
                self.t.check("revoked while db-2 is down", rc == 0, f"rc {rc} {ans} {err}")
                revoked = self.f.gw.get(key)
        finally:
            db2.start()
        if not g:
            return
        self.settle(key)
        since = self.marks()
        self.forge(key, active)  # the old version, validly signed by db-1
        self.settle(key)
        self.expect("the old active version opens nothing", "req", "db", {x: "EPERM" for x in ALL})
        recs = self.rejected_on(["db-2"], since, "grant_rejected", key)
        self.t.check("db-2 (which saw only its end) refuses it as an older version",
                     recs["db-2"] and "older version" in recs["db-2"].get("reason", ""), str(recs))
        # No node decides on it either: an extension would sign it active again.
        rc, ans, err = self.n["db-1"].cli_json(self.u["req"], "extend", str(g["grant_id"]), "--for", "5m")
        self.t.check("extending the old active version is refused: the grant has ended",
                     rc != 0 and "has ended" in err + json.dumps(ans), f"rc {rc} {ans} {err}")
        self.f.gw.put(key, revoked)
        self.settle(key)
        # Its key deleted first, then the old version written back: still an ended grant.
        since = self.marks()
        self.f.gw.delete(key)  # each node's watch brings the delete before the put below
        self.forge(key, active)
        self.settle(key)
        self.expect("after a delete, the old active version opens nothing", "req", "db", {x: "EPERM" for x in ALL})
        recs = self.rejected_on(DB, since, "grant_rejected", key)
        self.t.check("db-1 and db-2 remember its end through the delete and refuse it",
                     all(recs[x] and "saw end" in recs[x].get("reason", "") for x in DB), str(recs))
        self.f.gw.put(key, revoked)
        # A request: its pending version put back after it was granted.
        rc, req, err = self.request("db-1", "req2", "db", "role=db", reason="to be replayed")
        if not self.t.check("a request pending", rc == 0, f"rc {rc} {req} {err}"):
            return
        rid = req["request_id"]
        rkey = self.key("requests", rid)
        pending = self.f.gw.get(rkey)
        rc, ans, err = self.n["db-1"].cli_json(self.u["appr"], "approve", str(rid))
        self.t.check("granted", rc == 0 and ans.get("state") == "granted", f"rc {rc} {ans} {err}")
        granted = self.f.gw.get(rkey)
        since = self.marks()
        self.forge(rkey, pending)
        recs = self.rejected_on(["db-1"], since, "grant_rejected", rkey)
        self.t.check("db-1 refuses the request's old pending version",
                     recs["db-1"] and "older version" in recs["db-1"].get("reason", ""), str(recs))
        rc, again, err = self.n["db-1"].cli_json(self.u["appr2"], "approve", str(rid))
        grants = [v for v in self.f.gw.prefix(self.f.prefix + "/grants/")[0].values()
                  if (json.loads(v) or {}).get("request_id") == rid]
        self.t.check("it cannot be approved a second time: refused, one grant", rc != 0 and len(grants) == 1,
                     f"rc {rc} {again} {err} grants {len(grants)}")
        self.f.gw.put(rkey, granted)
        if ans.get("grant_id"):
            self.n["db-1"].cli_json(self.u["appr"], "revoke", str(ans["grant_id"]))

    def restart_forged(self):
        print("-- a document rewritten while db-2 was down: its restart checks it again (fleet/verified.h)")
        real = self.grant("held across a restart", "req", "db", "role=db")
        if not real:
            return
        key = self.key("grants", real["grant_id"])
        self.settle(key)
        db2 = self.n["db-2"]
        time.sleep(1.5)  # a tick: db-2 keeps its checks in its state database
        db2.stop()
        since = self.marks()
        try:
            # For another principal, with the real document's signature.
            self.forge(key, dict(self.doc(key), user=self.u["other"]))
        finally:
            db2.start()
        self.settle(key)
        self.expect("the rewritten document opens nothing for its new principal", "other", "db",
                    {x: "EPERM" for x in ALL})
        recs = self.rejected_on(["db-2"], since, "grant_rejected", key)
        self.t.check("db-2, started again, refuses it: its signature does not verify",
                     recs["db-2"] and "does not verify" in recs["db-2"].get("reason", ""), str(recs))
        # The first full read of its restart: only what changed was checked
        # (the rewritten document; another if a tick had not kept it yet).
        log = db2.daemon_log()
        reads = re.findall(r"full read at revision \d+: \d+ keys applied in \d+ ms \((\d+) grant signatures "
                           r"checked, (\d+) spared by earlier checks\)", log[log.rfind("enforcing "):])
        self.t.check("db-2's restart checked the rewritten document and spared the others",
                     bool(reads) and 1 <= int(reads[0][0]) <= 3 and int(reads[0][1]) >= 3, str(reads[:2]))
        self.n["db-1"].cli_json(self.u["appr"], "revoke", str(real["grant_id"]), "--wait")

    def deleted_grant(self):
        print("-- a grant key deleted with no signed revocation ends the grant")
        g = self.grant("to be deleted", "req", "db", "role=db")
        if not g:
            return
        since = self.marks()
        self.f.gw.delete(self.key("grants", g["grant_id"]))
        ok = wait_for(lambda: self.connects("req", "db", DB) == {"db-1": "EPERM", "db-2": "EPERM"}, WAIT_S)
        self.t.check("ended on both targets", ok, str(self.connects("req", "db", DB)))
        for x in DB:
            recs = [r for r in self.n[x].audit_records(since[x], type="revoke_applied")
                    if str(r.get("grant_id")) == str(g["grant_id"])]
            self.t.check(f"{x}: revoke_applied saying no signed revocation was found",
                         recs and "without a signed revocation" in recs[-1].get("reason", ""), str(recs))

    def token_groups(self):
        print("-- two approvals through an ID token's groups, on two nodes (approvals_required = 2)")
        if not self.idp:
            self.t.check("the test IdP serves", False)
            return
        since = self.marks()
        rc, req, err = self.request("db-1", "req", "sso", "db-1", reason="through the IdP's groups")
        if not self.t.check("request for sso pending", rc == 0 and req.get("state") == "pending",
                            f"rc {rc} {req} {err}"):
            return
        rid = req["request_id"]
        r = self.approve_with_token("db-1", "appr", rid)
        self.t.check("appr's token (group only in the IdP) approves on db-1: 1 of 2",
                     r.get("ok") and r["result"].get("state") == "pending", r)
        doc = self.doc(self.key("requests", rid)) or {}
        approvals = doc.get("approvals") or [{}]
        self.t.check("etcd holds the group the token gave inside appr's approval, signed on db-1",
                     approvals[0].get("groups") == [self.sso_group] and approvals[0].get("node") == "db-1"
                     and approvals[0].get("sig") and "approver_token_groups" not in doc, str(doc)[:600])
        r = self.approve_with_token("db-2", "appr2", rid)
        self.t.check("appr2's token approves on db-2: the first approval still counts, granted",
                     r.get("ok") and r["result"].get("state") == "granted" and r["result"].get("grant_id"), r)
        lapsed = self.n["db-2"].audit_records(since["db-2"], type="approval_lapsed")
        self.t.check("db-2 let no approval lapse", not lapsed, str(lapsed))
        self.t.check("the grant is applied on db-1", wait_for(
            lambda: self.n["db-1"].connect(self.u["req"], self.p["sso"]) == "ok", WAIT_S))
        self.expect("and only there", "req", "sso", {"db-2": "EPERM", "web-1": "EPERM"})
        gid = (r.get("result") or {}).get("grant_id")
        if gid:
            self.n["db-1"].cli_json(self.u["appr"], "revoke", str(gid), "--wait")

    def finish(self):
        print("-- the end: daemons alive, audit chains")
        for x in ALL:
            node = self.n[x]
            self.t.check(f"{x}: jitgated still runs", node.running(), node.daemon_log())
            self.t.eq(f"{x}: audit chain verifies", verify_chain(node.audit_records()), None)


def main():
    started = time.monotonic()
    fleet = Fleet(sys.argv[1], POLICY, PORT_NAMES)
    set_up = time.monotonic()
    t = Results()
    try:
        s = Suite(fleet, t)
        for step in (s.identity, s.start, s.forged_grants, s.forged_approval, s.token_groups, s.forged_policy,
                     s.removed_signer,
                     s.held_then_untrusted, s.forged_ack, s.spoiled_revoke, s.replayed, s.restart_forged, s.deleted_grant,
                     s.finish):
            t0 = time.monotonic()
            step()
            print(f"   ({step.__name__}: {time.monotonic() - t0:.1f} s)")
    except Exception as e:  # a crash in the test is a failure, with context
        logs = "\n".join(f"--- {n.name}\n{n.daemon_log(2000)}" for n in fleet.nodes)
        t.check("suite ran to the end", False, f"{type(e).__name__}: {e}\n{logs}")
    finally:
        if t.failed:
            for n in fleet.nodes:
                print(f"--- {n.name}'s log (tail)\n{n.daemon_log(3000)}")
        fleet.cleanup()
    print(f"e2e_fleet_trust: {time.monotonic() - started:.0f} s ({set_up - started:.0f} s to set the fleet up)")
    sys.exit(t.finish())


if __name__ == "__main__":
    main()
