"""Frozen records passed between modules. No I/O here."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class EntryKind(enum.StrEnum):
    file = "file"
    dir = "dir"
    symlink = "symlink"


@dataclass(frozen=True, slots=True)
class FileEntry:
    """One name on an image, by its Rock Ridge path ('/isolinux/text.cfg')."""

    path: str
    kind: EntryKind
    size: int = 0
    mode: int = 0
    target: str | None = None  # symlinks only
    iso_name: str = ""  # ISO 9660 identifier, e.g. 'TEXT.CFG;1'


@dataclass(frozen=True, slots=True)
class ElToritoEntry:
    """One El Torito boot entry as it stands in the boot catalog."""

    platform: str  # 'bios' / 'efi' / 'ppc' / 'mac'
    emulation: str  # 'none', 'floppy-1.2', ...
    bootable: bool
    load_segment: int
    sector_count: int  # 512-byte sectors loaded by the BIOS
    load_rba: int  # extent of the boot image
    boot_file: str | None  # Rock Ridge path of the boot image, when it is a file on the image
    boot_info_table: bool


@dataclass(frozen=True, slots=True)
class MenuEntry:
    """One isolinux `label` with what it boots."""

    label: str
    menu_label: str  # without the '^' hotkey marker
    kernel: str | None  # absolute path on the disc, or a module name ('vesamenu.c32')
    initrd: str | None
    append: str
    config_file: str  # the cfg file that defines it
    submenu: str | None = None  # title of the `menu begin` block holding it
    hidden: bool = False
    localboot: str | None = None


@dataclass(frozen=True, slots=True)
class BootMenu:
    """The isolinux configuration as the boot loader sees it."""

    files: tuple[str, ...]  # cfg files read, in include order
    default: str | None
    timeout: int | None
    prompt: int | None
    ui: str | None  # the menu module ('vesamenu.c32') from `ui` or a module `default`
    serial: str | None
    gfxboot: str | None
    entries: tuple[MenuEntry, ...]
    missing_includes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Flavor:
    """What kind of disc an image is."""

    distribution: str  # 'Ubuntu'
    codename: str  # 'lucid'
    version: str  # '10.04'
    architectures: tuple[str, ...]
    components: tuple[str, ...]
    disk_info: str | None  # .disk/info, verbatim
    menu_style: str  # 'lucid' (text.cfg/adtext.cfg) or 'txt' (10.10+: txt.cfg/adtxt.cfg)
    menu_files: tuple[str, ...]  # which isolinux cfg files exist
    release_path: str  # '/dists/lucid/Release'


@dataclass(frozen=True, slots=True)
class OverlayChange:
    """What remastering did to one path."""

    path: str
    action: str  # 'added' / 'replaced'
    kind: EntryKind


@dataclass(frozen=True, slots=True)
class RemasterResult:
    output: str
    size: int
    changes: tuple[OverlayChange, ...] = field(default_factory=tuple)
    md5sum_files: int = 0
    hybrid: bool = False


@dataclass(frozen=True, slots=True)
class DemoPackage:
    """A tiny stand-in package of the demo base (real name, version and relations)."""

    name: str
    version: str
    arch: str
    section: str
    priority: str
    component: str = "main"
    source: str | None = None
    depends: str | None = None
    task: str | None = None
    udeb: bool = False


@dataclass(frozen=True, slots=True)
class BootPart:
    """A file the demo base takes from a Debian package on the build host."""

    package: str
    path: str


@dataclass(frozen=True, slots=True)
class DemoDisc:
    """demo/disc.yaml: what the lucid-faithful demo base is made of."""

    volume_id: str
    disk_info: str
    disk_name: str
    codename: str
    version: str
    arch: str
    components: tuple[str, ...]
    epoch: int
    release: tuple[tuple[str, str], ...]
    maintainer: str
    isolinux: BootPart
    modules: tuple[BootPart, ...]
    kernel: BootPart
    initrd: BootPart
    memtest: BootPart
    packages: tuple[DemoPackage, ...]
