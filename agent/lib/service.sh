# shellcheck shell=sh
# StackOps node agent: enabling and restarting services under upstart 0.6.5 (lucid), sysv
# init scripts, or systemd (newer bases). Upstart 0.6.5 has no .override and no `manual`: a job
# is disabled by renaming its .conf (StackOps shipped nova jobs as .conf.disabled).

# upstart | systemd | none: the init system this node boots with.
so_init_system() {
    if [ -d /etc/init ] && command -v initctl >/dev/null 2>&1; then
        echo upstart
    elif command -v systemctl >/dev/null 2>&1; then
        echo systemd
    else
        echo none
    fi
}

# How service $1 is managed here: upstart | sysv | systemd; fails when it is not installed.
so_service_kind() {
    if [ "$(so_init_system)" = upstart ] &&
        { [ -f "/etc/init/$1.conf" ] || [ -f "/etc/init/$1.conf.disabled" ]; }; then
        echo upstart
    elif [ "$(so_init_system)" = systemd ] &&
        { [ -f "/lib/systemd/system/$1.service" ] || [ -f "/etc/systemd/system/$1.service" ]; }; then
        echo systemd
    elif [ -x "/etc/init.d/$1" ]; then
        echo sysv
    else
        so_fail "service $1 is not installed (no upstart job, systemd unit or init script)"
    fi
}

# Make service $1 start at boot.
so_service_enable() {
    _kind=$(so_service_kind "$1") || return 1
    case $_kind in
    upstart)
        if [ -f "/etc/init/$1.conf.disabled" ] && [ ! -f "/etc/init/$1.conf" ]; then
            echo "enable $1: /etc/init/$1.conf.disabled -> $1.conf"
            mv "/etc/init/$1.conf.disabled" "/etc/init/$1.conf"
        fi
        ;;
    sysv) update-rc.d "$1" defaults ;;
    systemd) systemctl enable "$1.service" ;;
    esac
}

# (Re)start service $1 so it reads its new configuration.
so_service_restart() {
    _kind=$(so_service_kind "$1") || return 1
    echo "restart $1 ($_kind)"
    case $_kind in
    upstart)
        # restart fails on a stopped job: stop (may fail) then start (must work).
        initctl stop "$1" || true
        initctl start "$1"
        ;;
    sysv) service "$1" restart ;;
    systemd) systemctl restart "$1.service" ;;
    esac
}

so_service_stop() {
    _kind=$(so_service_kind "$1") || return 1
    case $_kind in
    upstart) initctl stop "$1" || true ;;
    sysv) service "$1" stop || true ;;
    systemd) systemctl stop "$1.service" || true ;;
    esac
}

so_service_start() {
    _kind=$(so_service_kind "$1") || return 1
    case $_kind in
    upstart) initctl start "$1" ;;
    sysv) service "$1" start ;;
    systemd) systemctl start "$1.service" ;;
    esac
}

# Enable then restart each service named; a few seconds later each must still run (upstart's
# `initctl start` succeeds even when the daemon dies at once). STACKOPS_SETTLE: the seconds to
# wait (default 3).
so_services_up() {
    for _svc in "$@"; do
        so_service_enable "$_svc" || return 1
        so_service_restart "$_svc" || return 1
    done
    sleep "${STACKOPS_SETTLE:-3}"
    for _svc in "$@"; do
        so_service_running "$_svc" || return 1
    done
}

# Does service $1 run? upstart: `initctl status` says start/running; systemd: is-active. A sysv
# script's `status` is not reliable on lucid (some scripts have none): not checked.
so_service_running() {
    _kind=$(so_service_kind "$1") || return 1
    case $_kind in
    upstart)
        initctl status "$1" 2>/dev/null | grep -q 'start/running' ||
            { so_fail "$1 is not running a few seconds after its start (initctl status $1)"; return 1; }
        ;;
    systemd)
        systemctl is-active --quiet "$1.service" ||
            { so_fail "$1 is not running a few seconds after its start (systemctl status $1)"; return 1; }
        ;;
    esac
    echo "$1 is running"
}

# The agent's own job: disabled after a successful run so it does not run on the next boot.
so_job_disable() {
    if [ -f "$SO_JOB" ]; then
        mv -f "$SO_JOB" "$SO_JOB.disabled"
        so_log "disabled the upstart job: $SO_JOB -> $SO_JOB.disabled"
    fi
    for _wants in /etc/systemd/system/*.wants/"$SO_UNIT"; do
        [ -e "$_wants" ] || [ -L "$_wants" ] || continue
        systemctl disable "$SO_UNIT" >/dev/null 2>&1 || true
        rm -f "$_wants"
        so_log "disabled the systemd unit $SO_UNIT"
    done
}

# The services of the roles this node does not have (a "choose roles later" node has every
# role's packages, whose jobs start at boot): stopped and kept from starting at the next boot,
# or each would be one more nova-network / nova-compute / nova-volume on the shared nova.conf
# (any nova-network may become a network's host: nova/network/manager.py:273-291; the
# ChanceScheduler places instances on every nova-compute). Upstart 0.6.5: the job file is
# renamed (no .override, no `manual`); sysv: its rc links go; systemd: disabled.
so_disable_unchosen_services() {
    _keep=""
    for _r in $SO_ROLES; do
        _keep="$_keep $(so_role_services "$_r")"
    done
    for _r in $SO_ROLES_ALL; do
        case " $SO_ROLES " in *" $_r "*) continue ;; esac
        for _s in $(so_role_services "$_r"); do
            case " $_keep " in *" $_s "*) continue ;; esac
            if [ -f "/etc/init/$_s.conf" ] && [ "$(so_init_system)" = upstart ]; then
                initctl stop "$_s" >/dev/null 2>&1 || true
                mv -f "/etc/init/$_s.conf" "/etc/init/$_s.conf.disabled"
                so_log "role $_r not chosen: disabled the upstart job $_s"
            elif [ -e "/etc/systemd/system/multi-user.target.wants/$_s.service" ]; then
                systemctl stop "$_s.service" >/dev/null 2>&1 || true
                systemctl disable "$_s.service" >/dev/null 2>&1 || true
                so_log "role $_r not chosen: disabled the systemd unit $_s"
            elif [ -x "/etc/init.d/$_s" ] && ls /etc/rc2.d/S??"$_s" >/dev/null 2>&1; then
                service "$_s" stop >/dev/null 2>&1 || true
                update-rc.d -f "$_s" remove >/dev/null 2>&1 || true
                so_log "role $_r not chosen: removed the init script links of $_s"
            fi
        done
    done
}

# The services of role $1 (the roles table's fifth column).
so_role_services() {
    awk -F'|' -v r="$1" '!/^#/ && $1 == r { print $5 }' "$SO_ROLES_TABLE"
}
