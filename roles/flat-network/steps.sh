# shellcheck shell=sh
# StackOps node agent: the flat network's interface (roles/flat-network), on network and compute
# nodes: up without an address, promiscuous, and in /etc/network/interfaces so that it stays up.
# shellcheck disable=SC2154 # answers are set by so_answers_load

# The flat interface carries the instances' bridge: up, no address (StackOps: ifconfig 0.0.0.0).
so_step_flat_interface() {
    _f=/etc/network/interfaces
    _if=$flat_interface
    if [ "$_if" = "$public_interface" ]; then
        echo "flat and public interface are both $_if: leaving $_f alone"
        return 0
    fi
    case $_if in dummy*)
        # one box (an all-in-one found no second NIC): the dummy module's interface, loaded at
        # every boot (/etc/modules), as StackOps did on a single node
        grep -qx dummy /etc/modules 2>/dev/null || echo dummy >>/etc/modules
        modprobe dummy
        ;;
    esac
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
