#!/usr/bin/env bash
# Install the Debian packages the local stack runs (PostgreSQL, Prometheus, Alertmanager), once.
# Idempotent: does nothing when every binary is already there. The packages' own daemons are stopped
# and disabled afterwards: `tollgate stack up` runs its own processes on free ports.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi

have_postgres() {
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null
}

missing=()
have_postgres || missing+=(postgresql)
command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v prometheus-alertmanager >/dev/null 2>&1 || missing+=(prometheus-alertmanager)
command -v amtool >/dev/null 2>&1 || missing+=(prometheus-alertmanager)
command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || missing+=(maven)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)  # test certificates for the TLS broker
command -v chromium >/dev/null 2>&1 || missing+=(chromium)  # the e2e tier renders the audit report in it
command -v pdftotext >/dev/null 2>&1 || missing+=(poppler-utils)  # tests read the audit report's PDF text

if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-system: postgresql, prometheus, alertmanager, java, maven, openssl, chromium and poppler-utils already installed"
else
  # Keep the packages' daemons from starting at install time where policy-rc.d is honoured.
  policy=/usr/sbin/policy-rc.d
  created_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod +x "$policy"
    created_policy=1
  fi
  # shellcheck disable=SC2329
  cleanup() { if [ "$created_policy" -eq 1 ]; then $SUDO rm -f "$policy"; fi; }
  trap cleanup EXIT
  mapfile -t unique < <(printf '%s\n' "${missing[@]}" | sort -u)
  echo "install-system: installing ${unique[*]}"
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${unique[@]}"
fi

# Whatever the packages started (or would start at boot) is in the way of our own processes.
# Stop only the packages' own instances: Debian's `main` cluster and the pidfile-managed daemons,
# never a throwaway cluster or Prometheus that `tollgate stack up` (or anyone else) runs.
for conf in /etc/postgresql/*/main/start.conf; do
  [ -e "$conf" ] || continue
  version="$(basename "$(dirname "$(dirname "$conf")")")"
  $SUDO pg_ctlcluster "$version" main stop >/dev/null 2>&1 || true
  echo manual | $SUDO tee "$conf" >/dev/null
done
for svc in postgresql prometheus prometheus-alertmanager prometheus-node-exporter; do
  if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    if [ "$svc" != postgresql ]; then
      $SUDO systemctl stop "$svc" >/dev/null 2>&1 || true
    fi
    $SUDO systemctl disable "$svc" >/dev/null 2>&1 || true
  fi
  if [ -x "/etc/init.d/$svc" ]; then
    if [ "$svc" != postgresql ]; then
      $SUDO service "$svc" stop >/dev/null 2>&1 || true
    fi
    $SUDO update-rc.d "$svc" disable >/dev/null 2>&1 || true
  fi
done
echo "install-system: done"
