#!/usr/bin/python3
"""End to end, what people use around the workflow: `jitgate run` (request,
wait, run, revoke), `jitgate metrics` and the daemon's HTTP metrics endpoint
(parsed as Prometheus text by a strict parser), systemd readiness through a
fake NOTIFY_SOCKET (READY=1 only once enforcement is in place, never when
the start fails), the hint that turns a denial into the command that
asks for access, and progress: who a waiting run waits for, and the count of
grants a restart restored.  Real daemon, real CLI, real unprivileged users, a private
netns and child cgroup (harness.py).

usage: e2e_ux.py BUILD_DIR
"""
import json
import os
import random
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
    t.check("run says it waits for a decision, by whom, until when",
            f"waiting for a decision by {env.appr}, until 20" in waited, waited)
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

    t.check("stderr is no terminal: no line rewritten in place", "\r" not in waited + err, repr(waited + err))

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


NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r"[a-zA-Z_][a-zA-Z0-9_]*"
VALUE = r"(?:[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)|[+-]?Inf|NaN)"
LABEL_RE = re.compile(rf'({LABEL})="((?:[^"\\\n]|\\[\\"n])*)"')
SAMPLE_RE = re.compile(rf"^({NAME})(?:\{{(.*)\}})? ({VALUE})$")


def parse_prometheus(text):
    """A strict parser of the text exposition format 0.0.4 (what jitgate
    emits): every family has one HELP and one TYPE (counter or gauge, a
    counter named *_total) before its samples, whose names are the family's;
    labels are name="escaped value", comma-separated, no label twice; values
    are floats; no sample twice; the text ends with a newline.  Returns
    {name: {"type", "help", "samples": {frozenset(labels): value}}}; raises
    ValueError naming the first bad line."""
    if not text.endswith("\n"):
        raise ValueError("the text does not end with a newline")
    fams, cur = {}, None
    for n, line in enumerate(text[:-1].split("\n"), 1):
        def bad(why):
            raise ValueError(f"line {n}: {why}: {line!r}")
        if line.startswith("# HELP "):
            name, _, help_text = line[7:].partition(" ")
            if not re.fullmatch(NAME, name) or name in fams:
                bad("HELP of a bad or repeated family")
            if re.search(r"\\[^\\n]", help_text):
                bad("bad escape in HELP")
            cur = fams[name] = {"help": help_text, "type": None, "samples": {}}
        elif line.startswith("# TYPE "):
            parts = line[7:].split(" ")
            if len(parts) != 2 or cur is None or parts[0] not in fams or fams[parts[0]] is not cur or cur["type"]:
                bad("TYPE not right after its HELP")
            if parts[1] not in ("counter", "gauge"):
                bad("type is not counter or gauge")
            if parts[1] == "counter" and not parts[0].endswith("_total"):
                bad("a counter not named *_total")
            cur["type"] = parts[1]
        elif line.startswith("#") or not line:
            bad("a comment or blank line jitgate does not write")
        else:
            m = SAMPLE_RE.match(line)
            if not m:
                bad("not a sample")
            name, labels_text, value = m.group(1), m.group(2), m.group(3)
            if cur is None or name not in fams or fams[name] is not cur or not cur["type"]:
                bad("a sample outside its family")
            labels = {}
            if labels_text is not None:
                pos = 0
                while pos < len(labels_text):
                    lm = LABEL_RE.match(labels_text, pos)
                    if not lm or lm.group(1) in labels:
                        bad("bad or repeated label")
                    labels[lm.group(1)] = lm.group(2)
                    pos = lm.end()
                    if pos < len(labels_text):
                        if labels_text[pos] != ",":
                            bad("labels not separated by commas")
                        pos += 1
            key = frozenset(labels.items())
            if key in cur["samples"]:
                bad("a sample twice")
            cur["samples"][key] = float(value)
    for name, f in fams.items():
        if not f["type"]:
            raise ValueError(f"family {name} has no TYPE")
    return fams


def value(fams, name, **labels):
    """The sample of family `name` with exactly `labels` (None if absent)."""
    f = fams.get(name, {"samples": {}})
    return f["samples"].get(frozenset((k, str(v)) for k, v in labels.items()))


FAMILIES = ("jitgate_info", "jitgate_protected_ports", "jitgate_grants_active", "jitgate_requests_pending",
            "jitgate_decisions_total", "jitgate_kernel_decisions_total", "jitgate_drops_total",
            "jitgate_events_lost_total", "jitgate_tamper_detected_total", "jitgate_connections_ended_total",
            "jitgate_program_attached", "jitgate_audit_last_seq")


def check_metrics_cli(env, t):
    P_AUTO, P_ASK = env.port, env.port2
    print("-- jitgate metrics: Prometheus text, parsed strictly")
    t.eq("a denied connect first", env.probe(env.req, "connect", "tcp", LO, P_ASK), "EPERM")
    ask = f"to ask: jitgate request {P_ASK}/tcp --for 30m --reason WHY"
    st = env.cli(env.req, "status")
    t.check("jitgate status shows the denial with the command that asks for access",
            st.returncode == 0 and ask in st.stdout and f"{P_ASK}/tcp  {env.req}(" in st.stdout, st.stdout[-600:])
    rc, stj = env.cli_json(env.req, "status")
    t.check("status --json: recent_denials with to_ask",
            any(d.get("port") == P_ASK and d.get("to_ask", "").startswith(f"jitgate request {P_ASK}/tcp")
                for d in stj.get("recent_denials", [])), str(stj.get("recent_denials")))
    wait_for(lambda: env.audit_records(type="deny", port=P_ASK), 5)
    au = env.cli(env.req, "audit", "--type", "deny", "--port", str(P_ASK))
    t.check("jitgate audit: the deny line ends with the command that asks for access", ask in au.stdout,
            au.stdout + au.stderr)
    rc, pending = env.cli_json(env.req, "request", str(P_ASK), "--for", "5m", "--reason", "metrics")
    g = env.grant(env.req, str(P_AUTO), "2m", reason="metrics grant")
    r = env.cli(env.other, "metrics")
    t.eq("jitgate metrics as any user: exit 0", r.returncode, 0)
    try:
        fams = parse_prometheus(r.stdout)
        parsed = True
    except ValueError as e:
        fams, parsed = {}, False
        t.check("the output parses as Prometheus text", False, f"{e}\n{r.stdout[:2000]}")
    if parsed:
        t.check("the output parses as Prometheus text", True)
    t.check("every documented family is there", all(f in fams for f in FAMILIES),
            str(sorted(set(FAMILIES) - set(fams))))
    t.eq("grants active on the auto port: 1", value(fams, "jitgate_grants_active", port=P_AUTO, proto="tcp"), 1.0)
    t.eq("grants active on the asked port: 0", value(fams, "jitgate_grants_active", port=P_ASK, proto="tcp"), 0.0)
    t.eq("requests pending: 1", value(fams, "jitgate_requests_pending"), 1.0)
    deny = value(fams, "jitgate_decisions_total", verdict="deny", port=P_ASK, proto="tcp")
    t.check("decisions by verdict and port: the denial on the asked port counted", (deny or 0) >= 1, str(deny))
    allows = value(fams, "jitgate_decisions_total", verdict="allow", port=P_AUTO, proto="tcp")
    t.check("decisions: the run's connection counted as allow on the auto port", (allows or 0) >= 1, str(allows))
    t.eq("events lost: 0", value(fams, "jitgate_events_lost_total"), 0.0)
    attached = fams.get("jitgate_program_attached", {"samples": {}})["samples"]
    t.check("every program attached (1)", len(attached) >= 5 and all(v == 1.0 for v in attached.values()),
            str(attached))
    rc, j = env.cli_json(env.other, "metrics")
    names = [f.get("name") for f in j.get("metrics", [])]
    t.check("jitgate metrics --json: the same families, structured", rc == 0 and set(names) == set(fams), str(names))
    env.cli_json(env.req, "deny", str(pending.get("request_id")))
    env.cli_json(env.req, "revoke", str(g.req.get("request_id")))


def bind_notify(env):
    """A datagram socket standing in for systemd's $NOTIFY_SOCKET."""
    path = os.path.join(env.tmp, "notify.sock")
    if os.path.exists(path):
        os.unlink(path)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    os.chmod(path, 0o777)
    return s, path


def start_notified(env, notify_path, *more):
    log = open(os.path.join(env.tmp, "jitgated.log"), "a")
    p = subprocess.Popen(["nsenter", f"--net=/run/netns/{env.ns}", "env", f"NOTIFY_SOCKET={notify_path}"] +
                         env.daemon_args("--quiet", *more), stdout=log, stderr=log, start_new_session=True)
    env.procs.append(p)  # killed at cleanup whatever happens to the test
    return p


def recv_notify(s, seconds):
    s.settimeout(seconds)
    try:
        return s.recv(4096).decode()
    except socket.timeout:
        return None


HTTP_CLIENT = r"""
import json, socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(json.loads(sys.argv[2]).encode("latin-1"))
b = b""
while len(b) < 1 << 22:
    d = s.recv(65536)
    if not d:
        break
    b += d
print(json.dumps(b.decode("latin-1")))
"""


def http_get(env, port, request):
    """Sends `request` as given to 127.0.0.1:port in the daemon's netns; the raw response (or the client's error)."""
    r = env.nsx(PY, "-c", HTTP_CLIENT, str(port), json.dumps(request), check=False)
    try:
        return json.loads(r.stdout)
    except ValueError:
        return r.stderr


def check_ready_and_http(env, t):
    P_AUTO = env.port
    print("-- systemd readiness: READY=1 only once enforcement is in the kernel (a fresh install)")
    env.stop_daemon()
    env.nsx(*env.daemon_args("--uninstall"))
    t.eq("after --uninstall the port is open (nothing enforces)",
         env.probe(env.other, "connect", "tcp", LO, P_AUTO), "ok")
    sock, path = bind_notify(env)
    mport = random.randint(20000, 32000)
    while mport in (env.port, env.port_open, env.port2, env.port3) or mport in env.more_ports:
        mport = random.randint(20000, 32000)
    env.daemon = start_notified(env, path, "--metrics-address", f"127.0.0.1:{mport}")
    msg = recv_notify(sock, 30)
    at_ready = env.probe(env.other, "connect", "tcp", LO, P_AUTO)
    t.check("READY=1 arrives on $NOTIFY_SOCKET with a STATUS", msg is not None and "READY=1" in msg.split("\n")
            and "STATUS=enforcing" in msg, repr(msg))
    t.eq("when READY=1 arrives the protected port is already refused", at_ready, "EPERM")
    st = env.status()[1]
    t.check("status at READY: every program attached",
            st.get("programs") and all(p.get("attached") for p in st["programs"]), str(st.get("programs")))

    print("-- the daemon's HTTP /metrics on loopback")
    resp = http_get(env, mport, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    head, _, body = resp.partition("\r\n\r\n")
    t.check("GET /metrics: 200 and the Prometheus content type",
            head.startswith("HTTP/1.1 200 OK") and "text/plain; version=0.0.4" in head, head)
    try:
        fams = parse_prometheus(body)
        t.check("the HTTP body parses as Prometheus text, with every documented family",
                all(f in fams for f in FAMILIES), str(sorted(fams)))
    except ValueError as e:
        t.check("the HTTP body parses as Prometheus text, with every documented family", False, str(e))
    t.check("GET / is 404", http_get(env, mport, "GET / HTTP/1.1\r\n\r\n").startswith("HTTP/1.1 404"))
    t.check("POST is 405", http_get(env, mport, "POST /metrics HTTP/1.1\r\n\r\n").startswith("HTTP/1.1 405"))
    big = http_get(env, mport, "GET /metrics HTTP/1.1\r\nX: " + "a" * 5000 + "\r\n\r\n")
    t.check("a request head over 4 KiB is 431", big.startswith("HTTP/1.1 431"), big[:300])
    idle = subprocess.Popen(["nsenter", f"--net=/run/netns/{env.ns}", PY, "-c",
                             f"import socket,time\ns=socket.create_connection(('127.0.0.1',{mport}))\n"
                             "time.sleep(8)"])
    env.procs.append(idle)
    time.sleep(0.3)
    t.check("a silent client does not hold up the next scrape",
            http_get(env, mport, "GET /metrics HTTP/1.0\r\n\r\n").startswith("HTTP/1.1 200"))
    t.check("the control socket answers while a scraper is silent", env.cli("root", "status").returncode == 0)
    idle.kill()

    print("-- STOPPING=1 on SIGTERM")
    env.daemon.send_signal(signal.SIGTERM)
    env.daemon.wait(timeout=20)
    env.daemon = None
    stop = recv_notify(sock, 5)
    t.check("STOPPING=1 is sent when jitgated stops", stop is not None and "STOPPING=1" in stop, repr(stop))

    print("-- no READY=1 when the start fails")
    bad = os.path.join(env.tmp, "bad.toml")
    with open(bad, "w") as f:
        f.write("[[port]]\nport = 0\n")
    p = subprocess.Popen(["nsenter", f"--net=/run/netns/{env.ns}", "env", f"NOTIFY_SOCKET={path}", env.jitgated,
                          "--config", bad, "--state-dir", env.state, "--socket", env.sock, "--quiet"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rc = p.wait(timeout=20)
    t.check("an invalid policy: exit 1 and no READY=1", rc == 1 and recv_notify(sock, 1) is None, f"rc {rc}")
    # Fails late: after the programs are attached, the metrics port is taken.
    holder = subprocess.Popen(["nsenter", f"--net=/run/netns/{env.ns}", PY, "-c",
                               "import socket,time\ns=socket.socket()\n"
                               "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
                               f"s.bind(('127.0.0.1',{mport}))\ns.listen()\nprint('ready',flush=True)\n"
                               "time.sleep(30)"], stdout=subprocess.PIPE, text=True)
    env.procs.append(holder)
    holder.stdout.readline()
    p = start_notified(env, path, "--metrics-address", f"127.0.0.1:{mport}")
    try:
        rc = p.wait(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()
        rc = p.wait()
    t.check("a start that fails after attaching (metrics port taken): exit 1 and no READY=1",
            rc == 1 and recv_notify(sock, 1) is None, f"rc {rc} {env.daemon_log()[-300:]}")
    holder.kill()
    r = env.nsx(env.jitgated, "--metrics-address", "0.0.0.0:9464", "--config", env.policy, check=False)
    t.check("--metrics-address off loopback is refused (exit 2, why)",
            r.returncode == 2 and "not a loopback address" in r.stderr, r.stderr)
    sock.close()
    env.start_daemon()


def check_restore_progress(env, t):
    print("-- a restart restores the active grants and says how many, and how long it took")
    g = env.grant(env.req, str(env.port2), "5m")
    t.eq("a grant to restore", g.rc, 0)
    env.stop_daemon()
    env.start_daemon()
    log = env.daemon_log()
    t.check("jitgated logs 'restored 1 active grant into the maps in N ms'",
            re.search(r"restored 1 active grant into the maps in \d+ ms", log), log[-500:])
    t.eq("the grant is still active", [x["grant_id"] for x in active_grants(env)], [g.answer.get("grant_id")])
    t.eq("revoked again", env.cli("root", "revoke", str(g.answer.get("grant_id"))).returncode, 0)


def run(env, t):
    env.start_daemon()
    check_run(env, t)
    check_metrics_cli(env, t)
    check_ready_and_http(env, t)
    check_restore_progress(env, t)  # last: a restart starts the metrics' counters anew


if __name__ == "__main__":
    run_suite(POLICY, run)
