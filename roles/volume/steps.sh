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

# The nova-volumes volume group (nova-volume refuses to start without it, nova/volume/driver.py:
# 85-91). The installer's stackops-volumes recipe makes it on the first disk (preseed
# partman-auto-lvm/new_vg_name) with a placeholder volume, nova-reserve, holding the room for
# volumes: removing it frees that room (issue 22 finding 8). volume_device, when answered, is
# another disk: erased and added to the group, or the whole group where the installer made none.
so_step_volume_group() {
    if vgs nova-volumes >/dev/null 2>&1; then
        if lvs --noheadings -o lv_name nova-volumes 2>/dev/null | grep -q '^[[:space:]]*nova-reserve$'; then
            lvremove -f nova-volumes/nova-reserve
            echo "room for volumes in nova-volumes (the installer's nova-reserve removed)"
        fi
        if [ -n "${volume_device-}" ] && ! so_pv_of_volumes "$volume_device"; then
            pvcreate -ff -y "$volume_device"
            vgextend nova-volumes "$volume_device"
            echo "$volume_device added to volume group nova-volumes"
        fi
        echo "volume group nova-volumes ready"
        return 0
    fi
    if [ -z "${volume_device-}" ]; then
        so_fail "no volume group nova-volumes (volume groups here: $(vgs --noheadings -o vg_name \
2>/dev/null | tr -s ' \n' ' ')) and no volume_device answered: name a disk for it in volume_device"
        return 1
    fi
    pvcreate -ff -y "$volume_device"
    vgcreate nova-volumes "$volume_device"
}

# Is $1 a physical volume of nova-volumes?
so_pv_of_volumes() {
    [ "$(pvs --noheadings -o vg_name "$1" 2>/dev/null | tr -d ' ')" = nova-volumes ]
}

so_step_nova_volume() {
    so_services_up nova-volume
}
