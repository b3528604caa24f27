#!/usr/bin/python3
"""Socket probe run as an unprivileged test user inside the test cgroup.

  probe.py connect tcp|udp ADDR PORT     -> prints ok | <ERRNO NAME>
       tcp: connect, send "ping", expect the echo; udp: sendto, expect the echo
  probe.py flow ADDR PORT SECONDS        -> keeps one TCP connection and echoes
       every 0.2 s for SECONDS; prints "ok N" while all echoes came back, or
       "stopped N <reason>" at the first echo that did not (N = echoes seen)
  probe.py udpflow ADDR PORT SECONDS     -> the same with a connected UDP socket
  probe.py udpsend ADDR PORT SECONDS     -> a connected UDP socket sends every 0.2 s
       (broadcast/multicast too: no echo expected); "ok N", or "stopped N <ERRNO>"
       at the first send the kernel refused
  probe.py hold SOCKET N SECONDS         -> opens N connections to a Unix socket and
       holds them; prints how many were accepted without an error reply
  probe.py rawcount SECONDS PORT...      -> a raw IPv4 TCP socket (root) counts the
       packets it receives for each destination PORT: "PORT:N ..."
  probe.py flood tcp|udp ADDR PORT SECONDS -> connects (tcp) or sends (udp) with a
       fresh socket each time, as fast as it can for SECONDS; prints the count of
       each outcome: "EPERM:N ok:M ..."
  probe.py stamped tcp|udp ADDR PORT     -> one connect; prints the outcome and the
       wall-clock time (seconds) right after the kernel answered: "EPERM 1790000000.123"
  probe.py keep ADDR PORT SECONDS        -> one TCP connection, "ping" and its echo every
       50 ms for SECONDS: prints "connected T" once the first echo came back, then
       "ok N" if the connection lasted, or "stopped N <ERRNO NAME> T" at the first
       send or receive that failed (EOF, TIMEOUT after 2 s, bad-echo are named so
       too); T is the wall-clock time (seconds) of that moment
  --src ADDR (anywhere): the socket is bound to ADDR first (a peer host with
       several addresses chooses which one it speaks from)
"""
import errno
import socket
import sys
import time


SRC = None


def fam(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def new_socket(addr, kind, timeout, broadcast=False):
    s = socket.socket(fam(addr), kind)
    s.settimeout(timeout)
    if broadcast and fam(addr) == socket.AF_INET:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    if SRC:
        s.bind((SRC, 0))
    return s


def name(e):
    return errno.errorcode.get(e.errno, str(e)) if isinstance(e, OSError) and e.errno else type(e).__name__


def attempt(proto, addr, port, echo=False):
    """One connect (tcp) or datagram (udp): the kernel's answer, "ok" or the
    errno's name; with echo, "ok" only once "ping" came back."""
    s = new_socket(addr, socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM, 2,
                   broadcast=proto == "udp")
    try:
        if proto == "tcp":
            s.connect((addr, port))
            if echo:
                s.sendall(b"ping")
        else:
            s.sendto(b"ping", (addr, port))
        if echo and s.recv(64) != b"ping":
            return "bad-echo"
        return "ok"
    except socket.timeout:
        return "TIMEOUT"
    except OSError as e:
        return name(e)
    finally:
        s.close()


def connect(proto, addr, port):
    return attempt(proto, addr, port, echo=True)


def keep_sending(kind, addr, port, seconds):
    """One connected socket, one datagram/segment every 0.2 s for `seconds`.
    flow/udpflow expect the echo back; udpsend (broadcast, multicast) only
    needs the kernel to accept the send."""
    sock_type = socket.SOCK_STREAM if kind == "flow" else socket.SOCK_DGRAM
    s = new_socket(addr, sock_type, 1.0, broadcast=kind == "udpsend")
    n = 0
    try:
        s.connect(socket.getaddrinfo(addr, port, fam(addr), sock_type)[0][4])
    except OSError as e:
        return f"stopped 0 connect:{name(e)}"
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            s.send(b"ping")
            if kind != "udpsend" and s.recv(64) != b"ping":
                return f"stopped {n} bad-echo"
        except socket.timeout:
            return f"stopped {n} TIMEOUT"
        except OSError as e:
            return f"stopped {n} {name(e)}"
        n += 1
        time.sleep(0.2)
    return f"ok {n}"


def echo_once(s):
    """Sends "ping" on stream socket s and reads the 4 bytes back; None, or why not."""
    s.sendall(b"ping")
    got = b""
    while len(got) < 4:
        d = s.recv(4 - len(got))
        if not d:
            return "EOF"
        got += d
    return None if got == b"ping" else "bad-echo"


def keep(addr, port, seconds):
    """Holds one TCP connection, echoing every 50 ms, and says when and how it ended."""
    s = new_socket(addr, socket.SOCK_STREAM, 2.0)

    def step(first):
        """One echo (after connecting, the first time): "" or why it failed."""
        try:
            if first:
                s.connect(socket.getaddrinfo(addr, port, fam(addr), socket.SOCK_STREAM)[0][4])
            return echo_once(s)
        except socket.timeout:
            return "TIMEOUT"
        except OSError as e:
            return name(e)

    why = step(True)
    if why:
        return f"stopped 0 connect:{why} {time.time():.6f}"
    print(f"connected {time.time():.6f}", flush=True)
    n = 1
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(0.05)
        why = step(False)
        if why:
            return f"stopped {n} {why} {time.time():.6f}"
        n += 1
    s.close()
    return f"ok {n}"


def hold(path, n, seconds):
    conns, ok = [], 0
    for _ in range(n):
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.connect(path)
        c.setblocking(False)
        conns.append(c)
    time.sleep(0.5)
    for c in conns:
        try:
            if not c.recv(4096):
                continue
        except BlockingIOError:
            ok += 1  # no refusal written: the daemon kept it
        except OSError:
            pass
    print(ok, flush=True)
    time.sleep(seconds)


def rawcount(seconds, ports):
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
    s.settimeout(0.2)
    counts = {p: 0 for p in ports}
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            pkt = s.recv(65535)
        except socket.timeout:
            continue
        ihl = (pkt[0] & 0x0F) * 4
        if len(pkt) >= ihl + 4:
            dport = int.from_bytes(pkt[ihl + 2:ihl + 4], "big")
            if dport in counts:
                counts[dport] += 1
    return " ".join(f"{p}:{n}" for p, n in counts.items())


def flood(proto, addr, port, seconds):
    counts = {}
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        r = attempt(proto, addr, port)
        counts[r] = counts.get(r, 0) + 1
    return " ".join(f"{k}:{v}" for k, v in sorted(counts.items()))


def main():
    global SRC
    if "--src" in sys.argv:
        i = sys.argv.index("--src")
        SRC = sys.argv[i + 1]
        del sys.argv[i:i + 2]
    cmd = sys.argv[1]
    if cmd == "connect":
        print(connect(sys.argv[2], sys.argv[3], int(sys.argv[4])))
    elif cmd == "hold":
        hold(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
    elif cmd == "rawcount":
        print(rawcount(float(sys.argv[2]), [int(p) for p in sys.argv[3:]]), flush=True)
    elif cmd == "flood":
        print(flood(sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5])))
    elif cmd == "stamped":
        r = attempt(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        print(f"{r} {time.time():.6f}")
    elif cmd == "keep":
        print(keep(sys.argv[2], int(sys.argv[3]), float(sys.argv[4])), flush=True)
    elif cmd in ("flow", "udpflow", "udpsend"):
        print(keep_sending(cmd, sys.argv[2], int(sys.argv[3]), float(sys.argv[4])))
    else:
        sys.exit("unknown command")


if __name__ == "__main__":
    main()
