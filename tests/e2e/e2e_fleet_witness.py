#!/usr/bin/python3
"""End to end, the witnessed audit (issue 20, design.md §7.3): two jitgated
nodes of one fleet on a private etcd (fleet_harness.py), each with its node key
(jitgated --print-key, before the first start) listed in both nodes' [fleet] signers.  Cases, in order:

  - each node's ack carries its audit head (seq, hash) signed by its key and
    the head its log had at start (audit_open); its history of heads is kept
    under P/heads/NODE/<20-digit seq>; the head catches up with the log;
  - `audit verify` on a node checks its log against the heads it published;
    `audit verify --fleet` (root; refused to others, exit 3) finds both nodes
    consistent, each checked with its signers key;
  - forged heads written into etcd by the test (db-2 paused so that it writes
    nothing meanwhile): a history entry with a bad signature, and an older
    signed head put back into the ack (going backwards): each named by
    --fleet with the node, exit 1; once removed, --fleet is clean again;
  - forged entries in db-2's history (not signed by its key): 70 at seqs
    far above its log's do not make it prune its own heads away; 40 at the
    seqs its next heads take are recorded as head_rejected, never as
    tamper_detected (an etcd writer cannot raise false alarms);
  - db-2 taken out of db-1's signers (SIGHUP): --fleet on db-1 no longer
    checks db-2's heads with the key in its registration (anyone's).
  - db-1 stopped (its last head published at stop), its log cut by the last
    two records and its local head file fixed so that the local chain alone
    verifies; restarted: `audit verify` on db-1 names the cut against the
    head it had published (exit 1), and `audit verify --fleet` names db-1.

usage: e2e_fleet_witness.py BUILD_DIR
"""
import base64
import json
import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleet_harness import Fleet  # noqa: E402
from harness import Results, wait_for  # noqa: E402

NODES = (("db-1", {"role": "db"}), ("db-2", {"role": "db"}))
PORT_NAMES = ("db",)
POLICY = """
[[port]]
name = "db"
port = {db}
proto = "tcp"
max_duration = "10m"
approvers = ["{appr}"]
"""
USERS = ("req", "appr")
WAIT_S = 15  # generous bound on a loaded machine (a head is published every few seconds)


class Suite:
    def __init__(self, fleet, t):
        self.f = fleet
        self.t = t
        self.gw = fleet.gw
        self.n = {n.name: n for n in fleet.nodes}

    def ack(self, name):
        raw = self.gw.get(f"{self.f.prefix}/acks/{name}")
        try:
            return json.loads(raw) if raw else {}
        except ValueError:
            return {}

    def history(self, name):
        """{seq: head} of the node's history in etcd."""
        kvs, _ = self.gw.prefix(f"{self.f.prefix}/heads/{name}/")
        return {int(k.rsplit("/", 1)[1]): json.loads(v) for k, v in kvs.items()}

    def fleet_check(self, via, user="root"):
        r = self.n[via].cli(user, "--json", "audit", "verify", "--fleet")
        try:
            out = json.loads(r.stdout)
        except ValueError:
            out = {}
        return r.returncode, out, r.stdout + r.stderr

    def fleet_text(self, via):
        r = self.n[via].cli("root", "audit", "verify", "--fleet")
        return r.stdout + r.stderr

    def caught_up(self, name):
        """Waits until the node's published head is its log's last record."""
        node = self.n[name]
        return wait_for(lambda: (self.ack(name).get("audit_head") or {}).get("seq") == node.audit_mark() > 0,
                        WAIT_S)

    def make_records(self, name, count):
        """Records on every node: each policy version pushed is adopted (policy_reload) by each."""
        for _ in range(count):
            rc, out, err = self.f.push_policy(via=self.n[name])
            self.t.check(f"policy pushed on {name}", rc == 0, f"rc {rc} {out} {err}")

    # --- the cases -------------------------------------------------------
    def start(self):
        print("-- two nodes with their keys in signers; heads published")
        # The harness made each node's key (jitgated --print-key) and listed them all.
        self.f.start_all()
        self.make_records("db-1", 2)
        self.make_records("db-2", 1)
        for name in self.n:
            self.t.check(f"{name}: the published head catches up with the log", self.caught_up(name),
                         f"ack {self.ack(name)} log at {self.n[name].audit_mark()}")
            ack = self.ack(name)
            head, opened = ack.get("audit_head") or {}, ack.get("audit_open") or {}
            self.t.check(f"{name}: the ack's head is signed and names the node",
                         head.get("node") == name and re.fullmatch(r"[0-9a-f]{64}", head.get("hash", "")) is not None
                         and len(base64.b64decode(head.get("sig", ""))) == 64, str(head))
            self.t.check(f"{name}: the ack carries the head the log had at start", opened.get("node") == name
                         and isinstance(opened.get("seq"), int) and opened.get("sig"), str(opened))
            hist = self.history(name)
            self.t.check(f"{name}: heads/{name}/<seq> holds the published heads",
                         hist and all(h.get("seq") == s and h.get("node") == name for s, h in hist.items()),
                         str(hist))

    def verify_clean(self):
        print("-- audit verify against the published heads; --fleet")
        r = self.n["db-1"].cli("root", "audit", "verify")
        self.t.check("audit verify on db-1: intact, checked against the heads it published",
                     r.returncode == 0 and "published to the fleet" in r.stdout, r.stdout + r.stderr)
        rc, out, text = self.fleet_check("db-2")
        nodes = {n.get("node"): n for n in out.get("nodes", [])}
        self.t.check("audit verify --fleet: exit 0, both nodes ok with their signers key",
                     rc == 0 and out.get("ok") is True and sorted(nodes) == ["db-1", "db-2"]
                     and all(n.get("ok") and n.get("key") == "signers" for n in nodes.values()), text)
        rc, _, text = self.fleet_check("db-2", user=self.f.user["req"])
        self.t.eq("audit verify --fleet as a user: refused (exit 3)", rc, 3)

    def forged(self):
        print("-- forged heads in etcd are named by --fleet")
        db2 = self.n["db-2"]
        self.make_records("db-2", 2)
        self.t.check("db-2: caught up again", self.caught_up("db-2"), str(self.ack("db-2")))
        db2.pause()  # writes nothing while its keys are forged
        try:
            ack_raw = self.gw.get(f"{self.f.prefix}/acks/db-2")
            ack = json.loads(ack_raw)
            head = ack["audit_head"]
            bad = dict(head, seq=head["seq"] + 1000, hash="f" * 64)  # its signature is the real head's
            bad_key = f"{self.f.prefix}/heads/db-2/{bad['seq']:020d}"
            self.gw.put(bad_key, json.dumps(bad))
            rc, out, text = self.fleet_check("db-1")
            d2 = next((n for n in out.get("nodes", []) if n.get("node") == "db-2"), {})
            # Judged by nothing (it can neither hide nor invent a cut): noted, not a failure,
            # so that heads signed by a key since rotated out raise no alarm either.
            self.t.check("a history entry with a bad signature: noted for db-2 as signed by no listed key, "
                         "exit 0", rc == 0 and d2.get("ok") and d2.get("unverified_count") == 1
                         and any("forged" in p for p in d2.get("unverified", [])) and "db-2" in text
                         and "signed by no listed key" in self.fleet_text("db-1"), text)
            self.gw.delete(bad_key)
            older = [h for s, h in sorted(self.history("db-2").items()) if s < head["seq"]]
            if self.t.check("db-2 has published an older head", bool(older), str(self.history("db-2"))):
                self.gw.put(f"{self.f.prefix}/acks/db-2", json.dumps(dict(ack, audit_head=older[0])))
                rc, out, text = self.fleet_check("db-1")
                d2 = next((n for n in out.get("nodes", []) if n.get("node") == "db-2"), {})
                self.t.check("an older signed head put back into the ack: exit 1, db-2 went backwards",
                             rc == 1 and any("went backwards" in p for p in d2.get("problems", [])), text)
            self.gw.put(f"{self.f.prefix}/acks/db-2", ack_raw)
            rc, out, text = self.fleet_check("db-1")
            self.t.check("the forgeries removed: --fleet is clean again", rc == 0 and out.get("ok") is True, text)
        finally:
            db2.resume()

    def forged_history(self):
        print("-- entries in db-2's history it did not sign: pruning and tamper_detected judge only its own")
        db2 = self.n["db-2"]
        self.t.check("db-2: caught up", self.caught_up("db-2"), str(self.ack("db-2")))
        head = self.ack("db-2")["audit_head"]
        prefix = f"{self.f.prefix}/heads/db-2/"
        forged = []

        def forge(seq):
            k = f"{prefix}{seq:020d}"
            self.gw.put(k, json.dumps(dict(head, seq=seq, hash="e" * 64)))  # the real head's signature
            forged.append(k)
        try:
            for seq in range(10 ** 12, 10 ** 12 + 70):  # more than the 64 kept, all above its log
                forge(seq)
            self.make_records("db-2", 2)
            self.t.check("db-2: caught up after the high forged seqs", self.caught_up("db-2"), str(self.ack("db-2")))
            def own():
                return [s for s, h in self.history("db-2").items() if h.get("hash") != "e" * 64]
            top = self.ack("db-2")["audit_head"]["seq"]
            # The history is pruned right after each head is written: within 5 s its own would be gone.
            gone = wait_for(lambda: top not in own(), 5)
            self.t.check("db-2 kept its own heads (only they are counted and pruned)",
                         not gone and top in own(), f"{sorted(own())} top {top}")
            mark = db2.audit_mark()
            for seq in range(mark + 1, mark + 41):  # where its next heads go
                forge(seq)
            self.make_records("db-2", 2)
            self.t.check("db-2: caught up over the forged seqs", self.caught_up("db-2"), str(self.ack("db-2")))
            top = db2.audit_mark()
            self.t.check("... its head is within them", mark < top <= mark + 40, f"{mark} {top}")
            # Taken from the writer at the node's next look at its head: a moment later.
            wait_for(lambda: db2.audit_records(mark, type="head_rejected"), WAIT_S)
            recs = db2.audit_records(mark, type="head_rejected")
            self.t.check("db-2: head_rejected naming a forged entry", recs and recs[0].get("key") in forged, str(recs))
            self.t.eq("db-2: no tamper_detected", db2.audit_records(mark, type="tamper_detected"), [])
            rc, out, text = self.fleet_check("db-1")
            d2 = next((n for n in out.get("nodes", []) if n.get("node") == "db-2"), {})
            self.t.check("--fleet notes the entries for db-2 as signed by no listed key (exit 0)",
                         rc == 0 and d2.get("unverified_count") == len(forged)
                         and any("forged" in p for p in d2.get("unverified", [])), text)
        finally:
            for k in forged:
                self.gw.delete(k)
        rc, out, text = self.fleet_check("db-1")
        self.t.check("the forged entries removed: --fleet is clean again", rc == 0 and out.get("ok") is True, text)

    def reload(self, name, signers):
        node = self.n[name]
        done = node.daemon_log(1 << 20).count(f"policy reloaded from {node.config}")
        node.signers = signers
        node.write_config()
        node.daemon.send_signal(signal.SIGHUP)
        self.t.check(f"{name} reloaded its file", wait_for(
            lambda: node.daemon_log(1 << 20).count(f"policy reloaded from {node.config}") > done, WAIT_S),
            node.daemon_log())

    def registration_key(self):
        print("-- a node not in signers: its registration's key is not trusted for its heads")
        self.reload("db-1", [s for s in self.f.signers if not s.startswith("db-2:")])
        try:
            rc, out, text = self.fleet_check("db-1")
            d2 = next((n for n in out.get("nodes", []) if n.get("node") == "db-2"), {})
            self.t.check("--fleet on db-1: db-2's heads are not checked with its registration's key (exit 1)",
                         rc == 1 and d2.get("key") is None and not d2.get("ok")
                         and any("signers" in p for p in d2.get("problems", [])), text)
        finally:
            self.reload("db-1", None)
        rc, out, text = self.fleet_check("db-1")
        self.t.check("db-2 listed again: --fleet is clean", rc == 0 and out.get("ok") is True, text)

    def cut(self):
        print("-- db-1's log cut by two records, its head file fixed")
        db1 = self.n["db-1"]
        self.make_records("db-1", 2)
        self.t.check("db-1: caught up before the stop", self.caught_up("db-1"), str(self.ack("db-1")))
        db1.stop()
        last = db1.audit_mark()
        head = self.ack("db-1").get("audit_head") or {}
        self.t.eq("db-1: its last head (daemon_stop) was published at stop", head.get("seq"), last)
        with open(db1.audit) as f:
            lines = f.readlines()
        kept = lines[:-2]
        with open(db1.audit, "w") as f:
            f.writelines(kept)
        rec = json.loads(kept[-1])
        hp = os.path.join(db1.state, "audit.head")
        with open(hp) as f:
            lost = re.search(r"lost=(\d+)", f.read()).group(1)
        with open(hp, "w") as f:
            f.write(f"jitgate-audit-head 1 seq={rec['seq']:020d} hash={rec['hash']} prev={rec['prev_hash']} "
                    f"lost={lost} closed=1 first={rec['seq']:020d}\n")
        r = subprocess.run([self.f.jitgate, "--socket", db1.sock, "audit", "verify", db1.audit], text=True,
                           capture_output=True, timeout=60)
        self.t.check("the cut log alone verifies (the cut is invisible locally)", r.returncode == 0,
                     r.stdout + r.stderr)
        restarted_us = int(time.time() * 1e6)
        db1.start()

        def local_named():
            r = db1.cli("root", "audit", "verify")
            local_named.out = r.stdout + r.stderr
            return r.returncode == 1 and "to the fleet" in r.stdout
        local_named.out = ""
        self.t.check("audit verify on db-1 names the cut against the head it published (exit 1)",
                     wait_for(local_named, WAIT_S), local_named.out)
        # The first seq it published that the log no longer holds as published.
        self.t.check(f"... naming seq {last - 1} or {last}",
                     f"seq {last - 1}" in local_named.out or f"seq {last}" in local_named.out, local_named.out)
        new_ack = wait_for(lambda: (self.ack("db-1").get("audit_open") or {}).get("time_us", 0) >= restarted_us,
                           WAIT_S)
        self.t.check("db-1's new ack is published", new_ack, str(self.ack("db-1")))
        rc, out, text = self.fleet_check("db-2")
        nodes = {n.get("node"): n for n in out.get("nodes", [])}
        self.t.check("audit verify --fleet names db-1 (exit 1), db-2 stays ok",
                     rc == 1 and not nodes.get("db-1", {}).get("ok", True) and nodes.get("db-2", {}).get("ok"),
                     text)
        self.t.check("... its log was cut", any("cut" in p for p in nodes.get("db-1", {}).get("problems", [])),
                     text)


def main():
    started = time.monotonic()
    fleet = Fleet(sys.argv[1], POLICY, PORT_NAMES, users=USERS, nodes=NODES)
    t = Results()
    try:
        s = Suite(fleet, t)
        s.start()
        s.verify_clean()
        s.forged()
        s.forged_history()
        s.registration_key()
        s.cut()
        for n in fleet.nodes:
            t.check(f"{n.name}: jitgated still runs", n.running(), n.daemon_log())
    except Exception as e:  # a crash in the test is a failure, with context
        logs = "\n".join(f"--- {n.name}\n{n.daemon_log(2000)}" for n in fleet.nodes)
        t.check("suite ran to the end", False, f"{type(e).__name__}: {e}\n{logs}")
    finally:
        if t.failed:
            for n in fleet.nodes:
                print(f"--- {n.name}'s log (tail)\n{n.daemon_log(3000)}")
        fleet.cleanup()
    print(f"e2e_fleet_witness: {time.monotonic() - started:.0f} s")
    sys.exit(t.finish())


if __name__ == "__main__":
    main()
