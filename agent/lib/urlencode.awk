# urlencode(s): RFC 3986 percent-encoding of everything but unreserved characters, as in a
# mysql:// URL. Loaded before render.awk and redact.awk (awk -f urlencode.awk -f ...). mawk/gawk.
function urlencode(s,    out, i, c) {
    out = ""
    for (i = 1; i <= length(s); i++) {
        c = substr(s, i, 1)
        if (c ~ /[A-Za-z0-9._~-]/) out = out c
        else out = out sprintf("%%%02X", ord[c])
    }
    return out
}
BEGIN { for (i = 1; i < 256; i++) ord[sprintf("%c", i)] = i }
