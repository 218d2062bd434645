# Fill a template: @name@ becomes the environment variable SO_V_name, @name|url@ its URL-encoded
# form (for passwords inside mysql:// URLs). Values come from the environment, never argv.
# With -v flags=1 a line `--flag=` whose value came out empty is dropped (an unset flag), and a $
# in a value is written $$ (Nova's flag substitution).
# Comment lines (# first) are copied as they are. Needs urlencode.awk loaded first
# (awk -f urlencode.awk -f render.awk).
/^#/ { print; next }
{
    line = $0
    out = ""
    while ((p = index(line, "@")) > 0) {
        rest = substr(line, p + 1)
        q = index(rest, "@")
        name = substr(rest, 1, q - 1)
        if (q == 0 || name !~ /^[a-z_][a-z0-9_]*(\|url)?$/) {
            out = out substr(line, 1, p)
            line = rest
            continue
        }
        filter = ""
        if (name ~ /\|url$/) { filter = "url"; name = substr(name, 1, length(name) - 4) }
        if (!(("SO_V_" name) in ENVIRON)) {
            printf "template %s line %d: no value for @%s@\n", FILENAME, FNR, name > "/dev/stderr"
            bad = 1
        }
        v = ENVIRON["SO_V_" name]
        if (filter == "url") v = urlencode(v)
        # Nova 2011.2 reads every string flag through string.Template(val).substitute()
        # (nova/flags.py:136-143): a literal $ must be written $$ (Template turns $$ into $).
        if (flags) gsub(/\$/, "$$", v)
        out = out substr(line, 1, p - 1) v
        line = substr(rest, q + 1)
    }
    out = out line
    if (flags && out ~ /^--[a-z_0-9]+=$/) next
    print out
}
END { if (bad) exit 1 }
