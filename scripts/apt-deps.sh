#!/usr/bin/env bash
# Install the system packages Nexrel's tests use (DCMTK, Orthanc and its DICOMweb plugin,
# Redis, Chromium, PostgreSQL, npm, nginx), if missing. Needs root or sudo; never starts the packages' system services.
set -eu
need=()
command -v storescu >/dev/null || need+=(dcmtk)
command -v Orthanc >/dev/null || need+=(orthanc)
# Orthanc's DICOMweb plugin: tests/integration/test_dicomweb_orthanc.py uses Nexrel as its server.
[ -e /usr/share/orthanc/plugins/libOrthancDicomWeb.so ] || need+=(orthanc-dicomweb)
command -v redis-server >/dev/null || need+=(redis-server)
command -v chromium >/dev/null || need+=(chromium)
command -v npm >/dev/null || need+=(npm)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
# nginx -t on deploy/nginx/nexrel.conf (tests/test_deploy.py).
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
[ ${#need[@]} -eq 0 ] && exit 0
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "installing: ${need[*]}"
# policy-rc.d keeps apt from starting orthanc/redis/postgresql/nginx as system services.
printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
# Removed however the script ends (success, a failed apt-get, Ctrl-C), or services stay blocked.
trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
$SUDO chmod +x /usr/sbin/policy-rc.d
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${need[@]}"
