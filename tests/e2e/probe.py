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
  probe.py burst tcp|udp ADDR PORT N -> N attempts back to back (a few ms), each on a
       fresh socket; prints the count of each outcome like flood
  probe.py stamped tcp|udp ADDR PORT     -> one connect; prints the outcome and the
       wall-clock time (seconds) right after the kernel answered: "EPERM 1790000000.123"
  probe.py keep ADDR PORT SECONDS        -> one TCP connection, "ping" and its echo every
       50 ms for SECONDS: prints "connected T" once the first echo came back, then
       "ok N" if the connection lasted, or "stopped N <ERRNO NAME> T" at the first
       send or receive that failed (EOF, TIMEOUT after 2 s, bad-echo are named so
       too); T is the wall-clock time (seconds) of that moment
  probe.py storm tcp|udp ADDR[,ADDR...] PORT SECONDS INTERVAL_MS -> starts a new
       attempt every INTERVAL_MS for at most SECONDS (or until SIGTERM), cycling
       through the addresses, each on a fresh non-blocking socket given
       STORM_WAIT_S to answer; prints "storming" at once, then
       "attempts N successes M refused R timeouts T errors NAME:K ..." at the end.
       tcp: a success is a completed handshake; udp: a sendto whose echo came
       back (the datagram "storm UID" reached the server).  refused = the
       kernel or the peer said no (EPERM, ECONNREFUSED, ...), timeouts = no
       answer within STORM_WAIT_S (a dropped SYN or datagram)
  probe.py wire SOCKET FILE SECONDS [--stall] [--trickle MS] -> connects to the Unix
       socket, sends FILE's bytes (all at once, or one byte every MS with
       --trickle), half-closes unless --stall, then reads until the daemon closes
       or SECONDS pass; prints one JSON object: bytes sent, the send error if
       any, the reply lines, whether the daemon closed ("closed") and when
       ("closed_after_s", seconds after connecting)
  probe.py until tcp|udp ADDR PORT SECONDS PAUSE_US -> prints "ready", then tries
       a connect (tcp: with the echo; udp: connect() alone) every PAUSE_US until the
       kernel lets one through: prints the wall-clock time of that moment in
       nanoseconds, or "timeout" after SECONDS
  --src ADDR (anywhere): the socket is bound to ADDR first (a peer host with
       several addresses chooses which one it speaks from)
"""
import errno
import json
import os
import selectors
import signal
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


def until(proto, addr, port, seconds, pause_us):
    """Waits for a grant: the first connect the kernel allows, as wall-clock ns."""
    print("ready", flush=True)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if proto == "tcp":
            r = connect("tcp", addr, port)
        else:
            s = new_socket(addr, socket.SOCK_DGRAM, 2)
            try:
                s.connect((addr, port))
                r = "ok"
            except OSError as e:
                r = name(e)
            finally:
                s.close()
        if r == "ok":
            return str(time.time_ns())
        time.sleep(pause_us / 1e6)
    return "timeout"


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


def burst(proto, addr, port, n):
    counts = {}
    for _ in range(n):
        r = attempt(proto, addr, port)
        counts[r] = counts.get(r, 0) + 1
    return " ".join(f"{k}:{v}" for k, v in sorted(counts.items()))


STORM_WAIT_S = 0.2
STORM_MAX_IN_FLIGHT = 128


def storm(proto, addrs, port, seconds, interval_ms):
    """A forbidden connect (or datagram) every interval_ms; the tally of outcomes."""
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    sel = selectors.DefaultSelector()
    counts = {"attempts": 0, "successes": 0, "refused": 0, "timeouts": 0}
    errors = {}
    payload = f"storm {os.getuid()}".encode()
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    targets = [socket.getaddrinfo(a, port, fam(a), kind)[0][4] for a in addrs]

    def outcome(what, err=None):
        counts[what] += 1
        if err:
            errors[err] = errors.get(err, 0) + 1

    def finish(s, what, err=None):
        sel.unregister(s)
        s.close()
        outcome(what, err)

    def launch(i):
        addr, target = addrs[i % len(addrs)], targets[i % len(targets)]
        s = socket.socket(fam(addr), kind)
        s.setblocking(False)
        if SRC:
            s.bind((SRC, 0))
        counts["attempts"] += 1
        try:
            if proto == "tcp":
                rc = s.connect_ex(target)
                if rc == 0:
                    s.close()
                    return outcome("successes")
                if rc not in (errno.EINPROGRESS, errno.EAGAIN):
                    s.close()
                    return outcome("refused", errno.errorcode.get(rc, str(rc)))
                sel.register(s, selectors.EVENT_WRITE, time.monotonic() + STORM_WAIT_S)
            else:
                s.sendto(payload, target)
                sel.register(s, selectors.EVENT_READ, time.monotonic() + STORM_WAIT_S)
        except OSError as e:
            s.close()
            outcome("refused", name(e))

    print("storming", flush=True)
    end = time.monotonic() + seconds
    next_at = time.monotonic()
    i = 0
    while True:
        now = time.monotonic()
        launching = not stop and now < end
        if not launching and not sel.get_map():
            break
        if launching and now >= next_at and len(sel.get_map()) < STORM_MAX_IN_FLIGHT:
            launch(i)
            i += 1
            next_at += interval_ms / 1000.0
            if next_at < now:  # late (a slow machine): no burst to catch up
                next_at = now + interval_ms / 1000.0
        wake = [k.data for k in sel.get_map().values()] + [next_at if launching else now + STORM_WAIT_S]
        wait = max(0.0, min(wake) - time.monotonic())
        if not sel.get_map():
            time.sleep(wait)
            continue
        for key, _ in sel.select(timeout=wait):
            s = key.fileobj
            if proto == "tcp":
                rc = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if rc == 0:
                    finish(s, "successes")
                else:
                    finish(s, "refused", errno.errorcode.get(rc, str(rc)))
            else:
                try:
                    d = s.recv(64)
                    finish(s, "successes" if d == payload else "refused", None if d == payload else "bad-echo")
                except OSError as e:
                    finish(s, "refused", name(e))
        now = time.monotonic()
        for key in [k for k in sel.get_map().values() if k.data <= now]:
            finish(key.fileobj, "timeouts")
    errs = " ".join(f"{k}:{v}" for k, v in sorted(errors.items()))
    return " ".join(f"{k} {v}" for k, v in counts.items()) + (f" errors {errs}" if errs else "")


def wire(path, file, seconds, stall=False, trickle_ms=None):
    """Sends a file's bytes to the control socket and reports what came back."""
    with open(file, "rb") as f:
        data = f.read()
    out = {"sent": 0, "send_error": None, "replies": [], "closed": False, "closed_after_s": None}
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(seconds)
    start = time.monotonic()
    end = start + seconds
    s.connect(path)
    buf = b""
    try:
        if trickle_ms:
            s.setblocking(False)
            for b in data:
                if time.monotonic() >= end:
                    break
                s.send(bytes([b]))
                out["sent"] += 1
                try:  # the daemon may close meanwhile
                    d = s.recv(65536)
                    if not d:
                        out["closed"] = True
                        break
                    buf += d
                except BlockingIOError:
                    pass
                time.sleep(trickle_ms / 1000.0)
            s.setblocking(True)
        else:
            while out["sent"] < len(data):
                out["sent"] += s.send(data[out["sent"]:out["sent"] + 65536])
    except OSError as e:
        out["send_error"] = name(e)
    if not stall and not out["closed"]:
        try:
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass
    while not out["closed"]:
        left = end - time.monotonic()
        if left <= 0:
            break
        s.settimeout(left)
        try:
            d = s.recv(65536)
        except socket.timeout:
            break
        except OSError as e:
            out["recv_error"] = name(e)
            out["closed"] = True
            break
        if not d:
            out["closed"] = True
            break
        buf += d
    if out["closed"]:
        out["closed_after_s"] = round(time.monotonic() - start, 3)
    s.close()
    for line in buf.split(b"\n"):
        if line:
            try:
                out["replies"].append(json.loads(line))
            except ValueError:
                out["replies"].append({"raw": line[:200].decode(errors="replace")})
    return json.dumps(out)


def main():
    global SRC
    if "--src" in sys.argv:
        i = sys.argv.index("--src")
        SRC = sys.argv[i + 1]
        del sys.argv[i:i + 2]
    cmd = sys.argv[1]
    if cmd == "connect":
        print(connect(sys.argv[2], sys.argv[3], int(sys.argv[4])))
    elif cmd == "until":
        print(until(sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6])), flush=True)
    elif cmd == "hold":
        hold(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
    elif cmd == "rawcount":
        print(rawcount(float(sys.argv[2]), [int(p) for p in sys.argv[3:]]), flush=True)
    elif cmd == "flood":
        print(flood(sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5])))
    elif cmd == "burst":
        print(burst(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])))
    elif cmd == "stamped":
        r = attempt(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        print(f"{r} {time.time():.6f}")
    elif cmd == "keep":
        print(keep(sys.argv[2], int(sys.argv[3]), float(sys.argv[4])), flush=True)
    elif cmd in ("flow", "udpflow", "udpsend"):
        print(keep_sending(cmd, sys.argv[2], int(sys.argv[3]), float(sys.argv[4])))
    elif cmd == "storm":
        print(storm(sys.argv[2], sys.argv[3].split(","), int(sys.argv[4]), float(sys.argv[5]),
                    float(sys.argv[6])), flush=True)
    elif cmd == "wire":
        stall = "--stall" in sys.argv
        trickle = float(sys.argv[sys.argv.index("--trickle") + 1]) if "--trickle" in sys.argv else None
        print(wire(sys.argv[2], sys.argv[3], float(sys.argv[4]), stall, trickle), flush=True)
    else:
        sys.exit("unknown command")


if __name__ == "__main__":
    main()
