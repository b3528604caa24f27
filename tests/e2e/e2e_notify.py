#!/usr/bin/python3
"""End to end, jitgate notify (design.md §9): a real daemon, the notifier as
an auditor user, and a local receiver on 127.0.0.1 (a random port) that
checks every Standard Webhooks signature.  Every lifecycle record delivered
once and in order; a receiver failing for a while; the notifier SIGKILLed
mid-delivery and restarted; notify_failed after give_up_after (unreachable,
redirecting and slow targets); an oversized answer; the Slack message;
notify_failed refused to non-auditors; a config naming an unknown type.

usage: e2e_notify.py BUILD_DIR
"""
import base64
import hashlib
import hmac
import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import run_suite, wait_for  # noqa: E402

POLICY = """
[daemon]
auditors = ["@{group}"]

[[port]]
name = "db"
port = {port}
proto = "tcp"
max_duration = "10m"
approvers = ["{appr}"]
"""

KEY = os.urandom(32)
SECRET = "whsec_" + base64.b64encode(KEY).decode()
WEB = "https://jitgate.example.test"


class Receiver:
    """The webhook receiver: per path, what it answers; every signed delivery kept."""

    def __init__(self):
        self.lock = threading.Lock()
        self.got = {}        # path -> [(webhook-id, body)]
        self.bad = []        # deliveries whose signature did not verify
        self.fail = set()    # paths answering 500 for now
        self.hold = {}       # path -> seconds to wait before answering
        self.inflight = {}   # path -> webhook-id being answered now
        rx = self

        class H(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                wid, ts = self.headers.get("webhook-id", ""), self.headers.get("webhook-timestamp", "")
                sig = self.headers.get("webhook-signature", "")
                want = "v1," + base64.b64encode(hmac.new(KEY, f"{wid}.{ts}.".encode() + body,
                                                         hashlib.sha256).digest()).decode()
                path = self.path
                if path == "/redirect":
                    self.send_response(302)
                    self.send_header("Location", "/a")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if path == "/slow":
                    time.sleep(3)
                if path == "/stubborn" or (path == "/picky" and b"REFUSE-ME" in body):  # never: 400
                    self.send_response(400)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                with rx.lock:
                    failing = path in rx.fail
                    hold = rx.hold.get(path, 0)
                    if not failing:
                        rx.inflight[path] = wid
                if hold:
                    time.sleep(hold)
                if failing:
                    self.send_response(500)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                with rx.lock:
                    if not hmac.compare_digest(sig, want) or abs(time.time() - int(ts or 0)) > 300:
                        rx.bad.append((path, wid, sig))
                    rx.got.setdefault(path, []).append((wid, json.loads(body)))
                    rx.inflight.pop(path, None)
                if path == "/big":
                    big = b"x" * (1 << 20)
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(big)))
                    self.end_headers()
                    try:
                        self.wfile.write(big)
                    except OSError:
                        pass
                    return
                self.send_response(204)
                self.end_headers()

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def ids(self, path):
        with self.lock:
            return [int(w) for w, _ in self.got.get(path, [])]

    def bodies(self, path):
        with self.lock:
            return [b for _, b in self.got.get(path, [])]

    def stop(self):
        self.server.shutdown()


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()  # nothing listens there now
    return p


def notify_tables(env, rx, secret_file):
    base = f"http://127.0.0.1:{rx.port}"
    return f"""
[web]
public_url = "{WEB}"

[[notify]]
name = "a"
url = "{base}/a"
secret_file = "{secret_file}"
ports = [{env.port}]

[[notify]]
name = "slack"
url = "{base}/s"
format = "slack"
types = ["request", "grant"]
secret_file = "{secret_file}"

[[notify]]
name = "big"
url = "{base}/big"
types = ["request"]
secret_file = "{secret_file}"

[[notify]]
name = "redirect"
url = "{base}/redirect"
types = ["request"]
give_up_after = "2s"

[[notify]]
name = "unreachable"
url = "http://127.0.0.1:{closed_port()}/hook"
types = ["request"]
give_up_after = "2s"

[[notify]]
name = "stubborn"
url = "{base}/stubborn"
types = ["request", "notify_failed"]
give_up_after = "2s"

[[notify]]
name = "picky"
url = "{base}/picky"
types = ["request"]
secret_file = "{secret_file}"

[[notify]]
name = "slow"
url = "{base}/slow"
types = ["request"]
secret_file = "{secret_file}"
timeout = "1s"
give_up_after = "2s"
"""


LIFECYCLE = {"request", "approve", "reject", "grant", "expire", "revoke"}


def run(env, t):
    rx = Receiver()
    try:
        scenario(env, t, rx)
    finally:
        rx.stop()


def start_notifier(env, state):
    log = open(os.path.join(env.tmp, "notify.log"), "a")
    argv = ["setpriv", f"--reuid={env.grp}", f"--regid={env.grp}", "--init-groups", "--",
            env.jitgate, "--socket", env.sock, "notify", "--config", env.policy, "--state-dir", state,
            "--retry-max", "1s"]
    p = subprocess.Popen(argv, stdout=log, stderr=log, start_new_session=True)
    env.procs.append(p)
    return p


def notify_log(env):
    try:
        with open(os.path.join(env.tmp, "notify.log")) as f:
            return f.read()[-3000:]
    except OSError:
        return ""


def lifecycle_seqs(env, after, port):
    return [r["seq"] for r in env.audit_records() if r["seq"] > after and r["type"] in LIFECYCLE
            and r.get("port") == port]


def make_events(env, reason="e2e"):
    """request+approve(grant)+revoke, and a request denied."""
    g = env.grant(env.req, str(env.port), "5m", reason=reason)
    env.cli(env.appr, "revoke", str(g.answer.get("grant_id")))
    rc, req = env.cli_json(env.req, "request", str(env.port), "--for", "1m", "--reason", reason)
    env.cli(env.appr, "deny", str(req.get("request_id")), "--reason", "no")


def scenario(env, t, rx):
    secret_file = os.path.join(env.tmp, "notify.secret")
    with open(secret_file, "w") as f:
        f.write(SECRET + "\n")
    os.chmod(secret_file, 0o644)
    env.write_policy(env.render(POLICY) + notify_tables(env, rx, secret_file))
    state = os.path.join(env.tmp, "notify-state")
    os.mkdir(state, 0o700)
    subprocess.run(["chown", f"{env.grp}:{env.grp}", state], check=True)

    # A config naming an unknown type: refused at start, with its line.
    bad = os.path.join(env.tmp, "bad.toml")
    with open(bad, "w") as f:
        f.write('[[notify]]\nurl = "http://127.0.0.1:9/x"\ntypes = ["request",\n  "bogus"]\n')
    r = subprocess.run([env.jitgate, "notify", "--config", bad, "--state-dir", state], capture_output=True,
                       text=True, timeout=30)
    t.check("a config naming an unknown type: exit 2, FILE:LINE names it",
            r.returncode == 2 and f"{bad}:4:" in r.stderr and "'bogus'" in r.stderr, r.stderr)

    env.start_daemon()
    p = start_notifier(env, state)
    t.check("the notifier starts: a state file per target",
            wait_for(lambda: all(os.path.exists(os.path.join(state, f"{n}.json"))
                                 for n in ("a", "slack", "big", "redirect", "unreachable", "slow")), 15),
            notify_log(env))
    head = env.audit_records()[-1]["seq"]

    # 1. Every lifecycle record once, in order, signed.
    make_events(env, reason="<b>&x")
    g = env.grant(env.req, str(env.port), "2s", "--ticket", "T-<1>")
    t.check("a short grant expires", wait_for(lambda: env.audit_records(type="expire", grant_id=g.answer.get(
        "grant_id")), 10), str(g))
    want = lifecycle_seqs(env, head, env.port)
    t.check("every lifecycle record delivered", wait_for(lambda: rx.ids("/a") == want, 20),
            f"want {want} got {rx.ids('/a')}\n{notify_log(env)}")
    t.check("no bad signature", not rx.bad, str(rx.bad))
    body = rx.bodies("/a")[0] if rx.bodies("/a") else {}
    t.check("json format: the record itself plus links.web",
            body.get("type") == "request" and body.get("links", {}).get("web", "").startswith(WEB + "/requests#request-"),
            str(body))

    # 2. The Slack message: the fields, escaped; the link to approve.
    t.check("slack: one message per request and grant",
            wait_for(lambda: len(rx.bodies("/s")) == len([s for s in want if env.audit_records(seq=s)[0]["type"]
                                                          in ("request", "grant")]), 10), str(rx.ids("/s")))
    sl = rx.bodies("/s")
    text = json.dumps(sl)
    t.check("slack: text and blocks", sl and "text" in sl[0] and isinstance(sl[0].get("blocks"), list), text[:500])
    t.check("slack: requester, port, reason escaped, ticket escaped, duration, time left, approve link",
            env.req in text and f"{env.port}/tcp" in text and "&lt;b&gt;&amp;x" in text and "<b>" not in text
            and "T-&lt;1&gt;" in text and "Duration" in text and "Time left" in text and
            f"<{WEB}/requests#request-" in text and "Approve or deny" in text, text[:1500])

    # 3. An oversized answer (1 MiB): delivered once each, not again.
    reqs = [s for s in want if env.audit_records(seq=s)[0]["type"] == "request"]
    t.check("an oversized answer counts as delivered, once", wait_for(lambda: rx.ids("/big") == reqs, 10),
            f"{rx.ids('/big')} vs {reqs}")

    # 4. notify_failed for the redirecting, unreachable and slow targets.
    def failed(name):
        return [r for r in env.audit_records(type="notify_failed") if r.get("target") == name]
    t.check("notify_failed for the redirect, the unreachable URL and the slow answer",
            wait_for(lambda: all(failed(n) for n in ("redirect", "unreachable", "slow")), 20),
            f"{env.audit_records(type='notify_failed')}\n{notify_log(env)}")
    red = failed("redirect")[:1]
    t.check("notify_failed: a redirect is named as refused, the url without its path",
            red and "redirect" in red[0].get("error", "") and red[0].get("url") == f"http://127.0.0.1:{rx.port}",
            str(red))
    rc, st = env.status()
    names = {f.get("target") for f in st.get("notify_failures", [])}
    t.check("jitgate status lists each failing target's last failure",
            {"redirect", "unreachable", "slow"} <= names, str(st.get("notify_failures")))
    rc, st = env.status(env.other)
    t.check("status hides them from a non-auditor", st.get("notify_failures") == [], str(st.get("notify_failures")))

    # 4b. A record the receiver refuses as a message (HTTP 400, as Slack answers blocks it will not
    #     show): passed after a few tries with notify_failed naming its seq; the next one is delivered.
    #     And a 1010-byte reason of '&' (5 KiB escaped) still fits Slack's 2000-character field.
    rc1, r1 = env.cli_json(env.req, "request", str(env.port), "--for", "1m", "--reason", "REFUSE-ME " + "&" * 1000)
    rc2, r2 = env.cli_json(env.req, "request", str(env.port), "--for", "1m", "--reason", "after it")
    s1 = [r["seq"] for r in env.audit_records(type="request") if r.get("request_id") == r1.get("request_id")]
    s2 = [r["seq"] for r in env.audit_records(type="request") if r.get("request_id") == r2.get("request_id")]
    t.check("two requests for the picky target", rc1 == 0 and rc2 == 0 and s1 and s2, f"{r1} {r2}")
    if s1 and s2:
        t.check("picky: the refused record is passed with notify_failed naming its seq, the next delivered",
                wait_for(lambda: s2[0] in rx.ids("/picky") and
                         any(f.get("pending_seq") == s1[0] and "refuses this message" in f.get("error", "")
                             for f in failed("picky")), 20),
                f"{rx.ids('/picky')} {failed('picky')}\n{notify_log(env)}")
        t.check("picky: the refused record was never taken as delivered", s1[0] not in rx.ids("/picky"),
                str(rx.ids("/picky")))
        wait_for(lambda: [b for b in rx.bodies("/s") if "REFUSE-ME" in json.dumps(b)], 10)
        big = [b for b in rx.bodies("/s") if "REFUSE-ME" in json.dumps(b)]
        fields = [f.get("text", "") for b in big for blk in b.get("blocks", []) for f in blk.get("fields", [])]
        t.check("slack: the escaped reason is cut to fit a field (2000 characters)",
                big and all(len(x) <= 2000 for x in fields) and
                any("&amp;&amp;" in x and x.endswith("\u2026") for x in fields), str([len(x) for x in fields]))
    # A target that refuses everything with 400 (a wrong secret, say) took nothing: its lane
    # waits (notify_failed once it gave up), passes nothing, and never feeds on its own records.
    stub = failed("stubborn")
    t.check("a target refusing every message waits: notify_failed, nothing passed, no loop",
            stub and not any("passed" in f.get("error", "") for f in stub) and len(stub) <= 2,
            str(stub))
    for r in (r1, r2):
        env.cli(env.appr, "deny", str(r.get("request_id")), "--reason", "done")

    # 5. notify_failed refused to a non-auditor, and a URL with a path refused.
    def raw(user, args):
        code = ("import json,socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); "
                "s.sendall(json.dumps({'id':1,'op':'notify_failed','args':json.loads(sys.argv[2])}).encode()"
                "+b'\\n'); print(s.makefile().readline())")
        r = env.as_user(user, [sys.executable, "-c", code, env.sock, json.dumps(args)])
        try:
            return json.loads(r.stdout)
        except ValueError:
            return {"raw": r.stdout + r.stderr}
    ok_args = {"target": "x", "url": "https://hooks.example.test", "error": "e"}
    a = raw(env.other, ok_args)
    t.check("notify_failed: refused to a non-auditor", a.get("error", {}).get("code") == "refused", str(a))
    a = raw(env.grp, dict(ok_args, url="https://hooks.example.test/services/SECRET"))
    t.check("notify_failed: a url with a path (a secret) refused", a.get("error", {}).get("code") == "invalid",
            str(a))

    # 6. The receiver fails for a while, then recovers: all delivered, none twice.
    before = list(rx.ids("/a"))
    head = env.audit_records()[-1]["seq"]
    with rx.lock:
        rx.fail.add("/a")
    make_events(env, reason="while failing")
    time.sleep(2)
    with rx.lock:
        rx.fail.discard("/a")
    want2 = lifecycle_seqs(env, head, env.port)
    t.check("after a failure: all delivered, in order, none twice",
            wait_for(lambda: rx.ids("/a") == before + want2, 20), f"{rx.ids('/a')} vs {before + want2}")

    # 7. SIGKILL mid-delivery, records written while it is down, restart.
    before = list(rx.ids("/a"))
    head = env.audit_records()[-1]["seq"]
    with rx.lock:
        rx.hold["/a"] = 3
    make_events(env, reason="killed")
    t.check("a delivery is in flight", wait_for(lambda: rx.inflight.get("/a"), 10), notify_log(env))
    with rx.lock:
        inflight = int(rx.inflight.get("/a"))
    os.killpg(p.pid, signal.SIGKILL)
    p.wait(timeout=10)
    with rx.lock:
        rx.hold.pop("/a", None)
    make_events(env, reason="while down")
    want3 = lifecycle_seqs(env, head, env.port)
    start_notifier(env, state)
    wait_for(lambda: set(rx.ids("/a")[len(before):]) >= set(want3), 20)
    time.sleep(1)
    got3 = rx.ids("/a")[len(before):]
    dups = [s for s in set(got3) if got3.count(s) > 1]
    t.check("after SIGKILL and restart: none lost", set(got3) >= set(want3) and set(got3) <= set(want3),
            f"{got3} vs {want3}\n{notify_log(env)}")
    t.check("none resent beyond the one in flight", dups in ([], [inflight]), f"dups {dups} inflight {inflight}")
    # The copy of the one in flight may land after its resend's successors.
    orders = [got3]
    if inflight in dups:
        orders = [got3[:i] + got3[i + 1:] for i, x in enumerate(got3) if x == inflight]
    t.check("in order", want3 in orders, str(got3))

    # 8. --status: each target's last delivered seq and lag.
    r = env.as_user(env.grp, [env.jitgate, "--socket", env.sock, "--json", "notify", "--config", env.policy,
                              "--state-dir", state, "--status"])
    try:
        s = json.loads(r.stdout)
    except ValueError:
        s = {}
    rows = {x["name"]: x for x in s.get("targets", [])}
    t.check("notify --status: a's last delivered seq and lag",
            rows.get("a", {}).get("seq") == want3[-1] and isinstance(rows.get("a", {}).get("lag"), int) and
            rows.get("redirect", {}).get("last_failure"), r.stdout + r.stderr)
    t.check("no bad signature at all", not rx.bad, str(rx.bad))


if __name__ == "__main__":
    run_suite(POLICY, run)
