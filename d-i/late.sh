#!/bin/sh
# StackOps: preseed/late_command (d-i, busybox ash, cdebconf). Runs in the installer environment,
# not in-target, so debconf questions reach the installer's frontend (reference/lucid-and-nova.md
# §2.4). For the roles on the kernel command line (stackops/roles=...) it asks every question
# that has no answer yet at critical priority, checks each answer and asks again on a bad one,
# then writes /target/etc/stackops/answers (0600, key='value' lines, POSIX single quotes) and
# checks that the node agent is installed. Answers come, in this order, from the kernel command
# line (stackops/<key>=value), the preseed (stackops/<key>, e.g. from a deployment file), the
# question's fallback (d-i's own answer, e.g. netcfg/get_hostname), then the person installing.
# Secrets never reach the console or the log.
DIR=${STACKOPS_DIR:-$(dirname "$0")}
TARGET=${STACKOPS_TARGET:-/target}
CMDLINE=${STACKOPS_CMDLINE:-/proc/cmdline}
CONSOLE=${STACKOPS_CONSOLE:-/dev/console}
QUESTIONS=$DIR/questions
TEMPLATES=$DIR/stackops.templates
ANSWERS=$TARGET/etc/stackops/answers
NL='
'
set -f # no globbing: command-line words and answers are data

# A line for the installer's log (stderr, which d-i's log-output keeps, and syslog). Only the
# STACKOPS-LATE markers also go to the console, for QA: anything else written there would be
# drawn over the installer's newt screen.
say() {
	echo "$*" >&2
	case "$*" in STACKOPS-*) [ -c "$CONSOLE" ] && echo "$*" >"$CONSOLE" 2>/dev/null ;; esac
	logger -t stackops "$*" 2>/dev/null
	return 0
}

# The value of <name>=... (no stackops/ prefix) on the kernel command line; status 1 when absent.
cmdline_value_raw() {
	# shellcheck disable=SC2013 # words, not lines
	for word in $(cat "$CMDLINE" 2>/dev/null); do
		case "$word" in
		"$1="*)
			echo "${word#"$1"=}"
			return 0
			;;
		esac
	done
	return 1
}

# The value of stackops/<key>=... on the kernel command line; status 1 when absent.
cmdline_value() {
	cmdline_value_raw "stackops/$1"
}

# The value of `d-i stackops/<key> <type> <value>` in the entry's preseed file; status 1 if none.
seed_value() {
	seed=$(cmdline_value_raw file) || return 1
	[ -r "$seed" ] || return 1
	line=$(grep "^[^#]*[[:space:]]stackops/$1[[:space:]]" "$seed" | tail -n 1)
	[ -n "$line" ] || return 1
	# owner, question and type are single words; the rest of the line is the value.
	echo "$line" | sed 's/^[[:space:]]*[^[:space:]]*[[:space:]]*[^[:space:]]*[[:space:]]*[^[:space:]]*[[:space:]]\{0,1\}//'
}

has_any_role() { # has_any_role "a,b" -> one of them is a role of this node
	old_ifs=$IFS
	IFS=,
	for r in $1; do
		case ",$roles," in *",$r,"*)
			IFS=$old_ifs
			return 0
			;;
		esac
	done
	IFS=$old_ifs
	return 1
}

has_all_roles() { # has_all_roles "a,b" -> this node has every one of them
	old_ifs=$IFS
	IFS=,
	for r in $1; do
		case ",$roles," in *",$r,"*) ;; *)
			IFS=$old_ifs
			return 1
			;;
		esac
	done
	IFS=$old_ifs
	return 0
}

# shellcheck source=/dev/null # questions/validate.sh, shipped beside this script
. "$DIR/validate.sh"

# Why $2 is not a valid answer to the current question (type $1; constraints from its line of
# the questions table): nothing when it is valid. questions/validate.sh, shared with the agent.
why_invalid() {
	so_why_invalid "$1" "$2" "$min" "$max" "$choices" "$optional"
}

# Ask stackops/$1 (type $2) at critical priority until the answer is valid; sets ANSWER.
ask() {
	key=$1
	type=$2
	tries=0
	while :; do
		tries=$((tries + 1))
		if [ $tries -gt 30 ]; then
			say "STACKOPS-LATE failed: no valid answer for $key after 30 tries"
			exit 1
		fi
		if [ "$type" = password ]; then
			db_set "stackops/$key" ""
			[ -n "$5" ] && db_set "stackops/${key}_again" ""
		fi
		db_fset "stackops/$key" seen false
		db_input critical "stackops/$key" || true
		if [ -n "$5" ]; then
			db_fset "stackops/${key}_again" seen false
			db_input critical "stackops/${key}_again" || true
		fi
		db_go || true
		db_get "stackops/$key"
		ANSWER=$RET
		if [ -n "$5" ]; then
			db_get "stackops/${key}_again"
			if [ "$RET" != "$ANSWER" ]; then
				say "stackops: $key: the two passwords differ, asking again"
				db_subst stackops/mismatch question "$key"
				db_fset stackops/mismatch seen false
				db_input critical stackops/mismatch || true
				db_go || true
				continue
			fi
		fi
		reason=$(why_invalid "$type" "$ANSWER")
		[ -z "$reason" ] && return 0
		if [ "$type" = password ]; then
			say "stackops: $key: $reason, asking again"
		else
			say "stackops: $key: '$ANSWER' is invalid ($reason), asking again"
		fi
		db_subst stackops/invalid question "$key"
		db_subst stackops/invalid reason "$reason"
		db_fset stackops/invalid seen false
		db_input critical stackops/invalid || true
		db_go || true
	done
}

# A value from the command line, the preseed or the fallback, if it is valid; sets ANSWER.
known_answer() {
	key=$1
	type=$2
	if ANSWER=$(cmdline_value "$key"); then
		reason=$(why_invalid "$type" "$ANSWER")
		[ -z "$reason" ] && return 0
		say "stackops: $key on the kernel command line is invalid ($reason), asking"
	fi
	db_fget "stackops/$key" seen
	if [ "$RET" = true ]; then
		db_get "stackops/$key"
		ANSWER=$RET
		reason=$(why_invalid "$type" "$ANSWER")
		[ -z "$reason" ] && return 0
		say "stackops: preseeded $key is invalid ($reason), asking"
	fi
	# The entry's preseed file itself (file= on the command line), in case d-i dropped the
	# answer because our templates were not loaded yet when the preseed was read.
	if ANSWER=$(seed_value "$key"); then
		reason=$(why_invalid "$type" "$ANSWER")
		[ -z "$reason" ] && return 0
		say "stackops: $key in the preseed file is invalid ($reason), asking"
	fi
	if [ -n "$6" ] && db_get "$6" 2>/dev/null && [ -n "$RET" ]; then
		ANSWER=$RET
		[ -z "$(why_invalid "$type" "$ANSWER")" ] && return 0
	fi
	return 1
}

quote() { # POSIX single quotes: ' becomes '\''
	printf "%s" "$1" | sed "s/'/'\\\\''/g"
}

write_answer() {
	printf "%s='%s'\n" "$1" "$(quote "$2")" >>"$ANSWERS.tmp"
}

if ! roles=$(cmdline_value roles); then
	say "stackops: not a StackOps boot entry (no stackops/roles= on the command line)"
	exit 0
fi
say "stackops: roles=${roles:-(chosen on first boot)}"
# required: a whole cloud on one node asks only what has no default (the preseed says so)
ask_mode=$(cmdline_value ask || seed_value ask || true)

# shellcheck source=/dev/null
. /usr/share/debconf/confmodule
if ! debconf-loadtemplate stackops "$TEMPLATES"; then
	say "STACKOPS-LATE failed: cannot load $TEMPLATES"
	exit 1
fi
db_settitle stackops/title || true

umask 077
mkdir -p "$TARGET/etc/stackops"
: >"$ANSWERS.tmp"
chmod 600 "$ANSWERS.tmp"
{
	echo "# StackOps node answers, written by the installer (preseed/late_command)."
	echo "# Read with: . /etc/stackops/answers"
} >>"$ANSWERS.tmp"
write_answer roles "$roles"

lines=$(grep -v '^#' "$QUESTIONS")
old_ifs=$IFS
IFS=$NL
for line in $lines; do
	IFS='|'
	# shellcheck disable=SC2086 # split on the bars
	set -- $line
	IFS=$old_ifs # the word list of the loop is already split
	key=$1 type=$2 asked_by=$3 skip_with=$4 min=$5 max=$6 confirm=$7 fallback=$8
	optional=$9 choices=${10} default=${12} made=${14}
	[ -n "$key" ] || continue
	if [ -z "$roles" ]; then
		# Roles chosen on first boot: keep whatever was given, ask nothing.
		if known_answer "$key" "$type" "$min" "$max" "$confirm" "$fallback"; then
			write_answer "$key" "$ANSWER"
		fi
		continue
	fi
	has_any_role "$asked_by" || continue
	[ -n "$skip_with" ] && has_any_role "$skip_with" && continue
	if known_answer "$key" "$type" "$min" "$max" "$confirm" "$fallback"; then
		:
	elif [ -n "$made" ] && has_all_roles "$asked_by"; then
		# no other node needs it: the node agent makes it on first boot (generate | find)
		say "stackops: $key is made on the node ($made)"
		continue
	elif [ "$ask_mode" = required ] && { [ -n "$default" ] || [ -n "$optional" ]; }; then
		say "stackops: $key takes its default on the node"
		continue
	else
		ask "$key" "$type" "$min" "$max" "$confirm"
	fi
	write_answer "$key" "$ANSWER"
	if [ "$type" = password ]; then
		say "stackops: $key set"
	else
		say "stackops: $key=$ANSWER"
	fi
done
IFS=$old_ifs

# The Smart Installer (build --installer-url): not questions, handed to the node agent as they
# are. The token is a secret: only the URL reaches the console.
for key in installer_url installer_token installer_fingerprint installer_wait; do
	ANSWER=
	if ! ANSWER=$(cmdline_value "$key"); then
		db_get "stackops/$key" 2>/dev/null && ANSWER=$RET
		[ -n "$ANSWER" ] || ANSWER=$(seed_value "$key") || ANSWER=
	fi
	if [ -n "$ANSWER" ]; then
		write_answer "$key" "$ANSWER"
		[ "$key" = installer_url ] && say "stackops: Smart Installer $ANSWER"
	fi
done
mv "$ANSWERS.tmp" "$ANSWERS"
chmod 600 "$ANSWERS"
say "stackops: wrote $ANSWERS"

# The node agent arrives through the role metapackage's Depends.
if [ ! -e "$TARGET/var/lib/dpkg/info/stackops-agent.list" ] && command -v apt-install >/dev/null; then
	apt-install stackops-agent || true
fi
if [ -e "$TARGET/var/lib/dpkg/info/stackops-agent.list" ]; then
	say "stackops: stackops-agent is installed"
else
	say "stackops: WARNING: stackops-agent is not installed; the node will not configure itself"
fi
say "STACKOPS-LATE done"
exit 0
