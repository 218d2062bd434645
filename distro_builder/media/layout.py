"""Flavor detection: what kind of install disc an opened image is.

Reads `.disk/info`, `dists/<codename>/Release` and which isolinux menu files exist. Lucid keeps
`text.cfg`/`adtext.cfg`; 10.10 and later use `txt.cfg`/`adtxt.cfg` (lucid-and-nova.md §1.3).
"""

from __future__ import annotations

from distro_builder.archive import index
from distro_builder.errors import ArchiveError, IsoError
from distro_builder.imagemodel import BootMenu, EntryKind, Flavor
from distro_builder.media.bootmenu import parse_boot_menu
from distro_builder.media.iso import IsoImage

ISOLINUX_DIR = "/isolinux"
ISOLINUX_CFG = "/isolinux/isolinux.cfg"
MENU_FILES = (
    "isolinux.cfg", "menu.cfg", "stdmenu.cfg", "text.cfg", "adtext.cfg",
    "txt.cfg", "adtxt.cfg", "gfxboot.cfg", "prompt.cfg",
)  # fmt: skip


def is_install_disc(image: IsoImage) -> bool:
    """True when the image is laid out like an Ubuntu/Debian install disc (isolinux, dists/).

    Only such a disc gets the extras (flavor, boot menu, dists/ indexes); `remaster` takes any
    bootable image and `detect_flavor` then says what is missing.
    """
    cfg = image.lookup(ISOLINUX_CFG)
    dists = image.lookup("/dists")
    return (
        cfg is not None
        and cfg.kind is EntryKind.file
        and dists is not None
        and dists.kind is EntryKind.dir
    )


def detect_flavor(image: IsoImage) -> Flavor:
    """The disc's flavor; IsoError when the layout is not an Ubuntu/Debian install disc."""
    cfg = image.lookup(ISOLINUX_CFG)
    if cfg is None or cfg.kind is not EntryKind.file:
        raise IsoError(
            f"{image.path}: unknown layout: no isolinux/isolinux.cfg",
            hint="distro-builder remasters Ubuntu server install discs (isolinux, dists/)",
        )
    menu_files = tuple(
        name for name in MENU_FILES if image.lookup(f"{ISOLINUX_DIR}/{name}") is not None
    )
    if "text.cfg" in menu_files:
        style = "lucid"
    elif "txt.cfg" in menu_files:
        style = "txt"
    else:
        raise IsoError(
            f"{image.path}: unknown layout: no isolinux/text.cfg (lucid) or txt.cfg (10.10+)",
            hint="is this an Ubuntu server install disc? desktop/live discs are not supported",
        )
    release_path = _find_release(image)
    raw = image.read(release_path)
    try:
        release = index.read_release(raw, release_path)
    except ArchiveError as e:
        raise IsoError(f"{image.path}: {e}", hint="the disc's Release file is damaged") from e
    codename = release.get("Codename") or release.get("Suite") or ""
    info = image.read_text("/.disk/info")
    return Flavor(
        distribution=release.get("Origin") or release.get("Label") or "unknown",
        codename=codename,
        version=release.get("Version", ""),
        architectures=tuple(release.get("Architectures", "").split()),
        components=tuple(release.get("Components", "").split()),
        disk_info=info,
        menu_style=style,
        menu_files=menu_files,
        release_path=release_path,
    )


def _find_release(image: IsoImage) -> str:
    dists = image.lookup("/dists")
    candidates = []
    if dists is not None and dists.kind is EntryKind.dir:
        for entry in image.walk("/dists"):
            if entry.kind is EntryKind.dir and entry.path.count("/") == 2:
                release = image.lookup(f"{entry.path}/Release")
                if release is not None and release.kind is EntryKind.file:
                    candidates.append(release.path)
    if not candidates:
        raise IsoError(
            f"{image.path}: unknown layout: no dists/<codename>/Release",
            hint="an install disc carries an archive under dists/; is this a live or netboot ISO?",
        )
    if len(candidates) > 1:
        raise IsoError(
            f"{image.path}: unknown layout: several archives ({', '.join(candidates)})",
            hint="multi-codename discs are not supported",
        )
    return candidates[0]


def read_boot_menu(image: IsoImage) -> BootMenu:
    """The disc's isolinux menu, following includes."""
    return parse_boot_menu(image.read_text, ISOLINUX_CFG)


def archive_counts(image: IsoImage, flavor: Flavor) -> dict[str, int]:
    """Package count per index ('main', 'main/debian-installer', ...), from the Packages files."""
    base = flavor.release_path.rsplit("/", 1)[0]
    counts: dict[str, int] = {}
    for comp in flavor.components:
        for sub in (comp, f"{comp}/debian-installer"):
            for arch in flavor.architectures:
                for name in ("Packages.gz", "Packages.bz2", "Packages.xz", "Packages"):
                    path = f"{base}/{sub}/binary-{arch}/{name}"
                    if image.lookup(path) is None:
                        continue
                    try:
                        n = len(index.read_packages(image.read(path), path))
                    except ArchiveError as e:
                        raise IsoError(
                            f"{image.path}: {e}", hint="the disc's index is damaged"
                        ) from e
                    counts[sub] = counts.get(sub, 0) + n
                    break
    return counts


# What this tool records inside the discs it writes.
MANIFEST_PATH = "/.disk/distro-builder.json"

# debian-cd's md5sum.txt leaves these out (bin-md5list); isolinux/ is merged in by mkisofs later,
# and isolinux.bin is patched with the boot-info-table at write time.
_MD5SUM_EXCLUDE_PREFIXES = ("isolinux/", "dists/stable/", "dists/unstable/")


def md5sum_excluded(relpath: str) -> bool:
    """True for disc paths (relative, no leading '/') that md5sum.txt does not list."""
    return relpath == "md5sum.txt" or relpath.startswith(_MD5SUM_EXCLUDE_PREFIXES)
