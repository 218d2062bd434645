# shellcheck shell=sh
# The answer contract's validators, shared by the installer (d-i/late.sh under busybox ash) and
# the node agent (dash, bash 4.1). distro_builder/config/questions.py applies the same rules in
# Python; tests/data/answer-validation.tsv is the corpus all three must agree on.
#
# so_why_invalid TYPE VALUE [MIN] [MAX] [CHOICES] [OPTIONAL]
#   Prints why VALUE is not a valid answer of TYPE (nothing when it is valid). MIN/MAX bound an
#   int; MIN is a password's shortest length; CHOICES is a comma list for choice; OPTIONAL "yes" accepts an empty answer.
# Types: ipv4 cidr int name string password interface device choice hostname.
# Only shell builtins and POSIX parameter expansion: no subshell per check, no external tool.

# Is $1 a decimal number without leading zeros, at most 9 digits?
so_v_uint() {
    case $1 in '' | *[!0-9]* | 0?*) return 1 ;; esac
    [ "${#1}" -le 9 ]
}

# Split a dotted quad $1 into _v_o1.._v_o4; fails unless it is four octets 0-255.
so_v_quad() {
    case $1 in *[!0-9.]* | .* | *. | *..*) return 1 ;; esac
    _v_rest=$1
    _v_i=0
    _v_o1="" _v_o2="" _v_o3="" _v_o4=""
    while [ -n "$_v_rest" ]; do
        _v_o=${_v_rest%%.*}
        case $_v_rest in *.*) _v_rest=${_v_rest#*.} ;; *) _v_rest="" ;; esac
        _v_i=$((_v_i + 1))
        [ "$_v_i" -le 4 ] && so_v_uint "$_v_o" && [ "$_v_o" -le 255 ] || return 1
        eval "_v_o$_v_i=\$_v_o"
    done
    [ "$_v_i" -eq 4 ]
}

so_why_invalid() {
    _v_t=$1 _v_v=$2 _v_min=${3-} _v_max=${4-} _v_choices=${5-} _v_opt=${6-}
    if [ -z "$_v_v" ]; then
        [ "$_v_opt" = yes ] || echo "it is empty"
        return 0
    fi
    case $_v_v in *[[:cntrl:]]*)
        echo "it contains a control character (a line break or a tab)"
        return 0
        ;;
    esac
    case $_v_t in
    ipv4)
        if ! so_v_quad "$_v_v"; then
            echo "it is not an IPv4 address (like 10.0.0.1)"
        elif [ "$_v_o1" -eq 0 ] || [ "$_v_o1" -eq 127 ] || [ "$_v_o1" -ge 224 ]; then
            echo "it is not a host address (0.x, 127.x, multicast and broadcast are not)"
        fi
        ;;
    cidr)
        _v_bits=${_v_v#*/}
        if [ "$_v_bits" = "$_v_v" ] || ! so_v_uint "$_v_bits" || [ "$_v_bits" -lt 1 ] ||
            [ "$_v_bits" -gt 32 ] || ! so_v_quad "${_v_v%/*}"; then
            echo "it is not an IPv4 network in CIDR form (like 192.168.100.0/24)"
            return 0
        fi
        _v_addr=$(((_v_o1 << 24) + (_v_o2 << 16) + (_v_o3 << 8) + _v_o4))
        _v_host=$(((1 << (32 - _v_bits)) - 1))
        if [ $((_v_addr & _v_host)) -ne 0 ]; then
            echo "host bits are set (give the network address, like 192.168.100.0/24)"
        fi
        ;;
    int)
        if ! so_v_uint "$_v_v"; then
            echo "it is not a whole number"
        elif [ -n "$_v_min" ] && [ "$_v_v" -lt "$_v_min" ]; then
            echo "it is below $_v_min"
        elif [ -n "$_v_max" ] && [ "$_v_v" -gt "$_v_max" ]; then
            echo "it is above $_v_max"
        fi
        ;;
    name)
        case $_v_v in [!A-Za-z0-9]* | *[!A-Za-z0-9_.-]*)
            echo "it is not a name (letters, digits, '.', '_', '-'; a letter or digit first)"
            return 0
            ;;
        esac
        [ "${#_v_v}" -le 32 ] || echo "it is longer than 32 characters"
        ;;
    string)
        [ "${#_v_v}" -le 255 ] || echo "it is longer than 255 characters"
        ;;
    password)
        if [ -n "$_v_min" ] && [ "${#_v_v}" -lt "$_v_min" ]; then
            echo "it is shorter than $_v_min characters"
        elif [ "${#_v_v}" -gt 128 ]; then
            echo "it is longer than 128 characters"
        fi
        ;;
    interface)
        case $_v_v in [!A-Za-z]* | *[!A-Za-z0-9_.:-]*)
            echo "it is not a network interface name (like eth1)"
            return 0
            ;;
        esac
        [ "${#_v_v}" -le 15 ] || echo "it is longer than 15 characters"
        ;;
    device)
        case $_v_v in
        /dev/[A-Za-z0-9_]*) case $_v_v in *[!A-Za-z0-9_./-]* | */../* | */.. | *//* | */) ;; *)
            [ "${#_v_v}" -le 64 ] || echo "it is longer than 64 characters"
            return 0
            ;;
        esac ;;
        esac
        echo "it is not a device path (like /dev/sdb)"
        ;;
    choice)
        case $_v_v in *,*) _v_v=",," ;; esac # one choice, never a list of them
        case ",$_v_choices," in
        *",$_v_v,"*) ;;
        *) echo "it is not one of: $_v_choices" ;;
        esac
        ;;
    hostname)
        case $_v_v in -* | *- | *[!A-Za-z0-9-]*)
            echo "it is not a host name (letters, digits and '-', not first or last)"
            return 0
            ;;
        esac
        [ "${#_v_v}" -le 63 ] || echo "it is longer than 63 characters"
        ;;
    *)
        echo "unknown answer type '$_v_t'"
        ;;
    esac
    return 0
}
