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
# No volume_host answered and no volume_address (single/dual-node: the volume role is on the
# controller): the name is the host of the one nova-volume in `nova-manage service list` (volume
# host = the service's --host, gethostname(): nova/volume/manager.py:101-104, nova/flags.py:358;
# rows "host binary enabled :-) updated_at", bin/nova-manage:652-671), waited for, bounded
# (STACKOPS_VOLUME_WAIT, default 600 s): compute cannot attach without it (issue 22 item 10).
so_step_volume_host() {
    case " $SO_ROLES " in *" volume "*)
        echo "this node is a volume node: its own name resolves here"
        return 0
        ;;
    esac
    if [ -z "${volume_host-}" ] && [ -z "${volume_address-}" ]; then
        so_wait_for "nova-volume on the controller" "${STACKOPS_VOLUME_WAIT:-600}" so_find_volume_host ||
            return 1
        volume_host=$SO_VOLUME_HOST
    fi
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
        # (grep -v exits 1 when it keeps no line: under the step's set -e that would end the
        # group before the new line and leave /etc/hosts empty)
        grep -v "[[:space:]]$volume_host\$" /etc/hosts 2>/dev/null || true
        printf '%s\n' "$_line"
    } | so_write_if_changed /etc/hosts 0644
    echo "/etc/hosts: $volume_host is $_addr"
}

# SO_VOLUME_HOST: the host of the one nova-volume service registered; fails while there is none.
so_find_volume_host() {
    _vh=$(so_nova_manage service list 2>/dev/null | awk '$2 == "nova-volume" { print $1 }' | sort -u)
    [ -n "$_vh" ] && [ "$(printf '%s\n' "$_vh" | wc -l)" -eq 1 ] || return 1
    SO_VOLUME_HOST=$_vh
}
