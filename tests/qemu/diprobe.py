"""A probe inside the real Debian 12 installer: what its cdebconf holds, at chosen points of d-i's
main menu, printed on the serial line (tests/data/di-probe/probe.sh).

A probe is a udeb-less menu item: a stanza appended to the initrd's /var/lib/dpkg/status
(`Status: install ok unpacked`, an `Installer-Menu-Item` number) and its postinst. main-menu
configures the items in the order of their numbers, running each postinst under its debconf,
as it does for the initrd's own udebs (localechooser 1000, console-setup-udeb 1200,
file-preseed 1400, ethdetect 1700, netcfg 1800, network-preseed 2100 in Debian 12's netboot
initrd). A probe numbered 1300 therefore runs before file-preseed loads `file=...`, one numbered
1450 right after it. The layer is appended as one more gzip'd cpio archive (media/initrd.py): the
kernel unpacks it over the installer's own files, so d-i itself is unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from distro_builder.media.initrd import append_to_initrd, read_initrd_file

PROBE_SCRIPT = Path(__file__).resolve().parents[1] / "data" / "di-probe" / "probe.sh"
STATUS = "var/lib/dpkg/status"
_LINE = re.compile(
    r"DI-PROBE (\S+) (\S+) registered=([01])(?: seen=(\S+) len=(\d+) type=(\S+))? target=(\d+)"
)


@dataclass(frozen=True)
class Probe:
    stage: str  # a word: the probe's lines say `DI-PROBE <stage> ...`
    menu_item: int  # where main-menu runs it
    questions: tuple[str, ...]


@dataclass(frozen=True)
class QuestionState:
    registered: bool
    seen: str | None = None  # "true" / "false"
    length: int | None = None  # of the value; the value itself is never printed
    type: str | None = None  # the template's type
    target: int = 0  # preseed lines for it that go to the installed system's debconf


def with_probes(initrd: bytes, probes: Iterable[Probe]) -> bytes:
    """`initrd` plus the probe layer: the script, one status stanza and postinst per probe."""
    status = read_initrd_file(initrd, STATUS)
    assert status is not None, f"no {STATUS} in the initrd: not a d-i initrd"
    files: dict[str, bytes | tuple[bytes, int]] = {
        "di-probe/probe.sh": (PROBE_SCRIPT.read_bytes(), 0o755)
    }
    stanzas = []
    for p in probes:
        assert re.fullmatch(r"[a-z0-9-]+", p.stage), p.stage
        package = f"di-probe-{p.stage}"
        stanzas.append(
            f"Package: {package}\nStatus: install ok unpacked\nVersion: 1\n"
            f"Description: test probe: debconf state ({p.stage})\n"
            f"Installer-Menu-Item: {p.menu_item}\n"
        )
        postinst = f"#!/bin/sh\nexec sh /di-probe/probe.sh {p.stage} {' '.join(p.questions)}\n"
        files[f"var/lib/dpkg/info/{package}.postinst"] = (postinst.encode(), 0o755)
    files[STATUS] = status.rstrip(b"\n") + b"\n\n" + "\n".join(stanzas).encode()
    return append_to_initrd(initrd, files)


def parse_probe(text: str, stage: str) -> dict[str, QuestionState]:
    """The questions one probe reported in console `text`."""
    out = {}
    for m in _LINE.finditer(text):
        if m[1] != stage:
            continue
        if m[3] == "1":
            out[m[2]] = QuestionState(True, m[4], int(m[5]), m[6], int(m[7]))
        else:
            out[m[2]] = QuestionState(False, target=int(m[7]))
    return out
