#!/usr/bin/env bash
# Installs everything jitgate needs to build, test and run, from Debian
# packages. Idempotent; quiet when everything is present.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config
  clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev
  # clang's libFuzzer and sanitizer runtimes (scripts/fuzz.sh): clang only
  # recommends them, and recommends are not installed below
  libclang-rt-dev
  libcli11-dev libfmt-dev doctest-dev nlohmann-json3-dev libtomlplusplus-dev
  libsqlite3-dev libssl-dev
  iproute2 util-linux procps passwd
  socat python3 nftables clang-format
  # packaging checks (tests/dist): man pages render, the zsh completion parses
  man-db groff-base zsh
  # the .deb installed into a fresh Debian root (tests/dist/check_install.sh)
  mmdebstrap
  # the fleet (tests/fleet: a private etcd; the etcd client links libcurl)
  etcd-server etcd-client libcurl4-openssl-dev
  # the test OpenID provider (tests/web/idp.py: JOSE signing, PKCE); fleet trust
  # (tests/e2e/e2e_fleet_trust.py: documents signed by a key no node lists)
  python3-authlib python3-cryptography
  # jitgate-web (userspace/web): HTTP server and OIDC client; its browser test
  # (tests/web: Debian's chromium driven by playwright-core from npm)
  libcpp-httplib-dev chromium
)

# Node.js and npm install playwright-core for the browser test. Machines often
# have them from another source (NodeSource's nodejs bundles its own npm and
# conflicts with Debian's npm package), so they are asked for by command, and
# Debian's packages are installed only when neither command is there.
NODE_PACKAGES=()
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  if command -v node >/dev/null 2>&1 && ! dpkg-query -W -f='${Version}' nodejs 2>/dev/null | grep -q deb; then
    echo "setup: node is installed ($(command -v node)) without npm, and Debian's npm would conflict with it;" \
      "install npm from the same source as node" >&2
    exit 1
  fi
  NODE_PACKAGES=(nodejs npm)
fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
missing+=("${NODE_PACKAGES[@]}")
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "setup: missing packages: ${missing[*]}; run this script as root (sudo $0)" >&2
  exit 1
fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# Packages such as etcd-server start a system service when installed: the
# tests start their own private instances and nothing here should run one.
# policy-rc.d exiting 101 tells invoke-rc.d not to start anything; ours is
# removed afterwards (also on failure), and one already present is left alone.
policy=/usr/sbin/policy-rc.d
ours=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\n# written by jitgate scripts/setup.sh during apt-get install\nexit 101\n' >"$policy"
  chmod 0755 "$policy"
  ours=1
  trap 'rm -f "$policy"' EXIT
  trap 'exit 130' INT TERM
fi
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
if [ "$ours" = 1 ]; then
  rm -f "$policy"
  trap - EXIT INT TERM
fi
echo "setup: done"
