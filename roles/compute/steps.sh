# shellcheck shell=sh
# StackOps node agent: compute steps (reference/lucid-and-nova.md §4.3): libvirt with KVM when
# the CPU can (vmx/svm in /proc/cpuinfo) else QEMU, then nova-compute.

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
