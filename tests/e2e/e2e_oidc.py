#!/usr/bin/python3
"""End to end, OIDC ID tokens on the control socket (design.md §8): the test
OpenID provider (tests/web/idp.py) on the daemon's loopback, a single-host
jitgated whose [identity.oidc] points at it (discovery over http on
loopback), and socket requests carrying "token": good ones act as the
token's user (its records say auth "oidc", the issuer and the subject; its
@groups are the token's), each kind of bad one is refused with the sentence
naming its check and an auth_failed record holding no token, a user
approving their own request across the two identities is refused, a flood
of unknown kids costs at most one JWKS fetch, and a rotated key is fetched
and accepted.

usage: e2e_oidc.py BUILD_DIR
"""
import json
import os
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import PY, run_suite, wait_for  # noqa: E402

IDP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "web", "idp.py")

PORTS = '''
[[port]]
name = "db"
port = {port}
proto = "tcp"
max_duration = "1h"
approvers = ["{appr}", "{req}", "@{group}", "@tokdba"]
'''

OIDC = '''
[identity.oidc]
issuer = "{issuer}"
client_id = "jitgate"
'''

# Run inside the daemon's network namespace: mints tokens at the provider
# (a JSON request a line in, the answer a line out), so the test reaches
# the provider's loopback without a process per token.
MINTER = r'''
import json, sys, urllib.request
base = sys.argv[1]
for line in sys.stdin:
    req = json.loads(line)
    path = req.pop("path")
    data = json.dumps(req).encode() if path != "/test/stats" else None
    r = urllib.request.Request(base + path, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(r, timeout=10) as resp:
        print(resp.read().decode(), flush=True)
'''

# What each bad token gets: (kind, mint options, words the refusal holds).
BAD = [
    ("expired", {}, "token expired at"),
    ("wrong_issuer", {}, "issuer (iss) is not"),
    ("wrong_audience", {}, "audience (aud) does not hold 'jitgate'"),
    ("alg_none", {}, "algorithm 'none' is not accepted"),
    ("hs256_pubkey", {}, "algorithm 'HS256' is not accepted"),
    ("unknown_kid", {}, "is not one of the issuer's keys"),
    ("altered_payload", {}, "signature does not verify"),
    ("bad_signature", {"alg": "ES256"}, "signature does not verify"),
    ("altered_payload", {"alg": "EdDSA"}, "signature does not verify"),
    ("nbf_future", {}, "not valid before"),
    ("iat_future", {}, "issued in the future"),
    ("no_kid", {}, "names no key (kid)"),
]


class Idp:
    def __init__(self, env, users):
        path = os.path.join(env.tmp, "idp-users.json")
        with open(path, "w") as f:
            json.dump({"users": users}, f)
        url_file = os.path.join(env.tmp, "idp.url")
        shutil_idp = os.path.join(env.tmp, "idp.py")
        with open(IDP) as src, open(shutil_idp, "w") as dst:
            dst.write(src.read())
        self.proc = env.spawn(["nsenter", f"--net=/run/netns/{env.ns}", PY, shutil_idp, "--users", path,
                               "--url-file", url_file, "--test-hooks"])
        if not wait_for(lambda: os.path.exists(url_file), 20):
            raise RuntimeError("the test IdP did not start")
        with open(url_file) as f:
            self.url = f.read().strip()
        self.minter = subprocess.Popen(["nsenter", f"--net=/run/netns/{env.ns}", PY, "-c", MINTER, self.url],
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                       start_new_session=True)
        env.procs.append(self.minter)

    def call(self, path, **body):
        self.minter.stdin.write(json.dumps(dict(body, path=path)) + "\n")
        self.minter.stdin.flush()
        return json.loads(self.minter.stdout.readline())

    def token(self, user, kind="good", **opts):
        return self.call("/test/mint", kind=kind, user=user, **opts)["token"]

    def jwks_fetches(self):
        return self.call("/test/stats")["jwks_fetches"]


def send(env, msg, user=None):
    """One request line on the control socket (as root, or as `user`): the reply."""
    line = json.dumps(msg)
    if user:
        r = env.as_user(user, [PY, "-c", "import socket,sys\n"
                               "s=socket.socket(socket.AF_UNIX);s.connect(sys.argv[1])\n"
                               "s.sendall(sys.argv[2].encode()+b'\\n');f=s.makefile()\n"
                               "print(f.readline(),end='')", env.sock, line])
        return json.loads(r.stdout)
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(20)
        s.connect(env.sock)
        s.sendall(line.encode() + b"\n")
        return json.loads(s.makefile().readline())


def ask(env, token, port, user=None):
    return send(env, {"id": 1, "op": "request", "token": token,
                      "args": {"port": port, "proto": "tcp", "duration_s": 600, "reason": "oidc e2e"}}, user)


def run(env, t):
    users = {u: {"password": "pw", "groups": []} for u in (env.req, env.appr, env.grp)}
    users[env.other] = {"password": "pw", "groups": ["tokdba"]}
    users[f"jgt{env.id}_ghost"] = {"password": "pw"}  # no account on the host
    users["root"] = {"password": "pw"}
    users["nobody"] = {"password": "pw"}  # uid 65534
    idp = Idp(env, users)
    env.write_policy(env.render(PORTS) + OIDC.format(issuer=idp.url))
    check = env.cli("root", "policy", "check", env.policy)
    t.check("policy check accepts [identity.oidc]", check.returncode == 0, check.stdout + check.stderr)
    env.start_daemon()
    issuer = idp.url

    # A good token acts as its user, whoever presents it.
    tok_req = idp.token(env.req)
    r = ask(env, tok_req, env.port)
    t.check("a good RS256 token's request is accepted", r.get("ok") and r["result"]["state"] == "pending", r)
    rid = r.get("result", {}).get("request_id")
    recs = env.audit_records(type="request", request_id=rid)
    t.check("its request record is the token's user's, with auth oidc, issuer and subject",
            len(recs) == 1 and recs[0].get("user") == env.req and recs[0].get("auth") == "oidc" and
            recs[0].get("issuer") == issuer and str(recs[0].get("subject", "")).startswith("sub-"), recs)
    import pwd
    t.eq("... and the uid of the local account of that name", recs[0].get("uid") if recs else None,
         pwd.getpwnam(env.req).pw_uid)
    for alg in ("ES256", "EdDSA"):
        r = send(env, {"id": 2, "op": "list", "token": idp.token(env.req, alg=alg), "args": {}})
        t.check(f"a good {alg} token is accepted", r.get("ok"), r)
    r = send(env, {"id": 2, "op": "list", "token": idp.token(env.req, kind="aud_list"), "args": {}})
    t.check("a token whose aud is a list holding the client id is accepted", r.get("ok"), r)
    r = send(env, {"id": 3, "op": "show", "token": idp.token(env.appr), "args": {"id": rid}}, user=env.other)
    t.check("any local user may present a token: it acts as the token's user",
            r.get("ok") and r["result"].get("request_id") == rid, r)

    # Each bad token: refused with its check named, recorded without the token.
    bad_tokens = []
    for kind, opts, words in BAD:
        tok = idp.token(env.appr, kind=kind, **opts)
        bad_tokens.append(tok)
        before = len(env.audit_records(type="auth_failed"))
        r = send(env, {"id": 4, "op": "approve", "token": tok, "args": {"id": rid}})
        err = r.get("error", {})
        t.check(f"{kind} ({opts.get('alg', 'RS256')}) is refused: {words}",
                not r.get("ok") and err.get("code") == "auth_failed" and words in err.get("message", ""), r)
        recs = env.audit_records(type="auth_failed")
        t.check(f"{kind}: one auth_failed record with the reason", len(recs) == before + 1 and
                words in recs[-1].get("reason", "") and recs[-1].get("op") == "approve", recs[-1:])
    for name, tok, words in [
            ("a token of a user with no account here", idp.token(f"jgt{env.id}_ghost"), "has no account on this host"),
            ("a token of root", idp.token("root"), "is root, which no token may act as"),
            ("a token of nobody", idp.token("nobody"), "is nobody"),
            ("text that is no JWT", "not.a-token", "not a signed JWT")]:
        bad_tokens.append(tok)
        r = send(env, {"id": 5, "op": "approve", "token": tok, "args": {"id": rid}})
        t.check(f"{name} is refused: {words}", r.get("error", {}).get("code") == "auth_failed" and
                words in r.get("error", {}).get("message", ""), r)
    r = send(env, {"id": 6, "op": "show", "args": {"id": rid}})
    t.check("no bad token approved anything", r["result"].get("state") == "pending" and
            not r["result"].get("approvers"), r)
    with open(env.audit) as f:
        log = f.read()
    t.check("no token (nor its signature) is in the audit log",
            all(tok.split(".")[-1] not in log and tok not in log for tok in bad_tokens + [tok_req]
                if tok.split(".")[-1]))

    # Unknown kids: at most one fetch per 10 s, the others refused from the cache.
    flood = [idp.token(env.appr, kind="unknown_kid") for _ in range(30)]
    fetches = idp.jwks_fetches()
    start = time.monotonic()
    refused = sum(send(env, {"id": 7, "op": "list", "token": tok, "args": {}}).get("error", {}).get("code") ==
                  "auth_failed" for tok in flood)
    flood_end = time.monotonic()
    allowed = 1 + int((flood_end - start) / 10)
    t.eq("a flood of 30 unknown kids is refused", refused, 30)
    t.check(f"... and costs at most {allowed} JWKS fetch(es), one per 10 s",
            idp.jwks_fetches() - fetches <= allowed, f"{fetches} -> {idp.jwks_fetches()}")

    # Self-approval across the two identities, both ways.
    r = send(env, {"id": 8, "op": "approve", "token": idp.token(env.req), "args": {"id": rid}})
    t.check("the token's user cannot approve the request they made by token",
            r.get("error", {}).get("code") == "forbidden" and "your own request" in r["error"]["message"], r)
    rc, own = env.cli_json(env.req, "request", str(env.port), "--for", "5m", "--reason", "shell")
    r = send(env, {"id": 9, "op": "approve", "token": idp.token(env.req), "args": {"id": own.get("request_id")}})
    t.check("a token's user cannot approve the request their shell account made",
            r.get("error", {}).get("code") == "forbidden" and "your own request" in r["error"]["message"], r)
    rc, out = env.cli_json(env.req, "approve", str(rid))
    t.check("the shell account cannot approve the request its token made", rc == 3, out)

    # Groups come from the token, not from the host.
    r = send(env, {"id": 10, "op": "approve", "token": idp.token(env.grp), "args": {"id": rid}})
    t.check("a token user in the host's group but not the token's is no approver",
            r.get("error", {}).get("code") == "forbidden", r)
    tok_other = idp.token(env.other)
    r = send(env, {"id": 11, "op": "approve", "token": tok_other, "args": {"id": rid}})
    t.check("a token user in the token's group @tokdba approves: granted",
            r.get("ok") and r["result"].get("state") == "granted", r)
    recs = env.audit_records(type="approve", request_id=rid)
    t.check("the approve record names the token's user, auth oidc, issuer and subject",
            len(recs) == 1 and recs[0].get("user") == env.other and recs[0].get("auth") == "oidc" and
            recs[0].get("issuer") == issuer and recs[0].get("subject", "").startswith("sub-") and
            recs[0].get("approvers") == [env.other], recs)
    gid = r.get("result", {}).get("grant_id")
    r = send(env, {"id": 12, "op": "revoke", "token": tok_other, "args": {"id": gid}})
    recs = env.audit_records(type="revoke", grant_id=gid)
    t.check("an approver's token revokes the grant, its record carries auth oidc",
            r.get("ok") and recs and recs[-1].get("auth") == "oidc" and recs[-1].get("user") == env.other, recs)

    # Rotation: a new kid is fetched (once the 10 s spacing has passed) and accepted.
    idp.call("/test/rotate")
    time.sleep(max(0, 10.5 - (time.monotonic() - flood_end)))  # the last fetch was in the flood at the latest
    fetches = idp.jwks_fetches()
    r = send(env, {"id": 13, "op": "list", "token": idp.token(env.appr), "args": {}})
    t.check("after a key rotation a token with the new kid is accepted", r.get("ok"), r)
    t.eq("... after one JWKS fetch", idp.jwks_fetches() - fetches, 1)


if __name__ == "__main__":
    run_suite(PORTS, run)
