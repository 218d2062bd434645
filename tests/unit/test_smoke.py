"""qa/smoke.py without QEMU: label patterns, command-line edits, menu order, reports, JUnit."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from distro_builder.model import BootMenu, MenuEntry
from distro_builder.qa.console import strip_ansi
from distro_builder.qa.smoke import (
    EntryReport,
    SmokeReport,
    SmokeStage,
    _cmdline_edits,
    _menu_items,
    entry_roles,
    junit_xml,
    label_pattern,
)


@pytest.mark.parametrize(
    ("raw", "screen"),
    [
        ("^Install StackOps compute node", "│ Install StackOps compute node │"),
        # hotkey letter arriving apart (SeaBIOS sercon) or not at all
        ("^Install StackOps compute node", "│ I nstall StackOps compute node"),
        ("^Install StackOps compute node", "│ nstall StackOps compute node"),
        ("Install StackOps ^controller node", "Install StackOps controller node"),
        # lucid's `menu width 49` cuts long labels
        ("Install Ubuntu ^Enterprise Cloud", "│ Install Ubuntu Enterprise Cl │"),
        ("Help", " Help "),
    ],
)
def test_label_pattern_matches_how_menu_c32_draws(raw: str, screen: str) -> None:
    assert label_pattern(raw).search(screen)


@pytest.mark.parametrize(
    ("raw", "screen"),
    [
        ("^Install StackOps compute node", "Install StackOps controller node"),
        ("^Install StackOps compute node", "Install Stac"),  # a menu too narrow for it
        ("Install StackOps ^controller node", "Install StackOps compute node"),
    ],
)
def test_label_pattern_rejects_other_text(raw: str, screen: str) -> None:
    assert not label_pattern(raw).search(screen)


def test_label_pattern_on_a_real_menu_c32_draw() -> None:
    # bytes as ISOLINUX 6.04 menu.c32 sent them on the serial line (from a test boot log)
    raw = (
        "\x1b[16;22H\x1b[0;30;44m\x0ex\x0f\x1b[0;7;37;40m \x1b[0;1;7;37;40mI\x1b[0;7;37;40m"
        "nstall StackOps compute node \x1b[0;30;44m\x0ex\x0f\x1b[17;22H"
    )
    assert label_pattern("^Install StackOps compute node").search(strip_ansi(raw))


@pytest.mark.parametrize(
    ("append", "erase", "typed"),
    [
        # a QA entry: console= present, no quiet: nothing to do
        ("stackops/roles=compute initrd=/install/initrd.gz --- console=ttyS0,115200n8", 0, ""),
        # lucid: `quiet --`; what follows a bare `--` goes to init, so insert before it
        (
            "stackops/roles=controller initrd=/install/initrd.gz quiet --",
            3,
            " console=ttyS0,115200n8 loglevel=7 --",
        ),
        # `---` is no separator for the kernel: append at the end
        ("stackops/roles=compute quiet --- console=tty0", 0, " console=ttyS0,115200n8 loglevel=7"),
        ("stackops/roles=compute console=ttyS0,115200n8 quiet ---", 0, " loglevel=7"),
    ],
)
def test_cmdline_edits(append: str, erase: int, typed: str) -> None:
    assert _cmdline_edits(append) == (erase, typed)


def _entry(label: str, append: str = "", *, submenu: str | None = None, hidden: bool = False):
    return MenuEntry(
        label=label,
        menu_label=label.title(),
        kernel="/install/vmlinuz",
        initrd="/install/initrd.gz",
        append=append,
        config_file="/isolinux/text.cfg",
        submenu=submenu,
        hidden=hidden,
    )


def test_menu_items_follow_what_menu_c32_lists() -> None:
    menu = BootMenu(
        files=("/isolinux/text.cfg",),
        default="install",
        timeout=0,
        prompt=0,
        ui="menu.c32",
        serial="0 115200",
        gfxboot=None,
        entries=(
            _entry("install"),
            _entry("compute", "stackops/roles=compute"),
            _entry("mainmenu", submenu="Advanced options"),
            _entry("rescue", submenu="Advanced options"),
            _entry("expert", hidden=True),
            _entry("help"),
        ),
    )
    texts = {"/isolinux/text.cfg": "label compute\n  menu label ^Compute node\n"}
    items = _menu_items(menu, texts)
    # one line for the submenu, none for the hidden entry
    assert [(i.label, i.text) for i in items] == [
        ("install", "Install"),
        ("compute", "Compute"),
        (None, "Advanced options"),
        ("help", "Help"),
    ]
    assert items[1].raw == "^Compute node"


def test_entry_roles() -> None:
    assert entry_roles(_entry("a", "x stackops/roles=compute,network y")) == "compute,network"
    assert entry_roles(_entry("a", "stackops/roles= ---")) == ""
    assert entry_roles(_entry("a", "quiet --")) is None


def _report() -> SmokeReport:
    fail = SmokeStage("boot", "fail", 3.5, 0.7, "Stage 'boot': no kernel\n  | Could not find")
    return SmokeReport(
        iso="/x.iso",
        accel="tcg",
        accel_note="requested tcg",
        full=True,
        log_dir="/logs",
        seconds=12.0,
        entries=(
            EntryReport(
                "compute",
                "Install StackOps compute node",
                "compute",
                (
                    SmokeStage("menu", "pass", 0.7, 0.0),
                    fail,
                    SmokeStage("preseed", "skipped", message="stage 'boot' failed"),
                    SmokeStage("install", "skipped", message="stage 'boot' failed"),
                    SmokeStage("firstboot", "skipped", message="stage 'boot' failed"),
                ),
                ("/logs/compute.log",),
            ),
        ),
    )


def test_report_pass_fail_and_json() -> None:
    report = _report()
    assert not report.passed and not report.entries[0].passed
    doc = report.to_json()
    assert doc["passed"] is False
    stages = doc["entries"][0]["stages"]  # type: ignore[index]
    assert [s["status"] for s in stages] == ["pass", "fail", "skipped", "skipped", "skipped"]
    assert stages[1]["message"].startswith("Stage 'boot'")


def test_junit_one_suite_per_entry_one_case_per_stage() -> None:
    root = ET.fromstring(junit_xml(_report()))
    assert root.tag == "testsuites" and root.get("failures") == "1" and root.get("tests") == "5"
    (suite,) = root.findall("testsuite")
    assert suite.get("name") == "smoke.compute"
    assert suite.get("failures") == "1" and suite.get("skipped") == "3"
    cases = suite.findall("testcase")
    assert [c.get("name").split(":")[0] for c in cases] == [
        "1-menu",
        "2-boot",
        "3-preseed",
        "4-install",
        "5-firstboot",
    ]
    failure = cases[1].find("failure")
    assert failure is not None and failure.get("message") == "Stage 'boot': no kernel"
    assert "Could not find" in (failure.text or "")  # the console tail is in the body
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["console_log"] == "/logs/compute.log" and props["accel"] == "tcg"
