#!/bin/sh
# Test double for the agent's boundary commands (see tests/integration/rootfs.py): appends its
# argv to /stackops-test/actions and its stdin to /stackops-test/stdin, then acts on the first
# rule in /stackops-test/rules (TAB-separated: code, sh glob over "name args", output file)
# that matches: print the output file, then exit with the code; `kill` kills the agent's whole
# process group (a power cut); `pass` runs the real tool; `create=PATH` copies the output file to
# PATH (what the real tool would have written) and exits 0. No rule: exit 0.
dir=/stackops-test
name=${0##*/}
line="$name $*"
printf '%s\n' "$line" >>"$dir/actions"
if [ ! -t 0 ]; then
    { printf '>>> %s\n' "$line"; cat; } >>"$dir/stdin"
fi
tab=$(printf '\t')
while IFS=$tab read -r code pattern out; do
    # shellcheck disable=SC2254 # the pattern is a glob on purpose
    case $line in
    $pattern)
        case $code in
        create=*)
            cp "$out" "${code#create=}"
            exit 0
            ;;
        esac
        [ -z "$out" ] || cat "$out"
        case $code in
        kill) kill -KILL 0 ;;
        pass)
            for d in /usr/bin /usr/sbin /bin /sbin; do
                [ -x "$d/$name" ] && exec "$d/$name" "$@"
            done
            exit 127
            ;;
        esac
        [ "$code" = 0 ] || echo "$name: injected failure (exit $code)" >&2
        exit "$code"
        ;;
    esac
done <"$dir/rules"
exit 0
