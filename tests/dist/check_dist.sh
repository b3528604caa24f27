#!/usr/bin/env bash
# What a user installs: `cpack -G DEB` builds the package, `dpkg-deb -c` lists
# binaries, unit, example policy, man pages and completions, Depends names the
# shared libraries; extracted into a throwaway root (dpkg -x, never installed
# on this machine) the binaries are stripped (their symbols in the -dbgsym
# package), man pages and changelog gzip -9n, the copyright machine-readable,
# the man pages render without warnings, bash completion
# completes sub-commands and ids, so does zsh's (typed into an interactive
# zsh through a pty: tests/dist/zsh_complete.zsh), and
# systemd-analyze accepts the unit; every sub-command and option the
# completions offer and the man pages document is one jitgate or jitgated
# accepts, and the other way round (check_docs.py).  No privilege needed.
#
# usage: check_dist.sh BUILD_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
src=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d /tmp/jitgate-dist-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
# shellcheck source=check.sh
. "$src/tests/dist/check.sh"

echo "-- cpack -G DEB"
(cd "$tmp" && cpack -G DEB --config "$build/CPackConfig.cmake" -B "$tmp/pkg" >"$tmp/cpack.log" 2>&1) ||
    { cat "$tmp/cpack.log"; echo "FAIL: cpack"; exit 1; }
deb=$(ls "$tmp"/pkg/*.deb)
echo "     $(basename "$deb")"
dpkg-deb -c "$deb" | awk '{print $6}' >"$tmp/files"
for f in ./usr/bin/jitgate ./usr/sbin/jitgated ./usr/lib/systemd/system/jitgated.service \
    ./usr/lib/systemd/system/jitgate-notify.service \
    ./usr/share/doc/jitgate/examples/jitgate.toml ./usr/share/man/man1/jitgate.1.gz \
    ./usr/share/man/man8/jitgated.8.gz ./usr/share/man/man5/jitgate.toml.5.gz \
    ./usr/share/bash-completion/completions/jitgate ./usr/share/zsh/vendor-completions/_jitgate \
    ./usr/share/doc/jitgate/copyright ./usr/share/doc/jitgate/changelog.Debian.gz ./etc/logrotate.d/jitgate; do
    check "dpkg-deb -c lists $f" grep -qx -- "$f" "$tmp/files"
done
check "no uncompressed man page" sh -c "! grep -E '^./usr/share/man/.*[0-9]\$' '$tmp/files'"
# `lacks PATTERN TEXT`: TEXT is not empty and no line of it matches PATTERN
# (the lines that do are printed on failure).
lacks() { [ -n "$2" ] && ! grep -E "$1" <<<"$2"; }
depends=$(dpkg-deb -f "$deb" Depends)
echo "     Depends: $depends"
for lib in libc6 libbpf1 libsqlite3-0 libssl3 libstdc++6 libcurl4; do
    check "Depends names $lib" grep -q "$lib" <<<"$depends"
done
# fmt and toml++ are compiled in (util/fmt_impl.cpp, util/toml_impl.cpp).
check "Depends names neither libfmt nor libtomlplusplus (compiled in)" lacks 'libfmt|libtomlplusplus' "$depends"
version=$(dpkg-deb -f "$deb" Version)

echo "-- control: conffiles, maintainer scripts"
dpkg-deb -e "$deb" "$tmp/control"
check "conffiles is /etc/logrotate.d/jitgate" sh -c "[ \"\$(cat '$tmp/control/conffiles')\" = /etc/logrotate.d/jitgate ]"
for script in postinst prerm postrm; do
    check "$script is an executable sh script" sh -c "[ -x '$tmp/control/$script' ] && sh -n '$tmp/control/$script'"
done
check "prerm: remove runs jitgated --uninstall" grep -q "jitgated --config /etc/jitgate/jitgate.toml --uninstall" \
    "$tmp/control/prerm"
check "postrm: purge removes /etc/jitgate and /var/lib/jitgate, not /var/log/jitgate" sh -c \
    "grep -qx '    rm -rf /etc/jitgate /var/lib/jitgate' '$tmp/control/postrm' && ! grep -E '^ *rm .*/var/log' '$tmp/control/postrm'"

echo "-- debug symbols: jitgate-dbgsym"
ddeb=$(ls "$tmp"/pkg/jitgate-dbgsym_*.ddeb 2>/dev/null || true)
check "cpack wrote jitgate-dbgsym_${version}_*.ddeb" test -n "$ddeb"
if [ -n "$ddeb" ]; then dpkg-deb -c "$ddeb" | awk '{print $6}' >"$tmp/ddeb.files"; else : >"$tmp/ddeb.files"; fi

echo "-- extracted into a throwaway root (dpkg -x)"
root=$tmp/root
dpkg -x "$deb" "$root"
# The shared libraries a binary of the package names (NEEDED), on one line.
needed() { readelf -d "$root/$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]$/\1/p' | sort | xargs; }
check "jitgate --help runs" "$root/usr/bin/jitgate" --help
for bin in usr/bin/jitgate usr/sbin/jitgated; do
    stripped() {
        local sections size id
        sections=$(readelf -SW "$root/$1")
        size=$(stat -c %s "$root/$1")
        if grep -q -e '\.debug_' -e '\.symtab' <<<"$sections"; then echo "$1 has debug or symbol sections"; return 1; fi
        # (sanitizer builds are several times larger, stripped or not)
        if [ "${JG_SANITIZED:-0}" != 1 ] && [ "$size" -gt 8000000 ]; then echo "$1 is $size bytes"; return 1; fi
        # Its symbols are in the -dbgsym package, under its build id.
        id=$(readelf -n "$root/$1" | awk '/Build ID/ {print $3}')
        [ -n "$id" ] || { echo "$1 has no build id"; return 1; }
        grep -qx "./usr/lib/debug/.build-id/${id:0:2}/${id:2}.debug" "$tmp/ddeb.files" ||
            { echo "no /usr/lib/debug/.build-id/${id:0:2}/${id:2}.debug in $(basename "$ddeb")"; return 1; }
        echo "$1: $size bytes"
    }
    check "$bin is stripped, small, its symbols in the -dbgsym package" stripped "$bin"
    bin_needed=$(needed "$bin" || true)
    echo "     $bin NEEDED: $bin_needed"
    # libcurl and libcrypto are loaded on first use (util/curl_api.h,
    # util/crypto_api.h): linked, they would cost every run their start-up.
    check "$bin links neither libcurl nor libcrypto (loaded on first use)" lacks 'libcurl|libcrypto' "$bin_needed"
    check "$bin links neither libfmt nor libtomlplusplus (compiled in)" lacks 'libfmt|libtomlplusplus' "$bin_needed"
done
# Unless it was built without (JITGATE_STATIC_CXX_RUNTIME=OFF, or sanitized,
# whose runtime replaces operator new and delete), jitgate has the C++ runtime
# linked in: the command maps no C++ library at start.
if [ "${JG_STATIC_CXX:-0}" = 1 ]; then
    check "usr/bin/jitgate links neither libstdc++ nor libgcc_s (linked in)" lacks 'libstdc\+\+|libgcc_s' \
        "$(needed usr/bin/jitgate)"
else
    echo "     usr/bin/jitgate links the C++ runtime shared (JG_STATIC_CXX is not 1): not checked"
fi
# Nor through a library it links: the loader's own list of what it loaded.
check "jitgate --version loads neither libcurl nor libcrypto" lacks 'libcurl|libcrypto' \
    "$(LD_DEBUG=libs "$root/usr/bin/jitgate" --version 2>&1 | grep 'calling init' || true)"
reproducible_gz() {  # gzip -9n: no file name, no time stamp in the header
    python3 -c '
import sys
for f in sys.argv[1:]:
    h = open(f, "rb").read(10)
    assert h[:2] == b"\x1f\x8b" and h[3] & 0x08 == 0 and h[4:8] == b"\0\0\0\0", f + ": name or time in its gzip header"
' "$@"
}
check "man pages and changelog: gzip -n (no name, no time)" reproducible_gz "$root"/usr/share/man/man?/*.gz \
    "$root/usr/share/doc/jitgate/changelog.Debian.gz"
check "changelog.Debian.gz: its first entry is the package's Version ($version)" sh -c \
    "[ \"\$(zcat '$root/usr/share/doc/jitgate/changelog.Debian.gz' | dpkg-parsechangelog -l- -S Version)\" = '$version' ]"
dep5() {  # a machine-readable copyright file: each Files licence has its text
    python3 -c '
import re, sys
text = open(sys.argv[1]).read()
assert text.startswith("Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n"), "no Format line"
paras = [p for p in text.split("\n\n") if p.strip()]
used, given = set(), set()
for p in paras:
    lic = re.search(r"^License: *(.+)$", p, re.M)
    if p.startswith("Files:"):
        assert lic and re.search(r"^Copyright: ", p, re.M), "a Files paragraph without Copyright or License"
        used |= {n.strip() for n in re.split(r" or | and ", lic.group(1))}
    elif p.startswith("License:"):
        given.add(lic.group(1).strip())
missing = used - given
assert not missing, "no licence text for " + ", ".join(sorted(missing))
' "$1"
}
check "copyright is machine-readable (DEP-5), each licence with its text" dep5 "$root/usr/share/doc/jitgate/copyright"
check "logrotate: the audit log, create 0640 root adm, not copytruncate" sh -c \
    "grep -q '^/var/log/jitgate/audit.jsonl {' '$root/etc/logrotate.d/jitgate' &&
     grep -qP '^\tcreate 0640 root adm$' '$root/etc/logrotate.d/jitgate' &&
     ! grep -qP '^\s*copytruncate' '$root/etc/logrotate.d/jitgate'"
check "the example policy is valid" "$root/usr/bin/jitgate" policy check "$root/usr/share/doc/jitgate/examples/jitgate.toml"
for page in man1/jitgate.1.gz man8/jitgated.8.gz man5/jitgate.toml.5.gz; do
    render() {
        local err
        err=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -E UTF-8 -l "$root/usr/share/man/$1" 2>&1 >"$tmp/page")
        [ -z "$err" ] || { echo "$err"; return 1; }
        grep -q "SEE ALSO" "$tmp/page"
    }
    check "man -l $page renders without warnings" render "$page"
done
check "man jitgate finds the page" env MANPATH="$root/usr/share/man" man -w jitgate

echo "-- bash completion"
completes() {  # completes WANT WORD... : the completion of the last word is WANT
    local want=$1
    shift
    local got
    got=$(bash -c '
        source "$1"; shift
        jitgate() {
            case "$*" in
                *"list --pending"*) echo "{\"requests\":[{\"request_id\":12,\"state\":\"pending\"},{\"request_id\":7}]}" ;;
                *"list --active"*) echo "{\"grants\":[{\"grant_id\":13,\"request_id\":12}]}" ;;
                *status*) echo "{\"ports\":[{\"name\":\"db\",\"port\":5432,\"proto\":\"tcp\"}]}" ;;
            esac
        }
        COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); COMPREPLY=()
        _jitgate
        echo "${COMPREPLY[*]}"' _ "$root/usr/share/bash-completion/completions/jitgate" "$@")
    [ "$got" = "$want" ] || { echo "got '$got', want '$want'"; return 1; }
}
check "sub-commands" completes "request run break-glass approve deny revoke extend list nodes status metrics audit policy notify login logout --socket --web --json --help --version" jitgate ""
check "a sub-command from its start" completes "request revoke" jitgate re
check "approve: pending request ids" completes "7 12" jitgate approve ""
check "deny after --socket: pending request ids" completes "7 12" jitgate --socket /x deny ""
check "revoke: active grant ids" completes "13" jitgate revoke ""
check "request: protected ports" completes "5432/tcp" jitgate request ""
check "list options" completes "--pending --active --all --limit --after --socket --web --json --help" jitgate list --
check "audit --type" completes "grant" jitgate audit --type gr
check "policy sub-commands" completes "check push show" jitgate policy ""

echo "-- completions and man pages against jitgate's and jitgated's own command lines (check_docs.py)"
docs() {
    "$build/tests/dist/jitgate_cli_spec" >"$tmp/spec.json" || { echo "FAIL: jitgate_cli_spec"; return 1; }
    python3 "$src/tests/dist/check_docs.py" "$tmp/spec.json" "$root/usr/share/bash-completion/completions/jitgate" \
        "$root/usr/share/zsh/vendor-completions/_jitgate" "$src/scripts/man/jitgate.man.md" "$root/usr/bin/jitgate" "$src"
}
docs | tee "$tmp/docs.out" || true
read -r p _ f _ < <(tail -1 "$tmp/docs.out") || true
if [ -n "${p:-}" ] && [ -n "${f:-}" ]; then
    passed=$((passed + p)) failed=$((failed + f))
else
    echo "  FAIL  check_docs.py did not finish"
    failed=$((failed + 1))
fi

echo "-- zsh completion (an interactive zsh -f in a pty, compinit, TAB)"
check "zsh parses _jitgate" zsh -n "$root/usr/share/zsh/vendor-completions/_jitgate"
zcompletes() {  # zcompletes WANT KEYS: the line after each TAB in KEYS, joined by " | ", is WANT
    local got
    got=$(zsh -f "$src/tests/dist/zsh_complete.zsh" "$root/usr/share/zsh/vendor-completions/_jitgate" <<<"$2" |
        sed 's/ *$//' | paste -sd'|' | sed 's/|/ | /g')
    [ "$got" = "$1" ] || { echo "typed '$2': got '$got', want '$1'"; return 1; }
}
check "zsh: a sub-command from its start" zcompletes "jitgate approve" "jitgate ap<TAB>"
check "zsh: sub-commands one TAB at a time" zcompletes "jitgate request | jitgate revoke" "jitgate re<TAB><TAB>"
check "zsh: approve: pending request ids" zcompletes "jitgate approve 12 | jitgate approve 7" \
    "jitgate approve <TAB><TAB>"
check "zsh: revoke: active grant ids" zcompletes "jitgate revoke 13" "jitgate revoke <TAB>"
check "zsh: deny asks the jitgated of --socket" zcompletes "jitgate --socket /x deny 99" \
    "jitgate --socket /x deny <TAB>"
check "zsh: ... also when --socket follows deny" zcompletes "jitgate deny --socket /x 99" \
    "jitgate deny --socket /x <TAB>"
check "zsh: --json before the sub-command" zcompletes "jitgate --json approve" "jitgate --json ap<TAB>"
check "zsh: request: protected ports" zcompletes "jitgate request 5432/tcp" "jitgate request <TAB>"
check "zsh: a port of proto both is PORT/tcp and PORT/udp" zcompletes \
    "jitgate --socket /both request 53/tcp | jitgate --socket /both request 53/udp" \
    "jitgate --socket /both request <TAB><TAB>"
check "zsh: list options" zcompletes "jitgate list --pending" "jitgate list --p<TAB>"
check "zsh: audit --type" zcompletes "jitgate audit --type grant" "jitgate audit --type gr<TAB>"

echo "-- the unit"
verify_unit() {
    sed -e "s#/usr/sbin/jitgated#$root/usr/sbin/jitgated#" \
        "$root/usr/lib/systemd/system/jitgated.service" >"$tmp/jitgated.service"
    MANPATH=$root/usr/share/man systemd-analyze verify "$tmp/jitgated.service"
}
check "systemd-analyze verify jitgated.service" verify_unit
check "the unit: Type=notify, hardening, write paths" grep -q \
    -e "^Type=notify" "$root/usr/lib/systemd/system/jitgated.service"
for key in "ProtectSystem=strict" "CapabilityBoundingSet=CAP_BPF CAP_PERFMON CAP_NET_ADMIN CAP_SYS_ADMIN" \
    "ReadWritePaths=/sys/fs/bpf" "StateDirectory=jitgate" "LogsDirectory=jitgate" "RuntimeDirectory=jitgate" \
    "ExecStart=/usr/sbin/jitgated --config /etc/jitgate/jitgate.toml --quiet"; do
    check "the unit has $key" grep -qx -- "$key" "$root/usr/lib/systemd/system/jitgated.service"
done

verify_notify_unit() {
    sed -e "s#/usr/bin/jitgate #$root/usr/bin/jitgate #" \
        "$root/usr/lib/systemd/system/jitgate-notify.service" >"$tmp/jitgate-notify.service"
    MANPATH=$root/usr/share/man systemd-analyze verify "$tmp/jitgate-notify.service"
}
check "systemd-analyze verify jitgate-notify.service" verify_notify_unit
for key in "DynamicUser=yes" "NoNewPrivileges=yes" "CapabilityBoundingSet=" "StateDirectory=jitgate-notify"; do
    check "jitgate-notify.service has $key" grep -qx -- "$key" "$root/usr/lib/systemd/system/jitgate-notify.service"
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
