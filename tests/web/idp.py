#!/usr/bin/python3
"""A small OpenID provider for jitgate's tests (design.md §8), on loopback.

    idp.py --users FILE [--host 127.0.0.1] [--port 0] [--url-file PATH]
           [--client-id ID] [--redirect-uri URI]... [--id-token-alg RS256|ES256|EdDSA]
           [--token-ttl SECONDS] [--device-interval SECONDS] [--test-hooks]

It prints its base URL (http://127.0.0.1:PORT, the issuer) on stdout once it
serves, and writes it to --url-file when given (written whole, then renamed).

--users FILE is JSON:
    {"users": {"alice": {"password": "pw", "groups": ["dba"], "sub": "optional",
                         "email": "optional"}},
     "clients": {"jitgate": {"redirect_uris": ["http://127.0.0.1/callback"]}}}
"clients" is optional: --client-id (default "jitgate") is always registered,
with the --redirect-uri values.  A registered loopback redirect URI matches any
port (RFC 8252 §7.3); others match exactly.  Clients are public: PKCE (S256
only) is their proof.

Endpoints (all in the discovery document):
    GET  /.well-known/openid-configuration
    GET  /jwks                  RS256, ES256 and EdDSA (Ed25519) keys, each with a kid
    GET  /authorize             code flow + PKCE: a login form (POST /authorize signs in)
    POST /token                 authorization_code, refresh_token, device_code grants
    POST /device_authorization  RFC 8628: device_code, user_code, verification_uri
    GET  /device                the page that approves (or denies) a user code
    GET  /userinfo              Bearer access token
The ID token: iss, sub, aud (client_id), azp, exp, iat, nbf, auth_time, nonce
(when asked), preferred_username, groups, email.  Access and refresh tokens
are opaque; a refresh token is rotated on each use.

Test hooks (only with --test-hooks; JSON in, JSON out):
    POST /test/mint   {"kind": K, "user": "alice", "alg": "RS256", "aud": "...",
                       "claims": {...}}  ->  {"token": "..."}
      K: good, expired, wrong_issuer, wrong_audience, alg_none, hs256_pubkey,
         unknown_kid, altered_payload, nbf_future, iat_future, bad_signature,
         no_kid, aud_list (good, aud a list holding the client id)
    POST /test/rotate {"drop_old": false}  ->  {"kids": [...]}  a new key of each
         kind (new kids) signs from now on; the old ones stay published unless
         drop_old.
    GET  /test/stats  ->  {"jwks_fetches": N, "discovery_fetches": N}
"""
import argparse
import base64
import hashlib
import hmac
import html
import json
import os
import secrets
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from authlib.jose import JsonWebKey, jwt
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
ALGS = {"RS256": ("RSA", 2048), "ES256": ("EC", "P-256"), "EdDSA": ("OKP", "Ed25519")}


def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64u_json(obj):
    return b64u(json.dumps(obj, separators=(",", ":")).encode())


class Keys:
    """The signing keys: one per algorithm is current; retired ones stay published."""

    def __init__(self):
        self.lock = threading.Lock()
        self.current = {}
        self.published = []
        self.rotate(False)

    def rotate(self, drop_old):
        with self.lock:
            if drop_old:
                self.published = []
            for alg, (kty, size) in ALGS.items():
                key = JsonWebKey.generate_key(kty, size, is_private=True)
                kid = f"{alg.lower()}-{secrets.token_hex(6)}"
                self.current[alg] = (kid, key)
                self.published.append((alg, kid, key))
            return [kid for kid, _ in self.current.values()]

    def jwks(self):
        with self.lock:
            out = []
            for alg, kid, key in self.published:
                d = key.as_dict(is_private=False)
                d.update({"kid": kid, "alg": alg, "use": "sig"})
                out.append(d)
            return {"keys": out}

    def sign(self, claims, alg="RS256", header_extra=None):
        with self.lock:
            kid, key = self.current[alg]
        header = {"alg": alg, "kid": kid, "typ": "JWT"}
        header.update(header_extra or {})
        return jwt.encode(header, claims, key).decode()

    def rsa_public_pem(self):
        with self.lock:
            kid, key = self.current["RS256"]
        return kid, key.get_public_key().public_bytes(
            encoding=Encoding.PEM, format=PublicFormat.SubjectPublicKeyInfo)


class Provider:
    def __init__(self, args, users, clients):
        self.args = args
        self.users = users
        self.clients = clients
        self.keys = Keys()
        self.lock = threading.Lock()
        self.codes = {}      # code -> grant
        self.refresh = {}    # refresh token -> grant
        self.access = {}     # access token -> user
        self.devices = {}    # device_code -> state
        self.user_codes = {}  # user_code -> device_code
        self.stats = {"jwks_fetches": 0, "discovery_fetches": 0}
        self.issuer = ""

    def metadata(self):
        i = self.issuer
        return {
            "issuer": i,
            "authorization_endpoint": i + "/authorize",
            "token_endpoint": i + "/token",
            "jwks_uri": i + "/jwks",
            "userinfo_endpoint": i + "/userinfo",
            "device_authorization_endpoint": i + "/device_authorization",
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code", "refresh_token", DEVICE_GRANT],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": list(ALGS),
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["none"],
            "scopes_supported": ["openid", "profile", "email", "groups", "offline_access"],
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nbf", "auth_time", "nonce",
                                 "preferred_username", "groups", "email"],
        }

    def subject(self, user):
        u = self.users[user]
        return u.get("sub") or "sub-" + hashlib.sha256(user.encode()).hexdigest()[:16]

    def claims(self, user, client_id, nonce=None, now=None):
        now = int(now if now is not None else time.time())
        u = self.users.get(user, {})
        c = {
            "iss": self.issuer, "sub": self.subject(user) if user in self.users else "sub-" + user,
            "aud": client_id, "azp": client_id, "iat": now, "nbf": now, "auth_time": now,
            "exp": now + self.args.token_ttl, "preferred_username": user,
            "groups": list(u.get("groups", [])),
        }
        if u.get("email"):
            c["email"] = u["email"]
        if nonce:
            c["nonce"] = nonce
        return c

    def tokens(self, user, client_id, scope, nonce=None):
        """The token endpoint's answer for a signed-in user (a new refresh token)."""
        at = secrets.token_urlsafe(24)
        rt = secrets.token_urlsafe(32)
        with self.lock:
            self.access[at] = (user, time.time() + self.args.token_ttl)
            self.refresh[rt] = {"user": user, "client_id": client_id, "scope": scope}
        idt = self.keys.sign(self.claims(user, client_id, nonce), self.args.id_token_alg)
        return {"access_token": at, "token_type": "Bearer", "expires_in": self.args.token_ttl,
                "id_token": idt, "refresh_token": rt, "scope": scope}

    def redirect_ok(self, client_id, uri):
        c = self.clients.get(client_id)
        if c is None or not uri:
            return False
        want = urllib.parse.urlsplit(uri)
        for reg in c.get("redirect_uris", []):
            r = urllib.parse.urlsplit(reg)
            if reg == uri:
                return True
            loopback = r.hostname in ("127.0.0.1", "localhost", "::1")
            if (loopback and r.scheme == want.scheme and r.hostname == want.hostname
                    and r.path == want.path and r.query == want.query):
                return True  # RFC 8252 §7.3: any port on loopback
        return False

    def check_password(self, user, password):
        u = self.users.get(user)
        return u is not None and hmac.compare_digest(str(u.get("password", "")).encode(),
                                                     (password or "").encode())

    # --- test hooks -----------------------------------------------------
    def mint(self, req):
        kind = req.get("kind", "good")
        user = req.get("user", "alice")
        alg = req.get("alg", "RS256")
        aud = req.get("aud") or self.args.client_id
        c = self.claims(user, aud)
        c.update(req.get("claims", {}))
        now = int(time.time())
        if kind == "expired":
            c.update(iat=now - 7200, nbf=now - 7200, exp=now - 3600)
        elif kind == "wrong_issuer":
            c["iss"] = self.issuer + "/other"
        elif kind == "wrong_audience":
            c["aud"] = "someone-else"
        elif kind == "nbf_future":
            c["nbf"] = now + 3600
        elif kind == "iat_future":
            c["iat"] = now + 3600
        elif kind == "aud_list":
            c["aud"] = ["another-client", aud]
        if kind == "alg_none":
            kid = self.keys.current[alg][0]
            return b64u_json({"alg": "none", "kid": kid, "typ": "JWT"}) + "." + b64u_json(c) + "."
        if kind == "hs256_pubkey":
            kid, pem = self.keys.rsa_public_pem()
            signing = b64u_json({"alg": "HS256", "kid": kid, "typ": "JWT"}) + "." + b64u_json(c)
            mac = hmac.new(pem, signing.encode(), hashlib.sha256).digest()
            return signing + "." + b64u(mac)
        if kind == "unknown_kid":
            kty, size = ALGS[alg]
            key = JsonWebKey.generate_key(kty, size, is_private=True)
            header = {"alg": alg, "kid": "unknown-" + secrets.token_hex(6), "typ": "JWT"}
            return jwt.encode(header, c, key).decode()
        if kind == "no_kid":
            with self.keys.lock:
                _, key = self.keys.current[alg]
            return jwt.encode({"alg": alg, "typ": "JWT"}, c, key).decode()
        token = self.keys.sign(c, alg)
        if kind == "altered_payload":
            h, _, s = token.split(".")
            c["preferred_username"] = req.get("as_user", "root")
            c["groups"] = c.get("groups", []) + ["admins"]
            return h + "." + b64u_json(c) + "." + s
        if kind == "bad_signature":
            h, p, s = token.split(".")
            raw = bytearray(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)))
            raw[len(raw) // 2] ^= 0x01
            return h + "." + p + "." + b64u(bytes(raw))
        return token


def page(title, body):
    return ("<!doctype html><html><head><meta charset='utf-8'><title>" + html.escape(title) +
            "</title></head><body><h1>" + html.escape(title) + "</h1>" + body + "</body></html>")


def hidden(fields):
    return "".join(f"<input type='hidden' name='{html.escape(k)}' value='{html.escape(v)}'>"
                   for k, v in fields.items())


LOGIN_FIELDS = ("response_type", "client_id", "redirect_uri", "scope", "state", "nonce",
                "code_challenge", "code_challenge_method")


class Handler(BaseHTTPRequestHandler):
    server_version = "jitgate-test-idp"
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *a):
        if self.server.provider.args.verbose:
            sys.stderr.write("idp: " + fmt % a + "\n")

    @property
    def p(self):
        return self.server.provider

    def send(self, status, body, ctype="application/json", headers=None):
        data = body if isinstance(body, bytes) else (
            json.dumps(body) if ctype == "application/json" else body).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype + ("; charset=utf-8" if "html" in ctype else ""))
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def oauth_error(self, error, desc, status=400):
        self.send(status, {"error": error, "error_description": desc})

    def form(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n > 65536:
            return None
        raw = self.rfile.read(n).decode("utf-8", "replace")
        if self.headers.get("Content-Type", "").startswith("application/json"):
            try:
                return json.loads(raw or "{}")
            except ValueError:
                return None
        return {k: v[0] for k, v in urllib.parse.parse_qs(raw, keep_blank_values=True).items()}

    def query(self):
        q = urllib.parse.urlsplit(self.path).query
        return {k: v[0] for k, v in urllib.parse.parse_qs(q, keep_blank_values=True).items()}

    def route(self):
        return urllib.parse.urlsplit(self.path).path

    # --- GET ------------------------------------------------------------
    def do_GET(self):
        r = self.route()
        if r == "/.well-known/openid-configuration":
            self.p.stats["discovery_fetches"] += 1
            return self.send(200, self.p.metadata())
        if r == "/jwks":
            self.p.stats["jwks_fetches"] += 1
            return self.send(200, self.p.keys.jwks())
        if r == "/authorize":
            return self.authorize(self.query(), None)
        if r == "/device":
            return self.device_page(self.query().get("user_code", ""), "")
        if r == "/userinfo":
            return self.userinfo()
        if r == "/test/stats" and self.p.args.test_hooks:
            return self.send(200, self.p.stats)
        self.send(404, {"error": "not_found"})

    def do_POST(self):
        r = self.route()
        f = self.form()
        if f is None:
            return self.oauth_error("invalid_request", "the body is too large or not valid")
        if r == "/authorize":
            return self.authorize(f, f)
        if r == "/token":
            return self.token(f)
        if r == "/device_authorization":
            return self.device_authorization(f)
        if r == "/device":
            return self.device_decide(f)
        if self.p.args.test_hooks and r == "/test/mint":
            return self.send(200, {"token": self.p.mint(f)})
        if self.p.args.test_hooks and r == "/test/rotate":
            return self.send(200, {"kids": self.p.keys.rotate(bool(f.get("drop_old")))})
        self.send(404, {"error": "not_found"})

    # --- authorization code + PKCE -----------------------------------------
    def authorize(self, q, posted):
        cid, ruri = q.get("client_id", ""), q.get("redirect_uri", "")
        if not self.p.redirect_ok(cid, ruri):
            return self.send(400, page("Sign-in refused", "<p>Unknown client or redirect URI.</p>"),
                             "text/html")

        def back(params):
            params = {k: v for k, v in params.items() if v}
            sep = "&" if "?" in ruri else "?"
            self.send(302, b"", "text/plain",
                      {"Location": ruri + sep + urllib.parse.urlencode(params)})

        state = q.get("state", "")
        if q.get("response_type") != "code":
            return back({"error": "unsupported_response_type", "state": state})
        if "openid" not in q.get("scope", "").split():
            return back({"error": "invalid_scope", "error_description": "scope must hold openid",
                         "state": state})
        if q.get("code_challenge_method") != "S256" or not q.get("code_challenge"):
            return back({"error": "invalid_request",
                         "error_description": "PKCE with code_challenge_method=S256 is required",
                         "state": state})
        error = ""
        if posted is not None:
            user = posted.get("username", "")
            if self.p.check_password(user, posted.get("password", "")):
                code = secrets.token_urlsafe(24)
                with self.p.lock:
                    self.p.codes[code] = {"user": user, "client_id": cid, "redirect_uri": ruri,
                                          "challenge": q["code_challenge"], "nonce": q.get("nonce"),
                                          "scope": q.get("scope", "openid"),
                                          "expires": time.time() + 60}
                return back({"code": code, "state": state, "iss": self.p.issuer})
            error = "<p role='alert'>Wrong user name or password.</p>"
        fields = {k: q.get(k, "") for k in LOGIN_FIELDS}
        body = (error + "<form method='post' action='/authorize'>" + hidden(fields) +
                "<label>User name <input name='username' id='username' autocomplete='username'>"
                "</label><label>Password <input type='password' name='password' id='password'>"
                "</label><button type='submit' id='login'>Sign in</button></form>")
        self.send(200, page("Sign in to the test IdP", body), "text/html")

    def token(self, f):
        g = f.get("grant_type")
        if g == "authorization_code":
            return self.token_code(f)
        if g == "refresh_token":
            return self.token_refresh(f)
        if g == DEVICE_GRANT:
            return self.token_device(f)
        self.oauth_error("unsupported_grant_type", f"grant_type {g!r} is not supported")

    def token_code(self, f):
        with self.p.lock:
            grant = self.p.codes.pop(f.get("code", ""), None)  # one use only
        if not grant or grant["expires"] < time.time():
            return self.oauth_error("invalid_grant", "unknown, used or expired code")
        if f.get("client_id") != grant["client_id"] or f.get("redirect_uri") != grant["redirect_uri"]:
            return self.oauth_error("invalid_grant", "client_id or redirect_uri differs")
        verifier = f.get("code_verifier", "")
        if not (43 <= len(verifier) <= 128) or \
                create_s256_code_challenge(verifier) != grant["challenge"]:
            return self.oauth_error("invalid_grant", "the PKCE code_verifier does not match")
        self.send(200, self.p.tokens(grant["user"], grant["client_id"], grant["scope"],
                                     grant["nonce"]))

    def token_refresh(self, f):
        with self.p.lock:
            grant = self.p.refresh.pop(f.get("refresh_token", ""), None)  # rotated
        if not grant or grant["client_id"] != f.get("client_id"):
            return self.oauth_error("invalid_grant", "unknown or used refresh token")
        self.send(200, self.p.tokens(grant["user"], grant["client_id"], grant["scope"]))

    # --- device authorization (RFC 8628) --------------------------------------
    def device_authorization(self, f):
        cid = f.get("client_id", "")
        if cid not in self.p.clients:
            return self.oauth_error("invalid_client", "unknown client_id", 401)
        dc = secrets.token_urlsafe(32)
        letters = "BCDFGHJKLMNPQRSTVWXZ"
        uc = "".join(secrets.choice(letters) for _ in range(8))
        uc = uc[:4] + "-" + uc[4:]
        with self.p.lock:
            self.p.devices[dc] = {"client_id": cid, "user_code": uc, "state": "pending",
                                  "scope": f.get("scope", "openid"),
                                  "expires": time.time() + 600, "last_poll": 0.0,
                                  "interval": self.p.args.device_interval}
            self.p.user_codes[uc] = dc
        uri = self.p.issuer + "/device"
        self.send(200, {"device_code": dc, "user_code": uc, "verification_uri": uri,
                        "verification_uri_complete": uri + "?user_code=" + uc,
                        "expires_in": 600, "interval": self.p.args.device_interval})

    def token_device(self, f):
        now = time.time()
        with self.p.lock:
            d = self.p.devices.get(f.get("device_code", ""))
            if not d or d["client_id"] != f.get("client_id"):
                return self.oauth_error("invalid_grant", "unknown device_code")
            if d["expires"] < now:
                return self.oauth_error("expired_token", "the device code expired")
            too_soon = now - d["last_poll"] < d["interval"]
            d["last_poll"] = now
            if d["state"] == "pending":
                if too_soon:
                    d["interval"] += 5  # RFC 8628 §3.5
                    return self.oauth_error("slow_down", "poll less often")
                return self.oauth_error("authorization_pending", "not approved yet")
            if d["state"] == "denied":
                return self.oauth_error("access_denied", "the user denied the request")
            if d["state"] == "used":
                return self.oauth_error("invalid_grant", "the device code was used")
            d["state"] = "used"
        self.send(200, self.p.tokens(d["user"], d["client_id"], d["scope"]))

    def device_page(self, code, note):
        body = (note + "<form method='post' action='/device'>"
                "<label>Code <input name='user_code' id='user_code' value='" + html.escape(code) +
                "'></label><label>User name <input name='username' id='username'></label>"
                "<label>Password <input type='password' name='password' id='password'></label>"
                "<button type='submit' name='decision' value='approve' id='approve'>Approve</button>"
                "<button type='submit' name='decision' value='deny' id='deny'>Deny</button></form>")
        self.send(200, page("Approve a device", body), "text/html")

    def device_decide(self, f):
        uc = f.get("user_code", "").strip().upper()
        if not self.p.check_password(f.get("username", ""), f.get("password", "")):
            return self.device_page(uc, "<p role='alert'>Wrong user name or password.</p>")
        with self.p.lock:
            d = self.p.devices.get(self.p.user_codes.get(uc, ""))
            if not d or d["state"] != "pending" or d["expires"] < time.time():
                ok = False
            else:
                ok = True
                d["state"] = "approved" if f.get("decision", "approve") == "approve" else "denied"
                d["user"] = f["username"]
        if not ok:
            return self.device_page(uc, "<p role='alert'>Unknown or expired code.</p>")
        self.send(200, page("Device " + ("approved" if d["state"] == "approved" else "denied"),
                            "<p id='done'>You may close this page.</p>"), "text/html")

    def userinfo(self):
        auth = self.headers.get("Authorization", "")
        with self.p.lock:
            entry = self.p.access.get(auth[7:]) if auth.startswith("Bearer ") else None
        if not entry or entry[1] < time.time():
            return self.send(401, {"error": "invalid_token"}, headers={"WWW-Authenticate": "Bearer"})
        c = self.p.claims(entry[0], self.p.args.client_id)
        self.send(200, {k: c[k] for k in ("sub", "preferred_username", "groups", "email") if k in c})


def main():
    ap = argparse.ArgumentParser(description="jitgate's test OpenID provider")
    ap.add_argument("--users", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--url-file")
    ap.add_argument("--client-id", default="jitgate")
    ap.add_argument("--redirect-uri", action="append", default=[])
    ap.add_argument("--id-token-alg", default="RS256", choices=list(ALGS))
    ap.add_argument("--token-ttl", type=int, default=300)
    ap.add_argument("--device-interval", type=int, default=1)
    ap.add_argument("--test-hooks", action="store_true")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    with open(args.users) as f:
        doc = json.load(f)
    clients = doc.get("clients", {})
    clients.setdefault(args.client_id, {}).setdefault("redirect_uris", []).extend(args.redirect_uri)
    provider = Provider(args, doc.get("users", {}), clients)
    srv = ThreadingHTTPServer((args.host, args.port), Handler)
    srv.daemon_threads = True
    srv.provider = provider
    host = f"[{args.host}]" if ":" in args.host else args.host
    provider.issuer = f"http://{host}:{srv.server_address[1]}"
    if args.url_file:
        tmp = args.url_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(provider.issuer + "\n")
        os.rename(tmp, args.url_file)
    print(provider.issuer, flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
