#!/usr/bin/python3
"""Binds a local port the way a service (or an impostor) does; run as a test
user inside the test cgroup by e2e_bind.py.

  binder.py bind tcp|udp ADDR PORT [--reuse]  -> one bind (TCP: and listen);
       prints "ok PID" or "<ERRNO NAME> PID"
  binder.py serve tcp|udp ADDR PORT [--reuse] -> the same, then keeps the socket
       for at most 120 s (or until killed): prints "ready PID" once bound
  binder.py loop tcp|udp ADDR PORT N          -> N binds, each on a fresh socket;
       prints the count of each outcome: "EPERM:N ok:M ..."
--reuse sets SO_REUSEADDR before the bind (UDP: several sockets share the address).
"""
import errno
import os
import socket
import sys
import time


def attempt(proto, addr, port, reuse):
    """(socket or None, outcome name) of one bind."""
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    s = socket.socket(family, kind)
    if reuse:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    try:
        s.bind((addr, port))
        if proto == "tcp":
            s.listen(8)
    except OSError as e:
        s.close()
        return None, errno.errorcode.get(e.errno, str(e.errno))
    return s, "ok"


def main():
    cmd, proto, addr, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    rest = sys.argv[5:]
    reuse = "--reuse" in rest
    pid = os.getpid()
    if cmd == "bind":
        s, what = attempt(proto, addr, port, reuse)
        print(f"{what} {pid}", flush=True)
        if s:
            s.close()
    elif cmd == "serve":
        s, what = attempt(proto, addr, port, reuse)
        print(f"{'ready' if s else what} {pid}", flush=True)
        if s:
            time.sleep(120)
    elif cmd == "loop":
        counts = {}
        for _ in range(int(rest[0])):
            s, what = attempt(proto, addr, port, False)
            counts[what] = counts.get(what, 0) + 1
            if s:
                s.close()
        print(" ".join(f"{k}:{v}" for k, v in sorted(counts.items())), flush=True)
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
