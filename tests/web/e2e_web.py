#!/usr/bin/python3
"""e2e_web: jitgate-web end to end (design.md §8), on one host.

The test IdP (tests/web/idp.py), jitgated with [identity.oidc], and
jitgate-web as an unprivileged user of its own, all in the suite's private
network namespace; then Debian's chromium, headless, driven by playwright-core
(tests/web/browser.mjs): sign in, a pending request whose reason holds
<script> shows as text, cross-site posts approve nothing, the API refuses a
missing or bad token, approve, the grant's countdown moves, revoke.
Screenshots of each page are kept in BUILD/tests/web/artifacts.

    e2e_web.py BUILD_DIR
"""
import json
import os
import random
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
import harness  # noqa: E402
from harness import PY, run_suite, skip  # noqa: E402

NODE_MODULES = os.path.join(HERE, "node_modules")
REASON = "<script>alert(1)</script>"

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


def ensure_playwright():
    if not os.path.exists("/usr/bin/chromium"):
        skip("Debian's chromium is not installed (scripts/setup.sh installs it)")
    if os.path.isdir(os.path.join(NODE_MODULES, "playwright-core")):
        return
    # No browser download: the suite drives /usr/bin/chromium.
    r = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--ignore-scripts"], cwd=HERE,
                       capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD="1"))
    if r.returncode:
        raise RuntimeError("npm install playwright-core failed:\n" + r.stderr[-2000:])


def start_logged(env, argv, name):
    log = open(os.path.join(env.tmp, name + ".log"), "w")
    p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    env.procs.append(p)
    return p


def read_log(env, name):
    try:
        with open(os.path.join(env.tmp, name + ".log")) as f:
            return f.read()[-3000:]
    except OSError:
        return ""


def in_ns(env, argv):
    """argv in the suite's network namespace (where the IdP, jitgated and jitgate-web listen)."""
    return ["nsenter", f"--net=/run/netns/{env.ns}"] + argv


def start_idp(env, web_port):
    users = {"users": {env.appr: {"password": "pw-appr"}, env.req: {"password": "pw-req"},
                       env.other: {"password": "pw-other"}}}
    path = os.path.join(env.tmp, "idp-users.json")
    with open(path, "w") as f:
        json.dump(users, f)
    shutil.copy2(os.path.join(HERE, "idp.py"), os.path.join(env.tmp, "idp.py"))
    url_file = os.path.join(env.tmp, "idp.url")
    start_logged(env, in_ns(env, [PY, os.path.join(env.tmp, "idp.py"), "--users", path, "--url-file", url_file,
                                  "--redirect-uri", f"http://127.0.0.1:{web_port}/auth/callback",
                                  "--test-hooks"]), "idp")
    if not harness.wait_for(lambda: os.path.exists(url_file), 20):
        raise RuntimeError("the test IdP did not start:\n" + read_log(env, "idp"))
    with open(url_file) as f:
        return f.read().strip()


def idp_post(env, url, body):
    """POST JSON to the IdP inside the namespace (curl-free: a python one-liner)."""
    code = ("import json,sys,urllib.request;r=urllib.request.Request(sys.argv[1],data=sys.argv[2].encode(),"
            "headers={'Content-Type':'application/json'});print(urllib.request.urlopen(r,timeout=10).read().decode())")
    r = subprocess.run(in_ns(env, [PY, "-c", code, url, json.dumps(body)]), capture_output=True, text=True,
                       timeout=30)
    return json.loads(r.stdout)


def start_web(env, web_port, web_user):
    shutil.copy2(os.path.join(sys.argv[1], "jitgate-web"), os.path.join(env.tmp, "jitgate-web"))
    argv = env.user_argv(web_user, [os.path.join(env.tmp, "jitgate-web"), "--listen", f"127.0.0.1:{web_port}",
                                    "--socket", env.sock, "--config", env.policy])
    p = start_logged(env, argv, "web")

    def up():
        r = subprocess.run(in_ns(env, [PY, "-c", "import socket,sys;socket.create_connection(('127.0.0.1',"
                                       f"{web_port}),1)"]), capture_output=True)
        return r.returncode == 0
    if not harness.wait_for(lambda: p.poll() is not None or up(), 20) or p.poll() is not None:
        raise RuntimeError("jitgate-web did not start:\n" + read_log(env, "web"))
    return p


def proc_status(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            fields[k] = v.split()
    return fields


def run_browser(env, cfg, browser_user, shots):
    home = os.path.join(env.tmp, "browser-home")
    os.makedirs(home)
    shutil.chown(home, browser_user, browser_user)
    shutil.chown(shots, browser_user, browser_user)
    script = os.path.join(env.tmp, "browser.mjs")
    shutil.copy2(os.path.join(HERE, "browser.mjs"), script)
    # node resolves playwright-core from the script's directory upwards.
    os.symlink(NODE_MODULES, os.path.join(env.tmp, "node_modules"))
    argv = in_ns(env, ["setpriv", f"--reuid={browser_user}", f"--regid={browser_user}", "--init-groups", "--",
                       "env", f"HOME={home}", "XDG_CONFIG_HOME=" + home, "XDG_CACHE_HOME=" + home,
                       "node", script, json.dumps(cfg)])
    r = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    try:
        return json.loads(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise RuntimeError(f"the browser script failed (rc {r.returncode}):\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}")


def run(env, t):
    ensure_playwright()
    artifacts = os.path.join(sys.argv[1], "tests", "web", "artifacts")
    shutil.rmtree(artifacts, ignore_errors=True)
    os.makedirs(artifacts)
    web_port = random.randrange(33000, 40000)
    issuer = start_idp(env, web_port)
    env.write_policy(env.render(POLICY).replace("ISSUER", issuer))
    env.start_daemon()
    web_user = env.add_user("web")
    web = start_web(env, web_port, web_user)

    st = proc_status(web.pid)
    t.check("jitgate-web runs with no effective capabilities", st["CapEff"] == ["0000000000000000"], st["CapEff"])
    t.check("jitgate-web does not run as root", st["Uid"][0] != "0" and st["Uid"][1] != "0", st["Uid"])
    # As root it refuses to start at all.
    r = subprocess.run([os.path.join(env.tmp, "jitgate-web"), "--config", env.policy], capture_output=True,
                       text=True, timeout=10)
    t.check("jitgate-web refuses to run as root", r.returncode == 1 and "root" in r.stderr, r.stderr)

    rc, req = env.cli_json(env.req, "request", str(env.port), "--for", "15m", "--reason", REASON)
    t.check("a pending request to approve", rc == 0 and req.get("state") == "pending", req)
    rid = req.get("request_id")

    good = idp_post(env, issuer + "/test/mint", {"kind": "good", "user": env.appr})["token"]
    bad = idp_post(env, issuer + "/test/mint", {"kind": "wrong_issuer", "user": env.appr})["token"]
    other = idp_post(env, issuer + "/test/mint", {"kind": "good", "user": env.other})["token"]
    shots = os.path.join(env.tmp, "shots")
    os.makedirs(shots)
    browser_user = env.add_user("browser")
    t0 = time.monotonic()
    out = run_browser(env, {"web": f"http://127.0.0.1:{web_port}", "idp": issuer, "user": env.appr,
                            "password": "pw-appr", "request_id": rid, "shots": shots, "good_token": good,
                            "bad_token": bad, "other_token": other}, browser_user, shots)
    for name in sorted(os.listdir(shots)):
        shutil.copy2(os.path.join(shots, name), os.path.join(artifacts, name))
    steps = {s["name"]: s["value"] for s in out["steps"]}
    t.check("the browser ran to the end", "error" not in out,
            out.get("error", "") + "\n" + read_log(env, "web") + read_log(env, "idp"))
    print(f"browser: {time.monotonic() - t0:.1f} s; screenshots in {artifacts}")
    judge(env, t, steps, out, rid)
    callback_error(env, t, web_port)


def callback_error(env, t, web_port):
    """The IdP's error on /auth/callback: an OAuth error code is shown, anybody's sentence is not."""
    code = ("import sys,urllib.request,urllib.error\ntry:\n urllib.request.urlopen(sys.argv[1],timeout=10)\n"
            "except urllib.error.HTTPError as e:\n print(e.code);print(e.read().decode())")
    def page(error):
        url = f"http://127.0.0.1:{web_port}/auth/callback?" + urllib.parse.urlencode({"error": error})
        r = subprocess.run(in_ns(env, [PY, "-c", code, url]), capture_output=True, text=True, timeout=30)
        return r.stdout
    lie = "access_denied). Your session expired; sign in at https://evil.example ("
    got = page(lie)
    t.check("/auth/callback shows no sentence from its link", got.startswith("400") and "evil.example" not in got
            and "refused the sign-in." in got, got[:400])
    got = page("access_denied")
    t.check("/auth/callback names an OAuth error code", "(access_denied)" in got, got[:400])


def judge(env, t, steps, out, rid):
    t.check("sign-in page, reachable by keyboard",
            steps.get("sign-in page shown") and steps.get("sign-in reachable by keyboard"), steps)
    t.check("the pending request is on the page", steps.get("pending request shown"), steps)
    t.eq("its reason shows as text", steps.get("reason shown as text"), REASON)
    t.eq("no script ran (no dialog)", out["dialogs"], [])
    posts = steps.get("cross-site posts refused") or []
    t.check("cross-site posts are refused (403, the error page)",
            posts[:4] == [403, 403, 403, 403] and "Error 403" in str(posts[4:]), posts)
    t.check("and approve nothing", steps.get("request still pending after cross-site posts"), steps)
    t.eq("API without a token: 401", steps.get("api without token"), 401)
    t.eq("API with a malformed token: 401", steps.get("api with a bad token"), 401)
    t.eq("API with a token of another issuer: 401", steps.get("api with a token of another issuer"), 401)
    t.eq("API with a good token: 200", steps.get("api with a good token"), [200, True])
    t.check("API approve by a valid token of a non-approver: 403 with the socket's error",
            (steps.get("api approve by a non-approver") or [0])[:2] == [403, False], steps)
    t.check("approved from the page", f"Approved request {rid}" in (steps.get("approve notice") or ""), steps)
    t.check("the grant is shown", steps.get("grant shown"), steps)
    cd = steps.get("countdown moves") or ["", ""]
    t.check("its countdown moves", cd[0] != cd[1] and cd[1].endswith("s"), cd)
    t.check("revoked from the page", "Revoked grant" in (steps.get("revoke notice") or "") and
            steps.get("no grant left"), steps)
    t.check("the audit page lists records", (steps.get("audit page") or 0) > 0, steps)
    _, listed = env.cli_json("root", "list", "--all")
    shown = next((r for r in listed.get("requests", []) if r.get("request_id") == rid), {})
    t.check("jitgated recorded the approval by the signed-in user",
            shown.get("state") == "granted" and env.appr in shown.get("approvers", []), shown)
    revokes = env.audit_records(type="revoke")
    t.check("jitgated recorded the revocation", len(revokes) == 1, revokes)
    for name in ("01-sign-in", "02-pending-requests", "03-active-grants", "04-after-revoke", "05-audit"):
        path = os.path.join(sys.argv[1], "tests", "web", "artifacts", name + ".png")
        t.check(f"screenshot {name}", os.path.exists(path) and os.path.getsize(path) > 1000)


if __name__ == "__main__":
    run_suite(POLICY, run)
