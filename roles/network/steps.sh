# shellcheck shell=sh
# StackOps node agent: network steps (reference/lucid-and-nova.md §4.3): IP forwarding,
# nova-network, the floating range (the flat interface: roles/flat-network).
# shellcheck disable=SC2154 # answers are set by so_answers_load

so_step_ip_forward() {
    _f=/etc/sysctl.conf
    [ -f "$_f" ] || : >"$_f"
    if ! grep -q '^net\.ipv4\.ip_forward[[:space:]]*=[[:space:]]*1' "$_f"; then
        if grep -q '^[#[:space:]]*net\.ipv4\.ip_forward' "$_f"; then
            sed -i 's/^[#[:space:]]*net\.ipv4\.ip_forward.*/net.ipv4.ip_forward=1/' "$_f"
        else
            echo 'net.ipv4.ip_forward=1' >>"$_f"
        fi
    fi
    sysctl -w net.ipv4.ip_forward=1
}

so_step_nova_network() {
    so_services_up nova-network
}

# Cactus: floating create <host> <range> (host required; Diablo dropped it).
so_step_floating() {
    if [ -z "${floating_range-}" ]; then
        echo "no floating range answered: nothing to do"
        return 0
    fi
    # nova-network's host is this machine's name (--host defaults to gethostname()), whatever
    # was answered: the floating addresses belong to it.
    _host=$(uname -n)
    # `floating create` adds every address of the range, network and broadcast included
    # (bin/nova-manage:483-489, IPy.IP(range)): those two are deleted again as /32s (delete takes
    # a range too, 491-496). Re-run safe: `floating list` (host, address, instance; 498-512)
    # shows whether the range's second address exists, and which of the two ends are left.
    _ends=$(so_range_ends "$floating_range")
    _list=$(so_nova_manage floating list) || return 1
    if printf '%s\n' "$_list" | grep -q "[[:space:]]$(so_ip_add "${_ends% *}" 1)[[:space:]]"; then
        echo "floating range $floating_range exists"
        for _a in $_ends; do
            printf '%s\n' "$_list" | grep -q "[[:space:]]${_a}[[:space:]]" || continue
            so_nova_manage floating delete "$_a/32" || return 1
        done
        return 0
    fi
    so_nova_manage floating create "$_host" "$floating_range" || return 1
    for _a in $_ends; do
        so_nova_manage floating delete "$_a/32" || return 1
    done
}

# so_range_ends CIDR: its network and broadcast addresses, one space between.
so_range_ends() {
    printf '%s\n' "$1" | awk -F'[./]' '{
        ip = (($1 * 256 + $2) * 256 + $3) * 256 + $4
        size = 2 ^ (32 - ($5 == "" ? 32 : $5))
        net = ip - ip % size
        printf "%s %s\n", q(net), q(net + size - 1)
    }
    function q(n) {
        return sprintf("%d.%d.%d.%d", int(n / 16777216) % 256, int(n / 65536) % 256, int(n / 256) % 256, n % 256)
    }'
}

# nova.conf's --flat_network_dhcp_start: the third address of fixed_range (network, gateway, then
# the first lease). FlatDHCP overwrites each network's dhcp_start with this flag (default
# 10.0.0.2, outside most fixed ranges: docs/nova-2011.2-facts.md §2).
SO_COMPUTED="$SO_COMPUTED flat_network_dhcp_start"
so_value_flat_network_dhcp_start() {
    [ -n "${fixed_range-}" ] || return 0
    so_ip_add "${fixed_range%/*}" 2
}
