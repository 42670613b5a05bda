#!/bin/sh
# Install every Debian package needed to build, test, fuzz, demo and bench.
# Idempotent and quiet: does nothing when all are present; runs
# "apt-get update" once, only if something is missing.  Debian 12, as root.
set -eu

PKGS="build-essential autoconf automake libtool pkg-config bison flex
libnetfilter-conntrack-dev libnfnetlink-dev libmnl-dev libcmocka-dev
libssl-dev clang valgrind conntrackd conntrack iptables
nftables iproute2 python3 procps psmisc socat iputils-ping bsdutils
kmod ca-certificates git xz-utils keepalived python3-prometheus-client
logrotate"

missing=""
for p in $PKGS; do
	st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	case $st in *" installed") ;; *) missing="$missing $p";; esac
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
	echo "deps.sh: missing packages:$missing (run as root)" >&2
	exit 1
fi

# Debian's conntrackd is only a reference and test peer here: it must not
# start a system daemon when installed.  policy-rc.d vetoes invoke-rc.d
# starts for the duration of the install.
prc=/usr/sbin/policy-rc.d
own_prc=0
if [ ! -e $prc ]; then
	printf '#!/bin/sh\nexit 101\n' > $prc
	chmod 755 $prc
	own_prc=1
fi
trap '[ $own_prc = 1 ] && rm -f $prc' EXIT

export DEBIAN_FRONTEND=noninteractive
echo "deps.sh: installing$missing" >&2
log=$(mktemp)
trap '[ $own_prc = 1 ] && rm -f $prc; rm -f "$log"' EXIT
# shellcheck disable=SC2086
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends $missing; } >"$log" 2>&1; then
	cat "$log" >&2
	echo "deps.sh: apt-get failed" >&2
	exit 1
fi

if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
	systemctl disable --now conntrackd >/dev/null 2>&1 || true
	systemctl disable --now keepalived >/dev/null 2>&1 || true
fi
