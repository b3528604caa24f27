#!/usr/bin/python3
"""End to end, local users: the real daemon and CLI, real sockets, real
unprivileged users, in a private netns and a child cgroup (harness.py).

usage: e2e_local.py BUILD_DIR
"""
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import PIN_VERSION, PY, flow_result, run_suite, verify_chain, wait_for  # noqa: E402

POLICY = """
[[port]]
name = "db"
port = {port}
proto = "both"
max_duration = "10m"
approvers = ["{appr}", "@{group}"]
self_approve = false
require_reason = true

[[port]]
name = "admin"
port = {port2}
proto = "tcp"
max_duration = "5m"
approvers = ["{appr}"]

[[port]]
name = "drained"
port = {port3}
proto = "tcp"
max_duration = "5m"
approvers = ["{appr}"]
on_expiry = "drain"

[[port]]
name = "drained_udp"
port = {port4}
proto = "udp"
max_duration = "5m"
approvers = ["{appr}"]
on_expiry = "drain"
"""

# Run in a network namespace of its own (a container's): a server on its own
# 127.0.0.1 at PORT and a client of it, TCP and UDP, each way: prints
# "tcp:ok udp:ok", or what failed instead of "ok".
OWN_NETNS = r"""
import errno, socket, sys
port = int(sys.argv[1])


def why(e):
    return errno.errorcode.get(e.errno, str(e)) if getattr(e, "errno", None) else type(e).__name__


def tcp():
    srv, cli = socket.socket(), socket.socket()
    srv.settimeout(3)
    cli.settimeout(3)
    try:
        srv.bind(("127.0.0.1", port))
        srv.listen(1)
        cli.connect(("127.0.0.1", port))
        conn, _ = srv.accept()
        conn.settimeout(3)
        cli.sendall(b"ping")
        if conn.recv(4) != b"ping":
            return "bad-request"
        conn.sendall(b"pong")
        return "ok" if cli.recv(4) == b"pong" else "bad-reply"
    except OSError as e:
        return why(e)


def udp():
    srv, cli = socket.socket(type=socket.SOCK_DGRAM), socket.socket(type=socket.SOCK_DGRAM)
    srv.settimeout(3)
    cli.settimeout(3)
    try:
        srv.bind(("127.0.0.1", port))
        cli.connect(("127.0.0.1", port))
        cli.send(b"ping")
        data, peer = srv.recvfrom(16)
        if data != b"ping":
            return "bad-request"
        srv.sendto(b"pong", peer)
        return "ok" if cli.recv(16) == b"pong" else "bad-reply"
    except OSError as e:
        return why(e)


print(f"tcp:{tcp()} udp:{udp()}")
"""

# Every local address form of the test's host (its netns).
LOCAL_ADDRS = ["127.0.0.1", "127.0.0.53", "0.0.0.0", "::1", "::", "::ffff:127.0.0.1",
               "198.51.100.1", "2001:db8:1::1", "::ffff:198.51.100.1"]


def run(env, t):
    P, OPEN, P2 = env.port, env.port_open, env.port2
    print("-- before the daemon: everything is reachable")
    t.eq("tcp reachable without jitgate", env.probe(env.req, "connect", "tcp", "127.0.0.1", P), "ok")

    env.start_daemon()
    rc, st = env.status(env.other)
    t.eq("status works for any user", rc, 0)
    t.check("all nine cgroup programs attached", len(st.get("programs", [])) == 9 and
            all(p["attached"] for p in st["programs"]), str(st.get("programs")))

    print("-- protected port refuses a local user on every address form")
    for addr in LOCAL_ADDRS:
        for proto in ("tcp", "udp"):
            t.eq(f"{proto} {addr} denied", env.probe(env.req, "connect", proto, addr, P), "EPERM")
    for addr in ("255.255.255.255", "198.51.100.255", "224.0.0.1", "ff02::1"):
        t.eq(f"udp to broadcast/multicast {addr} denied", env.probe(env.req, "connect", "udp", addr, P), "EPERM")
    t.eq("unprotected port still open", env.probe(env.req, "connect", "tcp", "127.0.0.1", OPEN), "ok")
    # A container (a network namespace of its own, still in the cgroup the
    # programs are attached to) uses the protected port number on its own
    # loopback: its traffic is not this host's to gate, either way.
    own = subprocess.run(env.in_cgroup(["unshare", "--net", "sh", "-c", 'ip link set lo up && exec "$@"', "sh"] +
                                       env._drop_to(env.other) + [PY, "-c", OWN_NETNS, str(P)]),
                         text=True, capture_output=True, timeout=60)
    t.eq("a container's own loopback at a protected port number: tcp and udp, both ways",
         own.stdout.strip() or own.stderr.strip(), "tcp:ok udp:ok")
    t.eq("udp on a tcp-only port is not gated", env.probe(env.req, "connect", "udp", "127.0.0.1", P2), "ok")
    t.eq("another host's port is not gated", env.probe(env.req, "connect", "tcp", "203.0.113.2", P), "ok")
    env.nsx("ip", "addr", "add", "198.51.100.7/24", "dev", "jgv0")
    env.nsx("ip", "-6", "addr", "add", "2001:db8:1::7/64", "dev", "jgv0", "nodad")
    time.sleep(0.5)
    t.eq("address added after start denied (v4)", env.probe(env.req, "connect", "tcp", "198.51.100.7", P), "EPERM")
    t.eq("address added after start denied (v6)", env.probe(env.req, "connect", "udp", "2001:db8:1::7", P), "EPERM")

    print("-- refusals: each one sentence and the right exit code")
    r = env.cli(env.req, "request", f"{OPEN}", "--for", "5m", "--reason", "x")
    t.eq("unknown port refused (exit 3)", r.returncode, 3)
    t.check("unknown port message", "not protected" in r.stderr, r.stderr)
    r = env.cli(env.req, "request", f"{P}", "--for", "11m", "--reason", "x")
    t.eq("over max_duration refused (exit 3)", r.returncode, 3)
    t.check("message names the maximum", "10m" in r.stderr, r.stderr)
    r = env.cli(env.req, "request", f"{P}", "--for", "ten", "--reason", "x")
    t.eq("malformed duration is usage (exit 2)", r.returncode, 2)
    r = env.cli(env.req, "request", f"{P}", "--for", "5m")
    t.eq("missing reason refused (exit 3)", r.returncode, 3)

    print("-- request, approval by another user, access for that user only")
    rc, req = env.cli_json(env.req, "request", f"{P}/tcp", "--for", "10m", "--reason", "e2e debug",
                           "--ticket", "OPS-1")
    t.eq("request accepted", (rc, req.get("state")), (0, "pending"))
    rid = req.get("request_id")
    r = env.cli(env.req, "approve", str(rid))
    t.eq("self-approval refused (exit 3)", r.returncode, 3)
    r = env.cli(env.other, "approve", str(rid))
    t.eq("approval by a non-approver refused (exit 3)", r.returncode, 3)
    t.eq("still denied while pending", env.probe(env.req, "connect", "tcp", "127.0.0.1", P), "EPERM")
    rc, ap = env.cli_json(env.appr, "approve", str(rid))
    t.eq("approved by a listed approver", (rc, ap.get("state")), (0, "granted"))
    t.check("approve gives grant_id and expires_at", "grant_id" in ap and "expires_at" in ap, str(ap))
    gid = ap.get("grant_id")
    for addr in ("127.0.0.1", "::1", "198.51.100.1", "2001:db8:1::1", "::ffff:127.0.0.1"):
        t.eq(f"granted user reaches tcp {addr}", env.probe(env.req, "connect", "tcp", addr, P), "ok")
    t.eq("grant is per protocol: udp still denied", env.probe(env.req, "connect", "udp", "127.0.0.1", P), "EPERM")
    print("-- addresses routed to this host without being an interface's (AnyIP local routes)")
    env.nsx("ip", "route", "add", "local", "198.51.100.128/25", "dev", "lo", "table", "local")
    env.nsx("ip", "-6", "route", "add", "local", "2001:db8:5::/64", "dev", "lo", "table", "local")
    try:
        anyip = [("tcp", "198.51.100.130"), ("udp", "198.51.100.200"), ("tcp", "2001:db8:5::9")]
        wait_for(lambda: env.probe(env.other, "connect", "tcp", "198.51.100.130", P) == "EPERM", 5)
        for proto, addr in anyip:
            t.eq(f"AnyIP {addr}: a user without a grant is refused ({proto})",
                 env.probe(env.other, "connect", proto, addr, P), "EPERM")
        t.eq("AnyIP 198.51.100.130: the granted user reaches it",
             env.probe(env.req, "connect", "tcp", "198.51.100.130", P), "ok")
        t.eq("AnyIP 2001:db8:5::9: the granted user reaches it",
             env.probe(env.req, "connect", "tcp", "2001:db8:5::9", P), "ok")
    finally:
        env.nsx("ip", "route", "del", "local", "198.51.100.128/25", "dev", "lo", "table", "local", check=False)
        env.nsx("ip", "-6", "route", "del", "local", "2001:db8:5::/64", "dev", "lo", "table", "local",
                check=False)
    t.eq("another user still denied", env.probe(env.other, "connect", "tcp", "127.0.0.1", P), "EPERM")
    t.eq("root is not exempt", env.probe("root", "connect", "tcp", "127.0.0.1", P), "EPERM")

    print("-- group approver, revoke")
    g2 = env.grant(env.other, f"{P}/udp", "5m", reason="group test", approver=env.grp)
    ap2 = g2.answer
    t.eq("member of the approver group approves", (g2.rc, ap2.get("state")), (0, "granted"))
    t.eq("udp grant opens udp", env.probe(env.other, "connect", "udp", "::1", P), "ok")
    r = env.cli(env.req, "revoke", str(ap2.get("grant_id")))
    t.eq("revoke of someone else's grant by a non-approver refused", r.returncode, 3)
    r = env.cli(env.other, "revoke", str(g2.req.get("request_id")))
    t.eq("holder revokes by request id", r.returncode, 0)
    t.eq("revoked: udp denied again", env.probe(env.other, "connect", "udp", "::1", P), "EPERM")

    print("-- daemon restart keeps the grant; enforcement outlives the daemon")
    env.stop_daemon(signal.SIGTERM)
    t.eq("daemon down: grant still works", env.probe(env.req, "connect", "tcp", "127.0.0.1", P), "ok")
    t.eq("daemon down: others still denied", env.probe(env.other, "connect", "tcp", "127.0.0.1", P), "EPERM")
    r = env.cli(env.req, "status")
    t.eq("CLI without daemon exits 4", r.returncode, 4)
    env.start_daemon()
    _, lst = env.cli_json(env.req, "list", "--active")
    t.check("grant listed after restart", any(g["grant_id"] == gid for g in lst.get("grants", [])), str(lst))
    t.eq("grant works after restart", env.probe(env.req, "connect", "tcp", "::1", P), "ok")
    env.stop_daemon(signal.SIGKILL)
    t.eq("after kill -9: others still denied", env.probe(env.other, "connect", "tcp", "127.0.0.1", P), "EPERM")
    env.start_daemon()
    t.eq("after kill -9 and restart: grant works", env.probe(env.req, "connect", "tcp", "127.0.0.1", P), "ok")

    print("-- an open flow stops when its grant ends")
    ap3 = env.grant(env.req, f"{P2}", "4s", reason="flow test").answer
    t.eq("short grant approved", ap3.get("state"), "granted")
    start = time.monotonic()
    out = env.probe(env.req, "flow", "127.0.0.1", P2, 10)
    took = time.monotonic() - start
    state, n, _ = flow_result(out)
    t.check("tcp flow worked under the grant, then stopped", state == "stopped" and n >= 5, out)
    t.check("the flow stopped near expiry, not at the end of the run", took < 8, f"{took:.1f}s {out}")
    time.sleep(1.5)
    t.eq("new connection after expiry denied", env.probe(env.req, "connect", "tcp", "127.0.0.1", P2), "EPERM")
    _, lst = env.cli_json(env.req, "list", "--all")
    g3 = [g for g in lst.get("grants", []) if g["grant_id"] == ap3.get("grant_id")]
    t.check("expired grant recorded as expired", g3 and g3[0]["state"] == "expired", str(g3))

    env.grant(env.req, f"{P}/udp", "4s", reason="udp flow")
    out = env.probe(env.req, "udpflow", "127.0.0.1", P, 10)
    state, n, why = flow_result(out)
    t.check("connected udp flow stopped at expiry with EPERM", (state, why) == ("stopped", "EPERM") and n >= 5,
            out)

    print("-- a connected UDP socket to broadcast/multicast stops at expiry too")
    for addr in ("198.51.100.255", "ff02::1%jgv0"):
        env.grant(env.req, f"{P}/udp", "3s", reason="bcast")
        out = env.probe(env.req, "udpsend", addr, P, 6)
        state, n, why = flow_result(out)
        t.check(f"udp to {addr}: sends under the grant, EPERM after expiry",
                (state, why) == ("stopped", "EPERM") and n >= 5, out)

    print("-- one user's connection flood does not lock out approvers")
    holder = env.spawn(env.user_argv(env.other, [PY, os.path.join(env.tmp, "probe.py"), "hold", env.sock, "100",
                                                 "8"]))
    kept = holder.stdout.readline().strip()
    t.eq("the daemon keeps exactly 32 connections of one user (the rest are refused)", kept, "32")
    r = env.cli(env.appr, "status")
    t.eq("an approver is still served during the flood", r.returncode, 0)
    holder.kill()
    holder.wait()

    print("-- on_expiry = drain: the open flow finishes, new connections are refused")
    P3 = env.port3
    env.grant(env.req, f"{P3}", "3s", reason="drain test")
    out = env.probe(env.req, "flow", "127.0.0.1", P3, 6)
    state, n, _ = flow_result(out)
    t.check("flow under a drained grant outlives the grant", state == "ok" and n >= 20, out)
    t.eq("new connection after a drained grant expired is denied",
         env.probe(env.req, "connect", "tcp", "127.0.0.1", P3), "EPERM")

    print("-- on_expiry = drain has no UDP connection to let finish: a connected UDP socket is cut at revoke")
    P4 = env.more_ports[0]
    g4 = env.grant(env.req, f"{P4}/udp", "5m", reason="drain udp")
    gid4 = g4.answer.get("grant_id")
    flow = env.spawn(env.user_argv(env.req, [PY, os.path.join(env.tmp, "probe.py"), "udpflow", "127.0.0.1",
                                             str(P4), "8"]))
    # The flow is open once its allow record is there; let it echo a while.
    t.check("the connected UDP socket was admitted under the grant",
            wait_for(lambda: env.audit_records(type="allow", grant_id=gid4), 10), env.daemon_log())
    time.sleep(1)
    r = env.cli(env.req, "revoke", str(g4.req.get("request_id")))
    t.eq("the udp grant on the drain port revoked", r.returncode, 0)
    out = flow.communicate(timeout=30)[0].strip()
    state, n, why = flow_result(out)
    t.check("the connected UDP socket stopped at revoke with EPERM (drain lets TCP finish, not UDP)",
            (state, why) == ("stopped", "EPERM") and n >= 1, out)

    print("-- tamper: a link detached or a pin removed by another root process is repaired at once")
    pin_dir = os.path.join(env.bpffs, "jitgate", PIN_VERSION)

    def links():
        return {p["name"]: (p["link_id"], p["attached"]) for p in env.status()[1].get("programs", [])}

    def all_attached():
        now = links()
        return len(now) == 9 and all(a for _, a in now.values())

    for hook in ("jg_connect4", "jg_connect6", "jg_egress"):
        before = links()
        # The daemon is stopped while the hook is away, so the probes really
        # meet the detached state: the other hooks must refuse on their own.
        env.daemon.send_signal(signal.SIGSTOP)
        try:
            subprocess.run(["bpftool", "link", "detach", "id", str(before[hook][0])], check=True,
                           capture_output=True)
            tries = [env.probe(env.other, "connect", "tcp", a, P) for a in ("127.0.0.1", "::1", "127.0.0.1")]
        finally:
            env.daemon.send_signal(signal.SIGCONT)
        t.check(f"{hook} detached: no forbidden connect succeeds meanwhile", "ok" not in tries, str(tries))
        t.check(f"{hook} attached again within 2 s", wait_for(all_attached, 2), str(links()))
        after = links()
        t.check(f"{hook}: a new link; the others unchanged",
                after[hook][0] != before[hook][0] and
                all(after[h][0] == before[h][0] for h in before if h != hook), f"{before} {after}")
    os.unlink(os.path.join(pin_dir, "jg_grants_uid"))
    os.unlink(os.path.join(pin_dir, "link_jg_ingress"))
    t.check("a removed map pin and link pin are made again within 5 s",
            wait_for(lambda: os.path.exists(os.path.join(pin_dir, "jg_grants_uid")) and
                     os.path.exists(os.path.join(pin_dir, "link_jg_ingress")), 5), str(os.listdir(pin_dir)))
    tam = {r.get("hook") for r in env.audit_records(type="tamper_detected")}
    t.check("each repair recorded as tamper_detected (the three links, the map pin, the link pin)",
            {"jg_connect4", "jg_connect6", "jg_egress", "jg_grants_uid", "jg_ingress"} <= tam, str(tam))
    t.eq("protected as before: a user without a grant is refused",
         env.probe(env.other, "connect", "tcp", "127.0.0.1", P), "EPERM")
    t.eq("and the grant still works", env.probe(env.req, "connect", "tcp", "127.0.0.1", P), "ok")

    print("-- an upgrade across an ABI version: the old version's links go once the new ones hold")
    env.stop_daemon()
    os.rename(pin_dir, os.path.join(env.bpffs, "jitgate", "v0"))  # what an older build would have left
    env.start_daemon()
    cg_progs = env.nsx("bpftool", "cgroup", "show", env.cgroup).stdout.split("\n")
    attached = [ln for ln in cg_progs if ln.strip() and ln.split()[0].isdigit()]
    t.check("nine programs on the cgroup, not eighteen (the v0 links were removed after the new ones were attached)",
            len(attached) == 9, "\n".join(cg_progs))
    t.check("the v0 pin directory is gone, " + PIN_VERSION + " is there",
            not os.path.exists(os.path.join(env.bpffs, "jitgate", "v0")) and os.path.isdir(pin_dir),
            str(os.listdir(os.path.join(env.bpffs, "jitgate"))))
    t.check("the upgrade is recorded", any("upgrade" in r.get("reason", "")
                                          for r in env.audit_records(type="daemon_start")), "")
    t.eq("the grant carried over (from the state store)",
         env.probe(env.req, "connect", "tcp", "127.0.0.1", P), "ok")
    t.eq("and others are refused", env.probe(env.other, "connect", "tcp", "127.0.0.1", P), "EPERM")

    print("-- the audit log")
    recs = env.audit_records()
    types = {r["type"] for r in recs}
    for ty in ("daemon_start", "daemon_stop", "request", "approve", "grant", "revoke", "expire", "deny", "allow"):
        t.check(f"audit has {ty}", ty in types)
    problem = verify_chain(recs)
    t.check("seq is gapless and the hash chain verifies (independent check)", problem is None, str(problem))
    denies = env.audit_records(type="deny", user=env.req)
    t.check("deny records carry uid, user, comm, port, proto, hook, dst",
            denies and all(k in denies[0] for k in ("uid", "user", "comm", "port", "proto", "hook", "dst", "pid")),
            str(denies[:1]))
    allows = env.audit_records(type="allow", grant_id=gid)
    t.check("allow records carry the grant id", len(allows) >= 1, str(allows[:1]))
    grants = env.audit_records(type="grant", grant_id=gid)
    t.check("grant record names approver, reason and ticket",
            grants and grants[0].get("approvers") == [env.appr] and grants[0].get("reason") == "e2e debug" and
            grants[0].get("ticket") == "OPS-1", str(grants[:1]))

    print("-- uninstall removes enforcement and every pin")
    env.stop_daemon()
    pin_dir = os.path.join(env.bpffs, "jitgate")
    r = env.nsx(*env.daemon_args("--uninstall"), check=False)
    t.eq("uninstall exits 0", r.returncode, 0)
    t.check("no pins left", not os.path.exists(pin_dir), str(os.listdir(env.bpffs)))
    t.eq("port open again after uninstall", env.probe(env.other, "connect", "tcp", "127.0.0.1", P), "ok")
    t.check("state dir and audit log kept", os.path.exists(env.state) and os.path.exists(env.audit))


if __name__ == "__main__":
    run_suite(POLICY, run)
