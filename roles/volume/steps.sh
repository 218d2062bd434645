# shellcheck shell=sh
# StackOps node agent: volume steps (reference/lucid-and-nova.md §4.3, trap 17): the iSCSI
# target enabled, the nova-volumes LVM group on the answered disk, nova-volume.
# shellcheck disable=SC2154 # answers are set by so_answers_load

so_step_iscsitarget() {
    # ietd needs the iscsi_trgt kernel module (iscsitarget-dkms builds it for the running kernel
    # against its linux-headers): without it iscsitarget "starts" and exports nothing.
    if ! modprobe iscsi_trgt; then
        so_fail "no iscsi_trgt kernel module for $(uname -r) (iscsitarget-dkms builds it; are \
linux-headers-$(uname -r) installed?)"
        return 1
    fi
    _f=/etc/default/iscsitarget
    if [ -f "$_f" ] && grep -q '^ISCSITARGET_ENABLE=' "$_f"; then
        sed -i 's/^ISCSITARGET_ENABLE=.*/ISCSITARGET_ENABLE=true/' "$_f"
    else
        echo 'ISCSITARGET_ENABLE=true' >>"$_f"
    fi
    so_services_up iscsitarget
}

so_step_volume_group() {
    if vgs nova-volumes >/dev/null 2>&1; then
        echo "volume group nova-volumes exists"
        return 0
    fi
    pvcreate -ff -y "$volume_device"
    vgcreate nova-volumes "$volume_device"
}

so_step_nova_volume() {
    so_services_up nova-volume
}
