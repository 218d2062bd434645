#!/bin/sh
# di-probe (tests only): what cdebconf holds for the questions named on the command line, printed
# on the serial line as
#   DI-PROBE <stage> <question> registered=0|1 [seen=... len=N type=...] target=N
# `target`: how many preseed lines for the question d-i logged with an owner other than d-i;
# after base-installer, preseed's post-base-installer.d/05preseed feeds exactly those lines (the
# log minus `^d-i`) to the installed system's debconf-set-selections.
# Run by d-i's main-menu as the postinst of a udeb-less menu item (tests/qemu/diprobe.py), so
# it asks the installer's own cdebconf through its confmodule. Never prints a value: `len` is
# the answer's length (the questions may be passwords).
# shellcheck source=/dev/null
. /usr/share/debconf/confmodule
stage=$1
shift
LOG=/var/lib/preseed/log # preseed.sh's $logfile: d-i's debconf-set-selections appends each line
say() {
	for dev in /dev/ttyS0 /dev/console; do
		[ -c "$dev" ] && echo "DI-PROBE $stage $*" >"$dev" 2>/dev/null && break
	done
}
if db_get preseed/file; then
	say "preseed/file=${RET:-(unset)}"
fi
for q in "$@"; do
	target=0
	if [ -f "$LOG" ]; then
		target=$(grep -v "^d-i[[:space:]]" "$LOG" | grep -c "^[^[:space:]]*[[:space:]][[:space:]]*${q}[[:space:]]") || true
	fi
	if db_get "$q"; then
		len=${#RET}
		seen=unknown
		type=unknown
		if db_fget "$q" seen; then seen=$RET; fi
		if db_metaget "$q" Type; then type=$RET; fi
		say "$q registered=1 seen=$seen len=$len type=$type target=$target"
	else
		say "$q registered=0 target=$target"
	fi
done
say "end"
exit 0
