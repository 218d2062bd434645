# shellcheck shell=sh
# shellcheck disable=SC2034 # the constants are used by the other libraries
# StackOps node agent: paths, logging, the secret filter, state markers and atomic writes.
# Sourced by /usr/sbin/stackops-agent. POSIX sh: runs under dash and bash 4.1 (lucid).

SO_ANSWERS=/etc/stackops/answers
SO_STATE=/var/lib/stackops
SO_STEPS=$SO_STATE/steps
SO_STATUS=$SO_STATE/status
SO_LOGDIR=/var/log/stackops
SO_LOG=$SO_LOGDIR/agent.log
SO_RUN=/var/run/stackops-agent.pid
SO_JOB=/etc/init/stackops-agent.conf
SO_UNIT=stackops-agent.service
# The roles this agent knows: /usr/share/stackops/roles, generated from roles/*/role.yaml at build
# time. One line per role, in order: name|kind (node or shared)|shared roles it includes|steps|
# services|description.
SO_ROLES_TABLE=$SO_LIB/roles.table
SO_ROLES_ALL=$(awk -F'|' '!/^#/ && $2 == "node" { s = s (s == "" ? "" : " ") $1 } END { print s }' \
    "$SO_ROLES_TABLE" 2>/dev/null)
SO_SECRET_KEYS="mysql_root_password nova_db_password rabbit_password admin_password installer_token"
SO_INSTALLER_KEYS="installer_url installer_token installer_fingerprint installer_wait"

# Milliseconds since the epoch (GNU date: %N).
so_ms() {
    _ns=$(date +%s%N)
    printf '%s\n' "${_ns%??????}"
}

# Seconds with one decimal between two so_ms values: "4.2".
so_elapsed() {
    _d=$(($2 - $1))
    [ "$_d" -ge 0 ] || _d=0
    printf '%s.%s\n' "$((_d / 1000))" "$((_d % 1000 / 100))"
}

# A line in agent.log, with a timestamp. Never pass a secret: callers only log names.
so_log() {
    printf '%s %s\n' "$(date '+%Y-%m-%d %H:%M:%S')" "$*" >>"$SO_LOG"
}

# A line on the console (stdout) and in agent.log.
so_say() {
    printf '%s\n' "$*"
    so_log "$*"
}

# A line on the console (fd 3, the agent's stdout, kept open for the steps, whose own output goes
# to their log) and in agent.log.
so_console() {
    { printf '%s\n' "$*" >&3; } 2>/dev/null || printf '%s\n' "$*"
    so_log "$*"
}

# A line on stderr and in agent.log.
so_warn() {
    printf 'stackops-agent: %s\n' "$*" >&2
    so_log "warning: $*"
}

# Copy stdin to stdout with every secret answer (and its URL-encoded form) replaced by *****.
# The secrets reach awk through its environment, never through argv.
so_redact() {
    # shellcheck disable=SC2154 # set by so_answers_load
    SO_R1=${mysql_root_password-} SO_R2=${nova_db_password-} SO_R3=${rabbit_password-} \
        SO_R4=${admin_password-} SO_R5=${installer_token-} \
        awk -f "$SO_LIB/lib/urlencode.awk" -f "$SO_LIB/lib/redact.awk"
}

# Write stdin to $1 atomically (temp file in the same directory, then rename), mode $2.
so_write() {
    _dst=$1
    _tmp="$1.stackops-new"
    (umask 077 && cat >"$_tmp") || return 1
    chmod "$2" "$_tmp" && mv -f "$_tmp" "$_dst"
}

# Like so_write, but leaves $1 untouched (same content, same mtime) when nothing changes.
so_write_if_changed() {
    _dst=$1
    _tmp="$1.stackops-new"
    (umask 077 && cat >"$_tmp") || return 1
    if [ -f "$_dst" ] && cmp -s "$_tmp" "$_dst"; then
        rm -f "$_tmp"
        chmod "$2" "$_dst"
        return 0
    fi
    chmod "$2" "$_tmp" && mv -f "$_tmp" "$_dst"
}

# Status file: one key='value' per line, rewritten atomically and only when it changes.
# so_status STATE [KEY=VALUE ...]
so_status() {
    {
        printf "state='%s'\n" "$1"
        shift
        printf "roles='%s'\n" "$SO_ROLES_CSV"
        for _kv in "$@"; do
            printf "%s='%s'\n" "${_kv%%=*}" "${_kv#*=}"
        done
        if [ -n "${SO_PLAN-}" ]; then
            printf '%s\n' "$SO_PLAN" | while read -r _r _o _n; do
                [ -n "$_n" ] || continue
                if [ -f "$SO_STEPS/$_n.done" ]; then _s="done"; else _s=pending; fi
                printf "step_%s='%s'\n" "$(printf '%s' "$_n" | tr - _)" "$_s"
            done
        fi
    } | so_write_if_changed "$SO_STATUS" 0644
}

# Run "$@" once per step: a sub-marker under steps/<step>.d/ records that it succeeded, so a
# step that failed half-way does not redo the parts that already worked.
# so_once KEY COMMAND [ARG...]
so_once() {
    _key=$1
    shift
    _dir="$SO_STEPS/$SO_CUR.d"
    [ -f "$_dir/$_key" ] && { echo "already done: $_key"; return 0; }
    "$@" || return 1
    mkdir -p "$_dir"
    date +%s >"$_dir/$_key"
}

# Fail the current step with a message (goes to the step log).
so_fail() {
    echo "error: $*" >&2
    return 1
}
