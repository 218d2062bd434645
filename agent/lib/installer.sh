# shellcheck shell=sh
# StackOps node agent: the Smart Installer. When the answers hold installer_url (a disc built
# with `distro-builder build --installer-url`), the agent runs the installer client
# (/usr/sbin/stackops-installer-client, from smart_installer/client/) before it looks at the roles: the client
# registers this node's inventory, waits (bounded) for the admin to assign its roles (and, for a
# multi-node controller, for the network node's address: the service holds the answers back with
# 409 state='waiting' and the client polls on) and merges its answers into
# /etc/stackops/answers. When the service cannot be reached, refuses the node or assigns nothing
# in time, the agent says so and goes on with the local answers (or the console selector when
# they name no role). It reports its STACKOPS lines to the service.
# POSIX sh (dash, bash 4.1). The client's bounds: STACKOPS_INSTALLER_CONNECT_TIMEOUT (120 s)
# and STACKOPS_INSTALLER_WAIT_TIMEOUT in the environment; the wait defaults to installer_wait
# (build --installer-wait), else 3600 s.

SO_CLIENT=${STACKOPS_INSTALLER_CLIENT:-/usr/sbin/stackops-installer-client}
# 'merged' once the service's answers are in the answers file (then it is not asked again).
SO_INSTALLER_DONE=$SO_STATE/installer.merged
# The client's registration (node id and token), written by the client.
SO_INSTALLER_NODE=${STACKOPS_INSTALLER_STATE:-$SO_STATE/installer}/node
SO_REPORT=""
SO_REPORT_FAILS=0

# Has any configuration step completed? Then the roles are settled: the service is not asked.
so_steps_started() {
    for _f in "$SO_STEPS"/*.done; do
        [ -e "$_f" ] && return 0
    done
    return 1
}

# Contact the Smart Installer when installer_url is set; reload the answers it merged.
so_installer() {
    _url=$(so_get installer_url)
    [ -n "$_url" ] || return 0
    if [ -f "$SO_INSTALLER_DONE" ] || so_steps_started; then
        so_log "Smart Installer $_url: asked in an earlier run"
        [ -f "$SO_INSTALLER_NODE" ] && SO_REPORT=1
        return 0
    fi
    so_say "STACKOPS-INSTALLER contacting $_url"
    {
        "$SO_CLIENT" --answers "$SO_ANSWERS" run </dev/null
        echo "$?" >"$SO_STATE/installer.rc"
    } 2>&1 | so_redact | while IFS= read -r _line; do
        so_say "$_line"
    done
    _rc=$(cat "$SO_STATE/installer.rc" 2>/dev/null || echo 1)
    rm -f "$SO_STATE/installer.rc"
    if [ "$_rc" = 0 ]; then
        date +%s | so_write "$SO_INSTALLER_DONE" 0644
        SO_REPORT=1
        so_answers_load || return 1
        so_log "Smart Installer $_url: answers merged (roles $(so_get roles))"
        return 0
    fi
    case $_rc in
    3) _why="Smart Installer unreachable" ;;
    4) _why="Smart Installer refused this node" ;;
    5) _why="Smart Installer gave no roles or answers in time" ;;
    *) _why="Smart Installer client failed (exit $_rc)" ;;
    esac
    # A registered node (exit 5) still shows its progress to the admin.
    [ -f "$SO_INSTALLER_NODE" ] && [ "$_rc" != 4 ] && SO_REPORT=1
    if [ -n "$(so_get roles)" ]; then
        so_say "$_why: using the local answers"
    else
        so_say "$_why: using the local answers and the console selector"
    fi
    return 0
}

# Send progress line $1 to the Smart Installer (when this node is registered with one). A
# failure is logged, never fatal; after three in a row the agent stops trying.
so_report() {
    [ -n "$SO_REPORT" ] || return 0
    if "$SO_CLIENT" --answers "$SO_ANSWERS" report "$1" </dev/null 2>>"$SO_LOG"; then
        SO_REPORT_FAILS=0
        return 0
    fi
    SO_REPORT_FAILS=$((SO_REPORT_FAILS + 1))
    if [ "$SO_REPORT_FAILS" -ge 3 ]; then
        so_log "warning: the Smart Installer took no progress 3 times in a row: reporting stops"
        SO_REPORT=""
    fi
    return 0
}

# A progress line on the console, in agent.log and to the Smart Installer.
so_progress() {
    so_say "$1"
    so_report "$1"
}

# The failure (line $1: STACKOPS-FIRSTBOOT failed ...) on the console and in agent.log; to the
# Smart Installer with the tail of the failing step's log $2 (its last SO_TAIL_LINES lines, at
# most SO_TAIL_BYTES bytes, secrets replaced by ***** again, one STACKOPS-LOG line each, cut to
# the service's 400 printable characters), in one report so the node detail shows them.
SO_TAIL_LINES=64
SO_TAIL_BYTES=8192
so_report_failure() {
    so_say "$1"
    [ -n "$SO_REPORT" ] || return 0
    _out="$SO_STATE/failure.report"
    {
        if [ -f "$2" ]; then
            tail -n "$SO_TAIL_LINES" "$2" | tail -c "$SO_TAIL_BYTES" | so_redact |
                tr '\t' ' ' | tr -cd '[:print:]\n' | cut -c1-387 | sed 's/^/STACKOPS-LOG /'
        fi
        printf '%s\n' "$1"
    } >"$_out"
    if "$SO_CLIENT" --answers "$SO_ANSWERS" report - <"$_out" 2>>"$SO_LOG"; then
        so_log "failure reported to the Smart Installer with the tail of $2"
    else
        so_log "warning: the Smart Installer did not take the failure report"
    fi
    rm -f "$_out"
}

# After a failure, a node registered with a Smart Installer waits in the background (the boot
# goes on: tty1's getty is not held) for the admin's retry, polling the service up to
# STACKOPS_RETRY_WAIT seconds (default a day); asked, the agent runs again ($SO_SELF with its
# arguments) and resumes at the failed step (the done markers). Without a service: nothing.
# The waiter outlives the boot job: upstart 0.6.5 kills a job's processes only while its main
# process still runs (init/job.c:417-425, JOB_KILLED: job_process_kill when pid[PROCESS_MAIN] > 0;
# upstream 0.6.5, read in ubports/upstart c15085ad); a task whose main process exited is done.
so_await_retry() {
    [ -n "$SO_REPORT" ] || return 0
    _wait=${STACKOPS_RETRY_WAIT:-86400}
    so_say "STACKOPS-INSTALLER waiting up to ${_wait}s for a retry from the Smart Installer"
    (
        trap - EXIT
        rm -f "$SO_RUN"
        if "$SO_CLIENT" --answers "$SO_ANSWERS" --wait-timeout "$_wait" retry-wait \
            </dev/null >>"$SO_LOG" 2>&1; then
            so_log "the Smart Installer asked for a retry: running again"
            exec "$SO_SELF" "$@"
        fi
        so_log "no retry asked within ${_wait}s"
    ) &
}

# nova.zip (the controller's admin step makes it) to the Smart Installer, once, over the node
# token: the admin downloads it there. Not fatal when it is not taken (the file stays).
SO_CREDENTIALS=${STACKOPS_CREDENTIALS:-/root/creds/nova.zip}
so_send_credentials() {
    [ -n "$SO_REPORT" ] && [ -s "$SO_CREDENTIALS" ] || return 0
    [ -f "$SO_STATE/credentials.sent" ] && return 0
    if "$SO_CLIENT" --answers "$SO_ANSWERS" credentials "$SO_CREDENTIALS" </dev/null 2>>"$SO_LOG"
    then
        date +%s | so_write "$SO_STATE/credentials.sent" 0644
        so_say "STACKOPS-INSTALLER credentials sent ($SO_CREDENTIALS)"
    else
        so_log "warning: the Smart Installer did not take $SO_CREDENTIALS"
    fi
    return 0
}
