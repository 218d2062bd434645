# shellcheck shell=sh
# StackOps node agent: the plan (which steps, in which order) and the helpers the role step
# libraries share. A step is a function so_step_<name> run under `set -e` in a subshell, its
# output (with secrets replaced by *****) in /var/log/stackops/steps/<name>.log.

NOVA_CONF=/etc/nova/nova.conf

so_has_role() {
    case " $SO_ROLES " in *" $1 "*) return 0 ;; esac
    return 1
}

# The plan: one "role step" line per step, roles in canonical order. The node-wide nova.conf step
# comes first and belongs to the node's first role.
so_plan() {
    _first=""
    for _r in $SO_ROLES; do
        [ -n "$_first" ] || { _first=$_r; echo "$_r nova-conf"; }
        case $_r in
        controller) printf 'controller %s\n' mysql nova-db rabbitmq glance db-sync admin \
            network-create services ;;
        network) printf 'network %s\n' ip-forward flat-interface nova-network floating ;;
        volume) printf 'volume %s\n' iscsitarget volume-group nova-volume ;;
        compute) printf 'compute %s\n' libvirt nova-compute ;;
        esac
    done
}

# Write stdin to $1 when it differs, with mode $2 and group $3 (the group must exist).
so_install_file() {
    if [ -n "${3-}" ] && ! grep -q "^$3:" /etc/group; then
        so_fail "group $3 does not exist (is the package that owns $1 installed?)"
        return 1
    fi
    mkdir -p "${1%/*}"
    so_write_if_changed "$1" "$2" || return 1
    if [ -n "${3-}" ]; then chgrp "$3" "$1"; fi
}

# mysql as root; the password goes through a 0600 option file, the SQL through stdin.
so_mysql() {
    mkdir -p "$SO_STATE/run"
    chmod 0700 "$SO_STATE/run"
    _cnf="$SO_STATE/run/mysql-root.cnf"
    # shellcheck disable=SC2154 # answers
    _pw=$(printf '%s' "$mysql_root_password" | sed 's/[\\"]/\\&/g')
    (umask 077 && printf '[client]\nuser=root\npassword="%s"\n' "$_pw" >"$_cnf")
    _rc=0
    mysql --defaults-extra-file="$_cnf" "$@" || _rc=$?
    rm -f "$_cnf"
    return "$_rc"
}

# $1 as the inside of a MySQL '...' string literal.
so_sql_str() {
    printf '%s' "$1" | sed "s/[\\\\']/\\\\&/g"
}

so_nova_manage() {
    nova-manage --flagfile="$NOVA_CONF" "$@"
}

# Wait up to $2 seconds (default 60) for command $1... to succeed; "$@" after the first two.
so_wait_for() {
    _what=$1 _secs=$2
    shift 2
    _i=0
    until "$@"; do
        _i=$((_i + 1))
        if [ "$_i" -ge "$_secs" ]; then
            so_fail "$_what did not come up within $_secs s"
            return 1
        fi
        sleep 1
    done
}

# Node-wide: /etc/nova/nova.conf for all the node's roles (0640 root:nova).
so_step_nova_conf() {
    _conf=$(so_nova_conf) || return 1
    _bad=$(printf '%s\n' "$_conf" | so_unknown_flags)
    if [ -n "$_bad" ]; then
        so_fail "nova.conf would hold flags Nova 2011.2 does not define: $_bad"
        return 1
    fi
    printf '%s\n' "$_conf" | so_install_file "$NOVA_CONF" 0640 nova
    echo "wrote $NOVA_CONF ($(printf '%s\n' "$_conf" | wc -l) flags)"
}
