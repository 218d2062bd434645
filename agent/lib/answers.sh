# shellcheck shell=sh
# StackOps node agent: the answers file (/etc/stackops/answers), validation, the console role
# selector and the questions still unanswered. POSIX sh (dash, bash 4.1).
#
# Answers become shell variables named like their keys (roles, controller_address, ...), the
# way `. /etc/stackops/answers` would set them; SO_HAVE lists the keys the file holds.

SO_Q="'"
# key='value' with POSIX single-quote quoting ('\'' inside a value).
SO_ANSWER_RE="^[a-z_][a-z0-9_]*=${SO_Q}([^${SO_Q}]|${SO_Q}\\\\${SO_Q}${SO_Q})*${SO_Q}\$"

# Every key of the contract (the installer_* keys are the Smart Installer's, never asked).
so_answer_keys() {
    echo roles hostname
    echo "$SO_INSTALLER_KEYS"
    grep -v '^#' "$SO_LIB/questions" | cut -d'|' -f1
}

# Is $1 a known answer key?
so_is_key() {
    case " $(so_answer_keys | tr '\n' ' ') " in
    *" $1 "*) return 0 ;;
    esac
    return 1
}

so_answers_load() {
    SO_HAVE=""
    [ -f "$SO_ANSWERS" ] || return 0
    _bad=$(grep -nvE "^(#.*|[[:space:]]*|$SO_ANSWER_RE)\$" "$SO_ANSWERS" | head -n 1 | cut -d: -f1)
    if [ -n "$_bad" ]; then
        so_say "STACKOPS error: $SO_ANSWERS line $_bad is not key='value' (POSIX sh quoting)"
        return 1
    fi
    while IFS= read -r _line; do
        case $_line in '#'* | '') continue ;; esac
        _k=${_line%%=*}
        if ! so_is_key "$_k"; then
            so_warn "ignoring unknown key '$_k' in $SO_ANSWERS"
            continue
        fi
        # The line matched SO_ANSWER_RE: the right-hand side is one single-quoted word.
        eval "$_k=${_line#*=}"
        SO_HAVE="$SO_HAVE $_k"
    done <"$SO_ANSWERS"
}

so_has() {
    case " $SO_HAVE " in *" $1 "*) return 0 ;; esac
    return 1
}

# The value of answer $1 ("" when unset).
so_get() {
    eval "printf '%s' \"\${$1-}\""
}

# $1 quoted for sh: 'it'\''s'.
so_quote() {
    printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"
}

# Set answer $1 to $2 in memory and in the answers file (atomically, mode 0600).
so_answers_set() {
    eval "$1=\$2"
    so_has "$1" || SO_HAVE="$SO_HAVE $1"
    _q=$(so_quote "$2")
    mkdir -p "${SO_ANSWERS%/*}"
    {
        [ -f "$SO_ANSWERS" ] && SO_K=$1 awk 'index($0, ENVIRON["SO_K"] "=") != 1' "$SO_ANSWERS"
        printf '%s=%s\n' "$1" "$_q"
    } | so_write "$SO_ANSWERS" 0600
}

# --- validation (the installer's rules) -------------------------------------------------------

so_valid_ipv4() {
    case $1 in *[!0-9.]* | .* | *. | *..*) return 1 ;; esac
    _o=$1
    _n=0
    while [ -n "$_o" ]; do
        _p=${_o%%.*}
        case $_o in *.*) _o=${_o#*.} ;; *) _o="" ;; esac
        case $_p in '' | 0?*) return 1 ;; esac
        [ "${#_p}" -le 3 ] && [ "$_p" -le 255 ] || return 1
        _n=$((_n + 1))
    done
    [ "$_n" -eq 4 ]
}

so_valid_cidr() {
    case $1 in */*) ;; *) return 1 ;; esac
    _bits=${1#*/}
    case $_bits in '' | *[!0-9]* | 0?*) return 1 ;; esac
    [ "$_bits" -le 32 ] && so_valid_ipv4 "${1%/*}"
}

# so_valid TYPE VALUE
so_valid() {
    case $1 in
    ipv4) so_valid_ipv4 "$2" ;;
    cidr) so_valid_cidr "$2" ;;
    'cidr?') [ -z "$2" ] || so_valid_cidr "$2" ;;
    int) case $2 in '' | *[!0-9]* | 0*) return 1 ;; esac ;;
    iface) case $2 in '' | *[!A-Za-z0-9_.:-]*) return 1 ;; esac && [ "${#2}" -le 15 ] ;;
    device) case $2 in /dev/?*) case $2 in *[!A-Za-z0-9/_.:-]*) return 1 ;; esac ;; *) return 1 ;; esac ;;
    password) [ -n "$2" ] ;;
    text) case $2 in '' | *[!A-Za-z0-9_.-]*) return 1 ;; esac ;;
    libvirt) case $2 in auto | kvm | qemu) ;; *) return 1 ;; esac ;;
    *) return 1 ;;
    esac
}

so_type_hint() {
    case $1 in
    ipv4) echo "an IPv4 address like 10.0.0.1" ;;
    cidr) echo "an IPv4 range like 192.168.100.0/24" ;;
    'cidr?') echo "an IPv4 range like 10.0.1.0/24, or empty" ;;
    int) echo "a positive whole number" ;;
    iface) echo "an interface name like eth1" ;;
    device) echo "a device path like /dev/sdb" ;;
    password) echo "not empty" ;;
    text) echo "letters, digits, '.', '_' or '-'" ;;
    libvirt) echo "auto, kvm or qemu" ;;
    esac
}

# Roles: a comma list of known roles, no repeats. Prints them in canonical order.
so_normalize_roles() {
    _out=""
    _in=",$(printf '%s' "$1" | tr -d ' '),"
    for _r in $SO_ROLES_ALL; do
        case $_in in *",$_r,"*) _out="$_out${_out:+,}$_r" ;; esac
    done
    _rest=$_in
    for _r in $SO_ROLES_ALL; do
        _rest=$(printf '%s' "$_rest" | sed "s/,$_r,/,/g")
    done
    [ -z "$(printf '%s' "$_rest" | tr -d ,)" ] || return 1
    printf '%s\n' "$_out"
}

# The IPv4 address of public_interface (default eth0), or nothing.
so_own_address() {
    ip -4 -o addr show dev "${public_interface:-eth0}" 2>/dev/null |
        awk '{ for (i = 1; i < NF; i++) if ($i == "inet") { sub(/\/.*/, "", $(i + 1)); print $(i + 1); exit } }'
}

# --- asking on the console --------------------------------------------------------------------

# Whiptail when it exists and stdin is a terminal; else the plain numbered prompt on stdin.
so_use_whiptail() {
    [ -z "${STACKOPS_PLAIN-}" ] && [ -t 0 ] && command -v whiptail >/dev/null 2>&1
}

# Read one line into SO_REPLY; fails at end of input.
so_read() {
    SO_REPLY=""
    IFS= read -r SO_REPLY
}

so_select_roles() {
    if so_use_whiptail; then
        _sel=$(whiptail --title "StackOps" --separate-output --checklist \
            "No role was chosen at install time. Roles of this node (space toggles):" 15 70 4 \
            controller "Cloud controller: API, scheduler, MySQL, RabbitMQ, Glance" OFF \
            network "Network controller: nova-network, DHCP, NAT" OFF \
            volume "Volume node: nova-volume on LVM + iSCSI" OFF \
            compute "Compute node: nova-compute on libvirt" OFF \
            3>&1 1>&2 2>&3) || return 1
        SO_REPLY=$(printf '%s' "$_sel" | tr -d '"' | tr ' \n' ',,')
        SO_REPLY=$(so_normalize_roles "$SO_REPLY") || return 1
        [ -n "$SO_REPLY" ] || return 1
        return 0
    fi
    while :; do
        cat <<'MENU'
No role was chosen at install time. Roles of this node:
  1) controller   cloud controller: API, scheduler, MySQL, RabbitMQ, Glance
  2) network      network controller: nova-network, DHCP, NAT
  3) volume       volume node: nova-volume on LVM + iSCSI
  4) compute      compute node: nova-compute on libvirt
  a) all of them  (single node)
MENU
        printf 'Choose one or more numbers (e.g. "1 2 3" or "4"): '
        so_read || return 1
        _picked=""
        _ok=1
        for _w in $(printf '%s' "$SO_REPLY" | tr ',' ' '); do
            case $_w in
            1) _picked="$_picked,controller" ;;
            2) _picked="$_picked,network" ;;
            3) _picked="$_picked,volume" ;;
            4) _picked="$_picked,compute" ;;
            a | A | all) _picked=",controller,network,volume,compute" ;;
            *) _ok=0 ;;
            esac
        done
        if [ "$_ok" = 1 ] && [ -n "$_picked" ]; then
            SO_REPLY=$(so_normalize_roles "$_picked") && return 0
        fi
        echo "Please answer with numbers from 1 to 4, or a."
    done
}

# Ask question KEY of TYPE (with its text); the answer lands in SO_REPLY.
so_ask() {
    _key=$1 _type=$2 _text=$3
    while :; do
        if [ "$_type" = password ]; then
            so_ask_secret "$_text" || return 1
        elif so_use_whiptail; then
            SO_REPLY=$(whiptail --title "StackOps" --inputbox "$_text" 10 70 "" 3>&1 1>&2 2>&3) ||
                return 1
        else
            printf '%s: ' "$_text"
            so_read || return 1
        fi
        so_valid "$_type" "$SO_REPLY" && return 0
        _hint=$(so_type_hint "$_type")
        so_tell "Invalid value for $_key: give $_hint."
    done
}

# A password, asked twice; never echoed, never on a command line.
so_ask_secret() {
    while :; do
        if so_use_whiptail; then
            _p1=$(whiptail --title "StackOps" --passwordbox "$1" 10 70 3>&1 1>&2 2>&3) || return 1
            _p2=$(whiptail --title "StackOps" --passwordbox "$1 (again)" 10 70 3>&1 1>&2 2>&3) ||
                return 1
        else
            [ -t 0 ] && stty -echo
            printf '%s: ' "$1"
            so_read
            _r=$?
            _p1=$SO_REPLY
            printf '\n%s (again): ' "$1"
            [ "$_r" = 0 ] && so_read
            _r=$?
            _p2=$SO_REPLY
            [ -t 0 ] && stty echo
            echo
            [ "$_r" = 0 ] || return 1
        fi
        if [ -z "$_p1" ]; then
            so_tell "The password must not be empty."
        elif [ "$_p1" != "$_p2" ]; then
            so_tell "The two passwords differ; please type them again."
        else
            SO_REPLY=$_p1
            return 0
        fi
    done
}

# A message to the person at the console: a box under whiptail (a line would be drawn over).
so_tell() {
    if so_use_whiptail; then
        whiptail --title "StackOps" --msgbox "$1" 8 70
    else
        echo "$1"
    fi
}

# Make sure roles and every answer the roles need are present and valid: ask what is missing
# (when $1 is "ask"), apply defaults, save. Fails naming the first key it could not get.
so_answers_complete() {
    _mode=$1
    _roles=$(so_get roles)
    if ! _norm=$(so_normalize_roles "$_roles"); then
        so_say "STACKOPS error: roles='$_roles' in $SO_ANSWERS: use controller, network, volume, compute"
        return 1
    fi
    if [ -z "$_norm" ]; then
        if [ "$_mode" != ask ] || ! so_select_roles; then
            so_say "STACKOPS error: no role chosen (roles is empty in $SO_ANSWERS and nobody answered)"
            return 1
        fi
        _norm=$SO_REPLY
    fi
    [ "$_norm" = "$_roles" ] || so_answers_set roles "$_norm"
    SO_ROLES_CSV=$_norm
    SO_ROLES=$(printf '%s' "$_norm" | tr , ' ')
    so_log "roles: $SO_ROLES_CSV"
    if so_has_role controller && ! so_has controller_address; then
        _addr=$(so_own_address)
        if so_valid_ipv4 "$_addr"; then
            so_answers_set controller_address "$_addr"
            so_log "answer controller_address: this node's address $_addr"
        fi
    fi
    _qs=$(grep -v '^#' "$SO_LIB/questions")
    _oldifs=$IFS
    IFS='
'
    for _q in $_qs; do
        IFS=$_oldifs
        _key=$(printf '%s' "$_q" | cut -d'|' -f1)
        _type=$(printf '%s' "$_q" | cut -d'|' -f2)
        _for=$(printf '%s' "$_q" | cut -d'|' -f3)
        _def=$(printf '%s' "$_q" | cut -d'|' -f4)
        _text=$(printf '%s' "$_q" | cut -d'|' -f5)
        _needed=0
        for _r in $SO_ROLES; do
            case ",$_for," in *",$_r,"*) _needed=1 ;; esac
        done
        [ "$_needed" = 1 ] || continue
        if so_has "$_key" && so_valid "$_type" "$(so_get "$_key")"; then
            continue
        fi
        if so_has "$_key"; then
            so_say "STACKOPS error: invalid $_key in $SO_ANSWERS: give $(so_type_hint "$_type")"
        elif [ -n "$_def" ]; then
            so_answers_set "$_key" "$_def"
            so_log "answer $_key: default '$_def'"
            continue
        fi
        if [ "$_mode" != ask ] || ! so_ask "$_key" "$_type" "$_text"; then
            so_say "STACKOPS error: no valid answer for $_key (roles $SO_ROLES_CSV need it)"
            return 1
        fi
        so_answers_set "$_key" "$SO_REPLY"
        so_log "answer $_key: given on the console"
    done
    IFS=$_oldifs
    return 0
}
