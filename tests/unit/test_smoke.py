"""qa/smoke.py without QEMU: label patterns, command-line edits, menu order, reports, JUnit."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from distro_builder.cli.qa import _print_report
from distro_builder.imagemodel import BootMenu, MenuEntry
from distro_builder.qa.console import strip_ansi
from distro_builder.qa.menucheck import compare_menu, parse_manifest
from distro_builder.qa.smoke import (
    NOT_FULL,
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


def _report(*, passing: bool = False, warning: str = "") -> SmokeReport:
    fail = SmokeStage("boot", "fail", 3.5, 0.7, "Stage 'boot': no kernel\n  | Could not find")
    later = "stage 'boot' failed"
    if passing:
        fail = SmokeStage("boot", "pass", 3.5, 0.7)
        later = ""
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
                    SmokeStage("menu", "pass", 0.7, 0.0, warning),
                    fail,
                    SmokeStage("preseed", "pass", 30.0, 4.2)
                    if passing
                    else SmokeStage("preseed", "skipped", message=later),
                    SmokeStage("install", "skipped", message=later or NOT_FULL),
                    SmokeStage("firstboot", "skipped", message=later or NOT_FULL),
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
    assert root.get("skipped") == "3"
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


# --- stage 1 without QEMU: the menu against the build manifest ---------------------------------

KERNEL, INITRD = "/install/vmlinuz", "/install/initrd.gz"
MANIFEST = {
    "base": {"menu_style": "lucid"},
    "options": {"default_entry": "all-in-one"},
    "entries": [
        {"name": "all-in-one", "label": "Install StackOps all-in-one",
         "roles": ["controller", "network", "volume", "compute"]},
        {"name": "compute", "label": "Install StackOps compute node", "roles": ["compute"]},
    ],
}  # fmt: skip


def _so(label: str, menu_label: str, roles: str, *, advanced: bool = False, **kw) -> MenuEntry:
    """A StackOps entry as media/menu.py writes it (expert variant in the advanced submenu)."""
    fields = {
        "label": label,
        "menu_label": menu_label,
        "kernel": KERNEL,
        "initrd": INITRD,
        "append": f"file=/cdrom/preseed/x.seed stackops/roles={roles} initrd={INITRD} ---",
        "config_file": "/isolinux/adtext.cfg" if advanced else "/isolinux/text.cfg",
        "submenu": "Advanced options" if advanced else None,
    }
    return MenuEntry(**{**fields, **kw})


def _built_menu(*, drop: str = "", replace: dict[str, MenuEntry] | None = None, extra=()):
    """The menu a build of MANIFEST writes, with one entry dropped or replaced, or extras."""
    entries = [
        _so("all-in-one", "Install StackOps all-in-one", "controller,network,volume,compute"),
        _so("compute", "Install StackOps compute node", "compute"),
        MenuEntry("install", "Install Ubuntu Server", KERNEL, INITRD,
                  f"file=/cdrom/preseed/ubuntu-server.seed initrd={INITRD} quiet --",
                  "/isolinux/text.cfg"),
        _so("all-in-one-expert", "Install StackOps all-in-one (expert mode)",
            "controller,network,volume,compute", advanced=True),
        _so("compute-expert", "Install StackOps compute node (expert mode)", "compute",
            advanced=True),
        *extra,
    ]  # fmt: skip
    entries = [(replace or {}).get(e.label, e) for e in entries if e.label != drop]
    return BootMenu(
        files=("/isolinux/isolinux.cfg", "/isolinux/text.cfg", "/isolinux/adtext.cfg"),
        default="all-in-one",
        timeout=0,
        prompt=0,
        ui="menu.c32",
        serial="0 115200",
        gfxboot=None,
        entries=tuple(entries),
    )


def test_menu_as_built_matches_its_manifest() -> None:
    check = compare_menu(_built_menu(), MANIFEST)
    assert check.ok, check.problems
    assert check.warning is None
    # top-level and advanced entries are both expected, with the installer's kernel and initrd
    assert [(x.label, x.advanced, x.kernel) for x in check.expected] == [
        ("all-in-one", False, KERNEL),
        ("all-in-one-expert", True, KERNEL),
        ("compute", False, KERNEL),
        ("compute-expert", True, KERNEL),
    ]


@pytest.mark.parametrize("dropped", ["compute", "compute-expert"])
def test_entry_missing_from_the_menu_is_named(dropped: str) -> None:
    check = compare_menu(_built_menu(drop=dropped), MANIFEST)
    assert not check.ok and check.missing == (dropped,)
    first = check.message().splitlines()[0]
    assert first.startswith(f"Stage 'menu': missing {dropped} ")
    assert f"missing: {dropped!r} ('Install StackOps compute node" in check.message()


def test_stackops_entry_the_manifest_does_not_list_is_extra() -> None:
    storage = _so("storage", "Install StackOps storage node", "volume")
    plain = MenuEntry("memtest", "Test memory", "/install/mt86plus", None, "", "/isolinux/text.cfg")
    check = compare_menu(_built_menu(extra=(storage, plain)), MANIFEST)
    assert check.extra == ("storage",)  # an entry without stackops/roles= is the base's
    assert "extra storage" in check.message().splitlines()[0]
    assert "'storage' ('Install StackOps storage node', roles volume" in check.message()


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"menu_label": "Install StackOps compute"},
         "label 'Install StackOps compute', the build made 'Install StackOps compute node'"),
        ({"kernel": "/install/vmlinuz-x"},
         "kernel /install/vmlinuz-x, the build made /install/vmlinuz"),
        ({"initrd": "/install/other.gz"},
         "initrd /install/other.gz, the build made /install/initrd.gz"),
        ({"append": "stackops/roles=network initrd=/install/initrd.gz ---"},
         "roles network, the build made roles compute"),
        ({"append": "initrd=/install/initrd.gz ---"},
         "no stackops/roles=, the build made roles compute"),
        ({"hidden": True}, "in no menu (menu hide), the build put it in the top-level menu"),
        ({"submenu": "Advanced options"},
         "in the advanced submenu, the build put it in the top-level menu"),
    ],
    ids=["label", "kernel", "initrd", "roles", "no-roles", "hidden", "moved"],
)  # fmt: skip
def test_changed_entry_names_the_field(change: dict[str, object], said: str) -> None:
    fields = dict(change)
    menu_label = str(fields.pop("menu_label", "Install StackOps compute node"))
    compute = _so("compute", menu_label, "compute", **fields)
    check = compare_menu(_built_menu(replace={"compute": compute}), MANIFEST)
    assert check.changed == ("compute",) and not check.missing and not check.extra
    assert check.message().splitlines()[0].startswith("Stage 'menu': changed compute ")
    assert said in check.message()


def test_roles_in_another_order_and_hotkey_marker_are_no_change() -> None:
    aio = _so("all-in-one", "Install ^StackOps all-in-one", "compute,volume,network,controller")
    assert compare_menu(_built_menu(replace={"all-in-one": aio}), MANIFEST).ok


def test_default_entry_changed() -> None:
    menu = _built_menu()
    check = compare_menu(BootMenu(**{**_asdict(menu), "default": "compute"}), MANIFEST)
    assert "the menu's default is 'compute', the build made 'all-in-one'" in check.message()


def test_no_advanced_file_no_expert_entries_expected() -> None:
    menu = _built_menu(drop="compute-expert")
    menu = BootMenu(**{
        **_asdict(menu),
        "files": ("/isolinux/isolinux.cfg", "/isolinux/text.cfg"),
        "entries": tuple(e for e in menu.entries if e.submenu is None),
    })  # fmt: skip
    check = compare_menu(menu, MANIFEST)
    assert check.ok and not any(x.advanced for x in check.expected)
    # a menu that still includes the advanced file, now missing, had one: its entries are missing
    menu = BootMenu(**{**_asdict(menu), "missing_includes": ("/isolinux/adtext.cfg",)})
    assert compare_menu(menu, MANIFEST).missing == ("all-in-one-expert", "compute-expert")


def test_every_problem_is_named_at_once() -> None:
    storage = _so("storage", "Install StackOps storage node", "volume")
    aio = _so("all-in-one", "Install StackOps all-in-one", "controller", kernel="/k")
    check = compare_menu(
        _built_menu(drop="compute", replace={"all-in-one": aio}, extra=(storage,)), MANIFEST
    )
    first = check.message().splitlines()[0]
    assert first == (
        "Stage 'menu': missing compute; extra storage; changed all-in-one "
        "(the boot menu against the build manifest)"
    )
    assert len(check.problems) == 3


def test_without_a_manifest_it_says_it_cannot_know() -> None:
    check = compare_menu(_built_menu(drop="compute"), None)
    assert check.ok and check.manifest is None and not check.expected
    assert check.warning is not None
    assert "no build manifest (/.disk/stackops-build.json)" in check.warning
    assert "cannot know which entries to expect" in check.warning
    assert "checks only the 3 StackOps entries this menu lists" in check.warning


@pytest.mark.parametrize(
    ("text", "why"),
    [("{", "Expecting"), ("[]", "no 'entries' list"), ('{"entries": 3}', "no 'entries' list")],
)
def test_unreadable_manifest(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse_manifest(text)


def test_manifest_entry_without_fields_is_a_problem() -> None:
    manifest = {**MANIFEST, "entries": [*MANIFEST["entries"], {"name": "x"}]}
    check = compare_menu(_built_menu(), manifest)
    assert check.problems == ("manifest entry 3 lacks name, label or roles: {'name': 'x'}",)


def _asdict(menu: BootMenu) -> dict[str, object]:
    return {f: getattr(menu, f) for f in BootMenu.__slots__}


# --- the report says what ran ------------------------------------------------------------------


def test_summary_counts_what_ran() -> None:
    report = _report()
    assert report.counts() == {"total": 5, "ran": 2, "passed": 1, "failed": 1, "skipped": 3}
    assert report.summary == "2 of 5 stages ran, 1 passed, 1 failed, 3 skipped"
    doc = report.to_json()
    assert doc["summary"] == report.summary and doc["stage_counts"] == report.counts()
    ok = _report(passing=True)
    assert ok.summary == "3 of 5 stages ran, 3 passed, 2 skipped"


def test_passed_stage_with_a_warning() -> None:
    report = _report(passing=True, warning="no build manifest: cannot know")
    assert report.passed and report.warnings == ("no build manifest: cannot know",)
    root = ET.fromstring(junit_xml(report))
    menu = root.find("testsuite/testcase")
    assert menu is not None and menu.find("failure") is None and menu.find("skipped") is None
    assert menu.findtext("system-out") == "warning: no build manifest: cannot know"
    assert report.to_json()["warnings"] == ["no build manifest: cannot know"]


def test_terminal_report_shows_skips_with_reasons_warnings_and_the_count(capsys) -> None:
    _print_report(_report(passing=True, warning="no build manifest: cannot know"), None)
    out = capsys.readouterr().out
    rows = {ln.split()[1]: ln for ln in out.splitlines() if ln.startswith("compute ")}
    assert "PASS" in rows["menu"] and "warning: no build manifest" in rows["menu"]
    assert rows["install"].split()[2] == "skipped" and NOT_FULL in rows["install"]
    assert "warning: no build manifest: cannot know" in out.splitlines()
    assert out.rstrip().endswith("smoke PASSED in 12.0 s: 3 of 5 stages ran, 3 passed, 2 skipped")


def test_terminal_report_shows_one_failure_shared_by_entries_once(capsys) -> None:
    menu_fail = SmokeStage("menu", "fail", message="Stage 'menu': missing compute (...)\n  - x")
    skipped = SmokeStage("boot", "skipped", message="stage 'menu' failed")
    report = SmokeReport(
        iso="/x.iso", accel="none", accel_note="no VM started", full=False, log_dir="/logs",
        entries=tuple(EntryReport(n, n, n, (menu_fail, skipped), ()) for n in ("a", "b")),
    )  # fmt: skip
    _print_report(report, None)
    out = capsys.readouterr().out
    assert out.count("Stage 'menu': missing compute (...)\n  - x") == 1
    assert "FAILED a, b / stage menu:" in out
    assert "console logs: none (no VM started)" in out
    assert "smoke FAILED in 0.0 s: 2 of 4 stages ran, 0 passed, 2 failed, 2 skipped" in out
