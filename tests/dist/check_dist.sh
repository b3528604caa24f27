#!/usr/bin/env bash
# What a user installs: `cpack -G DEB` builds the package, `dpkg-deb -c` lists
# binaries, unit, example policy, man pages and completions, Depends names the
# shared libraries; extracted into a throwaway root (dpkg -x, never installed
# on this machine) the man pages render without warnings, bash completion
# completes sub-commands and ids, so does zsh's (typed into an interactive
# zsh through a pty: tests/dist/zsh_complete.zsh), and
# systemd-analyze accepts the unit.  No privilege needed.
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
    ./usr/share/doc/jitgate/examples/jitgate.toml ./usr/share/man/man1/jitgate.1 \
    ./usr/share/man/man8/jitgated.8 ./usr/share/man/man5/jitgate.toml.5 \
    ./usr/share/bash-completion/completions/jitgate ./usr/share/zsh/vendor-completions/_jitgate; do
    check "dpkg-deb -c lists $f" grep -qx -- "$f" "$tmp/files"
done
depends=$(dpkg-deb -f "$deb" Depends)
echo "     Depends: $depends"
for lib in libc6 libbpf1 libsqlite3-0 libssl3 libfmt9 libstdc++6; do
    check "Depends names $lib" grep -q "$lib" <<<"$depends"
done

echo "-- extracted into a throwaway root (dpkg -x)"
root=$tmp/root
dpkg -x "$deb" "$root"
check "jitgate --help runs" "$root/usr/bin/jitgate" --help
check "the example policy is valid" "$root/usr/bin/jitgate" policy check "$root/usr/share/doc/jitgate/examples/jitgate.toml"
for page in man1/jitgate.1 man8/jitgated.8 man5/jitgate.toml.5; do
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
check "sub-commands" completes "request run break-glass approve deny revoke list status metrics audit policy --socket --json --help" jitgate ""
check "a sub-command from its start" completes "request revoke" jitgate re
check "approve: pending request ids" completes "7 12" jitgate approve ""
check "deny after --socket: pending request ids" completes "7 12" jitgate --socket /x deny ""
check "revoke: active grant ids" completes "13" jitgate revoke ""
check "request: protected ports" completes "5432/tcp" jitgate request ""
check "list options" completes "--pending --active --all --limit --after --socket --json --help" jitgate list --
check "audit --type" completes "grant" jitgate audit --type gr
check "policy check" completes "check" jitgate policy ""

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

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
