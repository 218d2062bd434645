"""The answer contract: question types and what a valid answer of each type is.

The same rules exist once in shell (questions/validate.sh, run by the installer under busybox ash
and by the node agent under dash/bash) and here, for deployment files and the Smart Installer.
tests/data/answer-validation.tsv holds the rows all three implementations must agree on.
"""

from __future__ import annotations

import re

from distro_builder.model import Question

QUESTION_TYPES = (
    "ipv4", "cidr", "int", "name", "string", "password", "interface", "device", "choice",
    "hostname",
)  # fmt: skip

_QUAD_RE = re.compile(r"(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})\."
                      r"(0|[1-9][0-9]{0,2})")  # fmt: skip
_UINT_RE = re.compile(r"0|[1-9][0-9]{0,8}")
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_INTERFACE_RE = re.compile(r"[A-Za-z][A-Za-z0-9_.:-]*")
_DEVICE_RE = re.compile(r"/dev/[A-Za-z0-9_][A-Za-z0-9_./-]*")
_HOSTNAME_RE = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


def _quad(text: str) -> tuple[int, ...] | None:
    m = _QUAD_RE.fullmatch(text)
    if m is None:
        return None
    octets = tuple(int(o) for o in m.groups())
    return octets if all(o <= 255 for o in octets) else None


def why_invalid(
    qtype: str,
    value: str,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    choices: tuple[str, ...] = (),
    optional: bool = False,
) -> str | None:
    """Why `value` is not a valid answer of `qtype`, or None when it is (validate.sh's rules)."""
    if value == "":
        return None if optional else "it is empty"
    if _CONTROL_RE.search(value):
        return "it contains a control character (a line break or a tab)"
    if qtype == "ipv4":
        quad = _quad(value)
        if quad is None:
            return "it is not an IPv4 address (like 10.0.0.1)"
        if quad[0] in (0, 127) or quad[0] >= 224:
            return "it is not a host address (0.x, 127.x, multicast and broadcast are not)"
    elif qtype == "cidr":
        addr, slash, bits = value.partition("/")
        quad = _quad(addr)
        if not slash or not _UINT_RE.fullmatch(bits) or not 1 <= int(bits) <= 32 or quad is None:
            return "it is not an IPv4 network in CIDR form (like 192.168.100.0/24)"
        number = (quad[0] << 24) | (quad[1] << 16) | (quad[2] << 8) | quad[3]
        if number & ((1 << (32 - int(bits))) - 1):
            return "host bits are set (give the network address, like 192.168.100.0/24)"
    elif qtype == "int":
        if not _UINT_RE.fullmatch(value):
            return "it is not a whole number"
        if minimum is not None and int(value) < minimum:
            return f"it is below {minimum}"
        if maximum is not None and int(value) > maximum:
            return f"it is above {maximum}"
    elif qtype == "name":
        if not _NAME_RE.fullmatch(value):
            return "it is not a name (letters, digits, '.', '_', '-'; a letter or digit first)"
        if len(value) > 32:
            return "it is longer than 32 characters"
    elif qtype == "string":
        if len(value) > 255:
            return "it is longer than 255 characters"
    elif qtype == "password":
        # A password's `minimum` is its fewest characters (role.yaml `min:`; README's policy).
        if minimum is not None and len(value) < minimum:
            return f"it is shorter than {minimum} characters"
        if len(value) > 128:
            return "it is longer than 128 characters"
    elif qtype == "interface":
        if not _INTERFACE_RE.fullmatch(value):
            return "it is not a network interface name (like eth1)"
        if len(value) > 15:
            return "it is longer than 15 characters"
    elif qtype == "device":
        if (
            not _DEVICE_RE.fullmatch(value)
            or "/../" in value
            or value.endswith(("/..", "/"))
            or "//" in value
        ):
            return "it is not a device path (like /dev/sdb)"
        if len(value) > 64:
            return "it is longer than 64 characters"
    elif qtype == "choice":
        if value not in choices:
            return f"it is not one of: {','.join(choices)}"
    elif qtype == "hostname":
        if not _HOSTNAME_RE.fullmatch(value):
            return "it is not a host name (letters, digits and '-', not first or last)"
        if len(value) > 63:
            return "it is longer than 63 characters"
    else:
        return f"unknown answer type '{qtype}'"
    return None


def validate_value(q: Question, value: str) -> str | None:
    """Why `value` is not a valid answer to question `q`, or None when it is."""
    return why_invalid(
        q.type,
        value,
        minimum=q.minimum,
        maximum=q.maximum,
        choices=q.choices,
        optional=q.optional,
    )
