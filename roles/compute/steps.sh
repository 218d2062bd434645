# shellcheck shell=sh
# StackOps node agent: compute steps (reference/lucid-and-nova.md §4.3): libvirt with KVM when
# the CPU can (vmx/svm in /proc/cpuinfo) else QEMU, then nova-compute.

# nova.conf's --libvirt_type: the answer, with `auto` resolved on this node.
SO_COMPUTED="$SO_COMPUTED libvirt_type_resolved"
so_value_libvirt_type_resolved() {
    so_libvirt_type
}

# libvirt_type: the answer, or for `auto` kvm when /proc/cpuinfo shows vmx or svm, else qemu.
so_libvirt_type() {
    # shellcheck disable=SC2154 # answers
    case ${libvirt_type:-auto} in
    kvm | qemu) echo "$libvirt_type" ;;
    *)
        if grep -Eqw 'vmx|svm' /proc/cpuinfo 2>/dev/null; then echo kvm; else echo qemu; fi
        ;;
    esac
}

so_step_libvirt() {
    _type=$(so_libvirt_type)
    echo "libvirt_type=$_type"
    if [ "$_type" = kvm ]; then
        if grep -qw vmx /proc/cpuinfo 2>/dev/null; then
            modprobe kvm_intel
        elif grep -qw svm /proc/cpuinfo 2>/dev/null; then
            modprobe kvm_amd
        else
            so_fail "libvirt_type=kvm but the CPU has neither vmx nor svm (answer qemu or auto)"
            return 1
        fi
    fi
    so_services_up libvirt-bin
}

so_step_nova_compute() {
    so_services_up nova-compute
}

# nova.conf's --iscsi_ip_prefix: the volume node's address (volume_address; empty: the cloud
# controller's, where dual-node puts the volume role). nova-compute keeps only the discovered
# targets whose portal starts with it; its default is this node's own address, which never
# matches (docs/nova-2011.2-facts.md §4).
SO_COMPUTED="$SO_COMPUTED iscsi_target_address"
so_value_iscsi_target_address() {
    printf '%s\n' "${volume_address:-${controller_address-}}"
}

# The volume node's host name in /etc/hosts: nova-compute discovers iSCSI targets at the volume
# service's host name (volume['host'], docs/nova-2011.2-facts.md §4), which this node must resolve.
so_step_volume_host() {
    if [ -z "${volume_host-}" ]; then
        echo "no volume_host answered: the volume node's name must resolve through DNS"
        return 0
    fi
    _addr=$(so_value_iscsi_target_address)
    _line=$(printf '%s\t%s' "$_addr" "$volume_host")
    if grep -q "^${_addr}[[:space:]]\+${volume_host}\$" /etc/hosts 2>/dev/null; then
        echo "/etc/hosts already maps $volume_host to $_addr"
        return 0
    fi
    {
        grep -v "[[:space:]]$volume_host\$" /etc/hosts 2>/dev/null
        printf '%s\n' "$_line"
    } | so_write_if_changed /etc/hosts 0644
    echo "/etc/hosts: $volume_host is $_addr"
}
