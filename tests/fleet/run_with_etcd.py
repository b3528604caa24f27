#!/usr/bin/env python3
"""Runs a test binary against two private etcds: JG_ETCD_URL (no auth) and
JG_ETCD_AUTH_URL (auth on, user root, password in JG_ETCD_AUTH_PASSWORD,
tokens expiring after 1 s unused, so that re-authentication is exercised)
and JG_ETCD_TLS_URL (https with client certificates: JG_ETCD_TLS_CA,
JG_ETCD_TLS_CERT, JG_ETCD_TLS_KEY).
Usage: run_with_etcd.py BINARY [ARGS...]; exits with the binary's code."""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from private_etcd import PrivateEtcd  # noqa: E402

PASSWORD = "jg-test-%d" % os.getpid()


def main():
    if len(sys.argv) < 2:
        print("usage: run_with_etcd.py BINARY [ARGS...]", file=sys.stderr)
        return 2
    with PrivateEtcd(name="plain") as plain, \
            PrivateEtcd(name="auth", extra_args=["--auth-token-ttl", "1"]) as auth, \
            PrivateEtcd(name="tls", tls=True) as tls:
        auth.enable_auth(PASSWORD)
        env = dict(os.environ, JG_ETCD_URL=plain.url, JG_ETCD_AUTH_URL=auth.url,
                   JG_ETCD_AUTH_PASSWORD=PASSWORD, JG_ETCD_TLS_URL=tls.url, JG_ETCD_TLS_CA=tls.ca_file,
                   JG_ETCD_TLS_CERT=tls.cert_file, JG_ETCD_TLS_KEY=tls.key_file)
        env.pop("http_proxy", None)
        env.pop("HTTP_PROXY", None)
        return subprocess.call(sys.argv[1:], env=env, timeout=240)


if __name__ == "__main__":
    sys.exit(main())
