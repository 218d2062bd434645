# shellcheck shell=sh
# StackOps node agent: the node-wide steps every role shares (roles/base/role.yaml `steps`).

# /etc/nova/nova.conf for all the node's roles (0640 root:nova).
so_step_nova_conf() {
    _conf=$(so_nova_conf) || return 1
    _bad=$(printf '%s\n' "$_conf" | so_unknown_flags)
    if [ -n "$_bad" ]; then
        so_fail "nova.conf would hold flags Nova 2011.2 does not define: $_bad"
        return 1
    fi
    printf '%s\n' "$_conf" | so_install_file "$NOVA_CONF" 0640 nova
    echo "wrote $NOVA_CONF ($(printf '%s\n' "$_conf" | wc -l) flags)"
}
