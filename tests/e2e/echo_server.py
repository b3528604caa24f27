#!/usr/bin/python3
"""TCP and UDP echo server on [::]:PORT (dual stack) for each PORT given.
With --log FILE, every UDP datagram received is also recorded there as
"PORT PAYLOAD" (tests check what reached the socket).
Runs until killed; bounded: at most 10000 connections in total."""
import socket
import sys
import threading

budget = threading.Semaphore(10000)
log = None
log_lock = threading.Lock()


def tcp(port):
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind(("::", port))
    s.listen(128)
    while budget.acquire(blocking=False):
        c, _ = s.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()


def serve(c):
    c.settimeout(60)
    try:
        while True:
            d = c.recv(4096)
            if not d:
                break
            c.sendall(d)
    except OSError:
        pass
    c.close()


def udp(port):
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind(("::", port))
    while True:
        d, a = s.recvfrom(65535)
        if log:
            with log_lock:
                log.write(f"{port} {d.decode(errors='replace')}\n")
                log.flush()
        s.sendto(d, a)


args = sys.argv[1:]
if args[:1] == ["--log"]:
    log = open(args[1], "a")
    args = args[2:]
for p in args:
    threading.Thread(target=tcp, args=(int(p),), daemon=True).start()
    threading.Thread(target=udp, args=(int(p),), daemon=True).start()
print("ready", flush=True)
threading.Event().wait()
