#!/usr/bin/python3
"""Run as the requesting user, in the test cgroup and network namespace:
connects a UDP socket to 127.0.0.1:PORT again and again (refused with EPERM
while there is no grant) until the kernel lets it through, then prints the
wall-clock time of that moment in nanoseconds.  Prints "ready" before the
first attempt; gives up after SECONDS ("timeout").  With PAUSE_US, it sleeps that long
between attempts (several probers on a small machine leave the CPUs to the
daemons they wait for).

    latency_probe.py PORT SECONDS [PAUSE_US]
"""
import socket
import sys
import time

port, seconds = int(sys.argv[1]), float(sys.argv[2])
pause = int(sys.argv[3]) / 1e6 if len(sys.argv) > 3 else 0
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
print("ready", flush=True)
end = time.monotonic() + seconds
n = 0
while True:
    try:
        s.connect(("127.0.0.1", port))
        print(time.time_ns(), flush=True)
        break
    except PermissionError:
        n += 1
        if pause:
            time.sleep(pause)
        if (pause or n % 1024 == 0) and time.monotonic() > end:
            print("timeout", flush=True)
            break
