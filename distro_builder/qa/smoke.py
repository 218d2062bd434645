"""The QA smoke plan: boot a disc in QEMU and walk each StackOps boot entry through its stages.

Stages, each with its own timeout (scaled by `timeout_scale` and DISTRO_BUILDER_TIMEOUT_MULTIPLIER)
and wall time:

1. menu       the boot menu shows every StackOps entry (its menu label, hotkey letter aside);
2. boot       the entry is selected over the serial line (arrow keys counted from the menu order)
              and the kernel prints a `Command line:` holding the entry's `stackops/roles=`;
3. preseed    the installer ran our initrd preseed: `STACKOPS-PRESEED roles=<roles>`;
4. install    (--full) the install finishes (`STACKOPS-LATE done`) and the guest reboots;
5. firstboot  (--full) booted from its disk, the agent reports `STACKOPS-FIRSTBOOT done`.

A StackOps entry is one whose append line has `stackops/roles=`; it is named by its isolinux
label. Stage 1 first compares the disc's menu files with the build manifest the build put on the
disc (qa/menucheck.py: every entry missing, extra or changed is named) before any VM starts; when
they differ, nothing boots and stage 1 fails for every entry asked for. Then, in QEMU, the menu
must show each StackOps entry of the top-level menu. A disc without a manifest passes stage 1
with a warning that says what could not be checked. Stages 4-5 need a real installer: a netboot
initrd (the demo base's Debian 12 installer) cannot install from the disc, so they are skipped
with that reason; without `full` they are skipped as not asked for. A stage that did not run is
reported as skipped with its reason, never as passed. QEMU runs with -no-reboot: a reboot before the
install ends is a failure. QEMU never outlives a stage, also on Ctrl-C, and a temporary install
disk is removed unless `keep`.
"""

from __future__ import annotations

import logging
import re
import shutil
import struct
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree as ET

from distro_builder.errors import DistroBuilderError, SmokeTestError
from distro_builder.imagemodel import BootMenu, EntryKind, MenuEntry
from distro_builder.log import step
from distro_builder.media.initrd import list_initrd, read_initrd_file
from distro_builder.media.iso import IsoImage
from distro_builder.media.layout import read_boot_menu
from distro_builder.qa.console import TAIL_LINES, SerialConsole
from distro_builder.qa.menucheck import (
    BUILD_MANIFEST,
    ExpectedEntry,
    MenuCheck,
    compare_menu,
    entry_roles,
    parse_manifest,
)
from distro_builder.qa.qemu import KVM_DEVICE, choose_accel, qemu_argv
from distro_builder.run import require_tool, run

log = logging.getLogger(__name__)

STAGES: tuple[str, ...] = ("menu", "boot", "preseed", "install", "firstboot")
STAGE_TITLES = {
    "menu": "boot menu lists every StackOps entry",
    "boot": "entry selected, kernel started with its roles",
    "preseed": "installer loaded our preseed",
    "install": "install ran to the end and rebooted",
    "firstboot": "first-boot agent configured the roles",
}
# Seconds, before scaling: generous for TCG on a busy 2-core machine. Measured on the demo-based
# test disc under TCG: menu 0.5 s, kernel command line 14 s, preseed marker 40 s after start.
TIMEOUTS: dict[str, float] = {
    "menu": 60,
    "boot": 120,
    "preseed": 180,
    "install": 5400,
    "firstboot": 2400,
}
KEY_TIMEOUT = 10.0  # seconds for the menu to redraw after one arrow key
NEXT_ENTRY_TIMEOUT = 5.0  # the menu is drawn at once: later entries follow the first quickly
MENU_ROWS_DEFAULT = 12  # menu.c32's default `menu rows`
LABEL_MATCH_CHARS = 28  # lucid's `menu width 49` + `menu margin 8` shows this many characters
TYPE_DELAY = 0.05  # seconds per typed character (SeaBIOS's keyboard buffer holds 15 keys)
INSTALL_DISK_SIZE = "8G"
MEMORY_MB = 1024

PRESEED_MARKER = "STACKOPS-PRESEED"
LATE_MARKER = "STACKOPS-LATE done"
FIRSTBOOT_DONE = "STACKOPS-FIRSTBOOT done"
FIRSTBOOT_FAILED = "STACKOPS-FIRSTBOOT failed"
CD_INSTALLER_MARK = "var/lib/dpkg/info/cdrom-detect.postinst"

_CMDLINE_RE = re.compile(r"Command line: ?([^\n]*)\n")
_PRESEED_RE = re.compile(PRESEED_MARKER + r" roles=(\S*)[ \t]*\n")
# a d-i dialog title ("┤ [!!] Select a language ├"): the installer asks a question
_DI_QUESTION_RE = re.compile(r"┤ (\[(?:!!|!|\?|\.)\] [^├\n]*?) ?├")
# ISOLINUX 6 under menu.c32 prints "Loading /x... failed: ..." and redraws the menu; at its own
# boot: prompt (and in older versions) it says "Could not find kernel image: /x"
_NO_KERNEL = re.compile(r"Loading \S+\.\.\. ?failed[^\n]*|Could not find kernel image[^\n]*")
_LABEL_RE = re.compile(r"^\s*label\s+(\S+)", re.IGNORECASE)
_MENU_LABEL_RE = re.compile(r"^\s*menu\s+label\s+(.*?)\s*$", re.IGNORECASE)

PASS, FAIL, SKIPPED = "pass", "fail", "skipped"
NOT_FULL = "not asked for: stages 4-5 run with --full"


# --- report --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SmokeStage:
    """One stage of one entry: status pass/fail/skipped, wall seconds, what went wrong or why."""

    name: str
    status: str
    seconds: float = 0.0
    started_at: float | None = None  # seconds since QEMU start; None: no VM ran it
    # fail: the error (with the last console lines and the log path when a VM ran);
    # skipped: why it did not run; pass: a warning about what it could not check, or ""
    message: str = ""

    @property
    def summary(self) -> str:
        return self.message.splitlines()[0] if self.message else ""


@dataclass(frozen=True, slots=True)
class EntryReport:
    label: str
    menu_label: str
    roles: str
    stages: tuple[SmokeStage, ...]
    logs: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return all(s.status != FAIL for s in self.stages)


@dataclass(frozen=True, slots=True)
class SmokeReport:
    iso: str
    accel: str
    accel_note: str
    full: bool
    log_dir: str
    entries: tuple[EntryReport, ...]
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return all(e.passed for e in self.entries)

    def counts(self) -> dict[str, int]:
        """Stages in all, how many ran (passed or failed), passed, failed, skipped."""
        stages = [s for e in self.entries for s in e.stages]
        n = {st: sum(1 for s in stages if s.status == st) for st in (PASS, FAIL, SKIPPED)}
        return {
            "total": len(stages),
            "ran": n[PASS] + n[FAIL],
            "passed": n[PASS],
            "failed": n[FAIL],
            "skipped": n[SKIPPED],
        }

    @property
    def summary(self) -> str:
        """'3 of 5 stages ran, 3 passed, 2 skipped' (failed named when there are any)."""
        c = self.counts()
        parts = [f"{c['ran']} of {c['total']} stages ran", f"{c['passed']} passed"]
        if c["failed"]:
            parts.append(f"{c['failed']} failed")
        if c["skipped"]:
            parts.append(f"{c['skipped']} skipped")
        return ", ".join(parts)

    @property
    def warnings(self) -> tuple[str, ...]:
        """What passed stages could not check, each once."""
        seen = (s.message for e in self.entries for s in e.stages if s.status == PASS)
        return tuple(dict.fromkeys(m for m in seen if m))

    def to_json(self) -> dict[str, object]:
        return {
            "iso": self.iso,
            "accel": self.accel,
            "accel_note": self.accel_note,
            "full": self.full,
            "log_dir": self.log_dir,
            "passed": self.passed,
            "seconds": round(self.seconds, 1),
            "summary": self.summary,
            "stage_counts": self.counts(),
            "warnings": list(self.warnings),
            "entries": [
                {
                    "label": e.label,
                    "menu_label": e.menu_label,
                    "roles": e.roles,
                    "passed": e.passed,
                    "logs": list(e.logs),
                    "stages": [
                        {
                            "name": s.name,
                            "status": s.status,
                            "seconds": round(s.seconds, 1),
                            "started_at": None if s.started_at is None else round(s.started_at, 1),
                            "message": s.message,
                        }
                        for s in e.stages
                    ],
                }
                for e in self.entries
            ],
        }


def junit_xml(report: SmokeReport) -> str:
    """JUnit XML: one testsuite per entry, one testcase per stage."""
    suites = ET.Element(
        "testsuites",
        name="distro-builder smoke",
        tests=str(sum(len(e.stages) for e in report.entries)),
        failures=str(sum(1 for e in report.entries for s in e.stages if s.status == FAIL)),
        skipped=str(sum(1 for e in report.entries for s in e.stages if s.status == SKIPPED)),
        time=f"{report.seconds:.1f}",
    )
    for e in report.entries:
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=f"smoke.{e.label}",
            tests=str(len(e.stages)),
            failures=str(sum(1 for s in e.stages if s.status == FAIL)),
            skipped=str(sum(1 for s in e.stages if s.status == SKIPPED)),
            time=f"{sum(s.seconds for s in e.stages):.1f}",
        )
        props = ET.SubElement(suite, "properties")
        for key, value in (
            ("iso", report.iso),
            ("accel", report.accel),
            ("roles", e.roles),
            ("menu_label", e.menu_label),
            *(("console_log", p) for p in e.logs),
        ):
            ET.SubElement(props, "property", name=key, value=value)
        for i, s in enumerate(e.stages, start=1):
            case = ET.SubElement(
                suite,
                "testcase",
                classname=f"smoke.{e.label}",
                name=f"{i}-{s.name}: {STAGE_TITLES[s.name]}",
                time=f"{s.seconds:.1f}",
            )
            if s.status == FAIL:
                failure = ET.SubElement(case, "failure", message=s.summary, type="SmokeTestError")
                failure.text = s.message
            elif s.status == SKIPPED:
                ET.SubElement(case, "skipped", message=s.message)
            elif s.message:  # passed, with a warning about what it could not check
                ET.SubElement(case, "system-out").text = f"warning: {s.message}"
        if e.logs:
            ET.SubElement(suite, "system-out").text = "console logs: " + ", ".join(e.logs)
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, "unicode") + "\n"


# --- the plan (no QEMU) --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MenuItem:
    """One line of the top-level menu as menu.c32 lists it: an entry or a submenu."""

    text: str  # as displayed (hotkey marker removed)
    raw: str  # with the '^' hotkey marker, as written in the cfg file
    label: str | None  # isolinux label; None for a submenu line


@dataclass(frozen=True, slots=True)
class SmokePlan:
    iso: Path
    menu: BootMenu
    items: tuple[MenuItem, ...]  # the top-level menu, in order
    start: int  # index of the item selected when the menu appears (the default)
    rows: int  # menu rows shown before scrolling
    stackops: tuple[MenuEntry, ...]  # every StackOps entry (expected in the menu)
    chosen: tuple[MenuEntry, ...]  # the entries to boot
    serial: bool  # the disc's isolinux talks to the serial port itself
    full_reason: str | None  # why stages 4-5 cannot run on this disc (None: they can)
    menu_check: MenuCheck  # the menu files against the build manifest
    # entries asked for that the manifest lists and the menu lacks (only when menu_check failed)
    absent: tuple[ExpectedEntry, ...] = ()


def plan_smoke(
    iso: Path,
    *,
    entries: Sequence[str] | None = None,
    all_entries: bool = False,
    full: bool = False,
) -> SmokePlan:
    """Read the disc's boot menu and decide what to boot; SmokeTestError before any VM starts.

    With `full`, also decide whether the installer can install from the disc (stages 4-5).
    The menu is compared with the build manifest here (stage 1 without QEMU); when they differ,
    the entries asked for that the menu lacks are in `absent`, and nothing is booted.
    """
    with IsoImage(iso) as image:
        image.require_bootable()
        menu = read_boot_menu(image)
        texts = {path: image.read_text(path) or "" for path in menu.files}
        check = _check_menu(image, menu)
        stackops = tuple(e for e in menu.entries if entry_roles(e) is not None)
        expected = {x.label: x for x in check.expected}
        absent: tuple[ExpectedEntry, ...] = ()
        if not check.ok:
            # what the menu lacks is reported as stage 1 failing for it, not as a usage error
            if all_entries:
                absent = tuple(
                    x for x in check.expected if not x.advanced and x.label in check.missing
                )
            elif entries:
                absent = tuple(expected[n] for n in entries if n in check.missing)
            entries = [n for n in entries or () if n not in check.missing] or None
        if not stackops and check.ok:
            labels = ", ".join(e.label for e in menu.entries) or "none"
            raise SmokeTestError(
                f"{iso}: no StackOps boot entry (no append line with stackops/roles=); "
                f"labels: {labels}",
                hint="smoke tests discs made by `distro-builder build` (with --serial-console)",
            )
        by_label = {e.label: e for e in menu.entries}
        if all_entries:
            # entries in a submenu or hidden cannot be reached from the top-level menu yet
            chosen = tuple(e for e in stackops if e.submenu is None and not e.hidden)
            left = [e.label for e in stackops if e not in chosen]
            if left and check.ok:
                log.warning(
                    "Not booting %d StackOps entries outside the top-level menu (their menu "
                    "lines are checked against the build manifest only): %s",
                    len(left),
                    ", ".join(left),
                )
        elif entries:
            chosen = tuple(_pick(iso, by_label, stackops, name) for name in entries)
        elif absent:
            chosen = ()
        elif stackops:
            default = by_label.get(menu.default or "")
            chosen = (default if default in stackops else stackops[0],)
        else:  # the manifest's entries are all gone: stage 1 fails for the first
            chosen = ()
            absent = tuple(x for x in check.expected if not x.advanced)[:1]
        for e in chosen:
            if e.hidden or e.submenu is not None:
                where = "hidden (menu hide)" if e.hidden else f"in the submenu {e.submenu!r}"
                raise SmokeTestError(
                    f"{iso}: entry {e.label!r} is {where}; smoke selects top-level menu entries",
                    hint="put StackOps entries on the top-level menu (text.cfg)",
                )
        full_reason = _full_install_blocker(image, chosen) if full else None
    items = _menu_items(menu, texts)
    start = next((i for i, it in enumerate(items) if it.label == menu.default), 0)
    rows = menu.menu_rows if menu.menu_rows and menu.menu_rows > 0 else MENU_ROWS_DEFAULT
    return SmokePlan(
        iso=iso,
        menu=menu,
        items=items,
        start=start,
        rows=rows,
        stackops=stackops,
        chosen=chosen,
        serial=menu.serial is not None,
        full_reason=full_reason,
        menu_check=check,
        absent=absent,
    )


def _check_menu(image: IsoImage, menu: BootMenu) -> MenuCheck:
    text = image.read_text(BUILD_MANIFEST)
    if text is None:
        return compare_menu(menu, None)
    try:
        manifest = parse_manifest(text)
    except ValueError as e:  # json.JSONDecodeError is one
        return MenuCheck(
            manifest=BUILD_MANIFEST,
            problems=(f"the build manifest cannot be read: {e}",),
        )
    return compare_menu(menu, manifest)


def _pick(
    iso: Path, by_label: dict[str, MenuEntry], stackops: Sequence[MenuEntry], name: str
) -> MenuEntry:
    entry = by_label.get(name)
    if entry is None or entry_roles(entry) is None:
        what = "no boot entry" if entry is None else "not a StackOps entry (no stackops/roles=)"
        raise SmokeTestError(
            f"{iso}: {what} {name!r} in the boot menu",
            hint="StackOps entries on this disc: " + ", ".join(e.label for e in stackops),
        )
    return entry


def _menu_items(menu: BootMenu, texts: dict[str, str]) -> tuple[MenuItem, ...]:
    raw = _raw_menu_labels(texts)
    items: list[MenuItem] = []
    previous_submenu: str | None = None
    for e in menu.entries:
        if e.submenu is not None:
            # a `menu begin` block is one line of the top-level menu, titled by its `menu title`
            if e.submenu != previous_submenu:
                items.append(MenuItem(text=e.submenu, raw=e.submenu, label=None))
        elif not e.hidden:
            text = raw.get((e.config_file, e.label), e.menu_label)
            items.append(MenuItem(text=e.menu_label, raw=text, label=e.label))
        previous_submenu = e.submenu
    return tuple(items)


def _raw_menu_labels(texts: dict[str, str]) -> dict[tuple[str, str], str]:
    """(cfg file, label) -> `menu label` text with its '^' hotkey marker."""
    out: dict[tuple[str, str], str] = {}
    for path, text in texts.items():
        current: str | None = None
        for line in text.splitlines():
            m = _LABEL_RE.match(line)
            if m:
                current = m.group(1)
                continue
            m = _MENU_LABEL_RE.match(line)
            if m and current is not None:
                out[(path, current)] = m.group(1)
    return out


def label_pattern(raw: str, width: int = LABEL_MATCH_CHARS) -> re.Pattern[str]:
    """A regex for a menu label as menu.c32 draws it on a serial line.

    The hotkey letter ('^I' in '^Install') is drawn with its own colour and may arrive apart
    (SeaBIOS) or not at all: up to three characters are allowed in its place. Only the first
    `width` characters are required, as a narrow menu cuts long labels.
    """
    hot = raw.find("^")
    shown = raw.replace("^", "")
    cut = shown[:width].rstrip()
    if hot < 0 or hot >= len(cut):
        return re.compile(re.escape(cut))
    before, after = cut[:hot], cut[hot + 1 :]
    return re.compile(re.escape(before) + r"[^\n]{0,3}?" + re.escape(after))


def _full_install_blocker(image: IsoImage, chosen: Sequence[MenuEntry]) -> str | None:
    """Why the chosen entries' installer cannot install from this disc (None when it can).

    An installer that installs from a CD has cdrom-detect in its initrd (d-i's "cdrom" flavour,
    as on the real disc's install/initrd.gz); a netboot initrd, like the demo base's Debian 12
    installer, has not and would fetch everything from a mirror.
    """
    for e in chosen:
        if e.initrd is None:
            return f"entry {e.label!r} has no initrd: no installer to run"
        found = image.lookup(e.initrd)
        if found is None or found.kind is not EntryKind.file:
            return None  # stage 2 reports the missing file; nothing to decide here
        if CD_INSTALLER_MARK not in list_initrd(image.read(e.initrd)):
            kernel = _kernel_version(image, e.kernel)
            return (
                f"{e.initrd} is a netboot installer (no cdrom-detect in its initrd"
                + (f"; kernel {kernel}" if kernel else "")
                + "), as on the DEMO base: it cannot install from this disc. Stages 4-5 need "
                "a disc built from a real Ubuntu server ISO"
            )
    return None


def _kernel_version(image: IsoImage, kernel: str | None) -> str | None:
    """The version string of a bzImage (boot protocol header), or None."""
    if not kernel or image.lookup(kernel) is None:
        return None
    head = image.read(kernel)[:0x10000]
    if head[0x202:0x206] != b"HdrS":
        return None
    ptr = struct.unpack_from("<H", head, 0x20E)[0] + 0x200
    return head[ptr : ptr + 128].split(b"\0")[0].split(b" ")[0].decode("ascii", "replace") or None


# --- running it ----------------------------------------------------------------------------------


def smoke_test(
    iso: Path,
    *,
    entries: Sequence[str] | None = None,
    all_entries: bool = False,
    full: bool = False,
    accel: str = "auto",
    timeout_scale: float = 1.0,
    log_dir: Path,
    keep: bool = False,
    on_stage: Callable[[str, SmokeStage], None] | None = None,
) -> SmokeReport:
    """Boot each chosen entry of `iso` in QEMU and run the stages; never raises for a failed
    stage (the report says), only for what stops the run before it starts (SmokeTestError,
    ToolError) or Ctrl-C (QEMU killed, temporary disk removed).

    entries: labels to boot; None = the menu's default StackOps entry (all_entries: every one).
    on_stage(label, stage) is called as each stage ends (progress for the CLI).
    """
    if not timeout_scale > 0:
        raise DistroBuilderError(
            f"timeout scale must be a positive number, not {timeout_scale}",
            hint="e.g. --timeout-scale 3 on a slow machine",
        )
    started = time.monotonic()
    plan = plan_smoke(iso, entries=entries, all_entries=all_entries, full=full)
    if not plan.menu_check.ok:
        # the menu is not what the build made: booting what is there would test another disc
        return SmokeReport(
            iso=str(iso),
            accel="none",
            accel_note="no VM started: stage 'menu' failed on the disc's menu files",
            full=full,
            log_dir=str(log_dir),
            entries=_menu_failed(plan, full=full, on_stage=on_stage),
            seconds=time.monotonic() - started,
        )
    require_tool("qemu-system-x86_64", reason="boot the ISO for the smoke test")
    if full and plan.full_reason is None:
        require_tool("qemu-img", reason="create the disk the full install writes to")
    chosen_accel = choose_accel(accel, iso=iso)
    note = _accel_note(accel, chosen_accel)
    log.info("QEMU accelerator: %s (%s)", chosen_accel, note)
    log_dir.mkdir(parents=True, exist_ok=True)
    reports = []
    for entry in plan.chosen:
        with step(f"Smoke test of entry {entry.label!r} ({entry.menu_label})"):
            reports.append(
                _smoke_entry(
                    plan,
                    entry,
                    full=full,
                    accel=chosen_accel,
                    scale=timeout_scale,
                    log_dir=log_dir,
                    keep=keep,
                    on_stage=on_stage,
                )
            )
    return SmokeReport(
        iso=str(iso),
        accel=chosen_accel,
        accel_note=note,
        full=full,
        log_dir=str(log_dir),
        entries=tuple(reports),
        seconds=time.monotonic() - started,
    )


def _menu_failed(
    plan: SmokePlan, *, full: bool, on_stage: Callable[[str, SmokeStage], None] | None
) -> tuple[EntryReport, ...]:
    """Stage 1 failed on the menu files: each entry asked for fails it; the rest never ran."""
    message = plan.menu_check.message() + (
        "\nhint: the menu differs from what `distro-builder build` put on the disc "
        "(remastered or edited since?); `distro-builder inspect ISO` shows the menu"
    )
    order = {x.label: i for i, x in enumerate(plan.menu_check.expected)}
    targets = [(e.label, e.menu_label, entry_roles(e) or "") for e in plan.chosen]
    targets += [(x.label, x.menu_label, x.roles) for x in plan.absent]
    targets.sort(key=lambda t: order.get(t[0], len(order)))
    reports = []
    for label, menu_label, roles in targets:
        state = _Run(label, 1.0, on_stage)
        state.add(SmokeStage("menu", FAIL, message=message))
        for name in STAGES[1:] if full else STAGES[1:3]:
            state.skip(name, "stage 'menu' failed")
        if not full:
            state.skip("install", NOT_FULL)
            state.skip("firstboot", NOT_FULL)
        reports.append(EntryReport(label, menu_label, roles, tuple(state.stages), ()))
    return tuple(reports)


def _accel_note(requested: str, chosen: str) -> str:
    if requested == chosen:
        return f"requested {requested}"
    if not KVM_DEVICE.exists():
        return "auto: no /dev/kvm, so TCG"
    return "auto: /dev/kvm exists but a probe guest does not run under KVM, so TCG"


class _Run:
    """The stages of one entry: results, and the console they run on."""

    def __init__(
        self, label: str, scale: float, on_stage: Callable[[str, SmokeStage], None] | None
    ) -> None:
        self.label = label
        self.scale = scale
        self.on_stage = on_stage
        self.stages: list[SmokeStage] = []
        self.failed: str | None = None
        self.standin_logs: list[str] = []

    def add(self, stage: SmokeStage) -> None:
        self.stages.append(stage)
        if stage.status == FAIL and self.failed is None:
            self.failed = stage.name
        if self.on_stage is not None:
            self.on_stage(self.label, stage)

    def skip(self, name: str, reason: str) -> None:
        self.add(SmokeStage(name, SKIPPED, message=reason))

    def timed(self, name: str, body: Callable[[], None], *, warning: str = "") -> bool:
        """Run body as stage `name` without a console of its own (it starts its own VMs)."""
        if self.failed is not None:
            self.skip(name, f"stage {self.failed!r} failed")
            return False
        t0 = time.monotonic()
        try:
            body()
        except SmokeTestError as e:
            message = str(e) + (f"\nhint: {e.hint}" if e.hint else "")
            self.add(SmokeStage(name, FAIL, time.monotonic() - t0, None, message))
            return False
        self.add(SmokeStage(name, PASS, time.monotonic() - t0, None, warning))
        return True

    def stage(
        self, console: SerialConsole, name: str, body: Callable[[], None], *, warning: str = ""
    ) -> bool:
        """Run body inside a console stage; record pass (with `warning`: what it could not
        check) or fail; True if it passed."""
        if self.failed is not None:
            self.skip(name, f"stage {self.failed!r} failed")
            return False
        try:
            with console.stage(name, timeout=TIMEOUTS[name] * self.scale):
                body()
        except SmokeTestError as e:
            r = console.results[-1]
            message = str(e) + (f"\nhint: {e.hint}" if e.hint else "")
            self.add(SmokeStage(name, FAIL, r.seconds, r.started_at, message))
            return False
        r = console.results[-1]
        self.add(SmokeStage(name, PASS, r.seconds, r.started_at, warning))
        return True


def _smoke_entry(
    plan: SmokePlan,
    entry: MenuEntry,
    *,
    full: bool,
    accel: str,
    scale: float,
    log_dir: Path,
    keep: bool,
    on_stage: Callable[[str, SmokeStage], None] | None,
) -> EntryReport:
    roles = entry_roles(entry) or ""
    state = _Run(entry.label, scale, on_stage)
    logs: list[str] = []
    install = full and plan.full_reason is None
    disk_dir = Path(tempfile.mkdtemp(prefix="distro-builder-smoke-")) if install else None
    try:
        extra: list[str] = []
        disk: Path | None = None
        if disk_dir is not None:
            disk = disk_dir / "install.qcow2"
            run(["qemu-img", "create", "-q", "-f", "qcow2", disk, INSTALL_DISK_SIZE])
            extra = ["-drive", f"file={disk},format=qcow2,if=ide,media=disk"]
        argv = qemu_argv(
            plan.iso,
            accel=accel,
            memory_mb=MEMORY_MB,
            sercon=not plan.serial,
            extra=extra,
        )
        log_path = log_dir / f"{_safe(entry.label)}.log"
        logs.append(str(log_path))
        with SerialConsole(argv, log_path) as console:
            cursor = _Cursor(plan.start)
            state.stage(
                console,
                "menu",
                lambda: _stage_menu(console, plan, cursor, scale),
                warning=plan.menu_check.warning or "",
            )
            state.stage(console, "boot", lambda: _stage_boot(console, plan, entry, cursor, scale))
            state.stage(console, "preseed", lambda: _stage_preseed(console, plan, entry, roles))
            if install:
                state.stage(console, "install", lambda: _stage_install(console))
            elif full:
                state.skip("install", plan.full_reason or "")
            else:
                state.skip("install", NOT_FULL)
        if not full:
            state.skip("firstboot", NOT_FULL)
        elif not install:
            # the real install cannot run here: the first boot runs on a stand-in node
            _standin_firstboot(plan, entry, roles, state, accel=accel, log_dir=log_dir, keep=keep)
            logs += state.standin_logs
        elif state.failed is not None:
            state.skip("firstboot", f"stage {state.failed!r} failed")
        else:
            assert disk is not None
            argv = qemu_argv(
                plan.iso,
                accel=accel,
                memory_mb=MEMORY_MB,
                sercon=False,
                extra=[*extra, "-boot", "order=c"],
            )
            log_path = log_dir / f"{_safe(entry.label)}-firstboot.log"
            logs.append(str(log_path))
            with SerialConsole(argv, log_path) as console:
                state.stage(console, "firstboot", lambda: _stage_firstboot(console, roles))
    finally:
        if disk_dir is not None:
            if keep:
                log.info("Kept the install disk: %s", disk_dir / "install.qcow2")
            else:
                shutil.rmtree(disk_dir, ignore_errors=True)
    return EntryReport(entry.label, entry.menu_label, roles, tuple(state.stages), tuple(logs))


STANDIN_NOTE = (
    "ran on a stand-in installed node (Debian 12 booted in QEMU: real systemd, MariaDB and "
    "RabbitMQ; Nova's tools and services recorded; qa/standin.py states the boundary), not on a "
    "lucid install: the real install (stage 4) cannot run on this disc"
)


def _standin_firstboot(
    plan: SmokePlan,
    entry: MenuEntry,
    roles: str,
    state: _Run,
    *,
    accel: str,
    log_dir: Path,
    keep: bool,
) -> None:
    """Stage 5 without stage 4: the disc's agent, metapackages and late.sh on a stand-in node
    (qa/firstboot.py): to done, then a boot after done that must change nothing."""
    from distro_builder.qa import firstboot, standin

    why = None
    if not roles:
        why = "the entry's roles are chosen on the console at first boot; the stand-in node"
        why += " answers no console"
    elif entry.initrd is None:
        why = f"entry {entry.label!r} has no initrd (no late.sh to write the answers)"
    else:
        why = standin.cannot_build() or firstboot.cannot_write_answers()
    if why:
        state.skip("firstboot", f"no stand-in node: {why}")
        return
    assert entry.initrd is not None

    def body() -> None:
        inputs = firstboot.inputs_from_disc(plan.iso, entry.append, entry.initrd or "", roles)
        needs = firstboot.waits_for(inputs)
        if needs:  # it would wait for a controller that no stand-in runs (STEP_TIMEOUT, then fail)
            raise SmokeTestError(
                f"Stage 'firstboot' on the stand-in node: entry {entry.label!r} ({roles}) waits "
                f"for a node with the {' or '.join(needs)} role at controller_address, and the "
                "stand-in node boots alone",
                hint="smoke --full an entry whose roles include "
                + " or ".join(needs)
                + " (`distro-builder entries` lists them); a node that needs its controller "
                "is proven with its deployment booted together",
            )
        result = firstboot.run_firstboot(
            inputs, log_dir=log_dir, name=_safe(entry.label), accel=accel, scale=state.scale,
            keep=keep,
        )  # fmt: skip
        state.standin_logs.extend(result.logs)
        if result.problems:
            boots = ", ".join(result.logs)
            raise SmokeTestError(
                "Stage 'firstboot' on the stand-in node: "
                + "; ".join(result.problems)
                + f"\nConsole logs: {boots}",
                hint="the last boot's log ends with the stand-in's STANDIN report lines",
            )
        log.info(
            "firstboot %s: done %.0f s after power-on (%d steps)",
            roles,
            result.seconds_to_done or 0,
            len(result.boots[0].steps),
        )

    state.timed("firstboot", body, warning=STANDIN_NOTE)


def _safe(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", label) or "entry"


# --- stages --------------------------------------------------------------------------------------


@dataclass
class _Cursor:
    index: int  # the selected top-level menu item
    seen: set[int] = field(default_factory=set)


def _fail(console: SerialConsole, message: str, *, hint: str | None = None) -> SmokeTestError:
    lines = "\n".join(f"  | {line}" for line in console.tail()) or "  | (no console output)"
    return SmokeTestError(
        f"{message} ({console.elapsed():.1f} s since QEMU start)\n"
        f"Last {TAIL_LINES} console lines:\n{lines}\n"
        f"Full console log: {console.log_path}",
        hint=hint,
    )


def _move_to(console: SerialConsole, plan: SmokePlan, cursor: _Cursor, target: int) -> None:
    """Press Down/Up one item at a time; after each, the newly selected line must be redrawn."""
    while cursor.index != target:
        key = "down" if target > cursor.index else "up"
        cursor.index += 1 if key == "down" else -1
        item = plan.items[cursor.index]
        console.send_key(key)
        console.expect(
            label_pattern(item.raw),
            timeout=KEY_TIMEOUT,
            what=f"the menu to select {item.text!r} after pressing {key}",
        )
        cursor.seen.add(cursor.index)


def _stage_menu(console: SerialConsole, plan: SmokePlan, cursor: _Cursor, scale: float) -> None:
    index_of = {it.label: i for i, it in enumerate(plan.items)}
    expected = sorted(index_of[e.label] for e in plan.stackops if e.label in index_of)
    first_page = range(max(0, plan.start - plan.rows + 1), max(plan.rows, plan.start + 1))
    on_page = [i for i in expected if i in first_page]
    below = [i for i in expected if i not in first_page]
    for n, i in enumerate(on_page):
        item = plan.items[i]
        try:
            console.expect(
                label_pattern(item.raw),
                timeout=None if n == 0 else NEXT_ENTRY_TIMEOUT * scale,
                what=f"menu entry {item.text!r}",
            )
        except SmokeTestError as e:
            raise _menu_missing(console, item, e) from e
        cursor.seen.add(i)
    for i in below:  # past `menu rows`: scroll down to it
        try:
            _move_to(console, plan, cursor, i)
        except SmokeTestError as e:
            raise _menu_missing(console, plan.items[i], e) from e


def _menu_missing(console: SerialConsole, item: MenuItem, e: SmokeTestError) -> SmokeTestError:
    first = str(e).splitlines()[0]
    return _fail(
        console,
        f"Stage 'menu': the boot menu does not show entry {item.label!r} ({item.text!r}, "
        f"matched as /{label_pattern(item.raw).pattern}/ without its hotkey letter): {first}",
        hint="check the disc's isolinux menu (menu width, labels, includes) and that isolinux "
        "talks to the serial line (`serial 0 115200`; build with --serial-console)",
    )


def _cmdline_edits(append: str) -> tuple[int, str]:
    """(characters to erase at the end, text to type) so the kernel logs to ttyS0, or (0, '')."""
    tokens = append.split()
    before = tokens[: tokens.index("--")] if "--" in tokens else tokens
    add = []
    if not any(t.startswith("console=ttyS0") for t in tokens):
        add.append("console=ttyS0,115200n8")
    if "quiet" in before:
        add.append("loglevel=7")  # after `quiet`, so it wins
    if not add:
        return 0, ""
    if "--" in tokens:  # lucid: what follows a bare `--` goes to init, not the kernel
        tail = append[append.rindex(" --") :] if " --" in append else ""
        return len(tail), " " + " ".join(add) + tail
    return 0, " " + " ".join(add)


def _stage_boot(
    console: SerialConsole, plan: SmokePlan, entry: MenuEntry, cursor: _Cursor, scale: float
) -> None:
    target = next(i for i, it in enumerate(plan.items) if it.label == entry.label)
    _move_to(console, plan, cursor, target)
    erase, typed = _cmdline_edits(entry.append)
    if typed:
        # the entry would not show the kernel's messages on the serial line: add what it needs
        console.send_key("tab")
        console.drain(0.5)
        console.send_key("backspace", times=erase, delay=TYPE_DELAY)
        console.send(typed, char_delay=TYPE_DELAY)
    console.send_key("enter")
    roles = entry_roles(entry)
    i = console.expect([_CMDLINE_RE, _NO_KERNEL], what="the kernel's 'Command line:'")
    if i == 1:
        said = console.match.group(0).strip() if console.match else ""
        console.drain(0.5)
        what = f"the kernel {entry.kernel}" if entry.kernel and entry.kernel in said else said
        raise _fail(
            console,
            f"Stage 'boot': ISOLINUX could not find {what} of entry {entry.label!r} "
            f"({entry.config_file}): {said!r}",
            hint="the entry's `kernel`/`initrd=` path does not exist on the disc",
        )
    assert console.match is not None
    cmdline = console.match.group(1).split()
    want = f"stackops/roles={roles}"
    if want not in cmdline:
        raise _fail(
            console,
            f"Stage 'boot': the kernel command line lacks {want!r}: {' '.join(cmdline)!r}",
            hint="a different entry booted, or the menu order differs from the cfg files",
        )
    missing = [t for t in entry.append.split() if t not in cmdline]
    if missing:
        raise _fail(
            console,
            f"Stage 'boot': the kernel command line lacks {missing} of entry {entry.label!r}",
            hint="a different entry booted, or the menu order differs from the cfg files",
        )


def _stage_preseed(console: SerialConsole, plan: SmokePlan, entry: MenuEntry, roles: str) -> None:
    try:
        i = console.expect(
            [_PRESEED_RE, _DI_QUESTION_RE],
            what=f"{PRESEED_MARKER!r} from the initrd preseed's early_command",
        )
    except SmokeTestError as e:
        why = _preseed_diagnosis(plan, entry)
        if why:
            e.hint = f"{why}; {e.hint}" if e.hint else why
        raise
    assert console.match is not None
    if i == 1:
        why = _preseed_diagnosis(plan, entry)
        raise _fail(
            console,
            f"Stage 'preseed': the installer asked {console.match.group(1)!r} before printing "
            f"{PRESEED_MARKER!r}: preseed/early_command of our initrd preseed did not run",
            hint=why or "the initrd's /preseed.cfg must set preseed/early_command",
        )
    got = console.match.group(1)
    if set(got.split(",")) != set(roles.split(",")):
        raise _fail(
            console,
            f"Stage 'preseed': the preseed reported roles={got!r}, the entry boots roles={roles!r}",
            hint="the early_command must print the roles from /proc/cmdline (stackops/roles=)",
        )


def _preseed_diagnosis(plan: SmokePlan, entry: MenuEntry) -> str | None:
    """What is wrong with the entry's initrd preseed, read from the disc (None: looks right)."""
    if entry.initrd is None:
        return f"entry {entry.label!r} has no initrd"
    try:
        with IsoImage(plan.iso) as image:
            data = read_initrd_file(image.read(entry.initrd), "preseed.cfg")
    except DistroBuilderError as e:
        return f"cannot read {entry.initrd}: {e}"
    if data is None:
        return f"{entry.initrd} has no /preseed.cfg (d-i's initrd-preseed loads that file)"
    # debconf preseed lines: comments start with '#', a trailing backslash continues a line
    text = data.decode("utf-8", "replace").replace("\\\n", " ")
    early = [
        line
        for line in text.splitlines()
        if not line.lstrip().startswith("#") and "preseed/early_command" in line.split()[1:2]
    ]
    if not early:
        return f"/preseed.cfg in {entry.initrd} sets no preseed/early_command"
    if not any(PRESEED_MARKER in line for line in early):
        return f"the early_command in {entry.initrd}:/preseed.cfg never prints {PRESEED_MARKER}"
    return None


def _stage_install(console: SerialConsole) -> None:
    console.expect(LATE_MARKER, what=f"{LATE_MARKER!r} from preseed/late_command")
    # The installer reboots next; with -no-reboot QEMU exits. Anything else is a hang.
    try:
        console.expect(re.compile(r"(?!)"), what="the guest to reboot (QEMU exits)")
    except SmokeTestError as e:
        if "QEMU exited" not in str(e):
            raise


def _stage_firstboot(console: SerialConsole, roles: str) -> None:
    i = console.expect(
        [
            re.compile(FIRSTBOOT_DONE + r" roles=(\S*)[ \t]*\n"),
            re.compile(FIRSTBOOT_FAILED + r"[^\n]*\n"),
        ],
        what=f"{FIRSTBOOT_DONE!r} from the first-boot agent",
    )
    assert console.match is not None
    if i == 1:
        raise _fail(
            console,
            f"Stage 'firstboot': the agent reports {console.match.group(0)!r}",
            hint="read the step's log on the node (the path is in the message)",
        )
    got = console.match.group(1)
    if set(got.split(",")) != set(roles.split(",")):
        raise _fail(
            console,
            f"Stage 'firstboot': the agent configured roles={got!r}, the entry chose {roles!r}",
        )
