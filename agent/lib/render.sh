# shellcheck shell=sh
# StackOps node agent: templates (nova.conf flag fragments, glance.conf) filled in sh + awk.

# Variables a template may use: every answer key plus the computed values below.
SO_COMPUTED="my_ip libvirt_type_resolved sql_host"

# so_render [--flags] TEMPLATE...: fill the templates, print the result.
so_render() {
    _flags=0
    [ "$1" = --flags ] && { _flags=1; shift; }
    (
        for _k in $(so_answer_keys) $SO_COMPUTED; do
            # shellcheck disable=SC2163 # exporting the variable named by $_k's value
            export "SO_V_$_k=$(so_get "$_k")"
        done
        awk -v flags="$_flags" -f "$SO_LIB/lib/urlencode.awk" -f "$SO_LIB/lib/render.awk" "$@"
    )
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

# The Cactus flagfile for the node's roles: common + each role's fragment, one --flag=value per
# line, first occurrence of a flag wins, no comments; every flag must be in the 2011.2 list.
so_nova_conf() {
    # shellcheck disable=SC2154,SC2034 # answers in, template values out (read by so_render)
    if so_has_role controller; then my_ip=$controller_address; else my_ip=""; fi
    libvirt_type_resolved=""
    # shellcheck disable=SC2034 # read by so_render
    so_has_role compute && libvirt_type_resolved=$(so_libvirt_type)
    _parts="$SO_LIB/templates/nova.conf/common.flags"
    for _r in $SO_ROLES; do
        _parts="$_parts $SO_LIB/templates/nova.conf/$_r.flags"
    done
    # shellcheck disable=SC2086 # a list of paths without spaces
    _raw=$(so_render --flags $_parts) || return 1
    printf '%s\n' "$_raw" | grep -v '^#' | awk -F= '!seen[$1]++'
}

# Flags of stdin that are not in the Nova 2011.2 list (gflags ignores them silently).
so_unknown_flags() {
    awk 'NR == FNR { if ($1 != "" && $1 !~ /^#/) ok[$1] = 1; next }
        !/^--[a-z_0-9]+(=.*)?$/ { print "not a --flag=value line: " NR; next }
        { f = $0; sub(/^--/, "", f); sub(/=.*/, "", f); if (!(f in ok)) print f }' \
        "$SO_LIB/nova-2011.2-flags.txt" -
}
