# shellcheck shell=sh
# StackOps node agent: templates (the roles' nova.conf fragments, their config files) filled in
# sh + awk.

# Values a template may use besides the answers: a role's steps.sh adds a name here and defines
# so_value_<name>, which prints it.
SO_COMPUTED=""

# so_render [--flags] TEMPLATE...: fill the templates, print the result.
so_render() {
    _flags=0
    [ "$1" = --flags ] && { _flags=1; shift; }
    (
        for _k in $(so_answer_keys); do
            # shellcheck disable=SC2163 # exporting the variable named by $_k's value
            export "SO_V_$_k=$(so_get "$_k")"
        done
        for _k in $SO_COMPUTED; do
            # shellcheck disable=SC2163
            export "SO_V_$_k=$("so_value_$_k")" || exit 1
        done
        awk -v flags="$_flags" -f "$SO_LIB/lib/urlencode.awk" -f "$SO_LIB/lib/render.awk" "$@"
    )
}

# The Cactus flagfile for the node's roles: base + each role's fragment (roles/<role>/nova.conf),
# one --flag=value per line, first occurrence of a flag wins, no comments; every flag must be in
# the 2011.2 list.
so_nova_conf() {
    _parts=""
    for _r in $(so_shared_roles) $SO_ROLES; do
        [ -f "$SO_LIB/roles/$_r/nova.conf" ] && _parts="$_parts $SO_LIB/roles/$_r/nova.conf"
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
