#!/usr/bin/python3
"""End to end, the audit stream: the kernel's deny rate limit, loss made
visible with a deliberately tiny ring, the hash chain across restarts and
rotation, tampering caught by `jitgate audit verify`, and `jitgate audit
--follow` (latency, filters, who sees what).  Real daemon, real users, a
private netns and child cgroup (harness.py).

usage: e2e_audit.py BUILD_DIR
"""
import hashlib
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import PY, canonical, run_suite, sh, verify_chain, wait_for  # noqa: E402

POLICY = """
[daemon]
auditors = ["@{group}"]

[[port]]
name = "db"
port = {port}
proto = "both"
max_duration = "10m"
approvers = ["{appr}"]

[[port]]
name = "admin"
port = {port2}
proto = "tcp"
max_duration = "5m"
approvers = ["{appr}"]
"""

# The smallest ring the kernel makes (one page): about 39 events.
RING_BYTES = 4096

# Run as a test user: follows its own records, shuts its read side, then
# makes a record of its own (a denied connect) for the daemon to send.
SHUT_FOLLOWER = r"""
import json, socket, subprocess, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
s.sendall(json.dumps({"id": 9, "op": "audit", "args": {"follow": True}}).encode() + b"\n")
buf = b""
while b'"result"' not in buf:
    buf += s.recv(65536)
s.shutdown(socket.SHUT_RD)
subprocess.run([sys.argv[2], sys.argv[3], "connect", "tcp", "127.0.0.1", sys.argv[4]], capture_output=True)
time.sleep(1.5)
print("followed")
"""


# Run as root in the test cgroup: one denied connect from each of N uids
# (FIRST..FIRST+N-1, no account needed), each a principal of its own, so
# each denial is a record of its own: more records than a tiny ring holds.
UID_STORM = r"""
import os, socket, sys
port, first, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
refused = 0
for uid in range(first, first + n):
    pid = os.fork()
    if pid == 0:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
        s = socket.socket()
        s.settimeout(2)
        try:
            s.connect(("127.0.0.1", port))
            os._exit(1)
        except PermissionError:
            os._exit(0)
        except OSError:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    refused += os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
print(refused)
"""


def grant(env, user, port, dur="10m"):
    """A tcp grant for `user`: its grant_id, or None."""
    g = env.grant(user, f"{port}/tcp", dur, reason="audit e2e")
    return g.answer.get("grant_id") if g.rc == 0 else None


def allowed(recs):
    """How many new flows allow records stand for (each: its count)."""
    return sum(r.get("count", 0) for r in recs)


def denials(recs):
    """How many denials deny records stand for (each: itself + suppressed)."""
    return sum(1 + r.get("suppressed", 0) for r in recs)


def closes(rec):
    """The denials a closing record says it closes ("the last N denials ...")."""
    words = rec.get("reason", "").split()
    return int(words[2]) if len(words) > 2 and words[:2] == ["the", "last"] and words[2].isdigit() else None


def json_lines(text):
    return [json.loads(line) for line in text.splitlines() if line.strip()]


class Follower:
    """`jitgate audit --follow ...` running as `user`; lines stamped as they
    arrive, by a thread of their own: read only after a probe had exited, a
    line would carry the probe's exit and reaping in its latency."""

    def __init__(self, env, user, *args):
        argv = env.user_argv(user, [env.jitgate, "--socket", env.sock, "audit", "--follow"] + list(args))
        self.p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        env.procs.append(self.p)
        self.arrived = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        buf = b""
        while True:
            try:
                chunk = os.read(self.p.stdout.fileno(), 65536)
            except (OSError, ValueError):
                break
            if not chunk:
                break
            now = time.time()
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                self.arrived.put((now, line.decode(errors="replace")))

    def lines(self, seconds):
        """Lines that arrived so far or arrive within `seconds`, each with its arrival time."""
        out, end = [], time.time() + seconds
        while True:
            try:
                out.append(self.arrived.get(timeout=max(0.0, end - time.time())))
            except queue.Empty:
                break
        return out

    def lines_until(self, pred, seconds):
        """Lines that arrived so far or arrive until pred(lines) holds, for at
        most `seconds`: a positive check waits as long as a loaded machine may
        need and no longer than the record takes."""
        out, end = [], time.time() + seconds
        while not pred(out):
            try:
                out.append(self.arrived.get(timeout=max(0.0, end - time.time())))
            except queue.Empty:
                break
        return out

    def stop(self):
        try:
            os.killpg(self.p.pid, signal.SIGTERM)
            self.p.wait(timeout=5)
        except Exception:
            pass
        return self.p.returncode


def followers(env):
    return env.status()[1].get("audit", {}).get("followers", 0)


def verify(env, *files):
    return env.cli_json("root", "audit", "verify", *files)


def run(env, t):
    P, P2 = env.port, env.port2
    env.extra_daemon_args = ["--ring-buffer-bytes", str(RING_BYTES)]
    env.start_daemon()

    print("-- a flood of denied connects: decisions unchanged, records rate-limited, totals exact")
    before = env.counters()
    out = env.probe(env.req, "flood", "tcp", "127.0.0.1", P, 3)
    outcome = dict(kv.split(":") for kv in out.split())
    attempts = sum(int(v) for v in outcome.values())
    t.check("every connect of the flood was refused (EPERM)", set(outcome) == {"EPERM"} and attempts > 300,
            out)
    # The last window's denials are reported by the daemon's closing record
    # once the user has been quiet for a window.
    def flood_records():
        return env.audit_records(type="deny", user=env.req, port=P)
    wait_for(lambda: denials(flood_records()) >= attempts, 6)
    recs = flood_records()
    total = denials(recs)
    after = env.counters()
    print(f"     {attempts} denied connects in 3 s -> {len(recs)} deny records")
    t.eq("deny records plus their suppressed counts equal the denials", total, attempts)
    if total != attempts:
        print("     ", [(r["seq"], r.get("suppressed"), r.get("reason", "")[:10]) for r in recs])
    t.eq("the kernel's deny counter counted every denial", after["deny"] - before["deny"], attempts)
    t.check("at most about one record per second (3 s flood)", 2 <= len(recs) <= 6, str(len(recs)))
    t.check("records carry uid, user, pid, comm, cgroup_id, dst, port, proto, hook",
            recs and all(k in recs[0] for k in ("uid", "user", "pid", "comm", "cgroup_id", "dst", "port",
                                                  "proto", "hook")), str(recs[:1]))
    # Whether the flood ends with a closing record depends on where its last
    # denial fell in a one-second window (it may have opened a window and been
    # recorded at once, leaving nothing to close): not asserted.  What holds is
    # the sums above, and what every closing record says of itself.
    closing = [r for r in recs if "reason" in r]
    t.check("closing records of the flood: this user's connect4 denials, each standing for the count it names",
            all(r.get("hook") == "connect4" and r.get("user") == env.req and
                closes(r) == 1 + r.get("suppressed", 0) for r in closing), str(closing))
    out = env.probe(env.other, "flood", "udp", "127.0.0.1", P, 1)
    t.check("a second user's UDP flood is refused too", out.startswith("EPERM:") and " " not in out, out)
    refused = int(out.split(":")[1])
    wait_for(lambda: denials(env.audit_records(type="deny", user=env.other)) >= refused, 6)
    t.eq("per-user totals are separate and exact", denials(env.audit_records(type="deny", user=env.other)),
         refused)

    print("-- a principal that goes quiet gets a closing record only when denials are left unreported")
    # The kernel's window (bpf/jg_common.bpf.h) records the denial that opens
    # it and counts the rest; the daemon (flush_suppressed) removes a window
    # idle for a second and writes a closing record only when it counted any.
    # A single denial opens a window and leaves nothing; a burst of 20 (a few
    # ms, well inside one 1 s window) is one record at once and 19 counted.
    # Users and ports no denial used before, so each starts a fresh window.
    one = env.probe(env.grp, "connect", "tcp", "127.0.0.1", P)
    burst = env.probe(env.req, "burst", "tcp", "127.0.0.1", P2, "20")
    t.check("a single denial and a burst of 20 refused", one == "EPERM" and burst == "EPERM:20", f"{one} {burst}")

    def burst_records():
        return env.audit_records(type="deny", user=env.req, port=P2)
    wait_for(lambda: denials(burst_records()) >= 20, 6)
    got = [("reason" in r, 1 + r.get("suppressed", 0)) for r in burst_records()]
    t.eq("a burst of 20, then quiet: one record at once, then one closing record for the other 19", got,
         [(False, 1), (True, 19)])
    # The single denial's window went idle before the burst's, and the daemon
    # handles every idle window in one pass: its turn has come by now.
    single = [("reason" in r, 1 + r.get("suppressed", 0)) for r in
              env.audit_records(type="deny", user=env.grp, port=P)]
    t.eq("a single denial, then quiet: its own record and no closing record", single, [(False, 1)])

    print("-- a granted user's flood of new UDP flows: allow records bounded, counts exact")
    g = env.grant(env.req, f"{P}/udp", "10m", reason="allow flood")
    gid_udp = g.answer.get("grant_id")
    t.check("a udp grant for the flood", g.rc == 0 and gid_udp, str(g.answer))
    before = env.counters()
    size_before = os.path.getsize(env.audit)
    # 2.5 s: windows begin about a second apart from the first flow, so the
    # last one is half a second old when the flood stops and has flows for
    # the daemon's closing record (a whole number of seconds would race the
    # flood's end against the start of a window).
    out = env.probe(env.req, "flood", "udp", "127.0.0.1", P, 2.5)
    outcome = dict(kv.split(":") for kv in out.split())
    flows = int(outcome.get("ok", 0))
    t.check("every datagram of the flood (a new socket each) was allowed", set(outcome) == {"ok"} and
            flows > 1000, out)

    def flood_allows():
        return env.audit_records(type="allow", grant_id=gid_udp)
    # The last window's flows are reported by the daemon's closing record.
    wait_for(lambda: allowed(flood_allows()) >= flows, 10)
    recs = flood_allows()
    after = env.counters()
    grown = os.path.getsize(env.audit) - size_before
    print(f"     {flows} new UDP flows in 2.5 s -> {len(recs)} allow records, the log grew {grown} bytes")
    t.eq("the kernel's allow counter counted every new flow", after["allow"] - before["allow"], flows)
    t.eq("the counts of the allow records sum to the kernel's allow counter", allowed(recs),
         after["allow"] - before["allow"])
    if allowed(recs) != flows:
        print("     ", [(r["seq"], r.get("count"), r.get("reason", "")[:10]) for r in recs])
    t.check("at most about one allow record per second (2.5 s flood)", 2 <= len(recs) <= 8, str(len(recs)))
    t.check("allow records carry grant_id, count, uid, user, port, proto, hook",
            recs and all(k in recs[0] for k in ("grant_id", "count", "uid", "user", "port", "proto", "hook")),
            str(recs[:1]))
    # Whether the flood's last window ends with a closing record depends on
    # where its last flow fell; what is guaranteed: each closing record is
    # this user's, on this hook, and stands for the flows it counts (the sum
    # above is exact either way).
    closing = [r for r in recs if "reason" in r]
    t.check("every closing record is the flooding user's, on sendmsg4, and counts flows",
            all(r.get("count", 0) > 0 and r.get("user") == env.req and r.get("hook") == "sendmsg4" and
                str(r["count"]) in r["reason"] for r in closing), str(closing))
    t.check("the log stays small: a few records, not one per flow", grown < 32 * 1024, str(grown))
    env.cli_json(env.req, "revoke", str(g.req.get("request_id")))

    print("-- audit --follow: within 100 ms, filtered, each user sees their own")
    f_req = Follower(env, env.req, "--json", "--type", "deny", "--port", str(P))
    f_other = Follower(env, env.other, "--json")
    f_aud = Follower(env, env.grp, "--json", "--type", "deny,allow")
    f_human = Follower(env, "root", "--type", "deny", "--user", env.req)
    t.check("four followers connected", wait_for(lambda: followers(env) == 4, 5), str(followers(env)))
    lat = []
    for _ in range(5):
        time.sleep(1.1)  # a new rate-limit window: this denial is recorded at once
        res, stamp = env.probe(env.req, "stamped", "tcp", "127.0.0.1", P).split()
        got = f_req.lines(1.0)
        if res != "EPERM" or not got:
            lat.append(None)
            continue
        lat.append(got[0][0] - float(stamp))
        rec = json.loads(got[0][1])
        t.check("followed record is the denial (JSON Lines)", rec["type"] == "deny" and rec["port"] == P and
                rec["user"] == env.req, got[0][1])
    shown = [f"{x * 1000:.1f} ms" if x is not None else "none" for x in lat]
    print(f"     decision -> follower: {', '.join(shown)}")
    t.check("every denial reached the follower within 100 ms", all(x is not None and x < 0.1 for x in lat),
            str(shown))
    # Records the filters and scopes have to hold back: a denial of the other
    # user's own, then the requester's request, approval, grant and an allow.
    env.probe(env.other, "connect", "tcp", "127.0.0.1", P)
    oth = [json.loads(line) for _, line in
           f_other.lines_until(lambda ls: any(env.other in line for _, line in ls), 5.0)]
    t.check("another unprivileged user sees its own denial and none of the requester's",
            any(r.get("user") == env.other for r in oth) and not any(r.get("user") == env.req for r in oth),
            str(oth[:2]))
    gid = grant(env, env.req, P)
    env.probe(env.req, "connect", "tcp", "127.0.0.1", P)
    aud = [json.loads(line) for _, line in f_aud.lines_until(
        lambda ls: any(json.loads(line)["type"] == "allow" for _, line in ls), 5.0)]
    t.check("an auditor sees the other user's denials", any(r.get("user") == env.req for r in aud),
            str(aud[:2]))
    t.check("the auditor's --type filter holds: the allow, none of the workflow records",
            any(r["type"] == "allow" for r in aud) and all(r["type"] in ("deny", "allow") for r in aud),
            str([r["type"] for r in aud]))
    hum = [line for _, line in f_human.lines_until(lambda ls: bool(ls), 5.0)]
    print(f"     e.g. {hum[0] if hum else None}")
    t.check("human form: one line per record with seq, type, user and port (--type, --user held)",
            hum and all(" deny " in h and f"port={P}/tcp" in h and env.req in h and "hash" not in h
                        for h in hum), str(hum[:2]))
    own = [json.loads(line) for _, line in f_req.lines(0.5)]
    t.check("--type deny keeps an allow away from the requester's follower",
            all(r["type"] == "deny" for r in own), str(own))
    oth = [json.loads(line) for _, line in f_other.lines(0.3)]
    t.check("workflow records of others stay private", not oth, str(oth[:2]))
    for f in (f_req, f_other, f_aud, f_human):
        f.stop()
    t.check("followers are gone after they quit", wait_for(lambda: followers(env) == 0, 5))
    # A follower that stops reading for good (shut down its read side): the
    # daemon's next send fails; it drops that follower and carries on.
    shut = env.as_user(env.other, [PY, "-c", SHUT_FOLLOWER, env.sock, PY, os.path.join(env.tmp, "probe.py"),
                                   str(P2)])
    t.check("a follower that shut its read side: the daemon drops it and keeps serving",
            shut.stdout.strip() == "followed" and env.cli("root", "status").returncode == 0 and
            wait_for(lambda: followers(env) == 0, 5), shut.stdout + shut.stderr + env.daemon_log())
    opened = [Follower(env, env.other) for _ in range(4)]
    wait_for(lambda: followers(env) == 4, 5)
    try:
        fifth = env.cli(env.other, "audit", "--follow").returncode
    except subprocess.TimeoutExpired:
        fifth = "still following after 30 s"
    t.check("at most 4 audit streams per user: the fifth is refused (exit 3)", fifth == 3 and followers(env) == 4,
            f"{fifth} {followers(env)}")
    for f in opened:
        f.stop()
    wait_for(lambda: followers(env) == 0, 5)

    print("-- an auditor removed while following: its stream narrows to its own records")

    def denial_reaches(f, user, seconds):
        """A fresh denial of `user` (new rate-limit window); whether f shows it
        within `seconds` (5 s where it should, 1.5 s where it should not)."""
        time.sleep(1.1)
        env.probe(user, "connect", "tcp", "127.0.0.1", P2)

        def seen(ls):
            return any(json.loads(line).get("user") == user for _, line in ls)
        return seen(f.lines_until(seen, seconds))

    def req_denial_reaches(f):
        return denial_reaches(f, env.req, 5.0)

    def req_denial_absent(f):
        return not denial_reaches(f, env.req, 1.5)

    def own_denial_reaches(f):
        return denial_reaches(f, env.grp, 5.0)

    f_left = Follower(env, env.grp, "--json", "--type", "deny")
    wait_for(lambda: followers(env) == 1, 5)
    t.check("an auditor (@group) following sees another user's denial", req_denial_reaches(f_left))
    sh("gpasswd", "-d", env.grp, env.GROUP)
    try:
        time.sleep(2.5)  # two ticks of the daemon
        t.check("it left the group (no reload): the same stream no longer carries others' records",
                req_denial_absent(f_left))
        t.check("but still its own (narrowed, not cut)", own_denial_reaches(f_left))
    finally:
        sh("usermod", "-aG", env.GROUP, env.grp)
        f_left.stop()
    wait_for(lambda: followers(env) == 0, 5)

    f_cut = Follower(env, env.grp, "--json", "--type", "deny")
    wait_for(lambda: followers(env) == 1, 5)
    t.check("back in the group, a new stream sees others' denials", req_denial_reaches(f_cut))
    n = len(env.audit_records(type="policy_reload"))
    env.write_policy(env.render(POLICY.replace('auditors = ["@{group}"]', "auditors = []")))
    env.daemon.send_signal(signal.SIGHUP)
    wait_for(lambda: len(env.audit_records(type="policy_reload")) > n, 5)
    t.check("removed from [daemon] auditors by a reload: its stream no longer carries others' records",
            req_denial_absent(f_cut))
    f_cut.stop()
    n = len(env.audit_records(type="policy_reload"))
    env.write_policy(env.render(POLICY))
    env.daemon.send_signal(signal.SIGHUP)
    wait_for(lambda: len(env.audit_records(type="policy_reload")) > n, 5)
    wait_for(lambda: followers(env) == 0, 5)

    print("-- jitgate audit: recent records, filters, scope")
    r = env.cli(env.req, "--json", "audit", "--type", "grant", "--limit", "5")
    mine = json_lines(r.stdout)
    t.check("the requester lists their own grant", r.returncode == 0 and any(x.get("grant_id") == gid
                                                                            for x in mine), r.stdout + r.stderr)
    r = env.cli(env.other, "--json", "audit", "--limit", "1000")
    others = json_lines(r.stdout)
    t.check("another user lists none of the requester's records",
            r.returncode == 0 and not any(x.get("user") == env.req or x.get("requester") == env.req
                                          for x in others), str(others[:2]))
    r = env.cli("root", "--json", "audit", "--since", "1h", "--type", "daemon_start")
    t.check("root lists daemon_start with --since 1h",
            r.returncode == 0 and any(x["type"] == "daemon_start" for x in json_lines(r.stdout)),
            r.stdout + r.stderr)
    r = env.cli("root", "audit", "--type", "nonsense")
    t.eq("an unknown --type is a usage error (exit 2)", r.returncode, 2)
    r = env.cli("root", "audit", "--since", "yesterday-ish")
    t.eq("an unreadable --since is a usage error (exit 2)", r.returncode, 2)

    print("-- a ring too small for a burst: the loss is counted and recorded, never silent")
    # While the daemon is stopped: one denial from each of 150 uids (a record
    # each, far more than the ring holds) and a granted user's connect flood.
    before = env.counters()
    allowed_before = allowed(env.audit_records(type="allow", grant_id=gid))
    env.daemon.send_signal(signal.SIGSTOP)  # nobody reads the ring now
    try:
        storm = env.as_user("root", [PY, "-c", UID_STORM, str(P), "3900000", "150"], timeout=60)
        out = env.probe(env.req, "flood", "tcp", "127.0.0.1", P, 1)
    finally:
        env.daemon.send_signal(signal.SIGCONT)
    made = int(dict(kv.split(":") for kv in out.split()).get("ok", 0))
    t.eq("each of the 150 uids was refused", storm.stdout.strip(), "150")
    wait_for(lambda: env.audit_records(type="events_lost"), 5)
    # The allows that found the ring full stay counted in their window, so
    # the closing record carries them: the counts still add up.
    wait_for(lambda: allowed(env.audit_records(type="allow", grant_id=gid)) - allowed_before >= made, 10)
    after = env.counters()
    lost_recs = env.audit_records(type="events_lost")
    lost_logged = sum(r["count"] for r in lost_recs)
    allows = allowed(env.audit_records(type="allow", grant_id=gid)) - allowed_before
    print(f"     {made} connections and 150 denials while the daemon was stopped; ring of {RING_BYTES} bytes; "
          f"{after['events_lost'] - before['events_lost']} events lost")
    t.check("the burst overflowed the ring", made > 100 and after["events_lost"] > before["events_lost"], out)
    t.eq("events_lost records add up to the kernel's counter", lost_logged, after["events_lost"])
    t.check("the last events_lost record carries the kernel total",
            lost_recs and lost_recs[-1].get("total") == after["events_lost"], str(lost_recs[-1:]))
    t.eq("allow records' counts = connections allowed (kernel counter), the ring's overflow included",
         allows, after["allow"] - before["allow"])
    t.eq("every connection of the burst was allowed", after["allow"] - before["allow"], made)

    print("-- the chain across restarts and rotation")
    n_before = len(env.audit_records())
    env.stop_daemon()
    env.start_daemon()
    recs = env.audit_records()
    t.eq("restart: seq continues where it stopped", recs[n_before]["seq"], recs[n_before - 1]["seq"] + 1)
    t.check("restart: the chain continues", recs[n_before]["prev_hash"] == recs[n_before - 1]["hash"])
    n_before = len(recs)
    env.stop_daemon(signal.SIGKILL)
    env.start_daemon()
    recs = env.audit_records()
    t.check("after kill -9: the chain continues, no tamper_detected",
            recs[n_before]["prev_hash"] == recs[n_before - 1]["hash"] and
            not any(r["type"] == "tamper_detected" for r in recs), str(recs[n_before:n_before + 2]))
    t.eq("the whole log verifies (independent check)", verify_chain(recs), None)
    rc, v = verify(env)
    t.check("jitgate audit verify: intact, exit 0", rc == 0 and v.get("ok") and v.get("records") == len(recs),
            str(v))
    rotated = env.audit + ".1"
    os.rename(env.audit, rotated)
    t.check("a rotated log is followed by a new file (within a tick)", wait_for(lambda: os.path.exists(env.audit),
                                                                                5))
    env.probe(env.other, "connect", "tcp", "127.0.0.1", P2)  # a record for the new file
    wait_for(lambda: os.path.getsize(env.audit) > 0, 5)
    old, new = env.audit_records(rotated), env.audit_records()
    t.check("the new file continues the chain", new and new[0]["seq"] == old[-1]["seq"] + 1 and
            new[0]["prev_hash"] == old[-1]["hash"], str(new[:1]))
    rc, v = verify(env, rotated, env.audit)
    t.check("verify over both files: intact", rc == 0 and v.get("ok"), str(v))
    rc, v = verify(env, env.audit)
    t.check("the new file alone verifies and says it continues an earlier one", rc == 0 and v.get("ok") and
            v.get("first_seq") == new[0]["seq"], str(v))
    env.stop_daemon()
    os.rename(env.audit, env.audit + ".2")
    env.start_daemon()
    cur, prev2 = env.audit_records(), env.audit_records(env.audit + ".2")
    t.check("rotated while stopped: the next start continues the chain in a new file",
            cur[0]["seq"] == prev2[-1]["seq"] + 1 and cur[0]["prev_hash"] == prev2[-1]["hash"], str(cur[:1]))
    rc, v = verify(env, rotated, env.audit + ".2", env.audit)
    t.check("all three files verify as one chain", rc == 0 and v.get("ok"), str(v))

    last_before = env.audit_records()[-1]
    os.truncate(env.audit, 0)  # copytruncate
    env.probe(env.grp, "connect", "tcp", "127.0.0.1", P2)
    time.sleep(1.5)
    after = env.audit_records()
    t.check("copytruncate: the chain continues in the emptied file",
            after and after[0]["seq"] == last_before["seq"] + 1 and after[0]["prev_hash"] == last_before["hash"],
            str(after[:1]))
    t.check("copytruncate is not mistaken for tampering",
            not any(r["type"] == "tamper_detected" for r in after), str(after))

    print("-- SIGHUP: a broken file keeps the policy; a removed port's grants are revoked")
    g2 = grant(env, env.req, P2, "5m")
    t.eq("granted on the admin port", env.probe(env.req, "connect", "tcp", "127.0.0.1", P2), "ok")
    with open(env.policy) as f:
        good = f.read()
    with open(env.policy, "w") as f:
        f.write(good + "\n[[port]]\nport = 0\n")
    env.daemon.send_signal(signal.SIGHUP)
    t.check("a broken policy on reload is refused and recorded",
            wait_for(lambda: any(r["type"] == "policy_reload" and r.get("ok") is False
                                 for r in env.audit_records()), 5), env.daemon_log())
    t.eq("the old policy still protects its ports", env.probe(env.other, "connect", "tcp", "127.0.0.1", P2),
         "EPERM")
    with open(env.policy, "w") as f:
        f.write(good[:good.index('[[port]]\nname = "admin"')])
    env.daemon.send_signal(signal.SIGHUP)
    t.check("the admin port removed: its grant is revoked and recorded",
            wait_for(lambda: any(r["type"] == "revoke" and r.get("grant_id") == g2 and
                                 r.get("ended_by") == "policy_reload" for r in env.audit_records()), 5),
            env.daemon_log())
    rc, lst = env.cli_json("root", "list", "--active")
    t.check("and it is no longer listed as active",
            rc == 0 and not any(g.get("grant_id") == g2 for g in lst.get("grants", [])), str(lst))
    with open(env.policy, "w") as f:
        f.write(good)
    env.daemon.send_signal(signal.SIGHUP)
    wait_for(lambda: sum(1 for r in env.audit_records() if r["type"] == "policy_reload" and r.get("ok")) >= 2, 5)

    print("-- tampering is caught at the right record")
    snap = os.path.join(env.tmp, "snap.jsonl")
    shutil.copy(rotated, snap)
    with open(snap) as f:
        lines = f.read().splitlines(keepends=True)
    k = len(lines) // 2
    seq_k = json.loads(lines[k])["seq"]

    def tampered(name, new_lines, raw=None):
        path = os.path.join(env.tmp, name)
        with open(path, "w") as f:
            f.write(raw if raw is not None else "".join(new_lines))
        return verify(env, path)

    changed = list(lines)
    changed[k] = changed[k].replace('"port":', '"port":1', 1) if '"port":' in changed[k] else \
        changed[k].replace('"type":"', '"type":"x', 1)
    rc, v = tampered("changed.jsonl", changed)
    b = v.get("broken", {})
    t.check("a changed byte: exit 1, that record named", rc == 1 and b.get("line") == k + 1 and
            b.get("seq") == seq_k, str(v))
    rc, v = tampered("deleted.jsonl", lines[:k] + lines[k + 1:])
    b = v.get("broken", {})
    t.check("a deleted line: exit 1, the record after the gap named", rc == 1 and b.get("line") == k + 1 and
            b.get("seq") == seq_k + 1, str(v))
    swapped = list(lines)
    swapped[k], swapped[k + 1] = swapped[k + 1], swapped[k]
    rc, v = tampered("swapped.jsonl", swapped)
    b = v.get("broken", {})
    t.check("two lines swapped: exit 1, the first of them named", rc == 1 and b.get("line") == k + 1 and
            b.get("seq") == seq_k + 1, str(v))
    raw = "".join(lines)
    rc, v = tampered("cut.jsonl", None, raw[:len(raw) - len(lines[-1]) // 2])
    b = v.get("broken", {})
    t.check("a tail cut mid-record: exit 1, the last line named", rc == 1 and b.get("line") == len(lines),
            str(v))
    rc, v = verify(env, snap)
    t.check("the untouched copy verifies", rc == 0 and v.get("ok"), str(v))
    # Whole records cut from the end of the live log: only the daemon's head shows it.
    for _ in range(3):
        env.cli(env.req, "request", f"{P2}/tcp", "--for", "1m", "--reason", "more records")
    with open(env.audit) as f:
        live = f.read().splitlines(keepends=True)
    with open(env.audit, "w") as f:
        f.write("".join(live[:-2]))
    first_gap = json.loads(live[-1])["seq"] + 1  # the record the daemon writes next follows the gap
    rc, v = verify(env)
    b = v.get("broken", {})
    # Either verify runs before the daemon's next tick (the gap shows only against the daemon's head)
    # or after it (the daemon's tamper_detected record follows the gap in the file): both name it.
    cut_from, cut_to = json.loads(live[-2])["seq"], json.loads(live[-1])["seq"]
    t.check("the last two records removed from the live log: exit 1, the removed records named",
            rc == 1 and (b.get("seq") == cut_from or f"records {cut_from}-{cut_to} " in b.get("problem", "")),
            str(v))
    t.check("the daemon notices the cut within a tick: tamper_detected",
            wait_for(lambda: any(r["type"] == "tamper_detected" and "removed" in r.get("reason", "")
                                 for r in env.audit_records()), 5), env.daemon_log())
    r = env.cli(env.other, "audit", "verify")
    t.check("an unprivileged user cannot read the log: a clear error, exit 1",
            r.returncode == 1 and "ermission" in r.stderr, r.stderr)
    env.stop_daemon()
    with open(env.audit) as f:
        live = f.read().splitlines(keepends=True)
    with open(env.audit, "w") as f:
        f.write("".join(live[:-1]))  # the daemon_stop record
    env.start_daemon()
    tam = env.audit_records(type="tamper_detected")
    t.check("cut while stopped: the next start records tamper_detected",
            tam and f"records {json.loads(live[-1])['seq']}-" in tam[-1].get("reason", ""), str(tam[-1:]))
    rc, v = verify(env)
    t.check("verify names the first gap", rc == 1 and v.get("broken", {}).get("seq") == first_gap, str(v))
    env.stop_daemon()
    # A well-chained record appended while the daemon was down is still not its own.
    last = env.audit_records()[-1]
    forged = {"ts": last["ts"], "seq": last["seq"] + 1, "type": "grant", "user": "mallory", "port": P,
              "prev_hash": last["hash"]}
    forged["hash"] = hashlib.sha256(canonical(forged).encode()).hexdigest()
    with open(env.audit, "a") as f:
        f.write(json.dumps(forged, separators=(",", ":")) + "\n")
    env.start_daemon()
    tam = env.audit_records(type="tamper_detected")
    t.check("records appended by someone else while stopped: tamper_detected at start",
            tam and "added by something else" in tam[-1].get("reason", ""), str(tam[-1:]))
    env.stop_daemon()


if __name__ == "__main__":
    run_suite(POLICY, run)
