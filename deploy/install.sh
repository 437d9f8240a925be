#!/bin/sh
# Install host-pm-exporter from this checkout and run it with the default flags.
#
#   sudo ./deploy/install.sh [EXPORTER FLAGS...]
#
# Installs into a virtual environment (PREFIX, default /opt/host-pm-exporter), so it
# works on Debian/Ubuntu Pythons that refuse a system-wide pip install (PEP 668).
# Where systemd runs, it installs and starts the host-pm-exporter service (flags go to
# /etc/default/host-pm-exporter); elsewhere it runs the exporter in the foreground.
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
prefix=${PREFIX:-/opt/host-pm-exporter}

as_root() {
	if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

make_venv() {
	python3 -m venv "$prefix" 2>/dev/null || return 1
	[ -x "$prefix/bin/pip" ]
}

if ! command -v python3 >/dev/null 2>&1; then
	as_root apt-get update -qq
	as_root apt-get install -y -qq python3 python3-venv
fi
if ! make_venv; then
	rm -rf "$prefix"
	as_root apt-get update -qq
	as_root apt-get install -y -qq python3-venv
	make_venv
fi
"$prefix/bin/pip" install --quiet --disable-pip-version-check --upgrade "$here"

if [ -d /run/systemd/system ] && [ -z "${FOREGROUND:-}" ]; then
	if [ ! -e /etc/default/host-pm-exporter ]; then
		printf 'ARGS="%s"\n' "$*" | as_root tee /etc/default/host-pm-exporter >/dev/null
	fi
	sed "s#/opt/host-pm-exporter#$prefix#g" "$here/deploy/systemd/host-pm-exporter.service" \
		| as_root tee /etc/systemd/system/host-pm-exporter.service >/dev/null
	as_root systemctl daemon-reload
	as_root systemctl enable --now host-pm-exporter.service
	echo "host-pm-exporter is running: curl http://localhost:8731/metrics"
else
	exec "$prefix/bin/host-pm-exporter" "$@"
fi
