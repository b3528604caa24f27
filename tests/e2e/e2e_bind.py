#!/usr/bin/python3
"""End to end, who may serve a protected port (cgroup/bind4, bind6 and the
policy's service_users): the impostor attacks of issue 16 with the real
daemon, CLI and sockets, as unprivileged users in the test netns and cgroup.

usage: e2e_bind.py BUILD_DIR
"""
import os
import random
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import PY, run_suite, sh, verify_chain, wait_for  # noqa: E402

# Filled in by run() once its own ports are chosen (the harness's echo
# server holds the harness's ports on every address).
POLICY = """
[[port]]
name = "svc"
port = {b1}
proto = "both"
approvers = ["{appr}"]
service_users = ["{req}"]

[[port]]
name = "sys"
port = {b2}
proto = "tcp"
approvers = ["{appr}"]

[[port]]
name = "trial"
port = {b3}
proto = "both"
mode = "audit"
approvers = ["{appr}"]
service_users = ["{req}"]

[[port]]
name = "grp"
port = {b4}
proto = "tcp"
approvers = ["{appr}"]
service_users = ["@{group}", "system"]
"""

LOOP = 300  # binds in the rate-limit loop


class Binder:
    def __init__(self, env):
        self.env = env
        self.path = os.path.join(env.tmp, "binder.py")
        shutil.copy2(os.path.join(os.path.dirname(os.path.abspath(__file__)), "binder.py"), self.path)
        os.chmod(self.path, 0o755)

    def argv(self, *args):
        return [PY, self.path] + [str(a) for a in args]

    def run(self, user, *args):
        """binder.py as `user` in the test netns and cgroup: its first word
        (ok, EPERM, ...) and the rest of its line."""
        r = self.env.as_user(user, self.argv(*args), timeout=60)
        out = (r.stdout.strip() or r.stderr.strip()).split(maxsplit=1)
        return (out[0] if out else "", out[1] if len(out) > 1 else "")

    def bind(self, user, *args):
        return self.run(user, "bind", *args)[0]

    def serve(self, user, *args):
        """A bound socket kept by `user` (binder.py serve): (process, first line)."""
        p = self.env.spawn(self.env.user_argv(user, self.argv("serve", *args)))
        return p, p.stdout.readline().strip()

    def in_other_netns(self, user, *args):
        """A bind from inside the test cgroup, but in another network namespace."""
        argv = self.env.in_cgroup(["nsenter", f"--net=/run/netns/{self.env.peer_ns}"] +
                                  self.env._drop_to(user) + self.argv("bind", *args))
        r = subprocess.run(argv, text=True, capture_output=True, timeout=60)
        return (r.stdout.strip() or r.stderr.strip()).split(maxsplit=1)[0:1] or [""]


def stop(p):
    try:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait(timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        pass


def human_user(env, role):
    """A regular (not system) account, uid >= UID_MIN, removed in cleanup."""
    name = f"jgt{env.id}_{role}"
    sh("useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", name)
    env.users_made.append(name)
    return name


def bind_records(env, **match):
    return env.audit_records(type="bind_denied", **match)


def run(env, t):
    ports = random.sample(range(12000, 19900), 5)
    b1, b2, b3, b4, free = ports
    env.write_policy(env.render(POLICY.replace("{b1}", str(b1)).replace("{b2}", str(b2))
                                .replace("{b3}", str(b3)).replace("{b4}", str(b4))))
    bd = Binder(env)
    svc, imp = env.req, env.other  # the service user, an impostor (a system account)
    human = human_user(env, "human")
    uid = {u: int(sh("id", "-u", u).stdout) for u in (svc, imp, human, env.grp)}
    uid_min = 1000
    with open("/etc/login.defs") as f:
        for ln in f:
            if ln.split()[:1] == ["UID_MIN"]:
                uid_min = int(ln.split()[1])
    t.check("the impostors are not service users: a system account and a regular one",
            uid[imp] < uid_min <= uid[human], str(uid))

    print("-- before the daemon: an impostor already listening is named by policy check and at start")
    early, line = bd.serve(imp, "tcp", "::1", b1)
    t.check("an impostor listens on [::1] before jitgated runs", line.startswith("ready"), line)
    r = env.as_user("root", [env.jitgate, "policy", "check", env.policy])
    t.eq("policy check: still valid (exit 0)", r.returncode, 0)
    warning = f"port 'svc' ({b1}/tcp): user '{imp}' (uid {uid[imp]}) listens on [::1]:{b1}"
    t.check("policy check names the listener whose owner may not bind the port", warning in r.stderr, r.stderr)
    rc, js = env.cli_json("root", "policy", "check", env.policy)
    t.check("policy check --json lists it among the warnings",
            rc == 0 and any(warning in w for w in js.get("warnings", [])), str(js))
    env.start_daemon()
    t.check("jitgated names it when it starts", wait_for(lambda: warning in env.daemon_log(), 5),
            env.daemon_log()[-1500:])
    stop(early)
    r = env.as_user("root", [env.jitgate, "policy", "check", env.policy])
    t.check("no warning once the impostor is gone", f"({b1}/tcp)" not in r.stderr, r.stderr)
    _, st = env.status()
    names = {p["name"] for p in st.get("programs", [])}
    t.check("jg_bind4 and jg_bind6 attached", {"jg_bind4", "jg_bind6"} <= names and
            all(p["attached"] for p in st.get("programs", [])), str(st.get("programs")))
    svc_port = [p for p in st.get("ports", []) if p.get("name") == "svc"]
    t.check("status shows each port's service_users", svc_port and svc_port[0].get("service_users") == [svc] and
            [p.get("service_users") for p in st["ports"] if p["name"] == "sys"] == [["system"]], str(st.get("ports")))

    print("-- the impostor beside a 127.0.0.1-only TCP service")
    service, line = bd.serve(svc, "tcp", "127.0.0.1", b1)
    t.check("the service user binds and listens on 127.0.0.1", line.startswith("ready"), line)
    first, first_pid = bd.run(imp, "bind", "tcp", "::1", b1)
    t.eq(f"impostor bind tcp [::1]:{b1} refused", first, "EPERM")
    for addr in ("::", "0.0.0.0", "127.0.0.2", "::ffff:127.0.0.1", "198.51.100.1", "2001:db8:1::1"):
        t.eq(f"impostor bind tcp [{addr}]:{b1} refused", bd.bind(imp, "tcp", addr, b1), "EPERM")
    t.eq("a regular user is refused too", bd.bind(human, "tcp", "::1", b1), "EPERM")
    t.eq("the service user may bind [::1] as well", bd.bind(svc, "tcp", "::1", b1), "ok")
    t.eq("root may bind", bd.bind("root", "tcp", "::1", b1), "ok")
    stop(service)

    print("-- the impostor sharing the UDP address with SO_REUSEADDR")
    service, line = bd.serve(svc, "udp", "127.0.0.1", b1, "--reuse")
    t.check("the UDP service binds 127.0.0.1 with SO_REUSEADDR", line.startswith("ready"), line)
    t.eq("impostor on the same UDP address with SO_REUSEADDR refused",
         bd.bind(imp, "udp", "127.0.0.1", b1, "--reuse"), "EPERM")
    t.eq("impostor on udp [::1] refused", bd.bind(imp, "udp", "::1", b1), "EPERM")
    t.eq("the service user may add a second socket (SO_REUSEADDR)",
         bd.bind(svc, "udp", "127.0.0.1", b1, "--reuse"), "ok")
    t.eq("root too", bd.bind("root", "udp", "127.0.0.1", b1, "--reuse"), "ok")
    stop(service)

    print("-- what is not gated")
    for proto in ("tcp", "udp"):
        t.eq(f"an unprotected port binds ({proto})", bd.bind(imp, proto, "::1", free), "ok")
        t.eq(f"port 0 binds ({proto})", bd.bind(imp, proto, "127.0.0.1", 0), "ok")
    t.eq("another network namespace's socket binds the port (its ports are its own)",
         bd.in_other_netns(imp, "tcp", "::1", b1)[0], "ok")
    t.eq("b2 is tcp only: udp binds", bd.bind(human, "udp", "::1", b2), "ok")

    print("-- default service_users (\"system\"): root and accounts below UID_MIN")
    t.eq("a system account binds a default port", bd.bind(imp, "tcp", "::1", b2), "ok")
    t.eq("a regular user is refused on a default port", bd.bind(human, "tcp", "::1", b2), "EPERM")
    t.eq("root binds a default port", bd.bind("root", "tcp", "::1", b2), "ok")

    print("-- @group members, and \"system\" listed beside them")
    t.eq("a member of the group binds", bd.bind(env.grp, "tcp", "127.0.0.1", b4), "ok")
    t.eq("a regular user outside it is refused", bd.bind(human, "tcp", "127.0.0.1", b4), "EPERM")
    t.eq("a system account binds (\"system\" listed)", bd.bind(imp, "tcp", "127.0.0.1", b4), "ok")

    print("-- mode = \"audit\": the bind goes ahead and is reported")
    t.eq("impostor bind on an audit-mode port goes ahead", bd.bind(imp, "udp", "127.0.0.1", b3), "ok")

    print("-- the bind_denied records")

    def has(**m):
        return lambda: bool(bind_records(env, **m))
    t.check("a bind_denied record for the [::1] impostor",
            wait_for(has(uid=uid[imp], port=b1, proto="tcp", hook="bind6", dst="::1"), 5), "")
    recs = bind_records(env, uid=uid[imp], port=b1, proto="tcp", hook="bind6", dst="::1")
    if recs:
        r = recs[0]
        t.eq("it names the user", r.get("user"), imp)
        t.check("it names the process (pid, comm)", str(r.get("pid")) == first_pid and
                r.get("comm", "").startswith("python3"), f"{r} pid {first_pid}")
        t.check("it is not marked audit", "audit" not in r, str(r))
    t.check("one for the UDP impostor beside the service (SO_REUSEADDR, 127.0.0.1)",
            wait_for(has(uid=uid[imp], port=b1, proto="udp", hook="bind4", dst="127.0.0.1"), 5), "")
    t.check("one for the regular user on the default port",
            wait_for(has(uid=uid[human], port=b2, proto="tcp", hook="bind6", dst="::1"), 5), "")
    t.check("the audit-mode bind recorded with audit: true",
            wait_for(has(uid=uid[imp], port=b3, proto="udp", hook="bind4", audit=True), 5),
            str(bind_records(env, port=b3)))
    t.check("no record for allowed binds (service user, root, group member)",
            not [r for r in bind_records(env) if r.get("uid") in (0, uid[svc], uid[env.grp])],
            str(bind_records(env)))
    rc, q = env.cli_json("root", "audit", "--type", "bind_denied", "--limit", "100")
    t.check("jitgate audit --type bind_denied finds them", rc == 0, str(q))

    print("-- a bind loop gives few records; their counts sum to the binds exactly")
    flood = env.add_user("flood")
    out = bd.run(flood, "loop", "udp", "::1", b1, LOOP)
    t.eq(f"{LOOP} binds, all refused", " ".join(out).strip(), f"EPERM:{LOOP}")
    uid_flood = int(sh("id", "-u", flood).stdout)

    def total():
        return sum(1 + r.get("suppressed", 0) for r in bind_records(env, uid=uid_flood))
    t.check("records' 1 + suppressed sum to the binds (closing record within 10 s)",
            wait_for(lambda: total() == LOOP, 10), f"{total()} != {LOOP}")
    recs = bind_records(env, uid=uid_flood)
    t.check(f"few records, not {LOOP}", 1 <= len(recs) <= 12, str(len(recs)))
    t.check("all for the right port and protocol",
            all(r.get("port") == b1 and r.get("proto") == "udp" for r in recs), str(recs[:3]))
    time.sleep(1.5)
    t.eq("and no more afterwards", total(), LOOP)
    _, st = env.status()
    t.check("status counts every refused or reported bind", st.get("counters", {}).get("bind_denied", 0) >= LOOP,
            str(st.get("counters")))

    print("-- reload: service_users follow the policy")
    env.write_policy(env.render(POLICY.replace("{b1}", str(b1)).replace("{b2}", str(b2))
                                .replace("{b3}", str(b3)).replace("{b4}", str(b4))
                                .replace('service_users = ["{req}"]\n\n[[port]]\nname = "sys"',
                                         f'service_users = ["{{req}}", "{human}"]\n\n[[port]]\nname = "sys"')))
    listener, line = bd.serve(human, "tcp", "::1", b1)  # allowed only once the reload is in
    t.eq("before the reload the regular user is refused", line.split()[0] if line else "", "EPERM")
    stop(listener)
    env.daemon.send_signal(signal.SIGHUP)
    t.check("reload recorded", wait_for(lambda: any(r.get("ok") for r in env.audit_records(type="policy_reload")),
                                        10), "")
    t.eq("after the reload the newly listed user binds", bd.bind(human, "tcp", "::1", b1), "ok")
    t.eq("the impostor is still refused", bd.bind(imp, "tcp", "::1", b1), "EPERM")
    early, line = bd.serve(imp, "tcp", "::1", b2)  # allowed: a system account on a default port
    t.check("a system account listens on the default port", line.startswith("ready"), line)
    env.write_policy(env.render(POLICY.replace("{b1}", str(b1)).replace("{b2}", str(b2))
                                .replace("{b3}", str(b3)).replace("{b4}", str(b4))
                                .replace('name = "sys"\nport = {b2}'.replace("{b2}", str(b2)),
                                         f'name = "sys"\nport = {b2}\nservice_users = ["{human}"]')))
    env.daemon.send_signal(signal.SIGHUP)
    late = f"port 'sys' ({b2}/tcp): user '{imp}' (uid {uid[imp]}) listens on [::1]:{b2}"
    t.check("a reload names a listener the new service_users leave out",
            wait_for(lambda: late in env.daemon_log(), 10), env.daemon_log()[-1500:])
    stop(early)
    t.eq("and refuses its next bind", bd.bind(imp, "tcp", "::1", b2), "EPERM")

    print("-- tamper: a detached bind link is attached again")
    links = {p["name"]: p["link_id"] for p in env.status()[1].get("programs", [])}
    subprocess.run(["bpftool", "link", "detach", "id", str(links["jg_bind6"])], check=True, capture_output=True)

    def reattached():
        now = {p["name"]: (p["link_id"], p["attached"]) for p in env.status()[1].get("programs", [])}
        return now.get("jg_bind6", (0, False))[1] and now["jg_bind6"][0] != links["jg_bind6"]
    # 10 s: each poll starts a CLI, slow on a loaded 2-core VM (the daemon checks every 250 ms).
    t.check("jg_bind6 attached again within 10 s", wait_for(reattached, 10), str(env.status()[1].get("programs")))
    t.check("recorded as tamper_detected",
            any(r.get("hook") == "jg_bind6" for r in env.audit_records(type="tamper_detected")), "")
    t.eq("and refusing again", bd.bind(imp, "tcp", "::1", b1), "EPERM")

    problem = verify_chain(env.audit_records())
    t.check("the audit chain verifies", problem is None, str(problem))


if __name__ == "__main__":
    run_suite("", run)
