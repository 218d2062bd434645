"""The installer probe's layer and its parser (tests/qemu/diprobe.py), without a VM: the status
stanzas main-menu reads, the postinst it runs, and the lines the probe prints."""

from __future__ import annotations

import gzip

from distro_builder.media.initrd import initrd_members, newc_archive, read_initrd_file
from tests.qemu.diprobe import Probe, QuestionState, parse_probe, with_probes

STATUS = b"Package: file-preseed\nStatus: install ok unpacked\nInstaller-Menu-Item: 1400\n\n"


def test_layer_adds_menu_items_around_the_installers_own() -> None:
    initrd = gzip.compress(newc_archive({"var/lib/dpkg/status": STATUS}))
    out = with_probes(
        initrd, [Probe("before", 1300, ("a/b",)), Probe("after", 1450, ("a/b", "c/d"))]
    )
    assert out.startswith(initrd)  # appended: d-i's own archive untouched
    status = read_initrd_file(out, "var/lib/dpkg/status")
    assert status is not None and status.startswith(STATUS.rstrip(b"\n"))
    stanzas = status.decode().split("\n\n")
    assert [s.splitlines()[0] for s in stanzas] == [
        "Package: file-preseed", "Package: di-probe-before", "Package: di-probe-after",
    ]  # fmt: skip
    assert "Installer-Menu-Item: 1450" in stanzas[2] and "Status: install ok unpacked" in stanzas[2]
    postinst = read_initrd_file(out, "var/lib/dpkg/info/di-probe-after.postinst")
    assert postinst == b"#!/bin/sh\nexec sh /di-probe/probe.sh after a/b c/d\n"
    modes = {m.name: m.mode & 0o777 for m in initrd_members(out)}
    assert modes["di-probe/probe.sh"] == modes["var/lib/dpkg/info/di-probe-after.postinst"] == 0o755


def test_parse_reads_one_probes_lines() -> None:
    text = (
        "noise DI-PROBE before x/y registered=0 target=0\r\n"
        "DI-PROBE after preseed/file=file:///s.seed\n"
        "DI-PROBE after x/y registered=1 seen=true len=0 type=string target=1\n"
        "DI-PROBE after end\n"
    )
    assert parse_probe(text, "before") == {"x/y": QuestionState(False)}
    assert parse_probe(text, "after") == {"x/y": QuestionState(True, "true", 0, "string", 1)}
