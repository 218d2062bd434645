"""The StackOps boot menu: isolinux files for the base's flavor, from bootmenu/ templates.

Lucid keeps its entries in isolinux/text.cfg (+ adtext.cfg for the advanced menu); 10.10 and
later in txt.cfg/adtxt.cfg (lucid-and-nova.md §1.3, trap 1). The StackOps entries go first in the
main menu file, the base's own entries stay ("Install Ubuntu Server" still works), and the
advanced file gains an expert-mode variant of each. Every entry names its roles on the kernel
command line (stackops/roles=...), loads /cdrom/preseed/stackops-<entry>.seed, and sets locale
and keyboard there because lucid loads a file= preseed after asking those (trap 9).

isolinux.cfg: the base's, with the timeout set (lucid ships `timeout 0`: wait forever) and
isolinux/lang = "en" so gfxboot skips its language chooser (trap 2). --serial-console (a QA
disc): `serial 0 115200`, the text menu module instead of vesamenu/gfxboot, no `quiet`, and
`console=ttyS0,115200n8` after the base's `--` or `---` (d-i copies what follows it to the
installed system).
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from distro_builder import __version__
from distro_builder.errors import ConfigError, IsoError
from distro_builder.imagemodel import BootMenu, Flavor, MenuEntry
from distro_builder.media.bootmenu import parse_boot_menu
from distro_builder.model import EXPERT_SUFFIX, BootEntry, SystemSettings
from distro_builder.seed.render import render_template

SERIAL_CONSOLE = "console=ttyS0,115200n8"
MENU_FILES = {"lucid": ("text.cfg", "adtext.cfg"), "txt": ("txt.cfg", "adtxt.cfg")}
_DEFAULT_RE = re.compile(r"^\s*default\s+\S+.*$", re.IGNORECASE | re.MULTILINE)
_TIMEOUT_RE = re.compile(r"^\s*timeout\s+\S+\s*$", re.IGNORECASE | re.MULTILINE)
_FILE_RE = re.compile(r"(?:^|\s)file=(\S+)")

Reader = Callable[[str], str | None]
Exists = Callable[[str], bool]


@dataclass(frozen=True, slots=True)
class MenuPlan:
    """The isolinux files to lay over the base (disc path -> text) and what they boot."""

    files: dict[str, str]
    default: str
    kernel: str
    initrd: str
    serial: bool


def _install_entry(menu: BootMenu) -> MenuEntry:
    """The base's installer entry: its kernel and initrd are the ones our entries boot."""
    for e in menu.entries:
        if e.kernel and e.initrd and _FILE_RE.search(e.append) and e.submenu is None:
            return e
    for e in menu.entries:
        if e.kernel and e.initrd:
            return e
    raise IsoError(
        "the base's boot menu has no installer entry (a kernel with an initrd)",
        hint="is this an Ubuntu server install disc? `distro-builder inspect` shows its menu",
    )


def _check_labels(entries: tuple[BootEntry, ...], base: BootMenu, *, expert: bool) -> None:
    """No StackOps label equals one of the base's (they stay on the disc beside ours): isolinux
    boots the first of two equal labels, so the other entry could never boot (issue 20 #16)."""
    theirs = {e.label: e.config_file for e in base.entries}
    for e in entries:
        for label in (e.name, e.name + EXPERT_SUFFIX) if expert else (e.name,):
            if label in theirs:
                raise ConfigError(
                    f"boot label {label!r} (of entry {e.name}) is the base's label {label!r} "
                    f"in {theirs[label]}",
                    hint="rename the role or reference-architecture node; the base's labels "
                    "are: " + ", ".join(sorted(theirs)),
                )


def _separator(install: MenuEntry) -> str:
    """The `--`/`---` the base's installer entry uses before the installed system's options."""
    words = install.append.split()
    return "---" if "---" in words else "--"


def kernel_args(
    entry: BootEntry,
    system: SystemSettings,
    initrd: str,
    *,
    serial: bool,
    expert: bool = False,
    separator: str = "--",
) -> str:
    """The append line of `entry`. `separator` is the base's own (lucid's entries end in `--`,
    Debian's and newer Ubuntu's in `---`): d-i copies what follows it to the installed system."""
    args = [f"file=/cdrom{entry.seed_path}", f"stackops/roles={','.join(entry.roles)}"]
    args += [f"stackops/{k}={v}" for k, v in entry.cmdline]
    hostname = dict(entry.answers).get("hostname")
    if hostname:
        args.append(f"netcfg/get_hostname={hostname}")
    args += [
        f"locale={system.locale}",
        "console-setup/ask_detect=false",
        f"console-setup/layoutcode={system.keyboard}",
    ]
    if expert:
        args.append("priority=low")
    args.append(f"initrd={initrd}")
    if serial:
        # Before the separator for the installer's kernel (Linux 3.15+ hands what follows `--`
        # to init, not to itself), after it for the installed system.
        args.append(SERIAL_CONSOLE)
    else:
        args.append("quiet")
    args.append(separator)
    if serial:
        args.append(SERIAL_CONSOLE)
    return " ".join(args)


def plan_menu(
    data_dir: Path,
    read: Reader,
    exists: Exists,
    flavor: Flavor,
    entries: tuple[BootEntry, ...],
    system: SystemSettings,
    *,
    default_entry: str | None = None,
    timeout: int = 0,
    serial: bool = False,
) -> MenuPlan:
    """The menu files for `entries` over the base read through `read` (disc path -> text)."""
    if not entries:
        raise ConfigError("no boot entries to put in the menu")
    names = [e.name for e in entries]
    default = default_entry or names[0]
    if default not in names:
        raise ConfigError(
            f"--default-entry {default!r} is not a StackOps boot entry",
            hint="entries: " + ", ".join(names),
        )
    if timeout < 0:
        raise ConfigError(f"--timeout {timeout}: must be 0 (wait) or more seconds")
    base_menu = parse_boot_menu(read, "/isolinux/isolinux.cfg")
    install = _install_entry(base_menu)
    assert install.kernel is not None and install.initrd is not None
    main_name, adv_name = MENU_FILES[flavor.menu_style]
    main_path, adv_path = f"/isolinux/{main_name}", f"/isolinux/{adv_name}"
    base_main = read(main_path)
    if base_main is None:
        raise IsoError(f"the base has no {main_path}", hint="unknown menu layout")
    base_adv = read(adv_path)
    _check_labels(entries, base_menu, expert=base_adv is not None)

    def views(expert: bool) -> list[dict[str, str]]:
        out = []
        for e in entries:
            out.append(
                {
                    "label": e.name + (EXPERT_SUFFIX if expert else ""),
                    "menu_label": e.label + (" (expert mode)" if expert else ""),
                    "kernel": install.kernel or "",
                    "append": kernel_args(e, system, install.initrd or "", serial=serial,
                                          separator=_separator(install),
                                          expert=expert),
                }
            )  # fmt: skip
        return out

    boot = data_dir / "bootmenu"
    files = {
        main_path: render_template(
            boot,
            "entries.cfg.j2",
            version=__version__,
            default=default,
            entries=views(False),
            base=_DEFAULT_RE.sub("", base_main).strip("\n"),
        ),
        "/isolinux/lang": "en\n",
    }
    if base_adv is not None:
        files[adv_path] = render_template(
            boot,
            "adentries.cfg.j2",
            version=__version__,
            entries=views(True),
            base=base_adv.strip("\n"),
        )
    tenths = timeout * 10
    if serial:
        ui = "menu.c32" if exists("/isolinux/menu.c32") else "vesamenu.c32"
        files["/isolinux/isolinux.cfg"] = render_template(
            boot, "isolinux-serial.cfg.j2", ui=ui, timeout=tenths
        )
    else:
        cfg = read("/isolinux/isolinux.cfg") or ""
        if _TIMEOUT_RE.search(cfg):
            cfg = _TIMEOUT_RE.sub(f"timeout {tenths}", cfg, count=1)
        else:
            cfg = cfg.rstrip("\n") + f"\ntimeout {tenths}\n"
        files["/isolinux/isolinux.cfg"] = cfg
    return MenuPlan(
        files=files, default=default, kernel=install.kernel, initrd=install.initrd, serial=serial
    )


def missing_references(exists: Exists, menu: BootMenu) -> list[str]:
    """Files the boot menu names that the disc lacks: includes, kernels, initrds, modules, seeds."""
    problems = [f"include {m} is missing" for m in menu.missing_includes]
    if menu.ui:
        module = posixpath.join("/isolinux", menu.ui.split()[0])
        if not exists(module) and not menu.ui.split()[0].startswith("gfxboot"):
            problems.append(f"ui module {module} is missing")
    for e in menu.entries:
        for what, path in (("kernel", e.kernel), ("initrd", e.initrd)):
            if path is None or path.lower().endswith(".c32"):
                continue
            if not exists(path):
                problems.append(f"entry {e.label}: {what} {path} is missing")
        for seed in _FILE_RE.findall(e.append):
            disc_path = seed.removeprefix("/cdrom")
            if not exists(disc_path):
                problems.append(f"entry {e.label}: preseed {seed} is missing")
    return problems
