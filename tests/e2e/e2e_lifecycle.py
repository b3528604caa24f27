#!/usr/bin/python3
"""End to end, enforcement across the daemon's life (issue 6): kill -9 and
restart, a grant expiring while no daemon runs, `bpftool link detach` of each
cgroup link (and of jg_ingress again with XDP in front of it), a start over
an install whose guard link is pinned under its old name, an upgrade
(SIGTERM, then another build of jitgated) with a grant held and a connection
open under it, and --uninstall.  Throughout each of these phases
a storm (probe.py storm) tries a forbidden connect every few milliseconds,
from a local user without a grant (127.0.0.1, ::1 and the host's own
198.51.100.1) and from the peer host (to 203.0.113.1): it must never succeed.
Last, [daemon] max_grants (issue 18, no storm): a map of 16 full, a restart
asking another size over the pinned maps, and 1048576 after --uninstall.
Real daemon, real CLI, real unprivileged users, a private netns and child
cgroup (harness.py).

usage: e2e_lifecycle.py BUILD_DIR
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import PIN_VERSION, PY, Keeper, run_suite, sh, verify_chain, wait_for, wall  # noqa: E402

POLICY = """
[[port]]
name = "db"
port = {port}
proto = "both"
max_duration = "10m"
approvers = ["{appr}"]
"""

LOCAL = "127.0.0.1,::1,198.51.100.1"  # every local path: loopback v4, v6, an interface address
HOST = "203.0.113.1"                  # the host as the peer reaches it
INTERVAL_MS = 5                       # a new forbidden attempt this often, per storm
STORM_MAX_S = 40                      # a storm's own bound; the test stops it sooner
MIN_ATTEMPTS = 20                     # fewer means the storm did not really run
HOOKS = ("jg_connect4", "jg_connect6", "jg_sendmsg4", "jg_sendmsg6", "jg_egress", "jg_ingress", "jg_guard", "jg_bind4",
         "jg_bind6")
REATTACH_BOUND_S = 2.0


def parse_storm(out):
    """"attempts N successes M refused R timeouts T [errors ...]" -> dict (None if not that)."""
    parts = out.split()
    try:
        d = {parts[i]: int(parts[i + 1]) for i in range(0, 8, 2)}
    except (IndexError, ValueError):
        return None
    if set(d) != {"attempts", "successes", "refused", "timeouts"}:
        return None
    d["errors"] = " ".join(parts[9:]) if len(parts) > 8 and parts[8] == "errors" else ""
    return d


class Storm:
    """probe.py storm in the background as `user` (no grant): locally from the
    test cgroup, or from the peer host."""

    def __init__(self, env, label, proto, addrs, user, peer=False):
        self.label = label
        argv = [PY, os.path.join(env.tmp, "probe.py"), "storm", proto, addrs, str(env.port), str(STORM_MAX_S),
                str(INTERVAL_MS)]
        self.p = env.spawn(env.peer_argv(user, argv) if peer else env.user_argv(user, argv))
        self.first = self.p.stdout.readline().strip()

    def stop(self):
        """Stops the storm; its tally (a dict), or the raw output when it failed."""
        if self.first != "storming":
            return self.first or "no output"
        self.p.send_signal(signal.SIGTERM)
        try:
            out, _ = self.p.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.p.kill()
            return "hung"
        lines = out.strip().splitlines()
        return parse_storm(lines[-1]) or out.strip()


class Storms:
    """The storms of one phase, and the figures of every phase for the summary."""
    figures = []  # (phase, storm label, tally)

    def __init__(self, env, phase, *kinds):
        self.phase = phase
        self.storms = []
        for kind in kinds:
            if kind == "local-tcp":
                self.storms.append(Storm(env, "local tcp", "tcp", LOCAL, env.other))
            elif kind == "local-udp":
                self.storms.append(Storm(env, "local udp", "udp", LOCAL, env.other))
            elif kind == "peer-tcp":
                self.storms.append(Storm(env, "peer tcp", "tcp", HOST, env.other, peer=True))
            elif kind == "peer-udp":
                self.storms.append(Storm(env, "peer udp", "udp", HOST, env.other, peer=True))

    def stop(self, t):
        """Stops every storm and checks each saw zero successes (and really ran)."""
        for s in self.storms:
            Storms.check(t, self.phase, s.label, s.stop())

    @staticmethod
    def check(t, phase, label, tally):
        if not isinstance(tally, dict):
            t.check(f"{phase}: {label} storm ran", False, str(tally))
            return
        Storms.figures.append((phase, label, tally))
        t.check(f"{phase}: {label} storm: {tally['attempts']} attempts, {tally['successes']} successes "
                f"({tally['refused']} refused, {tally['timeouts']} timeouts)",
                tally["successes"] == 0 and tally["attempts"] >= MIN_ATTEMPTS, str(tally))




def links(env):
    """{program name: (link id, attached)} from `jitgate status --json`."""
    return {p["name"]: (p["link_id"], p["attached"]) for p in env.status()[1].get("programs", [])}


def prog_ids(link_ids):
    """{name: the id of the program running inside that link} as bpftool sees it."""
    out = {}
    for name, lid in link_ids.items():
        r = sh("bpftool", "-j", "link", "show", "id", str(lid), check=False)
        try:
            out[name] = json.loads(r.stdout).get("prog_id") if r.returncode == 0 else None
        except ValueError:
            out[name] = None
    return out


def ids(ls):
    return {n: lid for n, (lid, _) in ls.items()}


def cgroup_progs(env):
    """The programs bpftool sees attached to the test cgroup: [(attach type, name)]."""
    r = sh("bpftool", "-j", "cgroup", "show", env.cgroup, check=False)
    if r.returncode != 0:
        return [("bpftool failed", r.stderr.strip())]
    try:
        return sorted((p.get("attach_type"), p.get("name")) for p in json.loads(r.stdout.strip() or "[]"))
    except ValueError:
        return [("unreadable", r.stdout + r.stderr)]


def udp_storm_lines(env, since):
    """Datagrams of a storm that reached the host's server, logged after byte `since` of the UDP log."""
    try:
        with open(env.udp_log) as f:
            f.seek(since)
            return [line for line in f.read().splitlines() if line.startswith(f"{env.port} storm")]
    except OSError:
        return []


def udp_log_size(env):
    try:
        return os.path.getsize(env.udp_log)
    except OSError:
        return 0


def tampered(env, hook):
    return len([x for x in env.audit_records(type="tamper_detected") if x.get("hook") == hook])


def detach_once(env, t, hook, phase):
    """Detaches `hook`'s link with bpftool while storms run, and checks the
    daemon attached it again, told the audit log, and let nothing through."""
    before = links(env)
    if hook not in before:
        t.check(f"{hook} is listed by jitgate status", False, str(before))
        return
    log_at = udp_log_size(env)
    recorded = tampered(env, hook)
    drops = env.counters().get("egress_drop", 0)
    storms = Storms(env, phase, "local-tcp", "local-udp", "peer-tcp", "peer-udp")
    time.sleep(0.2)
    start = time.monotonic()
    r = sh("bpftool", "link", "detach", "id", str(before[hook][0]), check=False)
    t.eq(f"{phase}: bpftool link detach id {before[hook][0]}", r.returncode, 0)
    if hook in ("jg_sendmsg4", "jg_sendmsg6"):
        # Unconnected datagrams while sendmsg is detached: the egress backstop.
        outs = [env.probe(env.other, "connect", "udp", a, env.port) for a in ("127.0.0.1", "::1")]
        t.check(f"{phase}: no UDP datagram answered meanwhile ({outs})", "ok" not in outs, str(outs))

    def back():
        now = links(env)
        return len(now) == len(HOOKS) and all(a for _, a in now.values()) and now[hook][0] != before[hook][0]

    back_ok = wait_for(back, REATTACH_BOUND_S)
    took = time.monotonic() - start
    after = links(env)
    t.check(f"{phase}: attached again as a new link {took * 1000:.0f} ms after the detach "
            f"(bound {REATTACH_BOUND_S:.0f} s)", back_ok and took <= REATTACH_BOUND_S + 0.2, f"{before} {after}")
    t.check(f"{phase}: the other {len(HOOKS) - 1} links unchanged",
            all(after.get(h, (None,))[0] == before[h][0] for h in before if h != hook), f"{before} {after}")
    time.sleep(0.3)
    storms.stop(t)
    print(f"     {phase}: the egress backstop dropped {env.counters().get('egress_drop', 0) - drops} packets")
    reached = udp_storm_lines(env, log_at)
    t.check(f"{phase}: no storm datagram reached the server ({len(reached)} logged)", not reached,
            str(reached[:3]))
    t.check(f"{phase}: recorded as tamper_detected with hook {hook}",
            wait_for(lambda: tampered(env, hook) == recorded + 1, 2),
            str(env.audit_records(type="tamper_detected")[-3:]))


def run(env, t):
    P = env.port
    LO = "127.0.0.1"

    def connect(user, addr=LO, proto="tcp"):
        return env.probe(user, "connect", proto, addr, P)

    env.start_daemon()
    before_any = links(env)
    t.check("nine cgroup links attached", len(before_any) == len(HOOKS) and all(a for _, a in before_any.values()),
            str(before_any))
    holder = env.grant(env.req, f"{P}/tcp", "10m", reason="held across the lifecycle")
    t.eq("a grant for another user (the holder)", holder.answer.get("state"), "granted")
    t.eq("the holder connects", connect(env.req), "ok")
    t.eq("a user without a grant is refused", connect(env.other), "EPERM")
    t.eq("the peer gets no answer", env.peer_probe(env.other, "connect", "tcp", HOST, P), "TIMEOUT")

    print("-- kill -9 of jitgated, then a restart: the links are re-adopted, never re-attached")
    tamper_before = len(env.audit_records(type="tamper_detected"))
    held = Keeper(env, env.req, env.port, 7)
    t.check("the holder has a connection open under the grant", held.connected, held.first)
    storms = Storms(env, "kill -9", "local-tcp", "local-udp", "peer-tcp")
    time.sleep(0.3)
    ls = links(env)
    progs = prog_ids(ids(ls))
    pid = env.daemon.pid
    env.stop_daemon(signal.SIGKILL)
    t.check("jitgated is gone", not os.path.exists(f"/proc/{pid}"), str(pid))
    t.eq("daemon dead: the CLI exits 4", env.cli(env.other, "status").returncode, 4)
    t.eq("daemon dead: the holder still connects (127.0.0.1)", connect(env.req), "ok")
    t.eq("daemon dead: the holder still connects (::1)", connect(env.req, "::1"), "ok")
    t.eq("daemon dead: a user without a grant is refused", connect(env.other), "EPERM")
    time.sleep(1.0)
    env.start_daemon()
    after = links(env)
    t.check("after restart: jitgate status shows the same nine link ids, all attached",
            ids(after) == ids(ls) and all(a for _, a in after.values()), f"{ls} -> {after}")
    new_progs = prog_ids(ids(after))
    t.check("after restart: each link runs a newly loaded program (swapped inside the link)",
            all(new_progs[n] and progs[n] and new_progs[n] != progs[n] for n in progs), f"{progs} -> {new_progs}")
    t.eq("after restart: no tamper_detected (nothing had to be attached again)",
         len(env.audit_records(type="tamper_detected")), tamper_before)
    t.eq("after restart: the holder still connects", connect(env.req), "ok")
    time.sleep(0.3)
    storms.stop(t)
    out = held.result()
    t.check(f"the holder's open connection lasted through kill -9 and restart: {out}",
            out.startswith("ok ") and int(out.split()[1]) >= 40, out)

    print("-- a grant expiring while no daemon runs")
    storms = Storms(env, "expiry while down", "local-tcp", "peer-tcp")
    g = env.grant(env.grp, f"{P}/tcp", "3s", reason="expires while the daemon is down")
    exp = wall(g.answer.get("expires_at"))
    gid = g.answer.get("grant_id")
    held = Keeper(env, env.grp, env.port, 8)
    env.stop_daemon(signal.SIGKILL)
    still = connect(env.grp)
    t.check("daemon dead: the 3 s grant works before its expiry",
            still == "ok" and exp is not None and time.time() < exp, f"{still} {g.answer}")
    wait_for(lambda: exp is not None and time.time() > exp + 0.3, 6)
    late = Storm(env, "grant holder after expiry", "tcp", LOCAL, env.grp)
    t.eq(f"daemon dead, {time.time() - (exp or 0):.1f} s after expiry: refused (EPERM)", connect(env.grp), "EPERM")
    time.sleep(0.5)
    Storms.check(t, "expiry while down", "the expired holder's local tcp", late.stop())
    out = held.result()
    parts = out.split()
    stopped_after = float(parts[3]) - exp if len(parts) == 4 and exp else None
    t.check(f"daemon dead: a connection open under the grant stopped passing data at expiry ({out}; "
            f"{stopped_after if stopped_after is None else round(stopped_after, 2)} s after expiry)",
            held.connected and parts[0] == "stopped" and int(parts[1]) >= 5 and stopped_after is not None and
            0 <= stopped_after <= 3.0, f"{held.first} {out}")
    env.start_daemon()
    _, lst = env.cli_json(env.grp, "list", "--all")
    t.eq("after restart: the grant is listed expired",
         [x.get("state") for x in lst.get("grants", []) if x.get("grant_id") == gid], ["expired"])
    t.check("after restart: an expire record for it is written",
            wait_for(lambda: len(env.audit_records(type="expire", grant_id=gid)) == 1, 3),
            str(env.audit_records(type="expire", grant_id=gid)))
    t.check("and it is not among the active grants",
            all(x.get("grant_id") != gid for x in env.status()[1].get("grants", [])))
    t.eq("the holder's 10m grant still works", connect(env.req), "ok")
    storms.stop(t)

    print("-- bpftool link detach of each cgroup link, a storm running: attached again, recorded")
    for hook in HOOKS:
        detach_once(env, t, hook, f"detach {hook}")
    progs = cgroup_progs(env)
    t.check(f"the cgroup holds exactly {len(HOOKS)} programs afterwards (no leftover attachment): {len(progs)}",
            len(progs) == len(HOOKS) and len({n for _, n in progs}) == len(HOOKS), str(progs))
    t.eq("the holder still connects", connect(env.req), "ok")
    t.eq("a user without a grant is still refused", connect(env.other), "EPERM")

    print("-- each ingress link detached while the daemon is stopped: the other refuses the peer alone")
    for hook in ("jg_ingress", "jg_guard"):
        before = links(env)
        guard = env.counters().get("guard_drop", 0)
        env.daemon.send_signal(signal.SIGSTOP)
        try:
            r = sh("bpftool", "link", "detach", "id", str(before[hook][0]), check=False)
            tries = [env.peer_probe(env.other, "connect", proto, HOST, P) for proto in ("tcp", "udp", "tcp")]
        finally:
            env.daemon.send_signal(signal.SIGCONT)
        t.check(f"{hook} detached (daemon stopped): the peer gets no answer over TCP or UDP",
                r.returncode == 0 and tries == ["TIMEOUT"] * 3, f"{r.returncode} {tries}")
        if hook == "jg_ingress":
            t.check("the guard's drops are counted",
                    env.counters().get("guard_drop", 0) >= guard + 3, str(env.counters()))
        t.check(f"{hook}: attached again once the daemon runs",
                wait_for(lambda: all(a for _, a in links(env).values()) and links(env)[hook][0] != before[hook][0],
                         REATTACH_BOUND_S), str(links(env)))

    print("-- an install from before jg_ingress_guard was renamed jg_guard: its link replaced, not left behind")
    pin_dir = os.path.join(env.bpffs, "jitgate", PIN_VERSION)
    old_pin, new_pin = os.path.join(pin_dir, "link_jg_ingress_guard"), os.path.join(pin_dir, "link_jg_guard")
    ls = links(env)
    old_id = ls["jg_guard"][0]
    tamper_before = len(env.audit_records(type="tamper_detected"))
    env.stop_daemon(signal.SIGTERM)
    # As an older jitgated left it: the guard's link attached, pinned under the old name only.
    r = sh("bpftool", "link", "pin", "id", str(old_id), old_pin, check=False)
    os.unlink(new_pin)
    t.check("the old install's guard link is pinned as link_jg_ingress_guard only, and attached",
            r.returncode == 0 and os.path.exists(old_pin) and not os.path.exists(new_pin) and
            len(cgroup_progs(env)) == len(HOOKS), f"{r.stderr} {os.listdir(pin_dir)} {cgroup_progs(env)}")
    env.start_daemon()
    after = links(env)
    t.check("after start: jg_guard attached as a new link pinned as link_jg_guard",
            after.get("jg_guard", (old_id, False))[1] and after["jg_guard"][0] != old_id and
            os.path.exists(new_pin), f"{after} {os.listdir(pin_dir)}")
    t.check("the old pin link_jg_ingress_guard is gone", not os.path.exists(old_pin), str(os.listdir(pin_dir)))
    t.check(f"the old link (id {old_id}) no longer exists",
            wait_for(lambda: sh("bpftool", "link", "show", "id", str(old_id), check=False).returncode != 0, 3))
    progs = cgroup_progs(env)
    t.check(f"the cgroup holds exactly {len(HOOKS)} programs (no stale guard left attached): {len(progs)}",
            len(progs) == len(HOOKS) and len({n for _, n in progs}) == len(HOOKS), str(progs))
    t.eq("no tamper_detected for the old link", len(env.audit_records(type="tamper_detected")), tamper_before)
    t.eq("the peer still gets no answer", env.peer_probe(env.other, "connect", "tcp", HOST, P), "TIMEOUT")
    t.eq("the holder still connects", connect(env.req), "ok")

    print("-- a link_jg_ingress_guard pin holding another link: unpinned, the link it held not detached")
    ls = links(env)
    ingress_id = ls["jg_ingress"][0]
    env.stop_daemon(signal.SIGTERM)
    r = sh("bpftool", "link", "pin", "id", str(ingress_id), old_pin, check=False)
    t.check("jg_ingress's own link is also pinned as link_jg_ingress_guard", r.returncode == 0, r.stderr)
    env.start_daemon()
    after = links(env)
    t.check("the pin link_jg_ingress_guard is gone", not os.path.exists(old_pin), str(os.listdir(pin_dir)))
    t.check(f"jg_ingress's link (id {ingress_id}) stays attached, not detached by the old name",
            after.get("jg_ingress", (0, False)) == (ingress_id, True), str(after))
    t.eq("no tamper_detected for it", len(env.audit_records(type="tamper_detected")), tamper_before)
    t.eq("the peer still gets no answer after it", env.peer_probe(env.other, "connect", "tcp", HOST, P), "TIMEOUT")

    print("-- the same for jg_ingress with XDP on jgv0 (the early drop) in front of it")
    ls = links(env)
    env.stop_daemon(signal.SIGTERM)
    env.extra_daemon_args = ["--xdp", "jgv0"]
    env.start_daemon()
    xdp = {x.get("interface"): x for x in env.status()[1].get("xdp", [])}
    t.check("restarted with --xdp jgv0: XDP attached, the nine links kept",
            xdp.get("jgv0", {}).get("attached") is True and ids(links(env)) == ids(ls), f"{xdp} {links(env)}")
    detach_once(env, t, "jg_ingress", "XDP on, detach jg_ingress")

    print("-- upgrade with a grant held: SIGTERM, then another build of jitgated")
    new_bin = os.path.join(env.tmp, "jitgated.new")
    shutil.copy2(env.jitgated, new_bin)
    held = Keeper(env, env.req, env.port, 5)
    t.check("the holder has a connection open under the grant", held.connected, held.first)
    storms = Storms(env, "upgrade", "local-tcp", "local-udp", "peer-tcp")
    time.sleep(0.3)
    ls = links(env)
    progs = prog_ids(ids(ls))
    xdp_before = {x.get("interface"): x.get("link_id") for x in env.status()[1].get("xdp", [])}
    old = env.daemon
    env.stop_daemon(signal.SIGTERM)
    t.eq("the old build exits 0 on SIGTERM (sanitizers found nothing)", old.returncode, 0)
    env.start_daemon(binary=new_bin)
    exe = os.readlink(f"/proc/{env.daemon.pid}/exe")
    t.eq("the new build is what runs now", exe, new_bin)
    after = links(env)
    t.check("after the upgrade: the same nine link ids, all attached",
            ids(after) == ids(ls) and all(a for _, a in after.values()), f"{ls} -> {after}")
    new_progs = prog_ids(ids(after))
    t.check("after the upgrade: the new build's programs run inside those links (bpf_link__update_program)",
            all(new_progs[n] and progs[n] and new_progs[n] != progs[n] for n in progs), f"{progs} -> {new_progs}")
    xdp_after = {x.get("interface"): x.get("link_id") for x in env.status()[1].get("xdp", [])}
    t.check("after the upgrade: the XDP link kept too", xdp_after == xdp_before and xdp_after.get("jgv0"),
            f"{xdp_before} -> {xdp_after}")
    t.eq("after the upgrade: the grant still works", connect(env.req), "ok")
    _, lst = env.cli_json(env.req, "list", "--active")
    t.check("after the upgrade: the grant is listed active",
            any(x.get("grant_id") == holder.answer.get("grant_id") for x in lst.get("grants", [])), str(lst))
    out = held.result()
    t.check(f"the open connection survived the upgrade: {out}", out.startswith("ok ") and int(out.split()[1]) >= 40,
            out)
    storms.stop(t)

    print("-- jitgated --uninstall")
    cg_before = cgroup_progs(env)
    t.eq("before: nine programs on the test cgroup", len(cg_before), len(HOOKS))
    link_ids = ids(links(env))
    old = env.daemon
    env.stop_daemon()
    t.eq("the new build exits 0 on SIGTERM (sanitizers found nothing)", old.returncode, 0)
    r = env.nsx(*env.daemon_args("--uninstall"), check=False)
    t.eq("uninstall exits 0", r.returncode, 0)
    pin_root = os.path.join(env.bpffs, "jitgate")
    t.check("every pin is gone", not os.path.exists(pin_root), str(os.listdir(env.bpffs)))
    t.eq("bpftool cgroup show on the test cgroup: empty", cgroup_progs(env), [])
    link_json = json.loads(env.nsx("ip", "-j", "link", "show", "jgv0").stdout)
    t.check("no XDP program left on jgv0", link_json and "xdp" not in link_json[0], str(link_json))
    left = [lid for lid in link_ids.values()
            if sh("bpftool", "link", "show", "id", str(lid), check=False).returncode == 0]
    t.eq("none of the nine links exists any more", left, [])
    t.check("the state dir and the audit log are kept",
            os.path.exists(os.path.join(env.state, "state.db")) and os.path.getsize(env.audit) > 0)
    t.eq("the port is open again after uninstall", connect(env.other), "ok")
    problem = verify_chain(env.audit_records())
    t.check("the audit log chains across every restart (independent check)", problem is None, str(problem))

    print("-- storm figures (attempts / successes / refused / timeouts)")
    tot = {"attempts": 0, "successes": 0, "refused": 0, "timeouts": 0}
    for phase, label, tally in Storms.figures:
        print(f"     {phase:26} {label:30} {tally['attempts']:6} {tally['successes']:4} {tally['refused']:6} "
              f"{tally['timeouts']:6}  {tally['errors']}")
        for k in tot:
            tot[k] += tally[k]
    print(f"     {'total':57} {tot['attempts']:6} {tot['successes']:4} {tot['refused']:6} {tot['timeouts']:6}")
    t.check(f"in all: {tot['attempts']} forbidden attempts, {tot['successes']} successes", tot["successes"] == 0,
            str(tot))


MAX_GRANTS_POLICY = """
[daemon]
max_grants = {max_grants}
""" + "".join(f"""
[[port]]
name = "p{i}"
port = {{{name}}}
approvers = ["{{appr}}"]
""" for i, name in enumerate(("port", "port2", "port3", "port4", "port5", "port6")))


def pinned_grant_map(env, name="jg_grants_uid"):
    """(max_entries, entries) of a pinned grant map as bpftool sees it."""
    pin = os.path.join(env.bpffs, "jitgate", f"v{env.status()[1].get('abi_version')}", name)
    show = sh("bpftool", "-j", "map", "show", "pinned", pin, check=False)
    dump = sh("bpftool", "-j", "map", "dump", "pinned", pin, check=False)
    try:
        return json.loads(show.stdout).get("max_entries"), len(json.loads(dump.stdout))
    except ValueError:
        return None, None


def log_since(env, offset):
    """What jitgated logged from byte `offset` of its log on."""
    with open(os.path.join(env.tmp, "jitgated.log")) as f:
        f.seek(offset)
        return f.read()


def log_size(env):
    path = os.path.join(env.tmp, "jitgated.log")
    return os.path.getsize(path) if os.path.exists(path) else 0


def max_grants(env, t):
    """[daemon] max_grants (issue 18): 16 grants fit and the 17th approval is
    refused naming 16; a restart asking for another size keeps the pinned
    maps and says so; after --uninstall the maps are made with the new size."""
    print("-- [daemon] max_grants = 16: sixteen grants, the seventeenth refused")
    # A state of its own: the grants of the phases above are not counted here.
    env.state, env.audit = os.path.join(env.tmp, "state-max"), os.path.join(env.tmp, "audit-max.jsonl")
    env.extra_daemon_args = []
    env.write_policy(env.render(MAX_GRANTS_POLICY.replace("{max_grants}", "16")))
    env.start_daemon()
    _, st = env.status()
    t.check("status --json: max_grants 16 (and 16 configured)",
            st.get("max_grants") == 16 and st.get("max_grants_configured") == 16, str(st.get("max_grants")))
    t.check("status says the capacity", "grant capacity: 16 per grant map" in env.cli("root", "status").stdout)
    ports = [env.port, env.port2, env.port3] + env.more_ports[:3]
    pairs = [(u, p) for u in (env.req, env.other, env.grp) for p in ports][:17]
    answers = [env.grant(u, f"{p}/tcp", "10m", reason="fills the map") for u, p in pairs[:16]]
    t.eq("16 (user, port) grants granted", [a.answer.get("state") for a in answers], ["granted"] * 16)
    t.eq("bpftool: jg_grants_uid holds 16 of 16", pinned_grant_map(env), (16, 16))
    user17, port17 = pairs[16]
    rc, req = env.cli_json(user17, "request", f"{port17}/tcp", "--for", "10m", "--reason", "one too many")
    r = env.cli(env.appr, "approve", str(req.get("request_id")))
    t.check(f"the 17th approval fails (exit 1) naming the size: {r.stderr.strip()}",
            rc == 0 and r.returncode == 1 and "the grant map is full (16 grants)" in r.stderr, f"{req} {r}")
    _, lst = env.cli_json(user17, "list", "--all")
    t.eq("the 17th request is rejected, with no grant",
         [(x.get("state"), x.get("grant_id", 0)) for x in lst.get("requests", [])
          if x.get("request_id") == req.get("request_id")], [("rejected", 0)])
    t.eq("nothing opened for it: its user is refused on that port",
         env.probe(user17, "connect", "tcp", "127.0.0.1", port17), "EPERM")
    t.eq("bpftool: still 16 entries", pinned_grant_map(env), (16, 16))
    t.eq("the 16th grant's user connects", env.probe(pairs[15][0], "connect", "tcp", "127.0.0.1", pairs[15][1]),
         "ok")

    print("-- restart asking max_grants = 1048576 without --uninstall: the pinned maps kept, and said")
    env.stop_daemon()
    env.write_policy(env.render(MAX_GRANTS_POLICY.replace("{max_grants}", "1048576")))
    since = log_size(env)
    env.start_daemon()
    _, st = env.status()
    t.check("it starts; status --json: max_grants 16, max_grants_configured 1048576",
            st.get("max_grants") == 16 and st.get("max_grants_configured") == 1048576,
            f"{st.get('max_grants')} {st.get('max_grants_configured')}")
    t.check("the log says once how the new size takes effect",
            log_since(env, since).count("the grant maps hold 16 grants each, not the 1048576 of [daemon] "
                                        "max_grants: they keep the size they were pinned with, and a max_grants "
                                        "change takes effect after jitgated --uninstall and a new start (or a "
                                        "reboot)") == 1, log_since(env, since))
    t.check("status says so", "max_grants = 1048576 takes effect after jitgated --uninstall" in
            env.cli("root", "status").stdout)
    t.eq("bpftool: the same 16 grants in the 16-entry map", pinned_grant_map(env), (16, 16))
    t.eq("a grant of before the restart still works",
         env.probe(pairs[0][0], "connect", "tcp", "127.0.0.1", pairs[0][1]), "ok")
    env.write_policy(env.render(MAX_GRANTS_POLICY.replace("{max_grants}", "32")))
    since = log_size(env)
    env.daemon.send_signal(signal.SIGHUP)
    t.check("SIGHUP asking 32: the reload says the pinned size stays",
            wait_for(lambda: "policy reloaded" in log_since(env, since), 10) and
            "the grant maps hold 16 grants each, not the 32 of [daemon] max_grants" in log_since(env, since),
            log_since(env, since))
    _, st = env.status()
    t.check("status --json: max_grants 16, max_grants_configured 32",
            st.get("max_grants") == 16 and st.get("max_grants_configured") == 32,
            f"{st.get('max_grants')} {st.get('max_grants_configured')}")
    env.write_policy(env.render(MAX_GRANTS_POLICY.replace("{max_grants}", "1048576")))

    print("-- --uninstall and a new start: max_grants = 1048576")
    env.stop_daemon()
    t.eq("uninstall exits 0", env.nsx(*env.daemon_args("--uninstall"), check=False).returncode, 0)
    since = log_size(env)
    env.start_daemon()
    _, st = env.status()
    t.check("status --json: max_grants 1048576",
            st.get("max_grants") == 1048576 and st.get("max_grants_configured") == 1048576,
            f"{st.get('max_grants')} {st.get('max_grants_configured')}")
    t.check("no note about the size in the log this time", "max_grants" not in log_since(env, since),
            log_since(env, since))
    for name in ("jg_grants_uid", "jg_grants_addr", "jg_grants_net"):
        t.eq(f"bpftool: {name} made with max_entries 1048576", pinned_grant_map(env, name)[0], 1048576)
    t.eq("the 16 grants restored from the store", pinned_grant_map(env)[1], 16)
    g = env.grant(user17, f"{port17}/tcp", "10m", reason="room now")
    t.eq("the 17th (user, port) is granted now", g.answer.get("state"), "granted")
    t.eq("and connects", env.probe(user17, "connect", "tcp", "127.0.0.1", port17), "ok")
    t.eq("a restored grant connects", env.probe(pairs[3][0], "connect", "tcp", "127.0.0.1", pairs[3][1]), "ok")
    t.eq("a user without a grant is refused", env.probe(env.appr, "connect", "tcp", "127.0.0.1", ports[0]), "EPERM")


def run_all(env, t):
    run(env, t)
    max_grants(env, t)


if __name__ == "__main__":
    run_suite(POLICY, run_all)
