#!/usr/bin/python3
"""End to end, the approval workflow (design.md §2): N-of-M approvals with
group approvers, auto-approval, audit mode, request expiry, shortened
approval, break-glass, revocation, what happens to an open TCP connection
when its grant ends (cut within a second, or drained), and SIGHUP as the
workflow sees it.  Real daemon, real CLI, real unprivileged users, a private
netns and child cgroup (harness.py).

usage: e2e_workflow.py BUILD_DIR
"""
import json
import os
import pwd
import signal
import sqlite3
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import PY, Keeper, run_suite, verify_chain, wait_for, wall  # noqa: E402


def port(name, var, keys="", approvers='"{appr}"'):
    """A [[port]] block of the template: TCP, `approvers` (the harness approver), and `keys`."""
    return f'''
[[port]]
name = "{name}"
port = {{{var}}}
proto = "tcp"
approvers = [{approvers}]
{keys}'''


# One [[port]] per behaviour, so that no check leans on another's grant.
PORTS = {
    "two-of-many": port("two-of-many", "port", 'max_duration = "10m"\napprovals_required = 2\n',
                        approvers='"{appr}", "@{group}"'),
    "cut": port("cut", "port2", 'max_duration = "10m"\non_expiry = "cut"\n'),
    "drain": port("drain", "port3", 'max_duration = "10m"\non_expiry = "drain"\n'),
    "auto": port("auto", "port4", '''max_duration = "10m"

[[port.auto_approve]]
group = "{group}"
max_duration = "1m"

[[port.auto_approve]]
user = "{req}"
max_duration = "2m"
'''),
    "audit-only": port("audit-only", "port5", 'mode = "audit"\n'),
    # The parser takes any positive duration: 1s is the shortest request_ttl.
    "short-ttl": port("short-ttl", "port6", 'request_ttl = "1s"\n'),
    "glass": port("glass", "port7", 'max_duration = "10m"\nbreak_glass = ["@{group}"]\nbreak_glass_max = "2m"\n'),
    "glass-approvers": port("glass-approvers", "port8", 'max_duration = "1h"\n'),
    "glass-off": port("glass-off", "port9", 'break_glass_max = "0s"\n'),
    "shorten": port("shorten", "port10", 'max_duration = "10m"\n'),
    "removed": port("removed", "port11"),
}


def policy(without=()):
    """The policy template with every port but those named."""
    return "".join(block for name, block in PORTS.items() if name not in without)


POLICY = policy()

# What a client may see when its connection is ended under it: a reset from
# the other end, its own socket destroyed, or a send after either.
CUT_ERRORS = ("ECONNRESET", "ECONNABORTED", "EPIPE")
CUT_BOUND_S = 1.0


# Run as a test user: sends one request line to the control socket (argv[1])
# and prints the reply line, as any program may without the CLI.
WIRE = r"""
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(10)
s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode() + b"\n")
buf = b""
while b"\n" not in buf:
    d = s.recv(65536)
    if not d:
        break
    buf += d
print(buf.decode().split("\n")[0])
"""


def wire(env, user, op, args):
    """The daemon's reply to one request sent by `user` straight to the socket."""
    r = env.as_user(user, [PY, "-c", WIRE, env.sock, json.dumps({"id": 1, "op": op, "args": args})])
    try:
        return json.loads(r.stdout)
    except ValueError:
        return {"raw": r.stdout, "stderr": r.stderr}



# Run as a test user: sends argv[3] request lines (JSON, one per port in
# argv[2], round robin) over one connection and prints the replies as a JSON list.
FLOOD = r"""
import json, socket, sys
ports = [int(p) for p in sys.argv[2].split(",")]
n = int(sys.argv[3])
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(30)
s.connect(sys.argv[1])
replies, buf = [], b""
for i in range(n):
    a = {"port": ports[i % len(ports)], "proto": "tcp", "duration_s": 60, "reason": "flood"}
    s.sendall(json.dumps({"id": i + 1, "op": "request", "args": a}).encode() + b"\n")
    while b"\n" not in buf:
        d = s.recv(65536)
        if not d:
            break
        buf += d
    line, _, buf = buf.partition(b"\n")
    replies.append(json.loads(line))
print(json.dumps(replies))
"""


def check_limits(env, t, ports, reload_policy):
    """Issue 16 item 7: one user's flood of requests is capped and rate-limited
    with one sentence, others' requests still reach the approver, list pages
    say how many more, and a nearly full disk refuses new requests."""
    print("-- request caps, rate, pages, free space")
    reload_policy('[daemon]\nrequest_rate = "1000/s"\n')
    flooder = env.add_user("flood")
    # The first port three times as often: its cap of 5 comes before the user's 20.
    spread = [ports[0]] * 3 + ports[1:]
    r = env.as_user(flooder, [PY, "-c", FLOOD, env.sock, ",".join(map(str, spread)), "200"], timeout=120)
    try:
        replies = json.loads(r.stdout)
    except ValueError:
        replies = []
    ok = [x for x in replies if x.get("ok")]
    refused = [x["error"] for x in replies if not x.get("ok")]
    t.check(f"a flood of 200 requests by one user: 20 pending (max_pending_per_user), got {len(ok)}",
            len(replies) == 200 and len(ok) == 20, r.stdout[-300:] + r.stderr[-300:])
    t.check("the other 180 are refused, naming the per-port or per-user cap",
            len(refused) == 180 and all(e.get("code") == "refused" and "pending requests" in e.get("message", "")
                                        for e in refused) and
            any("max_pending_per_port" in e.get("message", "") for e in refused) and
            any("max_pending_per_user" in e.get("message", "") for e in refused), str(refused[:2]))
    c = env.cli(flooder, "request", str(ports[0]), "--for", "1m", "--reason", "one more")
    t.check("the CLI says so in one sentence, exit 3",
            c.returncode == 3 and "max_pending_per_" in c.stderr and len(c.stderr.strip().splitlines()) == 1,
            f"{c.returncode} {c.stderr}")
    rc, mine = env.cli_json(env.req, "request", str(ports[0]), "--for", "1m", "--reason", "after the flood")
    t.eq("another user's request after the flood is pending", (rc, mine.get("state")), (0, "pending"))
    _, lst = env.cli_json(env.appr, "list", "--pending", "--limit", "1000")
    t.check("and the approver's list shows it",
            any(x.get("request_id") == mine.get("request_id") for x in lst.get("requests", [])),
            str(lst.get("total")))

    total = lst.get("total", {}).get("requests", 0)
    _, page = env.cli_json(env.appr, "list", "--pending", "--limit", "5")
    t.check(f"list --limit 5 --json: 5 rows, total {total}, more {total - 5}",
            len(page.get("requests", [])) == 5 and page.get("total", {}).get("requests") == total and
            page.get("more", {}).get("requests") == total - 5 and total > 5, str({k: page.get(k) for k in
                                                                                  ("total", "more", "next_after")}))
    h = env.cli(env.appr, "list", "--pending", "--limit", "5")
    after = page.get("next_after", {}).get("requests")
    hint = f"... {total - 5} more pending requests: jitgate list --pending --limit 5 --after {after}"
    t.check("the human list says how many more and what to type", h.returncode == 0 and hint in h.stdout,
            h.stdout[-400:])
    _, page2 = env.cli_json(env.appr, "list", "--pending", "--limit", "5", "--after", str(after))
    ids1 = [x.get("request_id") for x in page.get("requests", [])]
    ids2 = [x.get("request_id") for x in page2.get("requests", [])]
    t.check("the next page follows the first, newest first, no row twice",
            len(ids2) == 5 and ids2 == sorted(ids2, reverse=True) and max(ids2) < min(ids1) and
            page2.get("more", {}).get("requests") == total - 10, f"{ids1} {ids2}")

    reload_policy('[daemon]\nrequest_rate = "3/m"\n')
    fast = env.add_user("fast")
    codes = [env.cli(fast, "request", str(ports[1]), "--for", "1m", "--reason", f"r{i}") for i in range(4)]
    t.check("request_rate 3/m: three requests pass, the fourth is refused (exit 3) saying when to retry",
            [x.returncode for x in codes] == [0, 0, 0, 3] and "too many requests: at most 3 per minute" in
            codes[3].stderr and "try again in" in codes[3].stderr, str([(x.returncode, x.stderr) for x in codes]))

    reload_policy("[daemon]\nmin_free_mb = 1048576\n")
    full = env.cli(env.req, "request", str(ports[1]), "--for", "1m", "--reason", "disk")
    t.check("less free space than min_free_mb: a new request is refused (exit 1), saying why",
            full.returncode == 1 and "MiB free" in full.stderr and "min_free_mb" in full.stderr,
            f"{full.returncode} {full.stderr}")
    reload_policy("")


def check_cut(t, what, out, since, since_what):
    """Checks that out ("stopped N ERRNO T") is an error the client saw within
    CUT_BOUND_S of `since`, after echoes had worked; the latency is in the check's name."""
    parts = out.split()
    if len(parts) != 4 or parts[0] != "stopped" or since is None:
        t.check(f"{what}: the client sees an error within {CUT_BOUND_S:.1f} s of {since_what}", False, out)
        return
    n, why, at = int(parts[1]), parts[2], float(parts[3])
    lat = at - since
    t.check(f"{what}: the client sees {why} {lat * 1000:.0f} ms after {since_what} (bound "
            f"{CUT_BOUND_S * 1000:.0f} ms, an error, not a hang)",
            why in CUT_ERRORS and -0.05 <= lat <= CUT_BOUND_S and n >= 5, out)


def one(recs):
    return recs[0] if len(recs) == 1 else None


# A group whose /etc/group line is longer than the 64 KiB user and group
# lookups took before (they read ERANGE as "no such group"): 4000 members.
BIG_MEMBERS = 4000


def check_big_group(env, t):
    """An @group approver whose group's /etc/group line is over 64 KiB.  The
    members other than the approver are names of no user: NSS reads the line
    as written, but groupadd, gpasswd and groupmod refuse them, and 4000 real
    users would take minutes to make and remove on a shared host.  So the
    line goes into a copy of /etc/group that only this run's daemon and
    `policy check` see (harness.with_etc_group); the host's file is not touched."""
    print(f"-- an @group approver in a group of {BIG_MEMBERS} members (its /etc/group line over 64 KiB)")
    P_BIG = env.more_ports[12]  # port16: no other check of this suite uses it
    big = f"{env.GROUP}_big"
    appr = env.add_user("bigappr")
    with open("/etc/group") as f:
        host = f.read()
    used = {int(x[2]) for x in (line.split(":") for line in host.splitlines()) if len(x) > 2 and x[2].isdigit()}
    gid = next(g for g in range(3900000 + os.getpid() % 1000 * 10, 2 ** 31) if g not in used)
    members = [f"{env.GROUP}_member{i:05d}" for i in range(BIG_MEMBERS)] + [appr]
    line = f"{big}:x:{gid}:{','.join(members)}"
    t.check(f"the group's line is over 64 KiB ({len(line)} bytes)", len(line) > 65536)
    path = os.path.join(env.tmp, "group")
    with open(path, "w") as f:
        f.write(host.rstrip("\n") + "\n" + line + "\n")
    os.chmod(path, 0o644)
    env.stop_daemon()
    env.write_policy(env.render(policy() + port("big-group", "port16", 'max_duration = "10m"\n',
                                                 approvers=f'"@{big}"')))

    def policy_check():
        r = subprocess.run(env.with_etc_group([env.jitgate, "--json", "policy", "check", env.policy]),
                           capture_output=True, text=True, timeout=30)
        try:
            return r.returncode, json.loads(r.stdout).get("warnings", [])
        except ValueError:
            return r.returncode, [r.stdout + r.stderr]
    rc, warns = policy_check()
    t.check("control: where the group does not exist, policy check warns that it does not",
            rc == 0 and any(f"'@{big}'" in w for w in warns), str(warns))
    env.etc_group = path
    rc, warns = policy_check()
    t.check("policy check: valid, and no warning that the large group does not exist",
            rc == 0 and not any(big in w for w in warns), str(warns))
    with open(os.path.join(env.tmp, "jitgated.log")) as f:
        log_at = len(f.read())
    env.start_daemon()
    with open(os.path.join(env.tmp, "jitgated.log")) as f:
        started = f.read()[log_at:]
    t.check("the daemon does not warn at start that the large group does not exist", big not in started,
            started[-800:])
    _, pend = env.cli_json(env.req, "request", f"{P_BIG}", "--for", "5m", "--reason", "large group")
    rc, ap = env.cli_json(env.other, "approve", str(pend.get("request_id")))
    t.check("a user outside the group cannot approve (control)", rc != 0 and ap.get("state") != "granted",
            f"{rc} {ap}")
    rc, ap = env.cli_json(appr, "approve", str(pend.get("request_id")))
    t.eq("an @group approver in the large group approves: granted", (rc, ap.get("state")), (0, "granted"))
    t.eq("and the grant works", env.probe(env.req, "connect", "tcp", "127.0.0.1", P_BIG), "ok")
    # Back to the host's /etc: the overlay's copied-up /etc/group would hide
    # the groups and users that later checks create.
    env.stop_daemon()
    env.etc_group = None
    env.start_daemon()


def run(env, t):
    P_NOFM, P_CUT, P_DRAIN = env.port, env.port2, env.port3
    P_AUTO, P_AUDIT, P_TTL, P_BG, P_BGANY, P_BGOFF, P_SHORT, P_RM = env.more_ports[:8]
    LO = "127.0.0.1"
    uid = {u: pwd.getpwnam(u).pw_uid for u in env.USERS}

    def connect(user, port):
        return env.probe(user, "connect", "tcp", LO, port)

    def established(port):
        """The host's established TCP sockets whose own port is `port` (the server's ends)."""
        return env.nsx("ss", "-Htn", "state", "established", f"( sport = :{port} )").stdout.strip()

    env.start_daemon()
    print(f"     jitgate status, connections: {env.status()[1].get('connections')}")

    # The checks that have to wait for the clock start first and are read later.
    print("-- started: a request with a 1 s request_ttl; grants of 3 s with open connections (cut, drain)")
    rc, ttl_req = env.cli_json(env.req, "request", f"{P_TTL}", "--for", "5m", "--reason", "ttl test")
    t.eq("a request on the short-ttl port is pending", (rc, ttl_req.get("state")), (0, "pending"))
    ttl_deadline = wall(ttl_req.get("expires_at"))
    ttl_created = wall(ttl_req.get("created_at"))
    t.check("the pending request's expires_at is request_ttl (1 s) after it was made",
            ttl_deadline is not None and ttl_created is not None and abs(ttl_deadline - ttl_created - 1) < 0.01,
            str(ttl_req))

    g_cut = env.grant(env.req, f"{P_CUT}/tcp", "3s", reason="cut at expiry")
    cut_exp = wall(g_cut.answer.get("expires_at"))
    keep_cut = Keeper(env, env.req, P_CUT, 8)
    g_drain = env.grant(env.req, f"{P_DRAIN}/tcp", "3s", reason="drain at expiry")
    drain_exp = wall(g_drain.answer.get("expires_at"))
    # Until 3 s after the drained grant's expiry.
    keep_drain = Keeper(env, env.req, P_DRAIN, max(1.0, (drain_exp or time.time()) + 3.0 - time.time()))
    t.check("a 3 s grant on the cut port, a connection open under it",
            g_cut.answer.get("state") == "granted" and keep_cut.connected, f"{g_cut.answer} {keep_cut.first}")
    t.check("a 3 s grant on the drain port, a connection open under it",
            g_drain.answer.get("state") == "granted" and keep_drain.connected,
            f"{g_drain.answer} {keep_drain.first}")

    print("-- two of many: approvals_required = 2, approvers [appr, @group]")
    rc, req = env.cli_json(env.req, "request", f"{P_NOFM}/tcp", "--for", "10m", "--reason", "two approvals")
    t.eq("request pending, asks for 2 approvals", (rc, req.get("state"), req.get("approvals_required")),
         (0, "pending", 2))
    rid = str(req.get("request_id"))
    rc, a1 = env.cli_json(env.appr, "approve", rid)
    t.eq("one approval of two: still pending, one approver counted",
         (rc, a1.get("state"), a1.get("approvers"), "grant_id" in a1), (0, "pending", [env.appr], False))
    t.eq("one approval of two: the connection is still refused", connect(env.req, P_NOFM), "EPERM")
    r = env.cli(env.appr, "approve", rid)
    t.check("the same approver again is refused (exit 1, conflict: already approved)",
            r.returncode == 1 and "already approved" in r.stderr, f"{r.returncode} {r.stderr}")
    _, lst = env.cli_json(env.req, "list", "--pending")
    mine = [x for x in lst.get("requests", []) if str(x.get("request_id")) == rid]
    t.eq("and counts once: the pending request lists one approver", [x.get("approvers") for x in mine],
         [[env.appr]])
    r = env.cli(env.other, "approve", rid)
    t.check("a user in neither the list nor the @group is refused (exit 3)",
            r.returncode == 3 and "not an approver" in r.stderr, f"{r.returncode} {r.stderr}")
    t.eq("after two refusals the connection is still refused", connect(env.req, P_NOFM), "EPERM")
    rc, a2 = env.cli_json(env.grp, "approve", rid)
    t.eq("a member of the @group is the second distinct approver: granted", (rc, a2.get("state")),
         (0, "granted"))
    t.eq("granted after two approvals: the connection works", connect(env.req, P_NOFM), "ok")
    gr = one(env.audit_records(type="grant", request_id=req.get("request_id")))
    t.eq("the grant record lists both approvers, in order", (gr or {}).get("approvers"), [env.appr, env.grp])
    t.eq("the approve records: one per approver",
         [x.get("user") for x in env.audit_records(type="approve", request_id=req.get("request_id"))], [env.appr, env.grp])

    print("-- auto_approve: group (up to 1m) and user (up to 2m) rules")
    rc, au = env.cli_json(env.grp, "request", f"{P_AUTO}", "--for", "1m", "--reason", "on call")
    t.eq("a member of the rule's group asking for 1m: granted at once by the rule",
         (rc, au.get("state"), au.get("approvers")), (0, "granted", [f"auto_approve:@{env.GROUP}"]))
    t.check("the answer names the grant and its expiry", "grant_id" in au and wall(au.get("expires_at")),
            str(au))
    t.eq("auto-approved: the connection works", connect(env.grp, P_AUTO), "ok")
    gr = one(env.audit_records(type="grant", request_id=au.get("request_id")))
    t.eq("the grant record names the rule as approver", (gr or {}).get("approvers"),
         [f"auto_approve:@{env.GROUP}"])
    rc, au5 = env.cli_json(env.grp, "request", f"{P_AUTO}", "--for", "5m", "--reason", "longer")
    t.eq("beyond the rule's 1m (5m, port max 10m): pending", (rc, au5.get("state")), (0, "pending"))
    rc, auo = env.cli_json(env.other, "request", f"{P_AUTO}", "--for", "1m", "--reason", "not on call")
    t.eq("a non-member asking for 1m: pending", (rc, auo.get("state")), (0, "pending"))
    t.eq("the non-member's connection is refused", connect(env.other, P_AUTO), "EPERM")
    rc, auu = env.cli_json(env.req, "request", f"{P_AUTO}", "--for", "90s", "--reason", "user rule")
    t.eq("the user rule's user asking for 90s: granted by the user rule",
         (rc, auu.get("state"), auu.get("approvers")), (0, "granted", [f"auto_approve:{env.req}"]))
    r = env.cli(env.grp, "revoke", str(au.get("request_id")))
    t.eq("the holder revokes an auto-approved grant by its request id", r.returncode, 0)
    t.eq("revoked: the connection is refused again", connect(env.grp, P_AUTO), "EPERM")

    print("-- mode = audit: nothing blocked, would_deny recorded")
    t.eq("audit mode: a connection without a grant succeeds", connect(env.other, P_AUDIT), "ok")
    wait_for(lambda: env.audit_records(type="would_deny", port=P_AUDIT), 3)
    wd = env.audit_records(type="would_deny", port=P_AUDIT)
    t.check("a would_deny record with the user's uid, name and the port",
            wd and wd[0].get("uid") == uid[env.other] and wd[0].get("user") == env.other and
            wd[0].get("proto") == "tcp", str(wd[:1]))
    t.eq("and no deny record for it", env.audit_records(type="deny", port=P_AUDIT), [])

    print("-- approve --for: shorten, never lengthen")
    rc, sr = env.cli_json(env.req, "request", f"{P_SHORT}", "--for", "5m", "--reason", "shorten me")
    srid = str(sr.get("request_id"))
    r = env.cli(env.appr, "approve", srid, "--for", "6m")
    t.check("approve --for longer than requested is refused (exit 3) and says why",
            r.returncode == 3 and "shorten" in r.stderr, f"{r.returncode} {r.stderr}")
    _, lst = env.cli_json(env.req, "list", "--pending")
    t.check("the request is still pending, with no approval counted",
            any(str(x.get("request_id")) == srid and x.get("approvers") == [] for x in lst.get("requests", [])),
            str(lst))
    before = time.time()
    rc, sa = env.cli_json(env.appr, "approve", srid, "--for", "30s")
    after = time.time()
    left = (wall(sa.get("expires_at")) or 0) - before
    t.check(f"approve --for 30s on a 5m request: granted, expires_at {left:.2f} s after the approval",
            rc == 0 and sa.get("state") == "granted" and 30 - 0.05 <= left <= 30 + (after - before) + 0.05,
            str(sa))
    gr = one(env.audit_records(type="grant", request_id=sr.get("request_id")))
    t.eq("the grant record says duration_s 30", (gr or {}).get("duration_s"), 30)
    t.eq("shortened grant: the connection works", connect(env.req, P_SHORT), "ok")

    print("-- open connections meet their grant's expiry: cut, and drained")
    wait_for(lambda: drain_exp is not None and time.time() > drain_exp + 0.3, 10)
    t.eq("drain: a new connection after expiry is refused", connect(env.req, P_DRAIN), "EPERM")
    cut_out = keep_cut.result()
    print(f"     cut port: {cut_out}  (grant expired at {cut_exp})")
    check_cut(t, "cut at expiry", cut_out, cut_exp, "the grant's expiry")
    t.check("cut at expiry: the server's end is closed too (the reset reached it)",
            wait_for(lambda: not established(P_CUT), 1.0), env.nsx("ss", "-tn").stdout)
    drain_out = keep_drain.result()
    drained_until = time.time()
    print(f"     drain port: {drain_out}")
    parts = drain_out.split()
    t.check(f"drain: the open connection kept echoing {drained_until - (drain_exp or 0):.1f} s past expiry",
            len(parts) == 2 and parts[0] == "ok" and int(parts[1]) >= 40 and drain_exp is not None and
            drained_until - drain_exp >= 2.5, drain_out)
    gid_cut, gid_drain = g_cut.answer.get("grant_id"), g_drain.answer.get("grant_id")
    wait_for(lambda: env.audit_records(type="expire", grant_id=gid_cut), 3)
    ex = one(env.audit_records(type="expire", grant_id=gid_cut))
    t.check("the cut grant's expire record says connections_ended >= 1",
            ex is not None and isinstance(ex.get("connections_ended"), int) and ex["connections_ended"] >= 1,
            str(ex))
    wait_for(lambda: env.audit_records(type="expire", grant_id=gid_drain), 3)
    ex = one(env.audit_records(type="expire", grant_id=gid_drain))
    t.check("the drained grant's expire record says connections_ended 0",
            ex is not None and ex.get("connections_ended") == 0, str(ex))
    t.eq("cut: a new connection after expiry is refused", connect(env.req, P_CUT), "EPERM")

    print("-- request_ttl: a pending request expires, and cannot be approved then")
    ttl_rid = ttl_req.get("request_id")
    wait_for(lambda: env.audit_records(type="expire", request_id=ttl_rid), 5)
    ex = one(env.audit_records(type="expire", request_id=ttl_rid))
    at = wall((ex or {}).get("ts"))
    t.check("an expire record for the request, by the requester's name, without a grant",
            ex is not None and ex.get("requester") == env.req and ex.get("port") == P_TTL and
            "grant_id" not in ex, str(ex))
    t.check(f"written within 2.5 s of the request's deadline ({(at or 0) - (ttl_deadline or 0):.2f} s)",
            at is not None and ttl_deadline is not None and 0 <= at - ttl_deadline <= 2.5, str(ex))
    r = env.cli(env.appr, "approve", str(ttl_rid))
    t.check("approving an expired request is refused (exit 1, conflict: already expired)",
            r.returncode == 1 and "expired" in r.stderr, f"{r.returncode} {r.stderr}")
    _, lst = env.cli_json(env.req, "list", "--all")
    t.eq("listed as expired, with no grant",
         [(x.get("state"), x.get("grant_id")) for x in lst.get("requests", []) if x.get("request_id") == ttl_rid],
         [("expired", None)])
    t.eq("and the requester is still refused", connect(env.req, P_TTL), "EPERM")

    print("-- request --wait: blocks until decided; Ctrl-C stops waiting and withdraws nothing")

    def waiter(user, port):
        return env.spawn(env.user_argv(user, [env.jitgate, "--socket", env.sock, "--json", "request", f"{port}",
                                              "--for", "1m", "--reason", "waiting", "--wait"]))

    def pending_of(user, port):
        _, lst = env.cli_json("root", "list", "--pending")
        ids = [x["request_id"] for x in lst.get("requests", []) if x.get("user") == user and x.get("port") == port]
        return ids[0] if len(ids) == 1 else None

    w = waiter(env.other, P_SHORT)
    wait_for(lambda: pending_of(env.other, P_SHORT) is not None, 5)
    wid = pending_of(env.other, P_SHORT)
    time.sleep(0.6)
    t.check("request --wait: still waiting while the request is pending", wid is not None and w.poll() is None,
            str(wid))
    env.cli(env.appr, "approve", str(wid))
    try:
        out, _ = w.communicate(timeout=5)
    except subprocess.TimeoutExpired:
        w.kill()
        out = "hung"
    last = out.strip().splitlines()[-1] if out.strip() else ""
    try:
        final = json.loads(last)
    except ValueError:
        final = {}
    t.check("approved: --wait exits 0 with the granted request and its remaining time",
            w.returncode == 0 and final.get("state") == "granted" and final.get("request_id") == wid and
            0 < final.get("remaining_s", 0) <= 60, f"{w.returncode} {out[-400:]}")
    env.cli(env.other, "revoke", str(wid))
    w = waiter(env.other, P_SHORT)
    wait_for(lambda: pending_of(env.other, P_SHORT) is not None, 5)
    wid = pending_of(env.other, P_SHORT)
    env.cli(env.appr, "deny", str(wid), "--reason", "not now")
    try:
        out, _ = w.communicate(timeout=5)
    except subprocess.TimeoutExpired:
        w.kill()
        out = "hung"
    t.check("rejected: --wait exits 3 and names who and why",
            w.returncode == 3 and env.appr in out and "not now" in out, f"{w.returncode} {out[-400:]}")
    w = waiter(env.other, P_SHORT)
    wait_for(lambda: pending_of(env.other, P_SHORT) is not None, 5)
    wid = pending_of(env.other, P_SHORT)
    time.sleep(0.3)
    os.killpg(w.pid, signal.SIGINT)
    try:
        out, _ = w.communicate(timeout=5)
    except subprocess.TimeoutExpired:
        w.kill()
        out = "hung"
    t.check("Ctrl-C: exit 130, says the request stays pending",
            w.returncode == 130 and "stays pending" in out, f"{w.returncode} {out[-400:]}")
    t.eq("and the request is still pending", pending_of(env.other, P_SHORT), wid)
    env.cli(env.other, "deny", str(wid))

    print("-- revoke: others may not, the holder may, and an open connection is cut at once")
    g = env.grant(env.req, f"{P_CUT}/tcp", "5m", reason="revoke test")
    gid = g.answer.get("grant_id")
    t.eq("granted again on the cut port", connect(env.req, P_CUT), "ok")
    r = env.cli(env.other, "revoke", str(gid))
    t.check("revoke of someone else's grant by a non-approver: exit 3",
            r.returncode == 3 and "only the holder" in r.stderr, f"{r.returncode} {r.stderr}")
    t.eq("and the grant still works", connect(env.req, P_CUT), "ok")
    keep = Keeper(env, env.req, P_CUT, 6)
    t.check("a connection open under the grant", keep.connected, keep.first)
    time.sleep(0.5)  # a few echoes first
    revoked_at = time.time()
    r = env.cli(env.req, "revoke", str(gid))
    t.eq("the holder revokes their own grant by its id", r.returncode, 0)
    out = keep.result()
    print(f"     {out}  (revoke started at {revoked_at:.6f})")
    check_cut(t, "cut at revoke", out, revoked_at, "the revoke")
    t.check("cut at revoke: the server's end is closed too",
            wait_for(lambda: not established(P_CUT), 1.0), env.nsx("ss", "-tn").stdout)
    t.eq("revoked: a new connection is refused", connect(env.req, P_CUT), "EPERM")
    rv = one(env.audit_records(type="revoke", grant_id=gid))
    t.check("a revoke record by the holder, connections_ended 1",
            rv is not None and rv.get("user") == env.req and rv.get("ended_by") == env.req and
            rv.get("connections_ended") == 1, str(rv))

    print("-- break-glass: at once, capped, with a reason, loud")
    rc, bg = env.cli_json(env.grp, "break-glass", f"{P_BG}/tcp", "--for", "1m", "--reason", "INC-9: outage")
    t.check("break-glass by a listed @group member: granted at once",
            rc == 0 and bg.get("state") == "granted" and bg.get("break_glass") is True and
            bg.get("grant_id") and bg.get("request_id"), str(bg))
    exp = wall(bg.get("expires_at"))
    t.check("its expires_at is 1m from now", exp is not None and abs(exp - time.time() - 60) < 5, str(bg))
    t.eq("break-glass: the connection works", connect(env.grp, P_BG), "ok")
    bgid = bg.get("grant_id")
    recs = env.audit_records()
    loud = [x for x in recs if x["type"] == "break_glass" and x.get("grant_id") == bgid]
    gr = [x for x in recs if x["type"] == "grant" and x.get("grant_id") == bgid]
    t.check("a break_glass record naming requester, port, reason and grant",
            len(loud) == 1 and loud[0].get("requester") == env.grp and loud[0].get("port") == P_BG and
            loud[0].get("reason") == "INC-9: outage", str(loud))
    t.check("followed by a grant record marked break_glass: true",
            len(loud) == 1 and len(gr) == 1 and gr[0].get("break_glass") is True and
            gr[0]["seq"] > loud[0]["seq"], str(gr))
    rc, lst = env.cli_json(env.appr, "list")
    t.check("jitgate list --json has it in break_glass (for review)",
            rc == 0 and any(x.get("grant_id") == bgid for x in lst.get("break_glass", [])), str(lst))
    r = env.cli(env.grp, "break-glass", f"{P_BG}", "--for", "3m", "--reason", "longer")
    t.check("over the port's break_glass_max (2m): refused (exit 3), the message names the cap",
            r.returncode == 3 and "2m" in r.stderr, f"{r.returncode} {r.stderr}")
    r = env.cli(env.req, "break-glass", f"{P_BG}", "--for", "1m", "--reason", "not listed")
    t.check("a user not in break_glass = [@group]: refused (exit 3)", r.returncode == 3,
            f"{r.returncode} {r.stderr}")
    t.eq("and still refused at the socket", connect(env.req, P_BG), "EPERM")
    r = env.cli(env.other, "break-glass", f"{P_BGANY}", "--for", "10m", "--reason", "not an approver")
    t.check("no break_glass list: a user who is not an approver is refused (exit 3)",
            r.returncode == 3 and "approvers" in r.stderr, f"{r.returncode} {r.stderr}")
    t.eq("and still refused at the socket", connect(env.other, P_BGANY), "EPERM")
    rc, bga = env.cli_json(env.appr, "break-glass", f"{P_BGANY}", "--for", "10m", "--reason", "approver")
    t.check("no break_glass list: the port's approver may, within the default 15m cap",
            rc == 0 and bga.get("state") == "granted" and bga.get("break_glass") is True, str(bga))
    t.eq("and the connection works", connect(env.appr, P_BGANY), "ok")
    r = env.cli(env.appr, "break-glass", f"{P_BGANY}", "--for", "16m", "--reason", "too long")
    t.check("over the default cap: refused (exit 3), the message names 15m",
            r.returncode == 3 and "15m" in r.stderr, f"{r.returncode} {r.stderr}")
    # Refused by the CLI (usage, exit 2) or the daemon (exit 3), either way for the reason.
    r = env.cli(env.req, "break-glass", f"{P_BGANY}", "--for", "1m", "--reason", "   ")
    t.check("a blank reason is refused, and the message says so",
            r.returncode in (2, 3) and "reason" in r.stderr, f"{r.returncode} {r.stderr}")
    r = env.cli(env.req, "break-glass", f"{P_BGANY}", "--for", "1m")
    t.check("a missing reason is refused, and the message says so",
            r.returncode in (2, 3) and "reason" in r.stderr, f"{r.returncode} {r.stderr}")
    rep = wire(env, env.req, "break_glass", {"port": P_BGANY, "proto": "tcp", "duration_s": 60, "reason": "  "})
    t.check("a blank reason sent to the socket without the CLI: the daemon refuses it too",
            rep.get("ok") is False and "reason" in rep.get("error", {}).get("message", ""), str(rep))
    t.eq("after all three: still refused at the socket", connect(env.req, P_BGANY), "EPERM")
    r = env.cli(env.other, "break-glass", f"{P_BGOFF}", "--for", "1m", "--reason", "disabled")
    t.check("break_glass_max = \"0s\" disables it: refused (exit 3)", r.returncode == 3,
            f"{r.returncode} {r.stderr}")
    t.eq("and still refused at the socket", connect(env.other, P_BGOFF), "EPERM")

    print("-- SIGHUP: a broken file changes nothing in flight; a removed port's grant is revoked")
    g_rm = env.grant(env.req, f"{P_RM}/tcp", "5m", reason="before reload")
    t.eq("granted on the port about to be removed", connect(env.req, P_RM), "ok")
    _, rm_pend = env.cli_json(env.other, "request", f"{P_RM}", "--for", "5m", "--reason", "pending at reload")
    _, cut_pend = env.cli_json(env.other, "request", f"{P_CUT}", "--for", "5m", "--reason", "survives reload")
    t.check("two requests pending across the reloads",
            rm_pend.get("state") == "pending" and cut_pend.get("state") == "pending", f"{rm_pend} {cut_pend}")
    good = env.render(policy())
    n_ports = len(env.status()[1].get("ports", []))
    env.write_policy(good + '\n[[port]]\nname = "broken"\nport = 70000\napprovers = ["{}"]\n'.format(env.appr))
    env.daemon.send_signal(signal.SIGHUP)
    t.check("the broken reload is refused and recorded (policy_reload ok false)",
            wait_for(lambda: any(x["type"] == "policy_reload" and x.get("ok") is False
                                 for x in env.audit_records()), 5), env.daemon_log())
    log = env.daemon_log()
    t.check("the daemon's log says why: reload refused, the line and the rule",
            "reload refused" in log and "jitgate.toml:" in log and "65535" in log, log[-600:])
    rc, st = env.status()
    t.check("the daemon keeps running with the old policy (same ports)",
            env.daemon.poll() is None and rc == 0 and len(st.get("ports", [])) == n_ports, str(rc))
    t.eq("the cut port is still protected", connect(env.grp, P_CUT), "EPERM")
    rc, ap = env.cli_json(env.appr, "approve", str(cut_pend.get("request_id")))
    t.eq("a request made before the broken reload is approved after it", (rc, ap.get("state")), (0, "granted"))
    t.eq("and its connection works", connect(env.other, P_CUT), "ok")
    env.write_policy(env.render(policy(without=("removed",))))
    env.daemon.send_signal(signal.SIGHUP)
    rm_gid = g_rm.answer.get("grant_id")
    t.check("the removed port's grant is revoked, ended_by policy_reload",
            wait_for(lambda: any(x.get("ended_by") == "policy_reload"
                                 for x in env.audit_records(type="revoke", grant_id=rm_gid)), 5),
            str(env.audit_records(type="revoke", grant_id=rm_gid)) + env.daemon_log())
    rj = one(env.audit_records(type="reject", request_id=rm_pend.get("request_id")))
    t.check("its pending request is rejected: the port is no longer protected",
            rj is not None and "no longer protected" in rj.get("reason", ""), str(rj))
    _, lst = env.cli_json("root", "list", "--all")
    t.eq("the grant is listed as revoked by policy_reload",
         [(x.get("state"), x.get("ended_by")) for x in lst.get("grants", []) if x.get("grant_id") == rm_gid],
         [("revoked", "policy_reload")])
    t.eq("the removed port is open to anyone now", connect(env.grp, P_RM), "ok")
    t.eq("the other ports keep their grants (cut port, approved after the broken reload)",
         connect(env.other, P_CUT), "ok")
    t.eq("and their protection", connect(env.grp, P_CUT), "EPERM")
    keep = Keeper(env, env.grp, P_RM, 6)
    t.check("a connection open to the port while it is unprotected", keep.connected, keep.first)
    time.sleep(0.3)
    reload_at = time.time()
    env.write_policy(env.render(policy()))
    env.daemon.send_signal(signal.SIGHUP)
    out = keep.result()
    check_cut(t, "the port protected again by a reload: its connection without a grant is cut", out, reload_at,
              "the SIGHUP")
    t.check("the policy_reload record counts it (connections_ended 1)",
            wait_for(lambda: any(x.get("ok") and x.get("connections_ended") == 1
                                 for x in env.audit_records(type="policy_reload")), 5),
            str(env.audit_records(type="policy_reload")))

    check_big_group(env, t)
    identity_and_clocks(env, t, connect)
    def reload_policy(daemon):
        n = len(env.audit_records(type="policy_reload"))
        env.write_policy(daemon + env.render(policy()))
        env.daemon.send_signal(signal.SIGHUP)
        wait_for(lambda: len(env.audit_records(type="policy_reload")) > n, 5)

    check_limits(env, t, [P_SHORT, P_BGANY, P_BGOFF, P_NOFM, P_DRAIN], reload_policy)

    problem = verify_chain(env.audit_records())
    t.check("the whole audit log chains (independent check)", problem is None, str(problem))


def reload_with(env, extra):
    """SIGHUP with the suite's policy plus `extra` [[port]] blocks; waits for its policy_reload."""
    before = len(env.audit_records(type="policy_reload", ok=True))
    env.write_policy(env.render(policy() + extra))
    env.daemon.send_signal(signal.SIGHUP)
    return wait_for(lambda: len(env.audit_records(type="policy_reload", ok=True)) > before, 5)


def identity_and_clocks(env, t, connect):
    """Issue 16: approvals that lapse (5), uid reuse (6), the clock rebase (8), scope of list (9)."""
    P_LG, P_LR, P_UID, P_CLK = env.more_ports[8:12]
    lapse = f"jgt{env.id}_lapse"
    la, lb, lc = (env.add_user(r) for r in ("la", "lb", "lc"))
    subprocess.run(["groupadd", "--system", lapse], check=True, capture_output=True)
    try:
        for u in (la, lb, lc):
            subprocess.run(["usermod", "-aG", lapse, u], check=True, capture_output=True)
        x = env.add_user("x")
        blocks = (port("lapse-group", "port12", 'approvals_required = 2\n', approvers=f'"@{lapse}"') +
                  port("lapse-reload", "port13", 'approvals_required = 2\n', approvers=f'"{la}", "{lb}", "{lc}"') +
                  port("uid-reuse", "port14", 'approvals_required = 2\n', approvers=f'"{x}", "{{appr}}"') +
                  port("clock", "port15", 'max_duration = "10m"\n'))
        t.check("a reload adds the ports of these checks", reload_with(env, blocks), env.daemon_log())
        lapse_checks(env, t, connect, blocks, P_LG, P_LR, la, lb, lc, lapse)
        uid_reuse_checks(env, t, connect, P_UID, x)
        scope_checks(env, t)
        clock_checks(env, t, connect, P_CLK)
    finally:
        subprocess.run(["groupdel", lapse], capture_output=True)


def lapse_checks(env, t, connect, blocks, P_LG, P_LR, la, lb, lc, lapse):
    print("-- 2 of N: an approval lapses when its approver leaves the @group before the last approval")
    _, rq = env.cli_json(env.req, "request", f"{P_LG}", "--for", "5m", "--reason", "lapse by group")
    rid = str(rq.get("request_id"))
    rc, a1 = env.cli_json(la, "approve", rid)
    t.eq("the first group member approves: pending", (rc, a1.get("state")), (0, "pending"))
    subprocess.run(["gpasswd", "-d", la, lapse], check=True, capture_output=True)
    rc, a2 = env.cli_json(lb, "approve", rid)
    t.eq("after the first left the group, a second member approves: still pending, one approval counted",
         (rc, a2.get("state"), a2.get("approvers")), (0, "pending", [lb]))
    t.eq("and the requester is still refused", connect(env.req, P_LG), "EPERM")
    lapsed = env.audit_records(type="approval_lapsed", request_id=rq.get("request_id"))
    t.check("an approval_lapsed record names the lapsed approver and why",
            len(lapsed) == 1 and lapsed[0].get("user") == la and "no longer an approver" in lapsed[0].get("reason", ""),
            str(lapsed))
    rc, a3 = env.cli_json(lc, "approve", rid)
    t.eq("a third member approves: granted by the two who qualify", (rc, a3.get("state"), a3.get("approvers")),
         (0, "granted", [lb, lc]))
    t.eq("granted: the connection works", connect(env.req, P_LG), "ok")

    print("-- 2 of N: an approval lapses when its approver is taken out of approvers by a reload")
    _, rq = env.cli_json(env.req, "request", f"{P_LR}", "--for", "5m", "--reason", "lapse by reload")
    rid = str(rq.get("request_id"))
    rc, a1 = env.cli_json(la, "approve", rid)
    t.eq("the first approver approves: pending", (rc, a1.get("state")), (0, "pending"))
    t.check("a reload takes the first approver out of approvers",
            reload_with(env, blocks.replace(f'"{la}", "{lb}", "{lc}"', f'"{lb}", "{lc}"')), env.daemon_log())
    t.check("the reload records the lapsed approval",
            wait_for(lambda: env.audit_records(type="approval_lapsed", request_id=rq.get("request_id")), 5),
            env.daemon_log())
    shown = wire(env, env.req, "show", {"id": int(rid)}).get("result", {})
    t.eq("the request is still pending, with no approval counted", (shown.get("state"), shown.get("approvers")),
         ("pending", []))
    rc, a2 = env.cli_json(lb, "approve", rid)
    t.eq("a remaining approver approves: still pending (one of two)", (rc, a2.get("state")), (0, "pending"))
    t.eq("and the requester is still refused", connect(env.req, P_LR), "EPERM")
    rc, a3 = env.cli_json(lc, "approve", rid)
    t.eq("the other remaining approver approves: granted", (rc, a3.get("state")), (0, "granted"))
    t.eq("granted: the connection works", connect(env.req, P_LR), "ok")


def uid_reuse_checks(env, t, connect, P_UID, x):
    print("-- uid reuse: a deleted account's uid given to a new account carries neither grant nor approvals")
    uid = pwd.getpwnam(x).pw_uid
    g = env.grant(x, f"{env.more_ports[6]}/tcp", "5m", reason="x works")  # P_SHORT: approver appr
    t.eq("user x (uid %d) is granted and connects" % uid, (g.answer.get("state"), connect(x, env.more_ports[6])),
         ("granted", "ok"))
    _, rq = env.cli_json(env.req, "request", f"{P_UID}", "--for", "5m", "--reason", "needs x and appr")
    rid = str(rq.get("request_id"))
    rc, ax = env.cli_json(x, "approve", rid)
    t.eq("x approves a 2-of-N request: pending", (rc, ax.get("state")), (0, "pending"))
    subprocess.run(["userdel", x], check=True, capture_output=True)
    y = f"jgt{env.id}_y"
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "-u", str(uid), y],
                   check=True, capture_output=True)
    env.users_made.append(y)
    gid = g.answer.get("grant_id")
    t.check("x's grant ends within a few seconds, ended_by account_removed",
            wait_for(lambda: any(r.get("ended_by") == "account_removed"
                                 for r in env.audit_records(type="revoke", grant_id=gid)), 5),
            str(env.audit_records(grant_id=gid)) + env.daemon_log())
    t.eq("y, given x's uid, cannot connect", connect(y, env.more_ports[6]), "EPERM")
    r = env.cli(y, "approve", rid)
    t.check("y cannot approve as x (exit 3, not an approver)", r.returncode == 3 and "not an approver" in r.stderr,
            f"{r.returncode} {r.stderr}")
    rc, aa = env.cli_json(env.appr, "approve", rid)
    t.eq("the other approver approves: still pending, x's approval lapsed", (rc, aa.get("state"), aa.get("approvers")),
         (0, "pending", [env.appr]))
    t.check("the approve records never name y as x",
            all(r.get("uid") != uid or r.get("user") == x for r in env.audit_records(type="approve")),
            str(env.audit_records(type="approve")))


def scope_checks(env, t):
    print("-- list, show and status are scoped as audit is")
    secret = f"private-reason-{env.id}"
    _, rq = env.cli_json(env.req, "request", f"{env.more_ports[6]}", "--for", "5m", "--reason", secret)
    rid = rq.get("request_id")
    for args in (("list", "--all"), ("list",)):
        r = env.cli(env.other, *args)
        t.check(f"`jitgate {' '.join(args)}` as another user does not show the request's reason",
                r.returncode == 0 and secret not in r.stdout, r.stdout[-800:] + r.stderr)
    rc, lst = env.cli_json(env.other, "list", "--all")
    t.check("`jitgate --json list --all` as another user: only their own requests, not this one",
            rc == 0 and all(x.get("user") == env.other for x in lst.get("requests", [])) and
            rid not in [x.get("request_id") for x in lst.get("requests", [])], str(lst)[-800:])
    r = env.cli(env.appr, "list", "--all")
    t.check("an approver of the port sees it and its reason", r.returncode == 0 and secret in r.stdout,
            r.stdout[-800:] + r.stderr)
    r = env.cli(env.req, "list")
    t.check("the requester sees it", r.returncode == 0 and secret in r.stdout, r.stdout[-800:])
    rep = wire(env, env.other, "show", {"id": rid})
    t.check("the show operation (what request --wait polls) refuses it to another user",
            rep.get("ok") is False and rep.get("error", {}).get("code") == "forbidden" and secret not in str(rep),
            str(rep))
    rep = wire(env, env.appr, "show", {"id": rid})
    t.check("and shows it to an approver of the port", rep.get("ok") is True and secret in str(rep), str(rep))
    _, st_other = env.status(env.other)
    _, st_root = env.status()
    t.check("status as another user lists none of the others' grants; root's lists them",
            all(g.get("user") == env.other for g in st_other.get("grants", [])) and
            any(g.get("user") != env.other for g in st_root.get("grants", [])),
            f"{st_other.get('grants')} / {len(st_root.get('grants', []))}")
    env.cli(env.req, "deny", str(rid))


def clock_checks(env, t, connect, P_CLK):
    print("-- a restart in another boot with the wall clock behind: no grant comes back")
    g_behind = env.grant(env.req, f"{P_CLK}/tcp", "5m", reason="clock behind")
    g_capped = env.grant(env.grp, f"{P_CLK}/tcp", "5m", reason="clock capped")
    t.check("two grants on the clock port", g_behind.answer.get("state") == g_capped.answer.get("state") == "granted",
            f"{g_behind.answer} {g_capped.answer}")
    env.stop_daemon()
    now_us = int(time.time() * 1e6)
    db = sqlite3.connect(os.path.join(env.state, "state.db"))
    with db:
        # A reboot (another boot id) with the wall clock a day behind the first
        # grant's start; the second grant's end stored a day away (longer than max_duration).
        db.execute("UPDATE grants SET boot_id = 'e2e-earlier-boot', start_us = ?, expires_us = ? WHERE id = ?",
                   (now_us + 86400 * 10**6, now_us + 86400 * 10**6 + 300 * 10**6, g_behind.answer.get("grant_id")))
        db.execute("UPDATE grants SET boot_id = 'e2e-earlier-boot', expires_us = start_us + ? WHERE id = ?",
                   (86400 * 10**6, g_capped.answer.get("grant_id")))
    db.close()
    env.start_daemon()
    gb = g_behind.answer.get("grant_id")
    t.check("the grant begun 'after' the wall clock is expired at start, ended_by clock_unknown",
            wait_for(lambda: any(r.get("ended_by") == "clock_unknown"
                                 for r in env.audit_records(type="expire", grant_id=gb)), 5),
            str(env.audit_records(grant_id=gb)) + env.daemon_log())
    t.eq("and its holder is refused", connect(env.req, P_CLK), "EPERM")
    t.check("the daemon's log says why", "clock_unknown" in env.daemon_log(), env.daemon_log())
    _, lst = env.cli_json("root", "list", "--active")
    left = [x.get("remaining_s") for x in lst.get("grants", []) if x.get("grant_id") == g_capped.answer.get("grant_id")]
    t.check(f"the other grant is back with its time left capped by max_duration 10m (remaining_s {left})",
            len(left) == 1 and 0 < left[0] <= 600, str(lst))
    t.eq("and its holder connects", connect(env.grp, P_CLK), "ok")


if __name__ == "__main__":
    run_suite(POLICY, run)
