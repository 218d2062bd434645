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
