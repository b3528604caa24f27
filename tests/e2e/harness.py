"""Shared set-up for jitgate's privileged end-to-end suites.

Everything a test creates is private and removed in cleanup(), which runs on
exit, on SIGINT/SIGTERM and on failure: a network namespace (the daemon's
"host" for the test) whose veth interface holds documentation-range
addresses, a peer namespace (other hosts) joined by that veth pair, a child cgroup of the
cgroup v2 hierarchy, a private bpffs mount, test users and a group, and a
temporary directory.  Nothing is attached to the root cgroup and no address
of the machine itself is used.
"""
import collections
import datetime
import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

# The pin directory of this build's kernel ABI (include/jitgate/abi.h).
def _abi_version():
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "..", "..", "include", "jitgate", "abi.h")) as f:
        return int(re.search(r"#define JG_ABI_VERSION (\d+)", f.read()).group(1))


PIN_VERSION = "v%d" % _abi_version()


CI = os.environ.get("CI") == "true"
PY = "/usr/bin/python3"
# Random ports beyond port/port_open/port2/port3, each with an echo server.
EXTRA_PORTS = 13


def skip(reason):
    if CI:
        print(f"FAIL: a privileged suite cannot be skipped in CI: {reason}")
        sys.exit(1)
    print(f"skipped: {reason}")
    sys.exit(77)


def sh(*args, check=True, **kw):
    return subprocess.run(list(args), check=check, text=True, capture_output=True, **kw)


def find_cgroup2():
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre, _, post = line.partition(" - ")
            if post.split()[0] == "cgroup2" and pre.split()[3] == "/":
                return pre.split()[4]
    return None


def wait_for(pred, seconds):
    """Polls pred every 0.1 s for at most `seconds`; its last answer."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.1)
    return pred()


def flow_result(out):
    """probe.py flow/udpflow/udpsend output -> (state, count, reason):
    "ok 25" -> ("ok", 25, ""), "stopped 14 TIMEOUT" -> ("stopped", 14, "TIMEOUT");
    anything else -> (out, -1, "")."""
    parts = out.split(maxsplit=2)
    if len(parts) < 2 or not parts[1].isdigit():
        return out, -1, ""
    return parts[0], int(parts[1]), parts[2] if len(parts) > 2 else ""


class Results:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, name, ok, detail=""):
        if ok:
            self.passed += 1
            print(f"  ok    {name}")
        else:
            self.failed += 1
            print(f"  FAIL  {name}  {detail}")
        return ok

    def eq(self, name, got, want):
        return self.check(name, got == want, f"got {got!r}, want {want!r}")

    def finish(self):
        print(f"{self.passed} passed, {self.failed} failed")
        return 0 if self.failed == 0 else 1


def reap_stale_test_users():
    """Removes test users and groups of runs whose process is gone (a run
    killed by SIGKILL cannot clean up); names are jgt<PID>_<role>."""
    for db, cmd in (("/etc/passwd", "userdel"), ("/etc/group", "groupdel")):
        with open(db) as f:
            names = [line.split(":")[0] for line in f]
        for n in names:
            m = re.fullmatch(r"jgt(\d+)_\w+", n)
            if m and not os.path.exists(f"/proc/{m.group(1)}"):
                subprocess.run([cmd, n], capture_output=True)


# What Env.grant() returns: the request's (rc, answer), then the approval's
# ((None, {}) when the request was refused).
Grant = collections.namedtuple("Grant", "req_rc req rc answer")


class Env:

    def __init__(self, build_dir, policy_template):
        if os.geteuid() != 0:
            skip("needs root (BPF, cgroups, network namespaces, test users)")
        if not os.path.exists("/sys/kernel/btf/vmlinux"):
            skip("the kernel has no BTF (/sys/kernel/btf/vmlinux)")
        self.id = f"{os.getpid()}"
        # Unique per run, so parallel runs never share or delete each other's users.
        self.req, self.appr, self.other, self.grp = (f"jgt{self.id}_{r}" for r in ("req", "appr", "other", "grp"))
        self.USERS = (self.req, self.appr, self.other, self.grp)
        self.GROUP = f"jgt{self.id}_dba"
        self.tmp = tempfile.mkdtemp(prefix="jitgate-e2e-")
        os.chmod(self.tmp, 0o755)
        self.ns = f"jgt-{self.id}"
        self.peer_ns = f"jgt-peer-{self.id}"
        self.procs = []
        self.daemon = None
        self.extra_daemon_args = []
        # A private /etc/group for the daemon (with_etc_group), or None.
        self.etc_group = None
        # What cleanup() has to undo; set as each piece is made.
        self.cg2_mounted = None
        self.cgroup = None
        self.bpffs_mounted = False
        self.policy = None
        self.users_made = []
        self.group_made = False
        self.cleaned = False
        for s in (signal.SIGINT, signal.SIGTERM):
            signal.signal(s, self._on_signal)
        try:
            self._setup(build_dir, policy_template)
        except BaseException:  # skip() too: it exits, and must not leave anything behind
            self.cleanup()
            raise

    def _on_signal(self, signum, _frame):
        self.cleanup()
        sys.exit(128 + signum)

    # --- set-up -------------------------------------------------------
    def _setup(self, build_dir, policy_template):
        # Binaries and scripts are copied so the test users can run them
        # whatever the permissions of the checkout.
        for b in ("jitgated", "jitgate"):
            shutil.copy2(os.path.join(build_dir, b), os.path.join(self.tmp, b))
        here = os.path.dirname(os.path.abspath(__file__))
        for s in ("probe.py", "echo_server.py", "frames.py"):
            shutil.copy2(os.path.join(here, s), os.path.join(self.tmp, s))
            os.chmod(os.path.join(self.tmp, s), 0o755)
        self.jitgated = os.path.join(self.tmp, "jitgated")
        self.jitgate = os.path.join(self.tmp, "jitgate")

        cg_root = find_cgroup2()
        if cg_root is None:
            self.cg2_mounted = os.path.join(self.tmp, "cgroup2")
            os.mkdir(self.cg2_mounted)
            if sh("mount", "-t", "cgroup2", "none", self.cg2_mounted, check=False).returncode:
                self.cg2_mounted = None
                skip("no cgroup v2 hierarchy could be mounted")
            cg_root = self.cg2_mounted
        cgroup = os.path.join(cg_root, f"jitgate-test-{self.id}")
        os.mkdir(cgroup)
        self.cgroup = cgroup

        self.bpffs = os.path.join(self.tmp, "bpffs")
        os.mkdir(self.bpffs)
        if sh("mount", "-t", "bpf", "bpf", self.bpffs, check=False).returncode:
            skip("cannot mount a bpf filesystem")
        self.bpffs_mounted = True

        reap_stale_test_users()
        sh("groupadd", "--system", self.GROUP)
        self.group_made = True
        for u in self.USERS:
            sh("useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", u)
            self.users_made.append(u)
        sh("usermod", "-aG", self.GROUP, self.grp)

        # The daemon's "host": a private netns whose interface jgv0 holds
        # documentation-range addresses, joined by a veth pair to a peer
        # namespace (another host).
        sh("ip", "netns", "add", self.ns)
        sh("ip", "netns", "add", self.peer_ns)
        self.nsx("ip", "link", "set", "lo", "up")
        self.nsx("ip", "link", "add", "jgv0", "type", "veth", "peer", "name", "jgv1", "netns", self.peer_ns)
        self.nsx("ip", "link", "set", "jgv0", "up")
        self.nsx("ip", "addr", "add", "203.0.113.1/24", "dev", "jgv0")
        self.nsx("ip", "addr", "add", "198.51.100.1/24", "dev", "jgv0")
        self.nsx("ip", "-6", "addr", "add", "2001:db8:1::1/64", "dev", "jgv0", "nodad")
        self.peerx("ip", "link", "set", "lo", "up")
        self.peerx("ip", "addr", "add", "203.0.113.2/24", "dev", "jgv1")
        self.peerx("ip", "link", "set", "jgv1", "up")

        # Ports outside the ephemeral range (a reply to a client port that
        # is also protected would be gated), random per run; more_ports are
        # {port4}, {port5}, ... in a policy template, for suites that protect more.
        ports = random.sample(range(20000, 32000), 4 + EXTRA_PORTS)
        self.port, self.port_open, self.port2, self.port3 = ports[:4]
        self.more_ports = ports[4:]
        # What a policy template may name; render() fills in a template with them.
        self.policy_vars = dict(port=self.port, port2=self.port2, port3=self.port3, appr=self.appr,
                                group=self.GROUP, req=self.req, other=self.other, grp=self.grp,
                                **{f"port{i}": p for i, p in enumerate(self.more_ports, 4)})
        self.policy = os.path.join(self.tmp, "jitgate.toml")
        with open(self.policy, "w") as f:
            f.write(self.render(policy_template))
        self.state = os.path.join(self.tmp, "state")
        self.sock = os.path.join(self.tmp, "jitgate.sock")
        self.audit = os.path.join(self.tmp, "audit.jsonl")

        # The host's servers live in the test cgroup, where cgroup_skb/ingress
        # sees what arrives for them (the real daemon is attached at the root).
        self.udp_log = os.path.join(self.tmp, "udp.log")
        self.spawn(self.in_cgroup(["nsenter", f"--net=/run/netns/{self.ns}", PY,
                                   os.path.join(self.tmp, "echo_server.py"), "--log", self.udp_log,
                                   str(self.port), str(self.port_open), str(self.port2), str(self.port3)] +
                                  [str(p) for p in self.more_ports]),
                   wait_ready=True)
        self.spawn(["ip", "netns", "exec", self.peer_ns, PY, os.path.join(self.tmp, "echo_server.py"),
                    str(self.port)], wait_ready=True)

    def render(self, policy_template):
        """A policy template filled in with this run's ports, users and group."""
        return policy_template.format(**self.policy_vars)

    def write_policy(self, text):
        """Replaces the policy file (the daemon reads it at start and on SIGHUP)."""
        with open(self.policy, "w") as f:
            f.write(text)

    def in_cgroup(self, argv):
        """argv, started from inside the test cgroup (sockets it creates belong to it)."""
        return ["sh", "-c", f'echo $$ > "{self.cgroup}/cgroup.procs" && exec "$@"', "sh"] + argv

    def nsx(self, *args, check=True):
        return sh("nsenter", f"--net=/run/netns/{self.ns}", *args, check=check)

    def peerx(self, *args):
        return sh("ip", "netns", "exec", self.peer_ns, *args)

    def spawn(self, argv, wait_ready=False):
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             start_new_session=True)
        self.procs.append(p)
        if wait_ready:
            line = p.stdout.readline()
            if "ready" not in line:
                raise RuntimeError(f"{argv[0]} did not start: {line}")
        return p

    # --- the daemon ---------------------------------------------------
    def daemon_args(self, *more, binary=None):
        return [binary or self.jitgated, "--config", self.policy, "--cgroup", self.cgroup,
                "--bpffs", os.path.join(self.bpffs, "jitgate"), "--socket", self.sock,
                "--state-dir", self.state, "--audit-log", self.audit] + self.extra_daemon_args + list(more)

    def with_etc_group(self, argv):
        """argv, seeing self.etc_group (when set) as /etc/group: in a mount
        namespace of its own, an overlay on /etc holds it (unshare execs, so
        the PID is argv's).  Not a bind mount on the file: the shadow tools
        of parallel runs replace /etc/group by a rename, which drops a mount
        on it in every other namespace.  The host's /etc is never touched."""
        if not self.etc_group:
            return argv
        ov = tempfile.mkdtemp(prefix="etc-", dir=self.tmp)  # one per mount: overlays share no workdir
        for d in ("upper", "work"):
            os.mkdir(os.path.join(ov, d))
        shutil.copy(self.etc_group, os.path.join(ov, "upper", "group"))
        return ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                'mount -t overlay overlay -o "lowerdir=/etc,upperdir=$0/upper,workdir=$0/work" /etc && '
                'exec "$@"', ov] + argv

    def start_daemon(self, binary=None):
        """Starts jitgated (or `binary`, another build of it) and waits until it answers."""
        log = open(os.path.join(self.tmp, "jitgated.log"), "a")
        self.daemon = subprocess.Popen(self.with_etc_group(["nsenter", f"--net=/run/netns/{self.ns}"] +
                                                          self.daemon_args("--quiet", binary=binary)),
                                       stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.daemon.poll() is not None:
                raise RuntimeError("jitgated exited at start:\n" + self.daemon_log())
            if self.cli("root", "status").returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError("jitgated did not answer within 20 s:\n" + self.daemon_log())

    def stop_daemon(self, sig=signal.SIGTERM):
        if self.daemon and self.daemon.poll() is None:
            self.daemon.send_signal(sig)
            self.daemon.wait(timeout=20)
        self.daemon = None

    def daemon_log(self):
        try:
            with open(os.path.join(self.tmp, "jitgated.log")) as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    # --- acting as a user ---------------------------------------------
    @staticmethod
    def _drop_to(user):
        """The argv prefix that runs a command as `user` (root: none)."""
        return [] if user == "root" else ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", "--"]

    def user_argv(self, user, argv):
        """argv as `user`, inside the test cgroup and the test network namespace
        (for Popen; as_user() runs it to the end)."""
        return self.in_cgroup(["nsenter", f"--net=/run/netns/{self.ns}"] + self._drop_to(user) + argv)

    def as_user(self, user, argv, timeout=30):
        """Runs argv as `user` (root: no uid change), inside the test cgroup
        and the test network namespace."""
        return subprocess.run(self.user_argv(user, argv), text=True, capture_output=True, timeout=timeout)

    def as_peer(self, user, argv, timeout=30):
        """Runs argv as `user` on the peer host (its own network namespace)."""
        return subprocess.run(self.peer_argv(user, argv), text=True, capture_output=True, timeout=timeout)

    def peer_argv(self, user, argv):
        """argv as `user` on the peer host (for Popen; as_peer() runs it to the end)."""
        return ["nsenter", f"--net=/run/netns/{self.peer_ns}"] + self._drop_to(user) + argv

    def peer_probe(self, user, *args):
        r = self.as_peer(user, [PY, os.path.join(self.tmp, "probe.py")] + [str(a) for a in args])
        return (r.stdout.strip() or r.stderr.strip())

    def cli(self, user, *args):
        return self.as_user(user, [self.jitgate, "--socket", self.sock] + list(args))

    def cli_json(self, user, *args):
        r = self.cli(user, "--json", *args)
        try:
            return r.returncode, json.loads(r.stdout)
        except ValueError:
            return r.returncode, {"raw": r.stdout, "stderr": r.stderr}

    def status(self, user="root"):
        """`jitgate status --json` as `user`: (rc, answer)."""
        return self.cli_json(user, "status")

    def counters(self):
        """The daemon's counters (deny, allow, events_lost, ...) as root sees them."""
        return self.status()[1].get("counters", {})

    def grant(self, user, spec, duration, *request_args, reason="e2e", approver=None, approve_args=()):
        """`user` requests `spec` for `duration` (more request flags in
        request_args) and `approver` (the policy's approver unless named)
        approves it: a Grant of both answers."""
        req_rc, req = self.cli_json(user, "request", spec, "--for", duration, "--reason", reason, *request_args)
        if req_rc != 0:
            return Grant(req_rc, req, None, {})
        rc, answer = self.cli_json(approver or self.appr, "approve", str(req.get("request_id")), *approve_args)
        return Grant(req_rc, req, rc, answer)

    def add_user(self, role):
        """One more test user (jgt<PID>_<role>), removed in cleanup(): its name."""
        name = f"jgt{self.id}_{role}"
        sh("useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name)
        self.users_made.append(name)
        return name

    def probe(self, user, *args):
        r = self.as_user(user, [PY, os.path.join(self.tmp, "probe.py")] + [str(a) for a in args])
        return (r.stdout.strip() or r.stderr.strip())

    def audit_records(self, path=None, **match):
        """The records of the audit log (or of `path`), those whose fields
        equal every `match` given."""
        with open(path or self.audit) as f:
            recs = [json.loads(line) for line in f if line.strip()]
        return [r for r in recs if all(r.get(k) == v for k, v in match.items())]

    # --- cleanup ------------------------------------------------------
    def kill_strays(self):
        """Kills every process whose command line names this run's temporary
        directory (a daemon a suite started by hand and lost track of when it
        failed): nothing of a run may outlive it."""
        kill_strays(self.tmp)

    def cleanup(self):
        if self.cleaned:
            return
        self.cleaned = True
        try:
            self.stop_daemon(signal.SIGKILL)
        except Exception:
            pass
        for p in self.procs:
            try:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=5)
            except Exception:
                pass
        self.kill_strays()
        # Remove enforcement with the daemon's own uninstall, then whatever is left.
        if self.bpffs_mounted and self.policy:
            self.nsx(*self.daemon_args("--uninstall"), check=False)
        if self.bpffs_mounted:
            subprocess.run(["umount", "-l", self.bpffs], capture_output=True)
        cg = self.cgroup
        if cg and os.path.isdir(cg):
            try:
                with open(os.path.join(cg, "cgroup.kill"), "w") as f:
                    f.write("1")
            except OSError:
                pass
            for _ in range(50):
                try:
                    os.rmdir(cg)
                    break
                except OSError:
                    time.sleep(0.1)
        for ns in (self.ns, self.peer_ns):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        if self.cg2_mounted:
            subprocess.run(["umount", "-l", self.cg2_mounted], capture_output=True)
        for u in self.users_made:
            subprocess.run(["userdel", u], capture_output=True)
        if self.group_made:
            subprocess.run(["groupdel", self.GROUP], capture_output=True)
        shutil.rmtree(self.tmp, ignore_errors=True)


def canonical(rec):
    r = {k: v for k, v in rec.items() if k != "hash"}
    return json.dumps(r, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def verify_chain(records):
    """Independent check of seq and the SHA-256 chain; returns None or a problem."""
    prev = "0" * 64
    for i, r in enumerate(records, 1):
        if r.get("seq") != i:
            return f"record {i}: seq {r.get('seq')}"
        if r.get("prev_hash") != prev:
            return f"record {i}: prev_hash does not chain"
        if hashlib.sha256(canonical(r).encode()).hexdigest() != r.get("hash"):
            return f"record {i}: hash mismatch"
        prev = r["hash"]
    return None


def kill_strays(tmp):
    """Kills every process whose command line names the directory `tmp`."""
    mark = tmp.encode()
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if mark in f.read():
                    os.kill(int(pid), signal.SIGKILL)
        except OSError:
            pass


def run_suite(policy_template, run):
    """main() of a suite: set up, run(env, t), always clean up, exit with the verdict."""
    env = Env(sys.argv[1], policy_template)
    t = Results()
    try:
        run(env, t)
    except Exception as e:  # a crash in the test is a failure, with context
        t.check("suite ran to the end", False, f"{type(e).__name__}: {e}\n{env.daemon_log()}")
    finally:
        env.cleanup()
    sys.exit(t.finish())


def wall(ts):
    """RFC 3339 UTC with microseconds -> seconds since the epoch (None if not one)."""
    try:
        return datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
            tzinfo=datetime.timezone.utc).timestamp()
    except (TypeError, ValueError):
        return None


class Keeper:
    """probe.py keep as `user`: one TCP connection echoing every 50 ms."""

    def __init__(self, env, user, port, seconds):
        self.seconds = seconds
        self.p = env.spawn(env.user_argv(user, [PY, os.path.join(env.tmp, "probe.py"), "keep", "127.0.0.1",
                                                str(port), f"{seconds:.2f}"]))
        self.first = self.p.stdout.readline().strip()  # "connected T", or how connecting failed
        self.connected = self.first.startswith("connected")

    def result(self):
        """The probe's last line: "ok N" or "stopped N ERRNO T"."""
        if not self.connected:
            return self.first
        try:
            out, _ = self.p.communicate(timeout=self.seconds + 10)
        except subprocess.TimeoutExpired:
            self.p.kill()
            return "hung"
        lines = out.strip().splitlines()
        return lines[-1] if lines else "no output"
