#!/usr/bin/python
# -*- coding: utf-8 -*-
"""Make the novarc in a Nova 2011.2 credentials zip safe to source: novarc.py ZIP.

Nova 2011.2 fills its novarc.template with Python's % (nova/auth/manager.py:751-780): the EC2
secret key (the admin_password answer) lands raw inside `export EC2_SECRET_KEY="%(secret)s"`
(nova/auth/novarc.template:2-3), so a `"`, `$`, backquote or backslash in it breaks the file or
runs as a command when it is sourced; the ec2-upload-bundle alias (template line 13) expands the
secret when it is defined, and the shell parses it again when the alias is used. This rewrites
every `export NAME="VALUE"` line as `export NAME='VALUE'` (a ' written '\\''), taking VALUE as
everything between the first `="` and the line's last `"` (the template's own quotes), and makes
the alias expand its variables, quoted, when it is used. Lines that are already safe, or that
are not the template's, are left as they are; running it again changes nothing. The zip is
replaced atomically (a temporary file beside it, then rename), its other members unchanged.

Python 2.6 (lucid) and 3: no 2.7 additions.
"""

from __future__ import print_function

import os
import re
import sys
import zipfile

MEMBER = 'novarc'  # FLAGS.credential_rc_file '%src' % 'nova' (nova/auth/manager.py:67, 715)
EXPORT_RE = re.compile(r'^export (\w+)="(.*)"$')
ALIAS_VAR_RE = re.compile(r"(?<!\\)\$\{(\w+)\}")


def sh_quote(value):
    return "'" + value.replace("'", "'\\''") + "'"


def safe_line(line):
    m = EXPORT_RE.match(line)
    if m:
        return 'export {0}={1}'.format(m.group(1), sh_quote(m.group(2)))
    if line.startswith('alias ') and '="' in line and line.endswith('"'):
        # alias x="... ${VAR} ..." -> alias x="... \"\${VAR}\" ...": expanded when used, quoted
        return ALIAS_VAR_RE.sub(lambda v: '\\"\\${' + v.group(1) + '}\\"', line)
    return line


def safe_novarc(text):
    return '\n'.join([safe_line(line) for line in text.split('\n')])


def rewrite(path):
    src = zipfile.ZipFile(path)
    try:
        infos = src.infolist()
        members = [(info, src.read(info.filename)) for info in infos]
    finally:
        src.close()
    names = [info.filename for info, data in members]
    if MEMBER not in names:
        raise SystemExit('novarc.py: {0} has no {1}'.format(path, MEMBER))
    tmp = path + '.tmp'
    out = zipfile.ZipFile(tmp, 'w', zipfile.ZIP_DEFLATED)
    try:
        for info, data in members:
            if info.filename == MEMBER:
                data = safe_novarc(data.decode('latin-1')).encode('latin-1')
            out.writestr(info, data)
    finally:
        out.close()
    os.chmod(tmp, 0o600)
    os.rename(tmp, path)


def main(argv):
    if len(argv) != 2:
        print('usage: novarc.py CREDENTIALS.zip', file=sys.stderr)
        return 2
    rewrite(argv[1])
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
