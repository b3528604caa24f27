"""A private etcd for tests: random free loopback ports, a data dir of its
own in a temp dir, ended by its own PID and removed afterwards.

    with PrivateEtcd() as etcd:
        os.environ["JG_ETCD_URL"] = etcd.url
        etcd.compact(rev); etcd.pause(); etcd.resume(); etcd.restart()

Never touches a system etcd: nothing is read or written outside the temp
dir, and only the process this module started is signalled.
"""
import base64
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

ETCD = shutil.which("etcd") or "/usr/bin/etcd"
_LIVE = []  # instances to stop on SIGTERM


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _on_sigterm(signum, frame):
    for e in list(_LIVE):
        e.stop()
    raise SystemExit(128 + signum)


def b64(s):
    return base64.b64encode(s.encode() if isinstance(s, str) else s).decode()


class PrivateEtcd:
    def __init__(self, name="jgtest", progress_interval="1s", start_timeout=20.0, extra_args=(), tls=False):
        self.name = name
        self.extra_args = list(extra_args)
        self.tls = tls  # https with client certificates: ca_file, cert_file, key_file
        self.progress_interval = progress_interval
        self.start_timeout = start_timeout
        self.data_dir = tempfile.mkdtemp(prefix="jg-etcd-")
        self.proc = None
        self.token = None
        self.client_port = self.peer_port = 0
        self._log = None

    @property
    def url(self):
        return "%s://127.0.0.1:%d" % ("https" if self.tls else "http", self.client_port)

    @property
    def ca_file(self):
        return os.path.join(self.data_dir, "ca.pem")

    @property
    def cert_file(self):
        return os.path.join(self.data_dir, "client.pem")

    @property
    def key_file(self):
        return os.path.join(self.data_dir, "client.key")

    def _make_certs(self):
        """A CA, a server certificate for 127.0.0.1 and a client certificate
        (EC P-256, one day), all in the data dir.  The server's is for client
        authentication too: etcd's gateway dials etcd itself with it."""
        d = self.data_dir

        def run(*args):
            subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=30)

        run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", d + "/ca.key", "-out", d + "/ca.pem", "-days", "1", "-subj", "/CN=jg-test-ca")
        for who, ext in (("server", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth"),
                         ("client", "extendedKeyUsage=clientAuth")):
            run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-keyout", "%s/%s.key" % (d, who), "-out", "%s/%s.csr" % (d, who), "-subj", "/CN=" + who)
            with open("%s/%s.ext" % (d, who), "w") as f:
                f.write(ext + "\n")
            run("x509", "-req", "-in", "%s/%s.csr" % (d, who), "-CA", d + "/ca.pem", "-CAkey", d + "/ca.key",
                "-CAcreateserial", "-out", "%s/%s.pem" % (d, who), "-days", "1", "-extfile", "%s/%s.ext" % (d, who))

    def start(self):
        if not _LIVE:
            signal.signal(signal.SIGTERM, _on_sigterm)
        if self not in _LIVE:
            _LIVE.append(self)
        # A port may be taken between the probe and etcd's bind: a few tries.
        for _ in range(5):
            self.client_port, self.peer_port = _free_port(), _free_port()
            if self.client_port != self.peer_port and self._spawn():
                return self
        self.stop()
        raise RuntimeError("private etcd did not start; see %s/etcd.log" % self.data_dir)

    def _spawn(self):
        peer = "http://127.0.0.1:%d" % self.peer_port
        args = [ETCD, "--name", self.name, "--data-dir", os.path.join(self.data_dir, "data"),
                "--listen-client-urls", self.url, "--advertise-client-urls", self.url,
                "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                "--initial-cluster", "%s=%s" % (self.name, peer),
                "--initial-cluster-token", "jg-%d" % os.getpid()]
        if self.progress_interval:
            # etcd's default is 10 minutes; the client's idle bound needs them sooner.
            args += ["--experimental-watch-progress-notify-interval", self.progress_interval]
        if self.tls:
            if not os.path.exists(self.ca_file):
                self._make_certs()
            d = self.data_dir
            args += ["--cert-file", d + "/server.pem", "--key-file", d + "/server.key",
                     "--client-cert-auth", "--trusted-ca-file", self.ca_file]
        args += self.extra_args
        self._log = open(os.path.join(self.data_dir, "etcd.log"), "ab")
        self.proc = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                self.post("/v3/kv/range", {"key": b64("/")}, timeout=1)
                return True
            except (OSError, urllib.error.URLError):
                time.sleep(0.1)
        self._kill()
        return False

    def post(self, path, body, timeout=5):
        req = urllib.request.Request(self.url + path, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        if self.token:
            req.add_header("Authorization", self.token)
        ctx = None
        if self.tls:
            ctx = ssl.create_default_context(cafile=self.ca_file)
            ctx.load_cert_chain(self.cert_file, self.key_file)
        with urllib.request.urlopen(req, timeout=timeout, context=ctx) as r:
            return json.loads(r.read(64 << 20) or b"{}")

    def compact(self, revision):
        return self.post("/v3/kv/compaction", {"revision": str(revision), "physical": True})

    def enable_auth(self, password):
        """Creates user root (role root) with `password` and turns auth on;
        later post() calls of this object authenticate as root."""
        self.post("/v3/auth/user/add", {"name": "root", "password": password})
        try:
            self.post("/v3/auth/role/add", {"name": "root"})
        except urllib.error.HTTPError:
            pass  # already there
        self.post("/v3/auth/user/grant", {"user": "root", "role": "root"})
        self.post("/v3/auth/enable", {})
        self.token = self.post("/v3/auth/authenticate", {"name": "root", "password": password})["token"]

    def pause(self):
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self):
        os.kill(self.proc.pid, signal.SIGCONT)

    def _kill(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGCONT)
                self.proc.terminate()
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None
        if self._log:
            self._log.close()
            self._log = None

    def restart(self):
        """Stops etcd and starts it again on the same ports and data dir."""
        self._kill()
        if not self._spawn():
            raise RuntimeError("private etcd did not restart; see %s/etcd.log" % self.data_dir)

    def stop(self):
        self._kill()
        if self in _LIVE:
            _LIVE.remove(self)
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False
