# shellcheck shell=sh
# StackOps node agent: the plan (which steps, in which order) and the helpers the role step
# libraries share. A step is a function so_step_<name> run under `set -e` in a subshell, its
# output (with secrets replaced by *****) in /var/log/stackops/steps/<name>.log.

NOVA_CONF=/etc/nova/nova.conf

so_has_role() {
    case " $SO_ROLES " in *" $1 "*) return 0 ;; esac
    return 1
}

# Field $2 (1-based) of role $1's line in the roles table.
so_role_field() {
    awk -F'|' -v r="$1" -v f="$2" '!/^#/ && $1 == r { print $f; exit }' "$SO_ROLES_TABLE"
}

# The shared roles (roles/base, ...) the node's roles include, in the order first named.
so_shared_roles() {
    _shared=""
    for _r in $SO_ROLES; do
        for _s in $(so_role_field "$_r" 3); do
            case " $_shared " in *" $_s "*) ;; *) _shared="$_shared $_s" ;; esac
        done
    done
    printf '%s\n' "${_shared# }"
}

# Every role of the node has its packages: the role metapackage stackops-<role> is installed
# (the installer installs the chosen roles' ones, or every role's for "choose roles later").
so_roles_installed() {
    for _r in $SO_ROLES; do
        _st=$(dpkg-query -W -f='${Status}' "stackops-$_r" 2>/dev/null) || _st=""
        if [ "$_st" != "install ok installed" ]; then
            so_say "STACKOPS error: role $_r needs its packages, and stackops-$_r is not installed \
(install it: apt-get install stackops-$_r, from the StackOps disc's extras)"
            return 1
        fi
    done
}

# The plan: one "role owner step" line per step. The shared roles' steps come first and are shown
# under the node's first role; then each role's own steps, roles in table order. `owner` is the
# role folder the step comes from (/usr/share/stackops/roles/<owner>).
so_plan() {
    _first=${SO_ROLES%% *}
    for _s in $(so_shared_roles); do
        for _step in $(so_role_field "$_s" 4); do
            echo "$_first $_s $_step"
        done
    done
    for _r in $SO_ROLES; do
        for _step in $(so_role_field "$_r" 4); do
            echo "$_r $_r $_step"
        done
    done
    # Then the roles' final steps (role.yaml final_steps: the controller's health check), after
    # every role of the node is up.
    for _r in $SO_ROLES; do
        for _step in $(so_role_field "$_r" 7); do
            echo "$_r $_r $_step"
        done
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

# Wait up to $2 seconds for command $3... to succeed (by the clock: one try may take long).
so_wait_for() {
    _what=$1 _secs=$2
    shift 2
    _end=$(($(date +%s) + _secs))
    until "$@"; do
        if [ "$(date +%s)" -ge "$_end" ]; then
            so_fail "$_what did not come up within $_secs s"
            return 1
        fi
        sleep 1
    done
}
