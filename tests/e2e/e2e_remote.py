#!/usr/bin/python3
"""End to end, remote peers: the real daemon with XDP on its veth interface,
peers in another network namespace speaking from several documentation-range
addresses, crafted raw frames, and a REDIRECT in front of a protected port.

usage: e2e_remote.py BUILD_DIR
"""
import json
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import PY, flow_result, run_suite, verify_chain, wait_for  # noqa: E402

POLICY = """
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

[[port]]
name = "lab"
port = {port3}
proto = "tcp"
max_duration = "5m"
approvers = ["{appr}"]
allow_prefix = {{ ipv4 = 24 }}
"""

A, B = "203.0.113.2", "203.0.113.3"            # two peers on one other host
A6, B6 = "2001:db8:1::2", "2001:db8:1::3"
HOST, HOST6 = "203.0.113.1", "2001:db8:1::1"


def setup_network(env):
    env.peerx("ip", "addr", "add", f"{B}/24", "dev", "jgv1")
    env.peerx("ip", "-6", "addr", "add", f"{A6}/64", "dev", "jgv1", "nodad")
    env.peerx("ip", "-6", "addr", "add", f"{B6}/64", "dev", "jgv1", "nodad")


def mac_of(env, dev):
    return json.loads(env.nsx("ip", "-j", "link", "show", dev).stdout)[0]["address"]


def request(env, t, port_spec, src, duration="5m", approve_for=None, label=""):
    """A grant for `src`, each step checked: the approval's answer, or None."""
    g = env.grant(env.req, port_spec, duration, "--from", src, reason=f"remote {label}",
                  approve_args=["--for", approve_for] if approve_for else [])
    if not t.eq(f"request {port_spec} --from {src} accepted", g.req_rc, 0):
        return None
    t.eq(f"approved {port_spec} for {src}", (g.rc, g.answer.get("state")), (0, "granted"))
    return g.answer


def xdp_links(env):
    """The daemon's XDP attachments by interface name (status --json)."""
    return {x.get("interface"): x for x in env.status()[1].get("xdp", [])}


def udp_log(env):
    try:
        with open(env.udp_log) as f:
            return f.read()
    except OSError:
        return ""


def run(env, t):
    P, OPEN, P2, P3 = env.port, env.port_open, env.port2, env.port3
    setup_network(env)
    env.extra_daemon_args = ["--xdp", "jgv0", "--xdp", "jgn0"]
    env.start_daemon()

    print("-- XDP attachment")
    xdp = xdp_links(env)
    t.check("status: XDP on jgv0, native (veth has driver support)",
            xdp.get("jgv0", {}).get("attached") is True and xdp["jgv0"].get("mode") == "native", str(xdp))
    t.check("status: jgn0 named but absent, said so",
            xdp.get("jgn0", {}).get("attached") is False and "no such interface" in xdp["jgn0"].get("note", ""),
            str(xdp))
    env.nsx("ip", "link", "add", "jgn0", "type", "veth", "peer", "name", "jgn1")
    t.check("an interface that appears later gets XDP",
            wait_for(lambda: xdp_links(env).get("jgn0", {}).get("attached") is True, 5))
    env.nsx("ip", "link", "del", "jgn0")
    t.check("a removed interface is reported absent again",
            wait_for(lambda: xdp_links(env).get("jgn0", {}).get("attached") is False, 5))
    link_before = xdp.get("jgv0", {}).get("link_id")
    env.stop_daemon()
    env.start_daemon()
    again = xdp_links(env).get("jgv0", {})
    t.check("a restarted daemon keeps the pinned XDP link (program swapped, no re-attach)",
            again.get("attached") is True and again.get("link_id") == link_before, f"{link_before} {again}")

    print("-- no grant: closed to every peer, every protocol and family")
    t.eq("unprotected port open to peer A (control)", env.peer_probe(env.other, "connect", "tcp", HOST, OPEN,
                                                                     "--src", A), "ok")
    t.eq("peer A tcp to protected port: no answer", env.peer_probe(env.other, "connect", "tcp", HOST, P,
                                                                    "--src", A), "TIMEOUT")
    t.eq("peer A udp to protected port: no answer", env.peer_probe(env.other, "connect", "udp", HOST, P,
                                                                    "--src", A), "TIMEOUT")
    t.eq("peer A6 tcp (IPv6) to protected port: no answer",
         env.peer_probe(env.other, "connect", "tcp", HOST6, P, "--src", A6), "TIMEOUT")
    recs = env.audit_records()
    t.check("deny recorded with the source address, by XDP",
            any(r.get("type") == "deny" and r.get("src") == A and r.get("port") == P and r.get("hook") == "xdp"
                for r in recs), str([r for r in recs if r.get("type") == "deny"][-3:]))
    t.check("IPv6 deny carries the IPv6 source",
            any(r.get("type") == "deny" and r.get("src") == A6 and r.get("port") == P for r in recs))

    print("-- a grant for A's address opens the port to A only")
    ap = request(env, t, f"{P}/tcp", A, label="A")
    t.eq("grant names its source", (ap or {}).get("src"), A)
    t.eq("peer A tcp now connects", env.peer_probe(env.other, "connect", "tcp", HOST, P, "--src", A), "ok")
    t.eq("peer B (other address, same host) still refused",
         env.peer_probe(env.other, "connect", "tcp", HOST, P, "--src", B), "TIMEOUT")
    t.eq("peer A udp (other proto) still refused",
         env.peer_probe(env.other, "connect", "udp", HOST, P, "--src", A), "TIMEOUT")
    t.eq("peer A to another protected port still refused",
         env.peer_probe(env.other, "connect", "tcp", HOST, P2, "--src", A), "TIMEOUT")
    t.eq("peer A from IPv6 (other address) still refused",
         env.peer_probe(env.other, "connect", "tcp", HOST6, P, "--src", A6), "TIMEOUT")
    allows = env.audit_records(type="allow", src=A)
    t.eq("one allow record for the one connection, with src and grant_id",
         [(r.get("port"), r.get("grant_id"), r.get("hook")) for r in allows],
         [(P, (ap or {}).get("grant_id"), "ingress")])

    print("-- IPv6 and IPv4-mapped sources")
    request(env, t, f"{P}/udp", A6, label="A6")
    t.eq("peer A6 udp (IPv6) connects", env.peer_probe(env.other, "connect", "udp", HOST6, P, "--src", A6), "ok")
    t.eq("peer B6 udp still refused", env.peer_probe(env.other, "connect", "udp", HOST6, P, "--src", B6),
         "TIMEOUT")
    rc, req = env.cli_json(env.req, "request", f"{P}/tcp", "--for", "5m", "--reason", "mapped", "--from",
                           f"::ffff:{B}")
    t.eq("an IPv4-mapped address is stored as IPv4", (rc, req.get("src")), (0, B))
    env.cli_json(env.appr, "deny", str(req.get("request_id")))

    print("-- prefixes only where the policy allows them")
    r = env.cli(env.req, "request", f"{P}/tcp", "--for", "5m", "--reason", "net", "--from", "203.0.113.0/24")
    t.eq("a /24 on a port without allow_prefix is refused (exit 3)", r.returncode, 3)
    t.check("the refusal says why", "allow_prefix" in (r.stderr + r.stdout), r.stderr)
    r = env.cli(env.req, "request", f"{P3}", "--for", "5m", "--reason", "net", "--from", "203.0.0.0/16")
    t.eq("a /16 where the policy allows /24 is refused (exit 3)", r.returncode, 3)
    request(env, t, f"{P3}", "203.0.113.0/24", label="lab net")
    t.eq("peer B inside the granted /24 connects",
         env.peer_probe(env.other, "connect", "tcp", HOST, P3, "--src", B), "ok")
    t.eq("peer B6 (outside it) refused", env.peer_probe(env.other, "connect", "tcp", HOST6, P3, "--src", B6),
         "TIMEOUT")

    print("-- expiry and revocation end an open connection")
    ap = request(env, t, f"{P2}", A, duration="5m", approve_for="3s", label="expiry")
    out = env.peer_probe(env.other, "flow", HOST, P2, "8", "--src", A)
    state, n, _ = flow_result(out)
    t.check("the open connection stops at expiry (3 s: about 15 echoes)", state == "stopped" and 5 <= n <= 17, out)
    t.eq("a new connection after expiry is refused",
         env.peer_probe(env.other, "connect", "tcp", HOST, P2, "--src", A), "TIMEOUT")
    t.check("expire recorded with the source",
            wait_for(lambda: any(r.get("type") == "expire" and r.get("src") == A and r.get("port") == P2
                                 for r in env.audit_records()), 3))

    grant_a = None
    _, lst = env.cli_json(env.req, "list", "--active")
    for g in lst.get("grants", []):
        if g.get("src") == A and g.get("port") == P and g.get("proto") == "tcp":
            grant_a = g.get("grant_id")
    result = {}

    def flow():
        result["out"] = env.peer_probe(env.other, "flow", HOST, P, "8", "--src", A)
    th = threading.Thread(target=flow)
    th.start()
    time.sleep(1.5)
    r = env.cli(env.req, "revoke", str(grant_a))
    t.eq("the requester revokes the remote grant", r.returncode, 0)
    th.join()
    state, n, _ = flow_result(result.get("out", ""))
    t.check("the open connection stops at revocation", state == "stopped" and 2 <= n <= 12, result.get("out"))

    print("-- REDIRECT: the receiving socket's port is what counts")
    R_DENY, R_OK = OPEN + 1 if OPEN + 1 not in (P, P2, P3) else OPEN + 2, OPEN + 3
    nft = f"""
table ip jgt_e2e {{
  chain pre {{
    type nat hook prerouting priority dstnat;
    tcp dport {R_DENY} redirect to :{P2}
    tcp dport {R_OK} redirect to :{OPEN}
  }}
}}
"""
    subprocess.run(["nsenter", f"--net=/run/netns/{env.ns}", "nft", "-f", "-"], input=nft, text=True,
                   check=True, capture_output=True)
    # A raw TCP socket on the host gets a copy of every TCP packet: it is
    # judged by the packet's headers (its own "port" is a protocol number).
    raw = {}

    def sniff():
        raw["out"] = env.probe("root", "rawcount", "5", P2, OPEN)
    th = threading.Thread(target=sniff)
    th.start()
    time.sleep(0.5)
    t.eq("redirect to an unprotected port works (control)",
         env.peer_probe(env.other, "connect", "tcp", HOST, R_OK, "--src", B), "ok")
    t.eq("redirect to a protected port is refused (XDP saw an open port)",
         env.peer_probe(env.other, "connect", "tcp", HOST, R_DENY, "--src", B), "TIMEOUT")
    th.join()
    counts = dict(x.split(":") for x in raw.get("out", "").split() if ":" in x)
    t.check("a raw socket saw the allowed packets but none for the protected port",
            int(counts.get(str(OPEN), 0)) > 0 and counts.get(str(P2)) == "0", raw.get("out"))
    t.check("the refusal came from cgroup_skb/ingress, by socket port",
            any(r.get("type") == "deny" and r.get("hook") == "ingress" and r.get("port") == P2 and
                r.get("src") == B for r in env.audit_records()))

    print("-- crafted frames to a protected UDP port are never delivered")
    dst_mac = mac_of(env, "jgv0")
    kinds = [("plain", B, HOST), ("vlan", B, HOST), ("qinq", B, HOST), ("frag", B, HOST),
             ("ext6", B6, HOST6), ("frag6", B6, HOST6)]
    for kind, src, dst in kinds:
        for port in (OPEN, P):
            r = env.as_peer("root", [PY, os.path.join(env.tmp, "frames.py"), "jgv1", dst_mac, kind, src, dst,
                                     str(port), f"m-{kind}-{port}"])
            t.eq(f"{kind} frames to {port} sent", r.returncode, 0) or print(r.stderr)
    wait_for(lambda: all(f"m-{k}-{OPEN}" in udp_log(env) for k, _, _ in kinds), 3)
    time.sleep(0.5)
    log = udp_log(env)
    for kind, _, _ in kinds:
        t.check(f"{kind}: delivered to the unprotected port (the frame is valid)", f"m-{kind}-{OPEN}" in log, log)
        t.check(f"{kind}: never delivered to the protected port", f"m-{kind}-{P}" not in log, log)
    # With a grant, the same frames arrive: the refusal above was the policy.
    request(env, t, f"{P}/udp", B, label="frames")
    request(env, t, f"{P}/udp", B6, label="frames6")
    for kind, src, dst in kinds:
        env.as_peer("root", [PY, os.path.join(env.tmp, "frames.py"), "jgv1", dst_mac, kind, src, dst, str(P),
                             f"g-{kind}-{P}"])
    wait_for(lambda: all(f"g-{k}-{P}" in udp_log(env) for k, _, _ in kinds), 3)
    log = udp_log(env)
    for kind, _, _ in kinds:
        t.check(f"{kind}: delivered to the protected port under a grant", f"g-{kind}-{P}" in log, log)

    print("-- counters and the audit chain")
    c = env.counters()
    t.check("XDP and ingress drops counted", c.get("xdp_drop", 0) > 0 and c.get("ingress_drop", 0) > 0, str(c))
    env.stop_daemon()
    problem = verify_chain(env.audit_records())
    t.check("audit chain verifies", problem is None, str(problem))


if __name__ == "__main__":
    run_suite(POLICY, run)
