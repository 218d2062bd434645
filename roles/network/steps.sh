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
    if so_nova_manage floating list 2>/dev/null | grep -q "[[:space:]]${floating_range%/*}[[:space:]]"; then
        echo "floating range $floating_range exists"
        return 0
    fi
    so_nova_manage floating create "$_host" "$floating_range"
}

# nova.conf's --flat_network_dhcp_start: the third address of fixed_range (network, gateway, then
# the first lease). FlatDHCP overwrites each network's dhcp_start with this flag (default
# 10.0.0.2, outside most fixed ranges: docs/nova-2011.2-facts.md §2).
SO_COMPUTED="$SO_COMPUTED flat_network_dhcp_start"
so_value_flat_network_dhcp_start() {
    [ -n "${fixed_range-}" ] || return 0
    printf '%s\n' "${fixed_range%/*}" | awk -F. '{
        n = (($1 * 256 + $2) * 256 + $3) * 256 + $4 + 2
        printf "%d.%d.%d.%d\n", int(n / 16777216) % 256, int(n / 65536) % 256, int(n / 256) % 256, n % 256
    }'
}
