#!/usr/bin/env bash
# The .deb on a fresh machine, installed the way a user installs it: a new
# minimal Debian 12 root (mmdebstrap --variant=apt), and inside it (chroot)
# `apt-get install ./jitgate_*.deb`, which resolves Depends from the mirror.
# Then: the man pages open with `man`, the CLI runs, the example policy is
# valid, systemd finds the unit, bash-completion and zsh find the
# completions, and the installed jitgated starts, enforces and stops:
# attached to a private child cgroup, pinned on a private bpffs, in a private
# network namespace, its port a random high one; logrotate rotates its audit
# log and the chain goes on in the new file; `jitgated --uninstall` leaves
# nothing attached. The installed binaries are stripped, the man pages
# gzipped, copyright, changelog and logrotate configuration there. Last,
# `apt-get remove` stops jitgated (the unit, through systemctl) and
# uninstalls it, keeping policy, state and log; `purge` removes policy and
# state and keeps the log.
#
# Nothing is installed on this machine and nothing of it is touched: every
# mount is made inside a private mount namespace (gone when it ends), the
# daemon has a network namespace of its own and a child cgroup that holds
# only the test's one probe, and a trap removes the root, the cgroup and any
# process of the run.
#
# usage: check_install.sh BUILD_DIR   (root; JITGATE_DEBIAN_MIRROR overrides
# the mirror, http://deb.debian.org/debian)
set -euo pipefail
MIRROR=${JITGATE_DEBIAN_MIRROR:-http://deb.debian.org/debian}

if [ "${1:-}" = --inside ]; then
    # --- inside the private mount namespace ----------------------------
    shift
    root=$1 cg=$2 deb=$3 port=$4 results=$5
    # shellcheck source=check.sh
    . "$(dirname "$0")/check.sh"
    in_root() { chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C.UTF-8 TERM=dumb "$@"; }
    daemon=
    finish() {
        [ -n "$daemon" ] && kill -KILL "$daemon" 2>/dev/null
        echo "$passed $failed" >"$results"
    }
    trap finish EXIT
    trap 'exit 130' INT TERM

    # What a running Debian has mounted, made here and private to this
    # namespace: /proc, /sys (for /sys/kernel/btf), a new bpffs at
    # /sys/fs/bpf, and the test's child cgroup where cgroup v2 is.
    mount -t proc proc "$root/proc"
    mount --bind /sys "$root/sys"
    mount -t bpf bpf "$root/sys/fs/bpf"
    mount --bind "$cg" "$root/sys/fs/cgroup"

    echo "-- apt-get install ./$(basename "$deb") (Depends from the mirror)"
    t0=$SECONDS
    check "apt-get update" in_root apt-get update -q
    # A server as people have it: man-db (priority standard) and zsh are
    # there before jitgate, so man-db's trigger runs when jitgate installs.
    if in_root sh -c 'command -v man' >/dev/null; then echo "     man is in the fresh root"; else
        echo "     a minimal Debian has no man (man-db is priority standard): installed first"; fi
    check "apt-get install man-db zsh" in_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends man-db zsh
    cp "$deb" "$root/tmp/"
    check "apt-get install ./$(basename "$deb")" in_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q "/tmp/$(basename "$deb")"
    echo "     apt: $((SECONDS - t0)) s"
    check "dpkg says jitgate is installed" sh -c \
        "chroot '$root' dpkg-query -W -f='\${Status}' jitgate | grep -qx 'install ok installed'"
    check "bash-completion came as a Recommends" in_root dpkg-query -W bash-completion

    echo "-- man pages, CLI, example policy"
    for page in "jitgate" "8 jitgated" "5 jitgate.toml"; do
        # shellcheck disable=SC2086
        check "man $page renders" sh -c "chroot '$root' env -i PATH=/usr/bin:/bin LC_ALL=C.UTF-8 MANWIDTH=80 \
            MANPAGER=cat man $page | grep -q 'SEE ALSO'"
    done
    check "apropos finds jitgate (man-db's trigger indexed the pages)" sh -c \
        "chroot '$root' env -i PATH=/usr/bin:/bin apropos jitgate | grep -q '^jitgated (8)'"
    check "jitgate --version" sh -c "chroot '$root' jitgate --version | grep -qx 'jitgate [0-9.]*'"
    check "jitgated --version" sh -c "chroot '$root' jitgated --version | grep -qx 'jitgated [0-9.]*'"
    check "jitgate --help" in_root jitgate --help
    check "jitgated --help" in_root jitgated --help
    check "jitgate policy check on the example" in_root jitgate policy check \
        /usr/share/doc/jitgate/examples/jitgate.toml

    echo "-- the installed files: stripped binaries, gzip man pages, copyright, changelog, logrotate"
    for bin in usr/bin/jitgate usr/sbin/jitgated; do
        check "/$bin is stripped (no .debug_info) and under 8 MB" sh -c \
            "! readelf -SW '$root/$bin' | grep -q '\.debug_info' && [ \$(stat -c %s '$root/$bin') -lt 8000000 ] &&
             echo \$(stat -c %s '$root/$bin') bytes"
    done
    for page in man1/jitgate.1 man8/jitgated.8 man5/jitgate.toml.5; do
        check "/usr/share/man/$page.gz (and no $page)" sh -c \
            "gzip -t '$root/usr/share/man/$page.gz' && [ ! -e '$root/usr/share/man/$page' ]"
    done
    for f in usr/share/doc/jitgate/copyright usr/share/doc/jitgate/changelog.Debian.gz etc/logrotate.d/jitgate; do
        check "/$f" test -s "$root/$f"
    done
    check "dpkg: /etc/logrotate.d/jitgate is a conffile" sh -c \
        "chroot '$root' dpkg-query -W -f='\${Conffiles}' jitgate | grep -q '^ /etc/logrotate.d/jitgate '"

    echo "-- where systemd, bash-completion and zsh look"
    check "systemctl --root finds and enables jitgated.service" \
        systemctl --root="$root" enable jitgated.service
    check "  ... into multi-user.target.wants" \
        test -L "$root/etc/systemd/system/multi-user.target.wants/jitgated.service"
    check "  ... and disables it" systemctl --root="$root" disable jitgated.service
    check "bash-completion loads the jitgate completion" in_root bash -c \
        '. /usr/share/bash-completion/bash_completion; __load_completion jitgate && complete -p jitgate'
    check "zsh's fpath holds _jitgate" in_root zsh -fc \
        'for d in $fpath; do [[ -r $d/_jitgate ]] && exit 0; done; exit 1'

    echo "-- the installed jitgated runs (child cgroup, private bpffs and netns)"
    mkdir -p "$root/etc/jitgate"
    sed "s/^port = 15432/port = $port/" "$root/usr/share/doc/jitgate/examples/jitgate.toml" \
        >"$root/etc/jitgate/jitgate.toml"
    check "the policy protects the test's port" grep -qx "port = $port" "$root/etc/jitgate/jitgate.toml"
    # The unit's command line, and the cgroup v2 directory of this test.
    start_daemon() {
        setsid unshare --net -- chroot "$root" env -i PATH=/usr/sbin:/usr/bin \
            /usr/sbin/jitgated --config /etc/jitgate/jitgate.toml --cgroup /sys/fs/cgroup --quiet \
            >"$root/tmp/jitgated.log" 2>&1 &
        daemon=$!
        echo "$daemon" >"$results.daemon"  # for the outer trap, should this shell be killed
        echo "$daemon" >"$root/tmp/jitgated.pid"
    }
    start_daemon
    ready() {
        local i
        for i in $(seq 200); do
            kill -0 "$daemon" 2>/dev/null || { cat "$root/tmp/jitgated.log"; return 1; }
            in_root jitgate status >/dev/null 2>&1 && return 0
            sleep 0.1
        done
        cat "$root/tmp/jitgated.log"
        return 1
    }
    check "jitgated answers on /run/jitgate/jitgate.sock" ready
    check "jitgate status names the port" sh -c "chroot '$root' jitgate status | grep -q '$port/tcp'"
    check "jitgate --json status" sh -c "chroot '$root' jitgate --json status | grep -q '\"port\":$port'"
    check "programs are attached to the test cgroup" sh -c "bpftool cgroup show '$cg' | grep -q jg_"
    progs=$(bpftool cgroup show "$cg" | awk '$1 ~ /^[0-9]+$/ {print $1}' | sort -u)
    # A user in the test cgroup and the daemon's network namespace is refused.
    refused() {
        nsenter --net="/proc/$daemon/ns/net" sh -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' sh "$cg" \
            setpriv --reuid=65534 --regid=65534 --clear-groups /usr/bin/python3 -c "
import errno, socket, sys
s = socket.socket()
try:
    s.connect(('127.0.0.1', $port))
except OSError as e:
    sys.exit(0 if e.errno == errno.EPERM else f'connect: {e}')
sys.exit('connect: allowed')"
    }
    check "connect to $port is refused with EPERM" refused

    echo "-- logrotate rotates the audit log while jitgated writes it"
    check "apt-get install logrotate" in_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends logrotate
    logrotate_debug() {
        local out
        out=$(in_root logrotate -d /etc/logrotate.d/jitgate 2>&1) || { echo "$out"; return 1; }
        echo "$out"
        ! grep -qi '^error' <<<"$out"
    }
    check "logrotate -d accepts /etc/logrotate.d/jitgate" logrotate_debug
    log=$root/var/log/jitgate/audit.jsonl
    check "logrotate -f rotates it" in_root logrotate -f -s /tmp/logrotate.state /etc/logrotate.d/jitgate
    check "  ... into audit.jsonl.1, the new audit.jsonl 0640 root:adm" sh -c \
        "[ -s '$log.1' ] && [ \"\$(stat -c '%a %U %G' '$log')\" = '640 root adm' ]"
    # A reload writes a record: within a few seconds jitgated has found the
    # new file and continued the chain there.
    continued() {
        local _try _
        for _try in $(seq 10); do  # a reload before jitgated looked at the path goes to the old file
            kill -HUP "$daemon"
            for _ in $(seq 20); do
                grep -q '"type":"policy_reload"' "$log" 2>/dev/null && break 2
                sleep 0.1
            done
        done
        grep -q '"type":"policy_reload"' "$log" || { echo "no record reached the new file"; return 1; }
        in_root jitgate audit verify /var/log/jitgate/audit.jsonl.1 /var/log/jitgate/audit.jsonl
    }
    check "  ... jitgated continues the chain in the new file (audit verify .1 then the new)" continued
    check "jitgated stops on SIGTERM" sh -c "kill -TERM $daemon; for i in \$(seq 100); do
        kill -0 $daemon 2>/dev/null || exit 0; sleep 0.1; done; exit 1"
    wait "$daemon" 2>/dev/null || true
    daemon=
    check "enforcement stays attached after the stop (fail closed)" sh -c "bpftool cgroup show '$cg' | grep -q jg_"
    check "jitgated --uninstall" in_root jitgated --config /etc/jitgate/jitgate.toml --cgroup /sys/fs/cgroup \
        --uninstall
    check "nothing attached to the test cgroup" sh -c "! bpftool cgroup show '$cg' | grep -q ."
    check "no pins left on the bpffs" sh -c "[ -z \"\$(ls -A '$root/sys/fs/bpf')\" ] || ls -R '$root/sys/fs/bpf'"
    gone() {
        local p
        for p in $progs; do
            bpftool prog show id "$p" >/dev/null 2>&1 && { echo "program $p is still loaded"; return 1; }
        done
        return 0
    }
    check "the programs it attached are unloaded" gone
    check "jitgate status: daemon unreachable, exit 4" sh -c "chroot '$root' jitgate status; [ \$? -eq 4 ]"

    echo "-- apt-get remove: stops jitgated, takes its programs out of the kernel, keeps policy, state and log"
    start_daemon
    check "jitgated runs again (as the service would)" ready
    check "  ... attached to the test cgroup" sh -c "bpftool cgroup show '$cg' | grep -q jg_"
    progs=$(bpftool cgroup show "$cg" | awk '$1 ~ /^[0-9]+$/ {print $1}' | sort -u)
    # Without systemd, a jitgated started by hand is not stopped for the
    # admin: its --uninstall refuses, and so the removal stops.
    check "apt-get remove refuses while a jitgated started by hand runs" sh -c \
        "! chroot '$root' env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
            apt-get remove -y -q jitgate"
    check "  ... jitgate stays installed and jitgated running" sh -c \
        "chroot '$root' dpkg-query -W -f='\${Status}' jitgate | grep -qx 'install ok installed' && kill -0 $daemon"
    # With systemd (here: /run/systemd/system, and a systemctl that stops the
    # unit's jitgated by its pid as systemd would).
    mkdir -p "$root/run/systemd/system"
    cat >"$root/usr/sbin/systemctl" <<'STUB'
#!/bin/sh
echo "$*" >>/tmp/systemctl.calls
case " $* " in
*" stop jitgated.service "*)
    pid=$(cat /tmp/jitgated.pid)
    kill -TERM "$pid"
    i=0
    while [ $i -lt 100 ] && kill -0 "$pid" 2>/dev/null && ! grep -q '^State:.*Z' "/proc/$pid/status"; do
        sleep 0.1
        i=$((i + 1))
    done ;;
esac
exit 0
STUB
    chmod 755 "$root/usr/sbin/systemctl"
    check "apt-get remove jitgate" in_root env DEBIAN_FRONTEND=noninteractive apt-get remove -y -q jitgate
    check "  ... prerm stopped jitgated.service" grep -qx "stop jitgated.service" "$root/tmp/systemctl.calls"
    check "  ... jitgated is gone" sh -c "for i in \$(seq 50); do
        kill -0 $daemon 2>/dev/null && ! grep -q '^State:.*Z' /proc/$daemon/status || exit 0; sleep 0.1; done; exit 1"
    wait "$daemon" 2>/dev/null || true
    daemon=
    check "  ... nothing attached to the test cgroup" sh -c "! bpftool cgroup show '$cg' | grep -q ."
    check "  ... no pins left on the bpffs" sh -c "[ -z \"\$(ls -A '$root/sys/fs/bpf')\" ] || ls -R '$root/sys/fs/bpf'"
    check "  ... the programs it attached are unloaded" gone
    check "  ... binaries and pages are gone" sh -c \
        "! ls '$root/usr/bin/jitgate' '$root/usr/sbin/jitgated' '$root/usr/share/man/man1/jitgate.1.gz' 2>/dev/null"
    check "  ... the policy, state and audit log stay" ls "$root/etc/jitgate/jitgate.toml" \
        "$root/var/lib/jitgate/state.db" "$root/var/log/jitgate/audit.jsonl"
    check "  ... and the conffile /etc/logrotate.d/jitgate (dpkg: config-files)" sh -c \
        "[ -s '$root/etc/logrotate.d/jitgate' ] &&
         chroot '$root' dpkg-query -W -f='\${Status}' jitgate | grep -qx 'deinstall ok config-files'"

    echo "-- apt-get purge: the policy and state go, the audit log stays"
    check "apt-get purge jitgate" in_root env DEBIAN_FRONTEND=noninteractive apt-get purge -y -q jitgate
    check "  ... /etc/jitgate, /var/lib/jitgate, /etc/logrotate.d/jitgate are gone" sh -c \
        "! ls -d '$root/etc/jitgate' '$root/var/lib/jitgate' '$root/etc/logrotate.d/jitgate' 2>/dev/null"
    check "  ... the audit log and the rotated one stay (evidence)" sh -c \
        "[ -s '$root/var/log/jitgate/audit.jsonl' ] && [ -s '$root/var/log/jitgate/audit.jsonl.1' ]"
    check "  ... dpkg no longer knows it" sh -c "! chroot '$root' dpkg-query -W -f='\${Status}' jitgate 2>/dev/null |
        grep -q installed"
    exit 0
fi

# --- outside: build the package and the root, then clean up ---------------
skip() {  # in CI a privileged suite must run: there a skip fails
    if [ "${CI:-}" = true ]; then echo "FAIL: a privileged suite cannot be skipped in CI: $1"; exit 1; fi
    echo "skipped: $1"
    exit 77
}
[ "$(id -u)" -eq 0 ] || skip "needs root (a chroot, mounts, BPF)"
command -v mmdebstrap >/dev/null || skip "mmdebstrap is not installed (scripts/setup.sh installs it)"
cg2=$(findmnt -rn -t cgroup2 -o TARGET | head -1)
[ -n "$cg2" ] || skip "no cgroup v2 hierarchy is mounted"
build=$(cd "$1" && pwd)
tmp=$(mktemp -d /tmp/jitgate-install-XXXXXX)
cg=$cg2/jitgate-test-install-$$
inner=
cleanup() {
    set +e
    [ -n "$inner" ] && kill -TERM "$inner" 2>/dev/null && wait "$inner"
    # The daemon (by the pid the inner shell noted, if its root is still
    # the test's), and a probe (in the cgroup).
    if [ -f "$tmp/results.daemon" ]; then
        pid=$(cat "$tmp/results.daemon")
        [ "$(readlink "/proc/$pid/root" 2>/dev/null)" = "$tmp/root" ] && kill -KILL "$pid"
    fi
    [ -d "$cg" ] && echo 1 >"$cg/cgroup.kill" 2>/dev/null
    for _ in $(seq 50); do [ -d "$cg" ] || break; rmdir "$cg" 2>/dev/null || sleep 0.1; done
    # Mounts were private to the inner namespace; none may show here.
    findmnt -rn -o TARGET | grep -F "$tmp" | sort -r | xargs -r -n1 umount -l
    rm -rf --one-file-system "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
start=$SECONDS

echo "-- cpack -G DEB"
(cd "$tmp" && cpack -G DEB --config "$build/CPackConfig.cmake" -B "$tmp/pkg" >"$tmp/cpack.log" 2>&1) ||
    { cat "$tmp/cpack.log"; echo "FAIL: cpack"; exit 1; }
deb=$(ls "$tmp"/pkg/*.deb)
echo "     $(basename "$deb")"

echo "-- a fresh Debian 12 root (mmdebstrap --variant=apt, $MIRROR)"
t0=$SECONDS
mmdebstrap --quiet --mode=root --variant=apt bookworm "$tmp/root" "$MIRROR" >"$tmp/mmdebstrap.log" 2>&1 ||
    { tail -30 "$tmp/mmdebstrap.log"; echo "FAIL: mmdebstrap"; exit 1; }
echo "     $((SECONDS - t0)) s, $(du -sh "$tmp/root" | cut -f1)"

mkdir "$cg"
port=$(shuf -i 20000-32000 -n 1)
unshare --mount --propagation private -- bash "$0" --inside "$tmp/root" "$cg" "$deb" "$port" "$tmp/results" &
inner=$!
wait "$inner" || true
inner=
read -r passed failed <"$tmp/results" || { passed=0 failed=1; }

echo "-- after the run"
if findmnt -rn -o TARGET | grep -F "$tmp"; then
    echo "  FAIL  mounts of the run are visible outside it"
    failed=$((failed + 1))
else
    echo "  ok    no mount of the run is visible outside it"
    passed=$((passed + 1))
fi
echo "     $((SECONDS - start)) s in all"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
