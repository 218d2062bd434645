#!/bin/sh
# StackOps: preseed/early_command (d-i, busybox ash). Runs as soon as the initrd's preseed.cfg is
# read. On a StackOps boot entry (stackops/roles=... on the kernel command line) it prints the QA
# marker `STACKOPS-PRESEED roles=<roles>` on the console and the serial line; on any other entry
# it prints nothing.
CMDLINE=${STACKOPS_CMDLINE:-/proc/cmdline}
set -f # command-line words are data

roles=
found=
# shellcheck disable=SC2013 # words, not lines
for word in $(cat "$CMDLINE" 2>/dev/null); do
	case "$word" in
	stackops/roles=*)
		roles=${word#stackops/roles=}
		found=1
		;;
	esac
done
[ -n "$found" ] || exit 0

marker="STACKOPS-PRESEED roles=$roles"
echo "$marker"
for dev in /dev/console /dev/ttyS0; do
	[ -c "$dev" ] && echo "$marker" >"$dev" 2>/dev/null
done
logger -t stackops "$marker" 2>/dev/null
exit 0
