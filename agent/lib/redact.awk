# Replace each secret (environment SO_R1..SO_R5) and its URL-encoded form by "*****".
# Secrets come from the environment so they never appear on a command line. mawk/gawk.
# Needs urlencode.awk loaded first (awk -f urlencode.awk -f redact.awk).
function cut(line, s,    out, p) {
    out = ""
    while ((p = index(line, s)) > 0) {
        out = out substr(line, 1, p - 1) "*****"
        line = substr(line, p + length(s))
    }
    return out line
}
BEGIN {
    n = 0
    for (i = 1; i <= 5; i++) {
        s = ENVIRON["SO_R" i]
        if (s == "") continue
        sec[++n] = s
        e = urlencode(s)
        if (e != s) sec[++n] = e
    }
}
{
    line = $0
    for (i = 1; i <= n; i++) line = cut(line, sec[i])
    print line
    fflush()
}
