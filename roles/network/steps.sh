# shellcheck shell=sh
# StackOps node agent: network steps (reference/lucid-and-nova.md §4.3): IP forwarding, the flat
# interface up without an address, nova-network, the floating range.
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

# The flat interface carries the instances' bridge: up, no address (StackOps: ifconfig 0.0.0.0).
so_step_flat_interface() {
    _f=/etc/network/interfaces
    _if=$flat_interface
    if [ "$_if" = "$public_interface" ]; then
        echo "flat and public interface are both $_if: leaving $_f alone"
        return 0
    fi
    if ! grep -q "^[[:space:]]*iface[[:space:]]\+${_if}[[:space:]]" "$_f" 2>/dev/null; then
        # shellcheck disable=SC2016 # $IFACE is for ifupdown, not for this shell
        {
            printf '\n# StackOps: the flat network of the instances (nova-network bridges it)\n'
            printf 'auto %s\niface %s inet manual\n' "$_if" "$_if"
            printf '\tup ifconfig $IFACE 0.0.0.0 up\n\tup ifconfig $IFACE promisc\n'
            printf '\tdown ifconfig $IFACE down\n'
        } >>"$_f"
    fi
    ifup "$_if"
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
    _host=${hostname-}
    [ -n "$_host" ] || _host=$(uname -n)
    so_nova_manage floating create "$_host" "$floating_range"
}
