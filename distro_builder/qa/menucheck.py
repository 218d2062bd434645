"""Smoke stage 1 without QEMU: the disc's boot menu against what the build says it put there.

`distro-builder build` writes /.disk/stackops-build.json; its `entries` are the StackOps boot
entries (name = isolinux label, label = menu label, roles). media/menu.py lays each one out twice:
in the top-level menu file, and as `<name>-expert` ("<label> (expert mode)") in the advanced
submenu when the base has one. Every entry boots the base installer's kernel and initrd; the
manifest does not record them (yet: `kernel`/`initrd` in an entry are used when present), so
they are taken from the base's own installer entry, which the build keeps in the menu.

A disc without the manifest (not made by `build`) cannot be checked this way: the result says so
in a warning, and stage 1 falls back to what the menu itself lists.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from distro_builder.imagemodel import BootMenu, MenuEntry
from distro_builder.media.menu import MENU_FILES

# Written by build.py (BUILD_MANIFEST_PATH); qa/ does not import the pipeline.
BUILD_MANIFEST = "/.disk/stackops-build.json"
# media/menu.py's names for the advanced menu's variant of an entry
EXPERT_NAME_SUFFIX = "-expert"
EXPERT_LABEL_SUFFIX = " (expert mode)"

_ROLES_RE = re.compile(r"(?:^|\s)stackops/roles=(\S*)")
_FILE_RE = re.compile(r"(?:^|\s)file=(\S+)")


def entry_roles(entry: MenuEntry) -> str | None:
    """The `stackops/roles=` value of an entry's append line, or None for a non-StackOps entry."""
    m = _ROLES_RE.search(entry.append)
    return m.group(1) if m else None


@dataclass(frozen=True, slots=True)
class ExpectedEntry:
    """A boot entry the build put on the disc."""

    label: str  # isolinux label
    menu_label: str
    roles: str  # as on the kernel command line: comma-separated
    kernel: str | None  # None: nothing to compare against
    initrd: str | None
    advanced: bool  # in the advanced submenu (the expert-mode variant), not the top-level menu

    @property
    def where(self) -> str:
        return "the advanced submenu" if self.advanced else "the top-level menu"

    def describe(self) -> str:
        return f"{self.label!r} ({self.menu_label!r}, roles {self.roles or '(none)'}, {self.where})"


@dataclass(frozen=True, slots=True)
class MenuCheck:
    """The menu compared with the manifest: one problem per missing, extra or changed entry."""

    manifest: str | None  # the manifest's disc path; None: the disc has none
    expected: tuple[ExpectedEntry, ...] = ()
    missing: tuple[str, ...] = ()  # labels
    extra: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()  # one line each, naming the entry
    warning: str | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def message(self) -> str:
        """The stage-1 failure: a first line naming every entry, then one line per problem."""
        heads = [
            f"{what} {', '.join(names)}"
            for what, names in (
                ("missing", self.missing),
                ("extra", self.extra),
                ("changed", self.changed),
            )
            if names
        ]
        first = "; ".join(heads) or (self.problems[0] if self.problems else "")
        # the entries first: the report's table shows only the start of the first line
        return (
            f"Stage 'menu': {first} (the boot menu against the build manifest)\n"
            f"The build manifest {self.manifest} lists what the build put in the menu:\n"
            + "\n".join(f"  - {p}" for p in self.problems)
        )


def parse_manifest(text: str) -> dict[str, Any]:
    """The manifest's JSON object; ValueError with the reason when it is not one."""
    doc = json.loads(text)
    if not isinstance(doc, dict) or not isinstance(doc.get("entries"), list):
        raise ValueError("no 'entries' list")
    return doc


def expected_entries(
    manifest: Mapping[str, Any], menu: BootMenu
) -> tuple[tuple[ExpectedEntry, ...], list[str]]:
    """The entries the manifest says are on the disc, and what in the manifest is unusable."""
    problems: list[str] = []
    kernel, initrd = installer_kernel(menu)
    base = manifest.get("base") if isinstance(manifest.get("base"), dict) else {}
    style = base.get("menu_style", "lucid")
    adv = f"/isolinux/{MENU_FILES[style][1]}" if style in MENU_FILES else None
    # the build adds expert-mode entries only where the base has an advanced menu file; a menu
    # that still includes it (read or missing) had one
    has_adv = adv is not None and (adv in menu.files or adv in menu.missing_includes)
    out: list[ExpectedEntry] = []
    for i, raw in enumerate(manifest["entries"]):
        if not (
            isinstance(raw, dict)
            and isinstance(raw.get("name"), str)
            and isinstance(raw.get("label"), str)
            and isinstance(raw.get("roles"), list)
        ):
            problems.append(f"manifest entry {i + 1} lacks name, label or roles: {raw!r}")
            continue
        roles = ",".join(str(r) for r in raw["roles"])
        k = raw.get("kernel", kernel)
        r = raw.get("initrd", initrd)
        out.append(ExpectedEntry(raw["name"], raw["label"], roles, k, r, advanced=False))
        if has_adv:
            out.append(
                ExpectedEntry(
                    raw["name"] + EXPERT_NAME_SUFFIX,
                    raw["label"] + EXPERT_LABEL_SUFFIX,
                    roles,
                    k,
                    r,
                    advanced=True,
                )
            )
    return tuple(out), problems


def installer_kernel(menu: BootMenu) -> tuple[str | None, str | None]:
    """The kernel and initrd of the base's installer entry (as media/menu.py picks it), skipping
    StackOps entries; (None, None) when the menu has none."""
    base = [e for e in menu.entries if entry_roles(e) is None and e.kernel and e.initrd]
    for e in base:
        if _FILE_RE.search(e.append) and e.submenu is None:
            return e.kernel, e.initrd
    return (base[0].kernel, base[0].initrd) if base else (None, None)


def compare_menu(
    menu: BootMenu, manifest: Mapping[str, Any] | None, manifest_path: str = BUILD_MANIFEST
) -> MenuCheck:
    """The menu against the manifest (None: the disc has none)."""
    stackops = [e for e in menu.entries if entry_roles(e) is not None]
    if manifest is None:
        return MenuCheck(
            manifest=None,
            warning=(
                f"no build manifest ({manifest_path}): not a disc made by `distro-builder build`, "
                "so smoke cannot know which entries to expect; it checks only the "
                f"{len(stackops)} StackOps entries this menu lists"
            ),
        )
    expected, problems = expected_entries(manifest, menu)
    by_label: dict[str, MenuEntry] = {}
    for e in menu.entries:
        by_label.setdefault(e.label, e)  # isolinux boots the first of two equal labels
    missing, changed = [], []
    for x in expected:
        e = by_label.get(x.label)
        if e is None:
            missing.append(x.label)
            problems.append(f"missing: {x.describe()} is not in the menu")
            continue
        diffs = _differences(x, e)
        if diffs:
            changed.append(x.label)
            problems.append(f"changed: {x.label!r} ({e.config_file}): " + "; ".join(diffs))
    known = {x.label for x in expected}
    extra = [e.label for e in stackops if e.label not in known]
    for label in extra:
        e = by_label[label]
        problems.append(
            f"extra: {label!r} ({e.menu_label!r}, roles {entry_roles(e) or '(none)'}, "
            f"{e.config_file}) is a StackOps entry the manifest does not list"
        )
    options = manifest.get("options") if isinstance(manifest.get("options"), dict) else {}
    default = options.get("default_entry")
    if isinstance(default, str) and default != menu.default:
        changed.append("the default")
        problems.append(
            f"changed: the menu's default is {menu.default!r}, the build made {default!r}"
        )
    return MenuCheck(
        manifest=manifest_path,
        expected=expected,
        missing=tuple(missing),
        extra=tuple(extra),
        changed=tuple(changed),
        problems=tuple(problems),
    )


def _differences(x: ExpectedEntry, e: MenuEntry) -> list[str]:
    diffs = []
    if e.menu_label.replace("^", "") != x.menu_label.replace("^", ""):
        diffs.append(f"label {e.menu_label!r}, the build made {x.menu_label!r}")
    roles = entry_roles(e)
    if roles is None or _roles(roles) != _roles(x.roles):
        got = "no stackops/roles=" if roles is None else f"roles {roles or '(none)'}"
        diffs.append(f"{got}, the build made roles {x.roles or '(none)'}")
    for what, got, want in (("kernel", e.kernel, x.kernel), ("initrd", e.initrd, x.initrd)):
        if want is not None and got != want:
            diffs.append(f"{what} {got or '(none)'}, the build made {want}")
    where = _where(e)
    if where != x.where:
        diffs.append(f"in {where}, the build put it in {x.where}")
    return diffs


def _where(e: MenuEntry) -> str:
    if e.hidden:
        return "no menu (menu hide)"
    return "the top-level menu" if e.submenu is None else "the advanced submenu"


def _roles(text: str) -> Sequence[str]:
    return sorted(r for r in text.split(",") if r)
