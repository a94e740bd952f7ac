#!/bin/sh
# deps.sh installs, with apt-get, the Debian packages spoteci needs on the
# machine when some are missing: containerd and runc run the instances'
# containers, containernetworking-plugins and iptables give them a network,
# debootstrap, busybox-static and ca-certificates make their images (spoteci
# image build); prometheus scrapes the service in a test (docs/metrics.md);
# chromium drives the web console's browser tests (chromedp).
# When all are installed it only reads dpkg's database: run it as often as
# you like. It prints one line of what it does.
set -eu

pkgs="containerd runc containernetworking-plugins debootstrap busybox-static iptables ca-certificates prometheus chromium"

missing=""
for p in $pkgs; do
	status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	if [ "$status" != "install ok installed" ]; then
		missing="$missing $p"
	fi
done

if [ -z "$missing" ]; then
	echo "deps: all installed ($pkgs)"
	exit 0
fi

echo "deps: installing$missing"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null 2>&1 || { echo "deps: not root and no sudo: install$missing as root" >&2; exit 1; }
	sudo="sudo"
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# shellcheck disable=SC2086 # $missing is a list of package names
if ! { $sudo apt-get update -q && \
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing; } >"$log" 2>&1; then
	cat "$log" >&2
	echo "deps: apt-get failed" >&2
	exit 1
fi
