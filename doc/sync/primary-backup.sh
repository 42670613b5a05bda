#!/bin/sh
# keepalived notify script for a conntrackd primary/backup pair.
#
# keepalived.conf (see keepalived.conf beside this file):
#   notify_master "/etc/conntrackd/primary-backup.sh primary"
#   notify_backup "/etc/conntrackd/primary-backup.sh backup"
#   notify_fault  "/etc/conntrackd/primary-backup.sh fault"
#
# Same command sequence as the script shipped with conntrackd 1.4.x, so the
# two daemons can be swapped under one keepalived configuration. The three
# paths may be overridden from the environment (tests do that).

CONNTRACKD_BIN=${CONNTRACKD_BIN:-/usr/sbin/conntrackd}
CONNTRACKD_LOCK=${CONNTRACKD_LOCK:-/var/lock/conntrack.lock}
CONNTRACKD_CONFIG=${CONNTRACKD_CONFIG:-/etc/conntrackd/conntrackd.conf}

# Exit status 1 means "the daemon could not be reached"; anything else
# means the request was delivered.
ctd() {
	"$CONNTRACKD_BIN" -C "$CONNTRACKD_CONFIG" "$@"
	if [ $? -eq 1 ]; then
		logger "ERROR: failed to invoke conntrackd $*"
		return 1
	fi
	return 0
}

case "$1" in
primary)
	# Take over: put the peer's states (conntracks, then the
	# expectations that hang off them) into our kernel table, start
	# our caches afresh from it, and tell the new backup what we have.
	ctd -c
	ctd -f
	ctd -R
	ctd -B
	;;
backup)
	# Make sure a daemon runs (restart one that died, clearing its
	# stale lock), then age out what we committed as primary and ask
	# the new primary for its states.
	if ! "$CONNTRACKD_BIN" -C "$CONNTRACKD_CONFIG" -s >/dev/null 2>&1; then
		if [ -f "$CONNTRACKD_LOCK" ]; then
			logger "WARNING: conntrackd was not cleanly stopped."
			logger "If it crashed, enable core dumps and report the problem."
			rm -f "$CONNTRACKD_LOCK"
		fi
		if ! "$CONNTRACKD_BIN" -C "$CONNTRACKD_CONFIG" -d; then
			logger "ERROR: cannot launch conntrackd"
			exit 1
		fi
	fi
	ctd -t
	ctd -n
	;;
fault)
	ctd -t
	;;
*)
	logger "ERROR: unknown state transition"
	echo "Usage: primary-backup.sh {primary|backup|fault}"
	exit 1
	;;
esac
exit 0
