# shellcheck shell=sh
# StackOps node agent: the answers file (/etc/stackops/answers), validation, the console role
# selector and the questions still unanswered. POSIX sh (dash, bash 4.1).
#
# Answers become shell variables named like their keys (roles, controller_address, ...), the
# way `. /etc/stackops/answers` would set them; SO_HAVE lists the keys the file holds.

SO_Q="'"
# key='value' with POSIX single-quote quoting ('\'' inside a value).
SO_ANSWER_RE="^[a-z_][a-z0-9_]*=${SO_Q}([^${SO_Q}]|${SO_Q}\\\\${SO_Q}${SO_Q})*${SO_Q}\$"

# The questions table (/usr/share/stackops/questions, generated from roles/*/role.yaml at build
# time, the same table the installer reads): one question per line,
# key|type|asked_by|skip_with|min|max|confirm|fallback|optional|choices|per_node|default|prompt
SO_QUESTIONS=$SO_LIB/questions

# Every key of the contract (the installer_* keys are the Smart Installer's, never asked).
so_answer_keys() {
    echo roles
    echo "$SO_INSTALLER_KEYS"
    grep -v '^#' "$SO_QUESTIONS" | cut -d'|' -f1
}

# Load question $1's line into _q_type _q_asked _q_skip _q_min _q_max _q_confirm _q_fallback
# _q_optional _q_choices _q_pernode _q_default _q_prompt; fails when there is no such question.
so_question() {
    _q_line=$(grep "^$1|" "$SO_QUESTIONS" | head -n 1)
    [ -n "$_q_line" ] || return 1
    _q_old=$IFS
    IFS='|'
    # shellcheck disable=SC2086 # split on the bars
    set -- $_q_line
    IFS=$_q_old
    _q_type=$2 _q_asked=$3 _q_skip=$4 _q_min=$5 _q_max=$6 _q_confirm=$7 _q_fallback=$8
    _q_optional=$9 _q_choices=${10} _q_pernode=${11} _q_default=${12} _q_prompt=${13}
    _q_made=${14-}
}

# Why $2 is not a valid answer to question $1 (nothing when it is): questions/validate.sh's rules
# with the question's constraints.
so_answer_problem() {
    so_question "$1" || { echo "unknown question $1"; return 0; }
    so_why_invalid "$_q_type" "$2" "$_q_min" "$_q_max" "$_q_choices" "$_q_optional"
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

# --- validation: questions/validate.sh (so_why_invalid), shared with the installer ------------

# Roles: a comma list of known roles, no repeats. Prints them in the roles table's order.
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
    # (public_interface may not be answered yet: it is made after controller_address)
    ip -4 -o addr show dev "${public_interface:-$(so_find_public_interface || echo eth0)}" 2>/dev/null |
        awk '{ for (i = 1; i < NF; i++) if ($i == "inet") { sub(/\/.*/, "", $(i + 1)); print $(i + 1); exit } }'
}

# The same, waiting for it (bounded: STACKOPS_ADDRESS_WAIT seconds, default 120). The lucid job
# starts once an interface other than lo is up, which need not be public_interface, nor bound
# (dhclient backgrounds after its timeout): the address may come later (issue 22 item 5). Fails
# when there is none by then.
so_own_address_wait() {
    _aw_end=$(($(date +%s) + ${STACKOPS_ADDRESS_WAIT:-120}))
    _aw_said=""
    while :; do
        _aw=$(so_own_address)
        if [ -n "$_aw" ]; then
            echo "$_aw"
            return 0
        fi
        [ "$(date +%s)" -lt "$_aw_end" ] || return 1
        if [ -z "$_aw_said" ]; then
            so_console "STACKOPS waiting for an IPv4 address on ${public_interface:-eth0}" >&2
            _aw_said=1
        fi
        sleep 1
    done
}

# Has this node every role of the comma-separated list $1?
so_has_roles() {
    for _hr in $(printf '%s' "$1" | tr , ' '); do
        case " $SO_ROLES " in *" $_hr "*) ;; *) return 1 ;; esac
    done
    return 0
}

# An answer made on this node (questions' made_on_node): generate (a password: 24 letters and
# digits from /dev/urandom) or find (an interface).
so_make_answer() {
    case $2 in
    generate) tr -dc 'A-Za-z0-9' </dev/urandom 2>/dev/null | head -c 24 ;;
    find)
        case $1 in
        flat_interface) so_find_flat_interface ;;
        *) so_find_public_interface ;;
        esac
        ;;
    *) return 1 ;;
    esac
}

# The interface of the default route, else the first one with an IPv4 address (not lo).
so_find_public_interface() {
    _fi=$(ip -4 route show default 2>/dev/null | awk '{ for (i = 1; i < NF; i++) if ($i == "dev") { print $(i + 1); exit } }')
    [ -n "$_fi" ] || _fi=$(ip -4 -o addr show scope global 2>/dev/null | awk '$2 != "lo" { print $2; exit }')
    [ -n "$_fi" ] && printf '%s\n' "$_fi"
}

# A wired interface other than public_interface without an IPv4 address, else dummy0 (the flat
# network of one box needs no wire; StackOps single-node: `modprobe dummy`, dummy0).
so_find_flat_interface() {
    _pub=${public_interface:-$(so_find_public_interface)}
    for _d in "${SO_SYS_NET:-/sys/class/net}"/*; do
        _n=${_d##*/}
        case $_n in lo | "$_pub" | br* | virbr* | dummy* | vlan* | tap* | vnet* | *.*) continue ;; esac
        [ -e "$_d/device" ] || continue # a real NIC
        [ -z "$(ip -4 -o addr show dev "$_n" 2>/dev/null)" ] || continue
        printf '%s\n' "$_n"
        return 0
    done
    echo dummy0
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

# The roles table's node roles as "name|description" lines, in order.
so_role_menu() {
    awk -F'|' '!/^#/ && $2 == "node" { print $1 "|" $6 }' "$SO_ROLES_TABLE"
}

# The reference architectures' multi-role nodes as "node|label|roles" lines (the agent's
# architectures table, rendered from roles/architectures.yaml).
so_shape_menu() {
    grep -v '^#' "$SO_LIB/architectures.table" 2>/dev/null
}

so_select_roles() {
    if so_use_whiptail; then
        _n=$(so_role_menu | grep -c .)
        _items=$(so_role_menu | awk -F'|' '{ printf "%s\n%s\nOFF\n", $1, substr($2, 1, 55) }')
        _oldifs=$IFS
        IFS='
'
        # shellcheck disable=SC2086 # one argument per line of _items
        _sel=$(whiptail --title "StackOps" --separate-output --checklist \
            "No role was chosen at install time. Roles of this node (space toggles):" \
            $((_n + 11)) 74 "$_n" $_items 3>&1 1>&2 2>&3) || { IFS=$_oldifs; return 1; }
        IFS=$_oldifs
        SO_REPLY=$(printf '%s' "$_sel" | tr -d '"' | tr ' \n' ',,')
        SO_REPLY=$(so_normalize_roles "$SO_REPLY") || return 1
        [ -n "$SO_REPLY" ] || return 1
        return 0
    fi
    _n=$(so_role_menu | grep -c .)
    while :; do
        echo "No role was chosen at install time. Roles of this node:"
        so_role_menu | awk -F'|' '{ printf "  %d) %-12s %s\n", NR, $1, $2 }'
        # the reference architectures' multi-role nodes (roles/architectures.yaml), as letters
        so_shape_menu | awk -F'|' '{ printf "  %c) %s (%s)\n", 96 + NR, $2, $3 }'
        printf 'Choose one or more numbers (e.g. "1 2 3" or "%s"), or a letter: ' "$_n"
        so_read || return 1
        _picked=""
        _ok=1
        for _w in $(printf '%s' "$SO_REPLY" | tr ',' ' '); do
            case $_w in
            [a-z])
                _i=$(($(printf '%d' "'$_w") - 96))
                _shape=$(so_shape_menu | sed -n "${_i}p" | cut -d'|' -f3)
                if [ -n "$_shape" ]; then _picked="$_picked,$_shape"; else _ok=0; fi
                ;;
            *[!0-9]* | '' | 0*) _ok=0 ;;
            *)
                if [ "$_w" -le "$_n" ]; then
                    _picked="$_picked,$(so_role_menu | sed -n "${_w}p" | cut -d'|' -f1)"
                else
                    _ok=0
                fi
                ;;
            esac
        done
        if [ "$_ok" = 1 ] && [ -n "$_picked" ]; then
            SO_REPLY=$(so_normalize_roles "$_picked") && return 0
        fi
        echo "Please answer with numbers from 1 to $_n, or a letter."
    done
}

# Ask question KEY (its prompt, type and constraints from the questions table) until the answer
# is valid; the answer lands in SO_REPLY.
so_ask() {
    _key=$1
    so_question "$_key" || return 1
    _text=$_q_prompt
    while :; do
        if [ "$_q_type" = password ]; then
            so_ask_secret "$_text" || return 1
        elif so_use_whiptail; then
            SO_REPLY=$(whiptail --title "StackOps" --inputbox "$_text" 10 70 "" 3>&1 1>&2 2>&3) ||
                return 1
        else
            printf '%s: ' "$_text"
            so_read || return 1
        fi
        _why=$(so_answer_problem "$_key" "$SO_REPLY")
        [ -n "$_why" ] || return 0
        so_tell "Invalid value for $_key: $_why."
        so_question "$_key"
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
# A question skipped for one of the node's roles (skip_with) is this node's own address there
# when it is an ipv4 question; a missing host name that d-i answers (a fallback question, i.e.
# netcfg/get_hostname) is this node's own.
so_answers_complete() {
    _mode=$1
    _roles=$(so_get roles)
    if ! _norm=$(so_normalize_roles "$_roles"); then
        so_say "STACKOPS error: roles='$_roles' in $SO_ANSWERS: use $(printf '%s' "$SO_ROLES_ALL" | tr ' ' ',')"
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
    # shellcheck disable=SC2013 # question keys are single words
    for _key in $(grep -v '^#' "$SO_QUESTIONS" | cut -d'|' -f1); do
        so_question "$_key"
        _needed=0
        _skipped=0
        for _r in $SO_ROLES; do
            case ",$_q_asked," in *",$_r,"*) _needed=1 ;; esac
            case ",$_q_skip," in *",$_r,"*) _skipped=1 ;; esac
        done
        [ "$_needed" = 1 ] || continue
        if ! so_has "$_key"; then
            _own=""
            if [ "$_skipped" = 1 ] && [ "$_q_type" = ipv4 ]; then
                # this node's own address: wait for it (bounded), never ask (issue 22 item 5)
                if ! _own=$(so_own_address_wait); then
                    so_say "STACKOPS error: no IPv4 address on ${public_interface:-eth0} within \
${STACKOPS_ADDRESS_WAIT:-120} s: $_key is this node's own address (DHCP?); run stackops-agent \
again once the interface has one"
                    return 1
                fi
            elif [ "$_q_type" = hostname ] && [ -n "$_q_fallback" ]; then
                _own=$(uname -n) # d-i's own answer (netcfg) on an installed node
            fi
            if [ -n "$_own" ] && [ -z "$(so_answer_problem "$_key" "$_own")" ]; then
                so_answers_set "$_key" "$_own"
                so_log "answer $_key: this node's own, $_own"
                continue
            fi
        fi
        if ! so_has "$_key" && [ -n "$_q_made" ] && so_has_roles "$_q_asked"; then
            # no other node needs it (issue 22, ESXi-easy): made here, kept in the answers file
            if _made=$(so_make_answer "$_key" "$_q_made") &&
                [ -z "$(so_answer_problem "$_key" "$_made")" ]; then
                so_answers_set "$_key" "$_made"
                so_log "answer $_key: made on this node ($_q_made)"
                continue
            fi
            so_warn "could not $_q_made $_key on this node"
        fi
        if so_has "$_key"; then
            _why=$(so_answer_problem "$_key" "$(so_get "$_key")")
            [ -n "$_why" ] || continue
            so_say "STACKOPS error: invalid $_key in $SO_ANSWERS: $_why"
        elif [ -n "$_q_default" ]; then
            so_answers_set "$_key" "$_q_default"
            so_log "answer $_key: default '$_q_default'"
            continue
        elif [ "$_q_optional" = yes ] && [ "$_mode" != ask ]; then
            so_answers_set "$_key" ""
            so_log "answer $_key: none (optional)"
            continue
        fi
        if [ "$_mode" != ask ] || ! so_ask "$_key"; then
            if [ "$_q_optional" = yes ]; then # nobody at the console: none
                so_answers_set "$_key" ""
                so_log "answer $_key: none (optional, not answered)"
                continue
            fi
            so_say "STACKOPS error: no valid answer for $_key (roles $SO_ROLES_CSV need it)"
            return 1
        fi
        so_answers_set "$_key" "$SO_REPLY"
        so_log "answer $_key: given on the console"
    done
    return 0
}
