#!/usr/bin/python3
"""e2e_device: device login and remote requests through jitgate-web (design.md §8).

The test IdP (tests/web/idp.py) on the host's loopback (and, through two socat
relays, on the peer host's loopback at the same address, so one issuer URL
serves both), jitgated with [identity.oidc], and two jitgate-web instances as
an unprivileged user: one over HTTPS on 203.0.113.1 (a test CA that only the
peer's own mount namespace trusts) and one over HTTP on the host's loopback
with --trusted-proxy 127.0.0.1/32.

The requester, on the peer host, runs `jitgate login` (the test approves the
user code at the IdP's /device page, no browser), then `jitgate --web URL
request PORT --from-me`: the request's source is the peer's address as
jitgate-web saw it, and once the approver (`jitgate --web URL approve ID`
with their own token) approves it, the peer reaches the port. Also: the
token file's mode, X-Forwarded-For believed only from a trusted proxy, the
same --json and exit codes as the socket, an expired ID token renewed with
the refresh token, and clear refusals for a missing, unsafe or bad token.

    e2e_device.py BUILD_DIR
"""
import json
import os
import random
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
import harness  # noqa: E402
from harness import PY, run_suite, skip  # noqa: E402

POLICY = '''
[daemon]
auditors = ["{appr}"]

[identity.oidc]
issuer = "ISSUER"
client_id = "jitgate"

[[port]]
name = "db"
port = {port}
proto = "tcp"
max_duration = "30m"
approvers = ["{appr}"]
'''

PEER = "203.0.113.2"

# An HTTP call from inside a namespace: argv url method body headers-json cafile.
CALL = r'''
import json, ssl, sys, urllib.request, urllib.error
url, method, body, headers, cafile = sys.argv[1:6]
ctx = ssl.create_default_context(cafile=cafile) if cafile else None
r = urllib.request.Request(url, data=body.encode() if body else None, method=method, headers=json.loads(headers))
try:
    with urllib.request.urlopen(r, timeout=20, context=ctx) as resp:
        print(json.dumps([resp.status, resp.read().decode()]))
except urllib.error.HTTPError as e:
    print(json.dumps([e.code, e.read().decode()]))
'''


def log_of(env, name):
    try:
        with open(os.path.join(env.tmp, name + ".log")) as f:
            return f.read()[-3000:]
    except OSError:
        return ""


def start_logged(env, argv, name):
    log = open(os.path.join(env.tmp, name + ".log"), "w")
    p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    env.procs.append(p)
    return p


def host_ns(env):
    return ["nsenter", f"--net=/run/netns/{env.ns}"]


def peer_ns(env):
    return ["nsenter", f"--net=/run/netns/{env.peer_ns}"]


def call(env, where, url, method="GET", body="", headers=None, cafile=""):
    """One HTTP call from the host (where="host") or the peer: (status, body)."""
    ns = host_ns(env) if where == "host" else peer_ns(env)
    r = subprocess.run(ns + [PY, "-c", CALL, url, method, body, json.dumps(headers or {}), cafile],
                       capture_output=True, text=True, timeout=40)
    try:
        return json.loads(r.stdout)
    except ValueError:
        raise RuntimeError(f"HTTP call to {url} failed: {r.stderr[-1500:]}")


def wait_port(env, ns, addr, port, proc, name):
    probe = ns + [PY, "-c", f"import socket;socket.create_connection(('{addr}',{port}),1)"]
    up = harness.wait_for(lambda: proc.poll() is not None or
                          subprocess.run(probe, capture_output=True).returncode == 0, 20)
    if not up or proc.poll() is not None:
        raise RuntimeError(f"{name} did not start:\n" + log_of(env, name))


def start_idp(env):
    users = {u: {"password": "pw-" + u} for u in (env.req, env.appr, env.other)}
    path = os.path.join(env.tmp, "idp-users.json")
    with open(path, "w") as f:
        json.dump({"users": users}, f)
    shutil.copy2(os.path.join(HERE, "idp.py"), os.path.join(env.tmp, "idp.py"))
    url_file = os.path.join(env.tmp, "idp.url")
    p = start_logged(env, host_ns(env) + [PY, os.path.join(env.tmp, "idp.py"), "--users", path, "--url-file",
                                          url_file, "--test-hooks"], "idp")
    if not harness.wait_for(lambda: os.path.exists(url_file) or p.poll() is not None, 20):
        raise RuntimeError("the test IdP did not start:\n" + log_of(env, "idp"))
    with open(url_file) as f:
        issuer = f.read().strip()
    # The same issuer URL on the peer's loopback: peer 127.0.0.1:P -> 203.0.113.1:R -> host 127.0.0.1:P.
    port = urllib.parse.urlsplit(issuer).port
    relay = random.randrange(40000, 45000)
    a = start_logged(env, host_ns(env) + ["socat", f"TCP-LISTEN:{relay},bind=203.0.113.1,fork,reuseaddr",
                                          f"TCP:127.0.0.1:{port}"], "relay-host")
    wait_port(env, host_ns(env), "203.0.113.1", relay, a, "relay-host")
    b = start_logged(env, peer_ns(env) + ["socat", f"TCP-LISTEN:{port},bind=127.0.0.1,fork,reuseaddr",
                                          f"TCP:203.0.113.1:{relay}"], "relay-peer")
    wait_port(env, peer_ns(env), "127.0.0.1", port, b, "relay-peer")
    return issuer


def make_tls(env):
    """A test CA and a certificate for 203.0.113.1 signed by it; the CA bundle path."""
    d = os.path.join(env.tmp, "tls")
    os.makedirs(d)

    def ossl(*a):
        subprocess.run(["openssl"] + list(a), cwd=d, check=True, capture_output=True, timeout=60)
    ossl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
         "-subj", "/CN=jitgate test CA", "-keyout", "ca.key", "-out", "ca.pem")
    ossl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=203.0.113.1",
         "-keyout", "web.key", "-out", "web.csr")
    with open(os.path.join(d, "ext"), "w") as f:
        f.write("subjectAltName=IP:203.0.113.1\n")
    ossl("x509", "-req", "-in", "web.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
         "-extfile", "ext", "-out", "web.pem")
    for name in os.listdir(d):
        os.chmod(os.path.join(d, name), 0o644)
    return d


def start_web(env, user, listen, name, *more):
    if not os.path.exists(os.path.join(env.tmp, "jitgate-web")):
        shutil.copy2(os.path.join(sys.argv[1], "jitgate-web"), os.path.join(env.tmp, "jitgate-web"))
    argv = env.user_argv(user, [os.path.join(env.tmp, "jitgate-web"), "--listen", listen, "--socket", env.sock,
                                "--config", env.policy] + list(more))
    p = start_logged(env, argv, name)
    addr, port = listen.rsplit(":", 1)
    wait_port(env, host_ns(env), addr, int(port), p, name)
    return p


class Person:
    """Someone running the CLI: where (host or peer), as which user, with which config home."""

    def __init__(self, env, user, where, ca_dir=None, xdg=False):
        self.env, self.user, self.where = env, user, where
        self.home = os.path.join(env.tmp, "home-" + user.rsplit("_", 1)[1])
        os.makedirs(self.home, exist_ok=True)
        shutil.chown(self.home, user, user)
        os.chmod(self.home, 0o700)
        self.config = os.path.join(self.home, "xdg" if xdg else ".config")
        self.envv = [f"HOME={self.home}"] + ([f"XDG_CONFIG_HOME={self.config}"] if xdg else [])
        self.ca = os.path.join(ca_dir, "ca.pem") if ca_dir else None

    def argv(self, *args):
        cmd = ["env", "-i", "PATH=/usr/bin:/bin"] + self.envv + [self.env.jitgate] + list(args)
        if self.where == "host":
            return self.env.user_argv(self.user, cmd)
        argv = self.env.peer_argv(self.user, cmd)
        if not self.ca:
            return argv
        # Only this process's own mount namespace trusts the test CA: the host's bundle is never touched.
        return ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                'mount --bind "$0" /etc/ssl/certs/ca-certificates.crt && exec "$@"', self.ca] + argv

    def run(self, *args, timeout=60):
        return subprocess.run(self.argv(*args), capture_output=True, text=True, timeout=timeout)

    def json(self, *args):
        r = self.run("--json", *args)
        try:
            return r.returncode, json.loads(r.stdout), r.stderr
        except ValueError:
            return r.returncode, {"raw": r.stdout}, r.stderr

    def token_file(self, url):
        name = "web-" + re.sub(r"[^A-Za-z0-9.-]+", "_", url) + ".json"
        return os.path.join(self.config, "jitgate", name)


def start_login(env, person, url):
    """jitgate login URL started; (the process, what it said up to the user code, the code)."""
    p = subprocess.Popen(person.argv("login", url), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         start_new_session=True)
    env.procs.append(p)
    said, code = "", None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and code is None:
        line = p.stderr.readline()
        if not line:
            break
        said += line
        m = re.search(r"enter the code:\s+([A-Z]{4}-[A-Z]{4})", line)
        code = m.group(1) if m else None
    said += p.stderr.readline() if code else ""  # the line with verification_uri_complete
    return p, said, code


def decide(env, issuer, person, code, decision):
    form = urllib.parse.urlencode({"user_code": code or "", "username": person.user,
                                   "password": "pw-" + person.user, "decision": decision})
    return call(env, "host", issuer + "/device", "POST", form, {"Content-Type": "application/x-www-form-urlencoded"})


def login_refusals(env, t, person, url, issuer):
    """A denied sign-in, and Ctrl-C while waiting: each one sentence, nothing stored."""
    p, said, code = start_login(env, person, url)
    decide(env, issuer, person, code, "deny")
    out, err = p.communicate(timeout=40)
    t.check("a sign-in denied at the IdP: exit 3, one sentence",
            p.returncode == 3 and "denied at the identity provider" in err, f"rc {p.returncode}\n{said}{err}")
    p, said, code = start_login(env, person, url)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=20)
    t.check("Ctrl-C while waiting stops cleanly: exit 130, not signed in",
            p.returncode == 130 and "not signed in" in err and not os.path.exists(person.token_file(url)),
            f"rc {p.returncode}\n{said}{err}")


def login(env, t, person, url, issuer):
    """jitgate login URL, the user code approved at the IdP's /device page as the test would by hand."""
    p, said, code = start_login(env, person, url)
    t.check(f"login {url}: prints the verification URI and the user code",
            code is not None and issuer + "/device" in said, said + log_of(env, "idp"))
    t.check("... and verification_uri_complete", f"/device?user_code={code}" in said, said)
    st, body = decide(env, issuer, person, code, "approve")
    t.check("the test approves the code at the IdP", st == 200 and "approved" in body, body[:300])
    out, err = p.communicate(timeout=40)
    t.check(f"login {url} ends signed in", p.returncode == 0 and "Signed in to " + url in out,
            f"rc {p.returncode}\n{out}\n{said}{err}")


def run(env, t):
    if not shutil.which("socat") or not shutil.which("openssl"):
        skip("socat and openssl are needed (scripts/setup.sh installs them)")
    issuer = start_idp(env)
    env.write_policy(env.render(POLICY).replace("ISSUER", issuer))
    env.start_daemon()
    tls = make_tls(env)
    web_user = env.add_user("web")
    ptls, phttp = random.sample(range(33000, 40000), 2)
    start_web(env, web_user, f"203.0.113.1:{ptls}", "web-tls", "--tls-cert", os.path.join(tls, "web.pem"),
              "--tls-key", os.path.join(tls, "web.key"))
    start_web(env, web_user, f"127.0.0.1:{phttp}", "web-http", "--trusted-proxy", "127.0.0.1/32")
    remote = f"https://203.0.113.1:{ptls}"
    local = f"http://127.0.0.1:{phttp}"
    req = Person(env, env.req, "peer", ca_dir=tls)
    appr = Person(env, env.appr, "host", xdg=True)

    st, body = call(env, "host", local + "/api/v1/login")
    t.check("GET /api/v1/login names the issuer and client id, without a token",
            st == 200 and json.loads(body)["result"]["issuer"] == issuer, body)

    r = req.run("request", str(env.port), "--from-me", "--for", "5m", "--reason", "x")
    t.check("--from-me without --web: a usage error that says so", r.returncode == 2 and "--web" in r.stderr,
            r.stderr)
    r = req.run("--web", remote, "list")
    t.check("before login: exit 3, told to run jitgate login",
            r.returncode == 3 and f"jitgate login {remote}" in r.stderr, r.stderr)

    login(env, t, req, remote, issuer)
    tf = req.token_file(remote)
    st_f = os.stat(tf) if os.path.exists(tf) else None
    t.check("the token file is kept under ~/.config/jitgate, mode 0600, the user's",
            st_f is not None and stat.S_IMODE(st_f.st_mode) == 0o600 and st_f.st_uid == __import__("pwd")
            .getpwnam(env.req).pw_uid, tf)
    t.check("... in a directory of mode 0700",
            stat.S_IMODE(os.stat(os.path.dirname(tf)).st_mode) == 0o700 if st_f else False)
    login_refusals(env, t, appr, local, issuer)
    login(env, t, appr, local, issuer)
    t.check("XDG_CONFIG_HOME is where the approver's token went", os.path.exists(appr.token_file(local)))

    remote_request(env, t, req, appr, remote, local)
    same_as_socket(env, t, req, appr, remote, local)
    forwarded_for(env, t, issuer, remote, local, tls)
    token_troubles(env, t, req, appr, remote, local, issuer)


def remote_request(env, t, req, appr, remote, local):
    before = env.peer_probe(env.req, "connect", "tcp", "203.0.113.1", env.port)
    t.check("before the request the peer cannot reach the port", before != "ok", before)
    rc, out, err = req.json("--web", remote, "request", str(env.port), "--from-me", "--for", "5m",
                            "--reason", "remote e2e")
    t.check("--web request --from-me: a pending request", rc == 0 and out.get("state") == "pending", (out, err))
    rid = out.get("request_id")
    rc, listed, err = appr.json("--web", local, "list", "--pending")
    row = next((r for r in listed.get("requests", []) if r.get("request_id") == rid), {})
    t.eq("the approver sees its source: the address jitgate-web saw", row.get("src"), PEER)
    t.eq("... and the requester, the token's user", row.get("user"), env.req)
    rc, own, err = req.json("--web", remote, "approve", str(rid))
    rc_sock, own_sock = env.cli_json(env.req, "approve", str(rid))
    t.check("no self-approval over --web: exit 3 as on the socket", rc == 3 and rc_sock == 3, (own, own_sock))
    t.eq("... with the socket's error object", own.get("error", {}).get("code"),
         own_sock.get("error", {}).get("code"))
    rc, ok, err = appr.json("--web", local, "approve", str(rid))
    t.check("the approver approves over --web with their own token: granted",
            rc == 0 and ok.get("state") == "granted", (ok, err))
    recs = env.audit_records(type="approve", request_id=rid)
    t.check("the approve record is the approver's, auth oidc",
            len(recs) == 1 and recs[0].get("user") == env.appr and recs[0].get("auth") == "oidc", recs)
    after = env.peer_probe(env.req, "connect", "tcp", "203.0.113.1", env.port)
    t.check("the peer now reaches the port", after == "ok", after)
    env.cli("root", "revoke", str(ok.get("grant_id", 0)))


def shape(obj):
    """The keys of an object, and of the objects in its lists (values left out)."""
    if isinstance(obj, dict):
        return {k: shape(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [shape(obj[0])] if obj else []
    return type(obj).__name__


def same_as_socket(env, t, req, appr, remote, local):
    rc_w, web, _ = appr.json("--web", local, "list", "--all")
    rc_s, sock = env.cli_json(env.appr, "list", "--all")
    t.check("list --json over --web equals the socket's", rc_w == rc_s == 0 and web == sock, (web, sock))
    rids = []
    for _ in range(2):
        rc, out = env.cli_json(env.req, "request", str(env.port), "--for", "5m", "--reason", "shape")
        rids.append(out.get("request_id"))
    rc_w, web, _ = appr.json("--web", local, "approve", str(rids[0]))
    rc_s, sock = env.cli_json(env.appr, "approve", str(rids[1]))
    t.check("approve --json over --web has the socket's shape", rc_w == rc_s == 0 and shape(web) == shape(sock),
            (web, sock))
    for gid in (web.get("grant_id"), sock.get("grant_id")):
        env.cli("root", "revoke", str(gid or 0))
    r_w = req.run("--web", remote, "revoke", "999999")
    r_s = env.cli(env.req, "revoke", "999999")
    t.check("a refused operation exits as on the socket", r_w.returncode == r_s.returncode != 0,
            (r_w.returncode, r_s.returncode, r_w.stderr, r_s.stderr))
    r_w = req.run("--web", remote, "audit", "--limit", "5")
    t.check("audit (not following) works over --web", r_w.returncode == 0, r_w.stderr)
    r_w = req.run("--web", remote, "audit", "--follow")
    t.check("audit --follow over --web is refused with one sentence",
            r_w.returncode == 2 and "not served over --web" in r_w.stderr, r_w.stderr)


def forwarded_for(env, t, issuer, remote, local, tls):
    st, body = call(env, "host", issuer + "/test/mint", "POST", json.dumps({"kind": "good", "user": env.other}),
                    {"Content-Type": "application/json"})
    tok = json.loads(body)["token"]
    op = json.dumps({"op": "request", "args": {"port": env.port, "proto": "tcp", "duration_s": 300,
                                               "reason": "xff", "from_me": True}})
    hdr = {"Content-Type": "application/json", "Authorization": "Bearer " + tok,
           "X-Forwarded-For": "198.51.100.77"}
    st, body = call(env, "peer", remote + "/api/v1/op", "POST", op, hdr, os.path.join(tls, "ca.pem"))
    res = json.loads(body).get("result", {})
    t.check("X-Forwarded-For from a peer that is no trusted proxy is ignored",
            st == 200 and res.get("src") == PEER, body)
    st, body = call(env, "host", local + "/api/v1/op", "POST", op, hdr)
    res = json.loads(body).get("result", {})
    t.check("X-Forwarded-For from a --trusted-proxy is used", st == 200 and res.get("src") == "198.51.100.77", body)
    bad = json.dumps({"op": "request", "args": {"port": env.port, "proto": "tcp", "duration_s": 300,
                                                "reason": "xff", "from_me": True, "from": "198.51.100.9"}})
    st, body = call(env, "host", local + "/api/v1/op", "POST", bad, hdr)
    t.check("from and from_me together are refused", st == 400 and "not both" in body, body)
    st, body = call(env, "host", local + "/api/v1/op", "POST", json.dumps({"op": "list", "token": tok}), hdr)
    t.check("a token in the body is refused", st == 400 and "Authorization" in body, body)


def rewrite(path, **fields):
    with open(path) as f:
        doc = json.load(f)
    doc.update(fields)
    with open(path, "w") as f:  # keeps the file's owner and mode 0600
        json.dump(doc, f)


def token_troubles(env, t, req, appr, remote, local, issuer):
    tf = req.token_file(remote)
    st, body = call(env, "host", issuer + "/test/mint", "POST", json.dumps({"kind": "expired", "user": env.req}),
                    {"Content-Type": "application/json"})
    expired = json.loads(body)["token"]
    rewrite(tf, id_token=expired, expires_at=int(time.time()) - 3600)
    r = req.run("--web", remote, "list")
    with open(tf) as f:
        doc = json.load(f)
    t.check("an expired ID token is renewed with the refresh token, and the command runs",
            r.returncode == 0 and doc["id_token"] != expired and doc["expires_at"] > time.time() + 60,
            r.stderr)
    t.eq("... the renewed file stays 0600", stat.S_IMODE(os.stat(tf).st_mode), 0o600)
    rewrite(tf, id_token=expired, expires_at=int(time.time()) - 3600, refresh_token="not-a-refresh-token")
    r = req.run("--web", remote, "list")
    t.check("an expired token that cannot be renewed: exit 3, told to run jitgate login",
            r.returncode == 3 and "cannot be renewed" in r.stderr and f"jitgate login {remote}" in r.stderr,
            r.stderr)
    rewrite(tf, id_token="not.a-token", expires_at=int(time.time()) + 3600)
    r = req.run("--web", remote, "list")
    t.check("a token jitgate-web refuses (401): exit 3, told to run jitgate login",
            r.returncode == 3 and "refused your sign-in" in r.stderr and "jitgate login" in r.stderr, r.stderr)
    os.chmod(tf, 0o640)
    r = req.run("--web", remote, "list")
    t.check("a token file others may read is refused", r.returncode == 3 and "may be read by others" in r.stderr,
            r.stderr)
    r = req.run("logout", remote)
    t.check("logout removes the token file", r.returncode == 0 and not os.path.exists(tf), r.stdout + r.stderr)
    other = Person(env, env.other, "host")
    r = other.run("--web", local, "list")
    t.check("no token file: exit 3, told to run jitgate login",
            r.returncode == 3 and "not signed in" in r.stderr and f"jitgate login {local}" in r.stderr, r.stderr)
    r = other.run("--web", "http://203.0.113.1:1", "list")
    t.check("--web over http to a host that is not loopback is refused",
            r.returncode == 2 and "must use https" in r.stderr, r.stderr)


if __name__ == "__main__":
    run_suite(POLICY, run)
