"""Three jitgated nodes of one fleet on this machine (design.md §7), for
e2e_fleet and the fleet benchmark.

A private etcd (tests/fleet/private_etcd.py: random loopback ports, a data
dir in the run's temporary directory) holds the fleet under a prefix of this
run's own.  Each node is a "host" of its own: a network namespace (its
loopback is its own, so a connect there is that node's business alone), a
child cgroup of the test's cgroup (its programs are attached there, its
servers and probes run there), a pin directory in one private bpffs mount, a
socket, a state directory, an audit log and a config file with a [fleet]
table.  The nodes reach etcd, which listens on the machine's loopback,
through socat: in each node's namespace a TCP listener on 127.0.0.1 forwards
to a Unix socket, where a forwarder in the machine's namespace connects to
etcd (a Unix socket path crosses network namespaces, a loopback address
does not).  Stopping etcd leaves the forwarders up: the nodes then see
connections closed at once, as with a host whose etcd is down.

Everything is removed in cleanup(), which runs on exit, on SIGINT/SIGTERM and
on failure: daemons and helpers by their own PIDs, pins by each daemon's
own --uninstall, cgroups, namespaces, the bpffs mount, test users, etcd and
the temporary directory.  Nothing is attached to the root cgroup and no
address of the machine itself is used.
"""
import base64
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "fleet"))
import harness  # noqa: E402
from harness import PY, find_cgroup2, reap_stale_test_users, sh, skip, wait_for  # noqa: E402

# name, labels: two database nodes and a web node; env=e2e selects all three.
NODES = (("db-1", {"role": "db", "env": "e2e"}), ("db-2", {"role": "db", "env": "e2e"}),
         ("web-1", {"role": "web", "env": "e2e"}))
GRACE_S = 5  # [fleet] grace of every node: room for the checks made within it on a loaded machine


def b64(data):
    return base64.b64encode(data if isinstance(data, bytes) else data.encode()).decode()


def unb64(text):
    return base64.b64decode(text or "")


def canonical(doc):
    """What a document's signature covers (userspace/fleet/trust.h): the
    document without sig, keys sorted, no whitespace (nlohmann's dump)."""
    return json.dumps({k: v for k, v in doc.items() if k != "sig"}, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False)


class DocSigner:
    """Signs documents as a node does (design.md §7.3), with an Ed25519 key:
    a node's own (its state dir's node.key) or a fresh one nobody lists."""

    def __init__(self, node_key_file=None):
        try:
            from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        except ImportError:
            skip("python3-cryptography is not installed (apt-get install python3-cryptography)")
        if node_key_file:
            with open(node_key_file) as f:
                self.key = Ed25519PrivateKey.from_private_bytes(base64.b64decode(f.read().strip()))
        else:
            self.key = Ed25519PrivateKey.generate()

    def sign(self, kind, doc, signer):
        d = dict(doc, signer=signer)
        d.pop("sig", None)
        d["sig"] = base64.b64encode(self.key.sign(f"jitgate/v1 {kind}\n{canonical(d)}".encode())).decode()
        return d


class Gateway:
    """The test's own door to etcd: its JSON gateway (POST /v3/...), to read
    what the fleet wrote, to write what no node would (garbage), and to
    measure the store."""

    def __init__(self, url):
        self.url = url.rstrip("/")
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never a proxy

    def post(self, path, body, timeout=10):
        req = urllib.request.Request(self.url + path, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        with self.opener.open(req, timeout=timeout) as r:
            return json.loads(r.read(64 << 20) or b"{}")

    def put(self, key, value):
        """Writes raw bytes at key; the store's revision after it."""
        return int(self.post("/v3/kv/put", {"key": b64(key), "value": b64(value)})["header"]["revision"])

    def get(self, key):
        """The value at key (bytes), or None."""
        kvs = self.post("/v3/kv/range", {"key": b64(key)}).get("kvs", [])
        return unb64(kvs[0].get("value")) if kvs else None

    def prefix(self, prefix, keys_only=False):
        """{key: value bytes} of every key under prefix, and the revision read."""
        end = prefix.encode()[:-1] + bytes([prefix.encode()[-1] + 1])
        r = self.post("/v3/kv/range", {"key": b64(prefix), "range_end": b64(end), "keys_only": keys_only})
        return ({unb64(kv["key"]).decode(errors="replace"): unb64(kv.get("value")) for kv in r.get("kvs", [])},
                int(r["header"]["revision"]))

    def delete(self, key):
        return self.post("/v3/kv/deleterange", {"key": b64(key)})

    def revision(self):
        return int(self.post("/v3/kv/range", {"key": b64("\0")})["header"]["revision"])

    def defrag(self):
        self.post("/v3/maintenance/defragment", {}, timeout=60)

    def db_size(self):
        return int(self.post("/v3/maintenance/status", {})["dbSize"])


class Node:
    """One jitgated of the fleet and its private host (see the module's text)."""

    def __init__(self, fleet, index, name, labels):
        self.fleet = fleet
        self.name = name
        self.labels = dict(labels)
        self.tmp = fleet.tmp  # where probe.py and the binaries are (harness.Keeper reads env.tmp)
        self.dir = os.path.join(fleet.tmp, name)
        os.mkdir(self.dir)
        os.chmod(self.dir, 0o755)
        self.ns = f"jgf-{fleet.id}-{index}"
        self.cgroup = os.path.join(fleet.cgroup, name)
        self.pins = os.path.join(fleet.bpffs, name)
        self.sock = os.path.join(self.dir, "jitgate.sock")
        self.state = os.path.join(self.dir, "state")
        self.audit = os.path.join(self.dir, "audit.jsonl")
        self.config = os.path.join(self.dir, "jitgate.toml")
        self.log = os.path.join(self.dir, "jitgated.log")
        self.etcd_line = None  # the socat forwarding this host's 127.0.0.1:etcd_port to etcd
        self.passwd = None  # a private /etc/passwd for the daemon (hide_users), or None
        self.signers = None  # this node's [fleet] signers when not the fleet's
        self.daemon = None
        self.paused = False
        self.ns_made = False
        self.cgroup_made = False

    # --- the host ----------------------------------------------------
    def make_host(self):
        sh("ip", "netns", "add", self.ns)
        self.ns_made = True
        self.nsx("ip", "link", "set", "lo", "up")
        os.mkdir(self.cgroup)
        self.cgroup_made = True
        # Every protected port has an echo server on this host, in its cgroup.
        self.fleet.spawn(self.in_cgroup(["nsenter", f"--net=/run/netns/{self.ns}", PY,
                                         os.path.join(self.tmp, "echo_server.py")] +
                                        [str(p) for p in self.fleet.ports.values()]), wait_ready=True)
        self.connect_etcd()

    def connect_etcd(self):
        """The way to etcd: 127.0.0.1:etcd_port here -> the fleet's Unix socket."""
        self.etcd_line = self.fleet.spawn(["nsenter", f"--net=/run/netns/{self.ns}", "socat",
                                           f"TCP-LISTEN:{self.fleet.etcd_port},bind=127.0.0.1,reuseaddr,fork",
                                           f"UNIX-CONNECT:{self.fleet.etcd_unix}"])
        if not wait_for(lambda: self._listening(self.fleet.etcd_port), 10):
            raise RuntimeError(f"{self.name}: the forwarder to etcd does not listen")

    def cut_etcd(self):
        """This node alone loses etcd: its forwarder and every connection through it end
        (socat's per-connection children are in the listener's process group)."""
        os.killpg(self.etcd_line.pid, signal.SIGKILL)
        self.etcd_line.wait(timeout=5)
        if not wait_for(lambda: not self._listening(self.fleet.etcd_port), 10):
            raise RuntimeError(f"{self.name}: the forwarder to etcd still listens")

    def _listening(self, port):
        r = self.nsx("ss", "-Hltn", f"sport = :{port}", check=False)
        return r.returncode == 0 and str(port) in r.stdout

    def nsx(self, *args, check=True):
        return sh("nsenter", f"--net=/run/netns/{self.ns}", *args, check=check)

    def in_cgroup(self, argv):
        """argv, started from inside this node's cgroup."""
        return ["sh", "-c", f'echo $$ > "{self.cgroup}/cgroup.procs" && exec "$@"', "sh"] + argv

    def spawn(self, argv, wait_ready=False):
        return self.fleet.spawn(argv, wait_ready)

    # --- the daemon's files ------------------------------------------
    def print_key(self, rotate=False):
        """`jitgated --print-key` (or --rotate-key) for this node: its signers entry."""
        r = sh(self.fleet.jitgated, "--rotate-key" if rotate else "--print-key", "--config",
               self.config, "--state-dir", self.state, "--node", self.name)
        return r.stdout.strip()

    def fleet_table(self, etcd=None, extra=""):
        labels = ", ".join(f'{k} = "{v}"' for k, v in self.labels.items())
        urls = ", ".join(f'"{u}"' for u in (etcd or [f"http://127.0.0.1:{self.fleet.etcd_port}"]))
        signers = ", ".join(f'"{k}"' for k in (self.signers if self.signers is not None else self.fleet.signers))
        return (f'[fleet]\netcd = [{urls}]\nnode = "{self.name}"\nlabels = {{ {labels} }}\n'
                f'prefix = "{self.fleet.prefix}"\ngrace = "{GRACE_S}s"\nsigners = [{signers}]\n{extra}')

    def write_config(self, etcd=None, daemon_extra="", fleet_extra="", tail=""):
        """The node's local file: [daemon] keys, the [fleet] table, then `tail`."""
        with open(self.config, "w") as f:
            f.write(f'[daemon]\nrequest_rate = "1000/s"\n{daemon_extra}\n'
                    f"{self.fleet_table(etcd, fleet_extra)}\n{tail}")

    def daemon_args(self, *more, config=None):
        return [self.fleet.jitgated, "--config", config or self.config, "--cgroup", self.cgroup,
                "--bpffs", self.pins, "--socket", self.sock, "--state-dir", self.state,
                "--audit-log", self.audit] + list(more)

    def hide_users(self, names):
        """The daemon started next sees an /etc/passwd without these users
        (a host where the name is unknown)."""
        self.passwd = os.path.join(self.dir, "passwd")
        with open("/etc/passwd") as src, open(self.passwd, "w") as dst:
            dst.writelines(line for line in src if line.split(":")[0] not in names)

    def _with_passwd(self, argv):
        """argv in a mount namespace of its own where an overlay on /etc holds
        self.passwd (as harness.Env.with_etc_group does for /etc/group)."""
        if not self.passwd:
            return argv
        ov = tempfile.mkdtemp(prefix="etc-", dir=self.dir)
        for d in ("upper", "work"):
            os.mkdir(os.path.join(ov, d))
        shutil.copy(self.passwd, os.path.join(ov, "upper", "passwd"))
        return ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                'mount -t overlay overlay -o "lowerdir=/etc,upperdir=$0/upper,workdir=$0/work" /etc && '
                'exec "$@"', ov] + argv

    # --- running it ---------------------------------------------------
    def launch(self, *more):
        """Starts jitgated (not waiting): its Popen."""
        log = open(self.log, "a")
        self.daemon = subprocess.Popen(self._with_passwd(["nsenter", f"--net=/run/netns/{self.ns}"] +
                                                         self.daemon_args("--quiet", *more)),
                                       stdout=log, stderr=log, start_new_session=True)
        log.close()
        self.paused = False
        return self.daemon

    def start(self, seconds=30):
        """Starts jitgated and waits until it answers `status`."""
        self.launch()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.daemon.poll() is not None:
                raise RuntimeError(f"{self.name}: jitgated exited at start:\n{self.daemon_log()}")
            if self.cli("root", "status").returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError(f"{self.name}: jitgated did not answer within {seconds} s:\n{self.daemon_log()}")

    def running(self):
        return self.daemon is not None and self.daemon.poll() is None

    def stop(self, sig=signal.SIGTERM):
        if self.running():
            if self.paused:
                self.daemon.send_signal(signal.SIGCONT)
            self.daemon.send_signal(sig)
            try:
                self.daemon.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.daemon.kill()
                self.daemon.wait(timeout=5)
        self.daemon = None
        self.paused = False

    def pause(self):
        self.daemon.send_signal(signal.SIGSTOP)
        self.paused = True

    def resume(self):
        self.daemon.send_signal(signal.SIGCONT)
        self.paused = False

    def daemon_log(self, tail=4000):
        try:
            with open(self.log) as f:
                return f.read()[-tail:]
        except OSError:
            return ""

    # --- acting as a user on this node ----------------------------------
    def user_argv(self, user, argv):
        """argv as `user` (root: no uid change), in this node's cgroup and namespace."""
        drop = [] if user == "root" else ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", "--"]
        return self.in_cgroup(["nsenter", f"--net=/run/netns/{self.ns}"] + drop + argv)

    def as_user(self, user, argv, timeout=60):
        return subprocess.run(self.user_argv(user, argv), text=True, capture_output=True, timeout=timeout)

    def cli(self, user, *args, timeout=60):
        return self.as_user(user, [self.fleet.jitgate, "--socket", self.sock] + [str(a) for a in args],
                            timeout=timeout)

    def cli_json(self, user, *args, timeout=60):
        """`jitgate --json ARGS` as `user` here: (rc, the JSON answer, stderr)."""
        r = self.cli(user, "--json", *args, timeout=timeout)
        try:
            return r.returncode, json.loads(r.stdout), r.stderr
        except ValueError:
            return r.returncode, {"raw": r.stdout}, r.stderr

    def popen_cli(self, user, *args):
        """`jitgate --json ARGS` started as `user` here, not waited for."""
        return subprocess.Popen(self.user_argv(user, [self.fleet.jitgate, "--socket", self.sock, "--json"] +
                                               [str(a) for a in args]),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)

    def probe(self, user, *args):
        r = self.as_user(user, [PY, os.path.join(self.tmp, "probe.py")] + [str(a) for a in args])
        return r.stdout.strip() or r.stderr.strip()

    def connect(self, user, port, addr="127.0.0.1"):
        """One TCP connect with an echo as `user` on this host: "ok" or the errno's name."""
        return self.probe(user, "connect", "tcp", addr, port)

    # --- what it wrote --------------------------------------------------
    def audit_records(self, since=0, **match):
        """Records of this node's audit log with seq > since whose fields equal `match`."""
        try:
            with open(self.audit) as f:
                recs = [json.loads(line) for line in f if line.strip()]
        except OSError:
            return []
        return [r for r in recs if r.get("seq", 0) > since and all(r.get(k) == v for k, v in match.items())]

    def audit_mark(self):
        """The seq of this node's last record (0: none): audit_records(since=...) after it."""
        recs = self.audit_records()
        return recs[-1].get("seq", 0) if recs else 0

    # --- cleanup --------------------------------------------------------
    def cleanup(self):
        try:
            if self.daemon and self.daemon.poll() is None:
                if self.paused:
                    self.daemon.send_signal(signal.SIGCONT)
                self.daemon.kill()
                self.daemon.wait(timeout=10)
        except Exception:  # noqa: BLE001 - cleanup goes on
            pass
        self.daemon = None

    def uninstall(self):
        """Removes this node's enforcement with the daemon's own --uninstall
        (the same paths; a config without [fleet] first, so nothing waits
        for etcd, then the node's own)."""
        if not self.fleet.bpffs_mounted or not os.path.isdir(self.pins):
            return
        plain = os.path.join(self.dir, "uninstall.toml")
        with open(plain, "w") as f:
            f.write("[daemon]\n")
        for cfg in (plain, self.config):
            r = subprocess.run(["nsenter", f"--net=/run/netns/{self.ns}"] +
                               self.daemon_args("--uninstall", config=cfg),
                               capture_output=True, text=True, timeout=60)
            if r.returncode == 0:
                return

    def remove_host(self):
        if self.cgroup_made and os.path.isdir(self.cgroup):
            try:
                with open(os.path.join(self.cgroup, "cgroup.kill"), "w") as f:
                    f.write("1")
            except OSError:
                pass
            for _ in range(50):
                try:
                    os.rmdir(self.cgroup)
                    break
                except OSError:
                    time.sleep(0.1)
        if self.ns_made:
            subprocess.run(["ip", "netns", "del", self.ns], capture_output=True)


class Fleet:
    """The private etcd, the three nodes and the test users of one run.

    policy_template: the fleet policy ([[port]] tables) with {port names}
    and {user roles} to fill in (render()); port_names: the protected ports
    it names, each given a random port number with an echo server on every
    node; users: the roles of the test users (jgt<PID>_<role>)."""

    def __init__(self, build_dir, policy_template, port_names, users=("req", "req2", "appr", "appr2", "other"),
                 nodes=NODES):
        if os.geteuid() != 0:
            skip("needs root (BPF, cgroups, network namespaces, test users)")
        if not os.path.exists("/sys/kernel/btf/vmlinux"):
            skip("the kernel has no BTF (/sys/kernel/btf/vmlinux)")
        for tool in ("etcd", "socat"):
            if not shutil.which(tool):
                skip(f"{tool} is not installed (apt-get install {'etcd-server' if tool == 'etcd' else tool})")
        self.id = f"{os.getpid()}"
        for k in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
            os.environ.pop(k, None)  # etcd is on loopback: never through a proxy
        self.tmp = tempfile.mkdtemp(prefix="jitgate-fleet-")
        os.chmod(self.tmp, 0o755)
        self.prefix = f"/jitgate-e2e-{self.id}/v1"
        self.policy_template = policy_template
        self.procs = []
        self.nodes = []
        self.etcd = None
        self.gw = None
        self.cgroup = None
        self.cg2_mounted = None
        self.bpffs_mounted = False
        self.users_made = []
        self.signers = []
        self.cleaned = False
        self.user = {role: f"jgt{self.id}_{role}" for role in users}
        for s in (signal.SIGINT, signal.SIGTERM):
            signal.signal(s, self._on_signal)
        try:
            self._setup(build_dir, port_names, nodes)
        except BaseException:
            self.cleanup()
            raise

    def _on_signal(self, signum, _frame):
        self.cleanup()
        sys.exit(128 + signum)

    def _setup(self, build_dir, port_names, nodes):
        for b in ("jitgated", "jitgate"):
            shutil.copy2(os.path.join(build_dir, b), os.path.join(self.tmp, b))
        for s in ("probe.py", "echo_server.py"):
            shutil.copy2(os.path.join(HERE, s), os.path.join(self.tmp, s))
            os.chmod(os.path.join(self.tmp, s), 0o755)
        self.jitgated = os.path.join(self.tmp, "jitgated")
        self.jitgate = os.path.join(self.tmp, "jitgate")

        # Ports outside the ephemeral range; the last one is the forwarder's
        # to etcd in every node's namespace.
        picked = random.sample(range(20000, 32000), len(port_names) + 1)
        self.ports = dict(zip(port_names, picked))
        self.etcd_port = picked[-1]

        reap_stale_test_users()
        for u in self.user.values():
            sh("useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", u)
            self.users_made.append(u)

        cg_root = find_cgroup2()
        if cg_root is None:
            self.cg2_mounted = os.path.join(self.tmp, "cgroup2")
            os.mkdir(self.cg2_mounted)
            if sh("mount", "-t", "cgroup2", "none", self.cg2_mounted, check=False).returncode:
                self.cg2_mounted = None
                skip("no cgroup v2 hierarchy could be mounted")
            cg_root = self.cg2_mounted
        self.cgroup = os.path.join(cg_root, f"jitgate-fleet-{self.id}")
        os.mkdir(self.cgroup)
        self.bpffs = os.path.join(self.tmp, "bpffs")
        os.mkdir(self.bpffs)
        if sh("mount", "-t", "bpf", "bpf", self.bpffs, check=False).returncode:
            skip("cannot mount a bpf filesystem")
        self.bpffs_mounted = True

        self.start_etcd()
        for i, (name, labels) in enumerate(nodes):
            node = Node(self, i, name, labels)
            self.nodes.append(node)
            node.make_host()
        # design.md §7.3: every node's key, made before its first start, listed on every node.
        self.signers = [n.print_key() for n in self.nodes]
        for node in self.nodes:
            node.write_config()

    # --- etcd -----------------------------------------------------------
    def start_etcd(self):
        from private_etcd import PrivateEtcd  # tests/fleet
        self.etcd = PrivateEtcd(name=f"jgf{self.id}")
        self.etcd.start()
        # PrivateEtcd stops its etcd on SIGTERM; this run's cleanup does that and more.
        for s in (signal.SIGINT, signal.SIGTERM):
            signal.signal(s, self._on_signal)
        self.gw = Gateway(self.etcd.url)
        self.etcd_unix = os.path.join(self.tmp, "etcd.sock")
        port = self.etcd.client_port
        self.spawn(["socat", f"UNIX-LISTEN:{self.etcd_unix},fork,unlink-early", f"TCP:127.0.0.1:{port}"])
        if not wait_for(lambda: os.path.exists(self.etcd_unix), 10):
            raise RuntimeError("the forwarder to etcd did not start")

    def etcd_stop(self):
        """Ends etcd, keeping its data (etcd_start() brings it back on the same ports)."""
        self.etcd._kill()  # PrivateEtcd.stop() would also remove the data dir

    def etcd_start(self):
        self.etcd.restart()

    def compact(self):
        """Compacts etcd's history up to its current revision: that revision."""
        rev = self.gw.revision()
        self.etcd.compact(rev)
        return rev

    def render(self, template=None):
        v = dict(self.ports)
        v.update(self.user)
        return (template or self.policy_template).format(**v)

    def node(self, name):
        return next(n for n in self.nodes if n.name == name)

    def start_all(self):
        for n in self.nodes:
            if not n.running():
                n.start()

    def push_policy(self, via=None, text=None):
        """`jitgate policy push FILE` as root on `via` (the first node): (rc, answer, stderr)."""
        via = via or self.nodes[0]
        path = os.path.join(self.tmp, f"fleet-policy-{time.monotonic_ns()}.toml")
        with open(path, "w") as f:
            f.write(self.render() if text is None else text)
        os.chmod(path, 0o644)
        return via.cli_json("root", "policy", "push", path)

    def nodes_view(self, via=None):
        """`jitgate nodes --json` on `via`: {node name: row}, the revision, the whole answer."""
        rc, out, err = (via or self.nodes[0]).cli_json("root", "nodes")
        rows = {r.get("node"): r for r in out.get("nodes", [])} if rc == 0 else {}
        return rows, out.get("revision"), out if rc == 0 else {"rc": rc, "out": out, "stderr": err}

    def wait_applied(self, revision, names, seconds, via=None):
        """Waits until every node in names reports applied_revision >= revision."""
        def done():
            rows, _, _ = self.nodes_view(via)
            return all((rows.get(n) or {}).get("applied_revision", 0) >= revision for n in names)
        return wait_for(done, seconds)

    def spawn(self, argv, wait_ready=False):
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             start_new_session=True)
        self.procs.append(p)
        if wait_ready:
            line = p.stdout.readline()
            if "ready" not in line:
                raise RuntimeError(f"{argv[0]} did not start: {line}")
        return p

    # --- cleanup --------------------------------------------------------
    def kill_strays(self):
        """Kills every process whose command line names this run's temporary directory."""
        harness.kill_strays(self.tmp)

    def cleanup(self):
        if self.cleaned:
            return
        self.cleaned = True
        for n in self.nodes:
            n.cleanup()
        for p in self.procs:
            try:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=5)
            except Exception:  # noqa: BLE001
                pass
        if self.etcd:
            try:
                self.etcd.stop()
            except Exception:  # noqa: BLE001
                pass
        self.kill_strays()
        for n in self.nodes:
            try:
                n.uninstall()
            except Exception:  # noqa: BLE001
                pass
        if self.bpffs_mounted:
            subprocess.run(["umount", "-l", self.bpffs], capture_output=True)
        for n in self.nodes:
            n.remove_host()
        if self.cgroup and os.path.isdir(self.cgroup):
            for _ in range(50):
                try:
                    os.rmdir(self.cgroup)
                    break
                except OSError:
                    time.sleep(0.1)
        if self.cg2_mounted:
            subprocess.run(["umount", "-l", self.cg2_mounted], capture_output=True)
        for u in self.users_made:
            subprocess.run(["userdel", u], capture_output=True)
        shutil.rmtree(self.tmp, ignore_errors=True)


class Storm:
    """probe.py storm as `user` on `node`: a connect to 127.0.0.1 and ::1 at
    `port` every interval_ms, for the whole suite; none may succeed."""

    def __init__(self, node, user, port, seconds, interval_ms=100):
        self.label = f"{node.name}: {user} -> {port}"
        argv = [PY, os.path.join(node.tmp, "probe.py"), "storm", "tcp", "127.0.0.1,::1", str(port),
                str(seconds), str(interval_ms)]
        self.p = node.spawn(node.user_argv(user, argv))
        self.first = self.p.stdout.readline().strip()

    def stop(self):
        """Stops the storm: its tally {attempts, successes, refused, timeouts}, or why there is none."""
        if self.first != "storming":
            return self.first or "no output"
        self.p.send_signal(signal.SIGTERM)
        try:
            out, _ = self.p.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            self.p.kill()
            return "hung"
        parts = (out.strip().splitlines() or [""])[-1].split()
        try:
            return {parts[i]: int(parts[i + 1]) for i in range(0, 8, 2)}
        except (IndexError, ValueError):
            return out.strip()
