#!/usr/bin/env bash
# Installs what postern needs on Debian 12 that is missing: build dependencies always;
# with --quickstart what the quickstart uses; with --test-peers every test peer; with
# --bench the test peers and the profilers tests/bench uses (perf, valgrind).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
build_pkgs=(cmake g++ pkg-config libuv1-dev libssl-dev libmariadb-dev libsqlite3-dev libfmt-dev catch2 libcrypt-dev libargon2-dev)
peer_pkgs=(mariadb-server mariadb-client postfix postfix-mysql postfix-sqlite sqlite3 dovecot-core dovecot-lmtpd dovecot-mysql dovecot-sqlite dovecot-imapd swaks python3)
quickstart_pkgs=(postfix sqlite3 swaks)
bench_pkgs=(linux-perf valgrind)
want=("${build_pkgs[@]}")
case "${1:-}" in
  --test-peers) want+=("${peer_pkgs[@]}") ;;
  --quickstart) want+=("${quickstart_pkgs[@]}") ;;
  --bench) want+=("${peer_pkgs[@]}" "${bench_pkgs[@]}") ;;
esac
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
echo "installing: ${missing[*]}"
$SUDO apt-get update -q
echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
echo "postfix postfix/mailname string localhost" | $SUDO debconf-set-selections
# Never let package scripts start system daemons; tests start their own peers.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod +x /usr/sbin/policy-rc.d
fi
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
