# shellcheck shell=sh
# StackOps node agent: the node-wide steps every role shares (roles/base/role.yaml `steps`).
# shellcheck disable=SC2154 # answers (so_answers_load) and _q_* (so_question) are set elsewhere

# /etc/nova/nova.conf for all the node's roles (0640 root:nova).
so_step_nova_conf() {
    # --my_ip is this address: never write nova.conf without it (issue 22 item 5)
    if ! so_own_address_wait >/dev/null; then
        so_fail "no IPv4 address on ${public_interface:-eth0} within ${STACKOPS_ADDRESS_WAIT:-120} s \
(DHCP?); run stackops-agent again once the interface has one"
        return 1
    fi
    so_apply_hostname
    _conf=$(so_nova_conf) || return 1
    _bad=$(printf '%s\n' "$_conf" | so_unknown_flags)
    if [ -n "$_bad" ]; then
        so_fail "nova.conf would hold flags Nova 2011.2 does not define: $_bad"
        return 1
    fi
    printf '%s\n' "$_conf" | so_install_file "$NOVA_CONF" 0640 nova
    echo "wrote $NOVA_CONF ($(printf '%s\n' "$_conf" | wc -l) flags)"
}

# nova.conf's --my_ip: this node's address on public_interface (Nova's default is the address of
# the default route, or 127.0.0.1: docs/nova-2011.2-facts.md §5). Empty when it has none yet.
SO_COMPUTED="$SO_COMPUTED my_ip"
so_value_my_ip() {
    so_own_address
}

# Every node but the controller waits, bounded and resumable (a step), until the controller's
# RabbitMQ answers on controller_address:5672 and its database holds the schema and the fixed
# network (`nova-manage network list`, after the controller's db-sync and network-create steps):
# before that, `floating create` and the services fail. STACKOPS_CONTROLLER_WAIT: the bound in
# seconds (default 1800). On the controller (a role that answers controller_address itself: its
# skip_with) there is nothing to wait for.
so_step_controller_ready() {
    so_question controller_address
    for _r in $SO_ROLES; do
        case ",$_q_skip," in *",$_r,"*)
            echo "this node is the controller: nothing to wait for"
            return 0
            ;;
        esac
    done
    _limit=${STACKOPS_CONTROLLER_WAIT:-1800}
    _t0=$(date +%s)
    _next=0
    until so_controller_up; do
        _waited=$(($(date +%s) - _t0))
        if [ "$_waited" -ge "$_limit" ]; then
            so_fail "the controller at $controller_address was not ready within $_limit s \
(RabbitMQ on port 5672, nova's schema and network); run stackops-agent again once it is"
            return 1
        fi
        if [ "$_waited" -ge "$_next" ]; then
            so_console "STACKOPS waiting for the controller at $controller_address (${_waited}s of ${_limit}s)"
            _next=$((_next + 30))
        fi
        sleep "${STACKOPS_POLL:-5}"
    done
    echo "the controller at $controller_address is ready"
}

# Ready = RabbitMQ's port answers, `nova-manage network list` exits 0 and lists a network row (a
# CIDR first). 2011.2 prints the header before it queries the database (bin/nova-manage:548-558)
# and on an error prints "Command failed, please check log for more info" and re-raises, exit 1
# (bin/nova-manage:1111-1119): the header alone, or the header and that line, is not ready.
so_controller_up() {
    socat -u /dev/null "TCP:$controller_address:5672,connect-timeout=3" >/dev/null 2>&1 ||
        return 1
    _nets=$(so_nova_manage network list 2>/dev/null) || return 1
    printf '%s\n' "$_nets" | grep -q '^[0-9][0-9.]*/[0-9]'
}

# The answered host name, applied (issue 22 item 13): d-i set netcfg's, and an answer from the
# Smart Installer or the console may differ. Nova's services take --host from gethostname()
# (nova/flags.py:358), so this comes before any of them starts. lucid names the host in
# /etc/hostname and on the 127.0.1.1 line of /etc/hosts.
so_apply_hostname() {
    [ -n "${hostname-}" ] || return 0
    [ "$(uname -n)" != "$hostname" ] || return 0
    printf '%s\n' "$hostname" | so_write_if_changed /etc/hostname 0644
    if grep -q '^127\.0\.1\.1[[:space:]]' /etc/hosts 2>/dev/null; then
        sed -i "s/^127\.0\.1\.1[[:space:]].*/127.0.1.1\t$hostname/" /etc/hosts
    else
        printf '127.0.1.1\t%s\n' "$hostname" >>/etc/hosts
    fi
    hostname "$hostname"
    echo "host name: $hostname"
}

# so_ip_add ADDRESS N: the address N further on (the roles' computed flags: a range's gateway,
# its first lease).
so_ip_add() {
    printf '%s\n' "$1" | awk -F. -v n="$2" '{
        n += (($1 * 256 + $2) * 256 + $3) * 256 + $4
        printf "%d.%d.%d.%d\n", int(n / 16777216) % 256, int(n / 65536) % 256, int(n / 256) % 256, n % 256
    }'
}
