"""`distro-builder netboot ISO -o DIR` (issue 13): a built StackOps disc as a classic PXE tree,
for people who run their own TFTP/DHCP:

    DIR/pxelinux.0, ldlinux.c32, menu.c32, libutil.c32, libcom32.c32   (Debian's pxelinux and
                                                  syslinux-common, from the host)
    DIR/pxelinux.cfg/default                      the disc's StackOps entries, same labels and
                                                  kernel command lines, + "boot the local disk"
    DIR/ubuntu-installer/<arch>/linux             the disc's netboot kernel
    DIR/ubuntu-installer/<arch>/initrd.gz         its netboot initrd + the layer `build` put on
                                                  the disc's install/initrd.gz (preseed.cfg,
                                                  stackops/...) + the entries' preseeds
    DIR/preseed/stackops-<entry>.seed             the same preseeds, for an HTTP server on DIR

A static tree cannot hold the Smart Installer's per-node preseeds (those need a boot token per
boot: `serve --disc` hands them out). The entry preseeds of the disc are what its menu loads with
`file=/cdrom/preseed/...`; here they travel inside the initrd (`file=/stackops/seeds/...`, read
by d-i's file-preseed from the initrd's root, no CD needed), or, with --preseed-url, d-i fetches
them over HTTP (`auto=true priority=critical url=<URL>/stackops-<entry>.seed` and the network
questions' answers, which come before the fetch; serve DIR/preseed/ there). --mirror adds the
network mirror to every preseed (a running `serve --disc`'s http://HOST:PORT/disc, or any HTTP
copy of the disc's dists/ and pool/); without it the installer asks for one.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from distro_builder.errors import ConfigError, IsoError, OutputError
from distro_builder.imagemodel import EntryKind, MenuEntry
from distro_builder.media.initrd import append_to_initrd, initrd_members
from distro_builder.media.iso import IsoImage
from distro_builder.media.layout import read_boot_menu
from distro_builder.seed.preseed import INSTALLER_DIR
from distro_builder.smart_installer.disc import NETBOOT_DIR

log = logging.getLogger(__name__)

PXELINUX = Path("/usr/lib/PXELINUX/pxelinux.0")
SYSLINUX_MODULES = Path("/usr/lib/syslinux/modules/bios")
MODULES = ("ldlinux.c32", "menu.c32", "libutil.c32", "libcom32.c32")
SEEDS_DIR = f"{INSTALLER_DIR}/seeds"  # in the initrd's root
CD_INITRD = "/install/initrd.gz"
_FILE_ARG = re.compile(r"^file=/cdrom(/preseed/([A-Za-z0-9._-]+\.seed))$")
_ENTRY_NAME = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


@dataclass(frozen=True, slots=True)
class PxeEntry:
    label: str
    menu_label: str
    roles: str
    append: str  # the kernel command line, without initrd=
    seed: str  # stackops-<entry>.seed


@dataclass(frozen=True, slots=True)
class PxeTree:
    out: Path
    arch: str
    entries: tuple[PxeEntry, ...]
    default: str
    files: tuple[str, ...]  # relative paths written


def _roles(append: str) -> str | None:
    for word in append.split():
        if word.startswith("stackops/roles="):
            return word.removeprefix("stackops/roles=")
    return None


def _boot_args(entry: MenuEntry, seed_args: list[str]) -> str:
    """The disc entry's command line with its CD preseed replaced and initrd= dropped."""
    out = []
    for word in entry.append.split():
        if _FILE_ARG.match(word):
            out += seed_args
        elif word.startswith("initrd="):
            continue
        else:
            out.append(word)
    return " ".join(out)


def _url_args(entry: MenuEntry, url: str, seed: str) -> list[str]:
    """What stands for `file=/cdrom/...` when d-i fetches the seed from `url`.

    A `url=` preseed is fetched by network-preseed, after netcfg configured the network, so
    netcfg's questions come first and the seed cannot answer them: d-i stops at its host name
    question. Debian's auto mode (`auto=true priority=critical`) takes the questions before the
    fetch from the command line instead (Debian's installation guide, "Auto mode": the host name
    and domain are given as boot parameters); the Smart Installer's own kernel lines do the same
    (smart_installer/netboot.py). The answers are the seed's own (a deployment's host name), else
    "stackops" and no domain; a host name from DHCP still wins (netcfg), so nodes on one segment
    keep their own names. An entry that sets its own priority (expert) keeps it and its
    questions; one whose command line names the host already keeps that name.
    """
    words = entry.append.split()
    args = ["auto=true"]
    if not any(w.startswith("priority=") for w in words):
        args.append("priority=critical")
    args.append(f"url={url}")
    if not any(w.startswith(("interface=", "netcfg/choose_interface=")) for w in words):
        args.append("interface=auto")
    if not any(w.startswith(("netcfg/get_hostname=", "hostname=")) for w in words):
        hostname = _seed_answer(seed, "netcfg/get_hostname") or "stackops"
        args.append(f"netcfg/get_hostname={hostname}")
    if not any(w.startswith(("netcfg/get_domain=", "domain=")) for w in words):
        args.append(f"netcfg/get_domain={_seed_answer(seed, 'netcfg/get_domain')}")
    return args


def _seed_answer(seed: str, question: str) -> str:
    """The one-word answer `seed` gives `d-i <question>`, or "" (none, or not one word)."""
    m = re.search(rf"^d-i[ \t]+{re.escape(question)}[ \t]+string[ \t]*(\S*)[ \t]*$", seed, re.M)
    return m[1] if m else ""


def _layer_from_cd(image: IsoImage) -> dict[str, bytes | tuple[bytes, int]]:
    """What `build` appended to the disc's install/initrd.gz: preseed.cfg and stackops/."""
    try:
        initrd = image.read(CD_INITRD)
    except KeyError as e:
        raise IsoError(f"the disc has no {CD_INITRD}: not an install disc") from e
    files: dict[str, bytes | tuple[bytes, int]] = {}
    for m in initrd_members(initrd):
        if not stat.S_ISREG(m.mode):
            continue
        if m.name == "preseed.cfg" or m.name.startswith(f"{INSTALLER_DIR}/"):
            files[m.name] = (m.data, stat.S_IMODE(m.mode))
    if "preseed.cfg" not in files or not any(n.startswith(f"{INSTALLER_DIR}/") for n in files):
        raise IsoError(
            f"{CD_INITRD} carries no StackOps layer (preseed.cfg, {INSTALLER_DIR}/)",
            hint="export a disc made by `distro-builder build`, not its base",
        )
    return files


def _mirror_lines(url: str, codename: str) -> str:
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname or parts.query or parts.fragment:
        raise ConfigError(
            f"--mirror {url!r}: an http://HOST[:PORT]/DIR URL",
            hint="e.g. http://10.0.0.2:8080/disc (a running `serve --disc`)",
        )
    host = parts.netloc
    directory = parts.path.rstrip("/") or "/"
    return "\n".join(
        (
            "",
            "### Network install (distro-builder netboot --mirror): the disc's archive over HTTP",
            "d-i mirror/country string manual",
            "d-i mirror/protocol string http",
            f"d-i mirror/http/hostname string {host}",
            f"d-i mirror/http/directory string {directory}",
            "d-i mirror/http/proxy string",
            f"d-i mirror/suite string {codename}",
            f"d-i mirror/udeb/suite string {codename}",
            "d-i apt-setup/use_mirror boolean true",
            "",
        )
    )


def export_pxe_tree(
    iso: Path,
    out: Path,
    *,
    default_entry: str | None = None,
    timeout: int = 0,
    preseed_url: str | None = None,
    mirror: str | None = None,
    force: bool = False,
) -> PxeTree:
    """Write the PXE tree of the built disc `iso` to `out` (staged beside it, then renamed)."""
    for src in (PXELINUX, *(SYSLINUX_MODULES / m for m in MODULES)):
        if not src.is_file():
            raise ConfigError(
                f"{src} is missing",
                hint="install the Debian packages pxelinux and syslinux-common (`make deps`)",
            )
    if timeout < 0 or timeout > 3600:
        raise ConfigError("--timeout: 0 (the menu waits) to 3600 seconds")
    if preseed_url is not None:
        parts = urlsplit(preseed_url)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
            raise ConfigError(f"--preseed-url {preseed_url!r}: an http://HOST[:PORT]/DIR URL")
        preseed_url = preseed_url.rstrip("/")
    if out.exists() and not force and (not out.is_dir() or any(out.iterdir())):
        raise OutputError(f"{out} exists and is not empty", hint="--force replaces it")
    with IsoImage(iso) as image:
        kinds = {e.path: e.kind for e in image.walk(NETBOOT_DIR)} if _has(image) else {}
        arches = sorted(
            p.rsplit("/", 1)[1]
            for p, k in kinds.items()
            if k is EntryKind.dir
            and p.count("/") == NETBOOT_DIR.count("/") + 1
            and kinds.get(f"{p}/linux") is EntryKind.file
            and kinds.get(f"{p}/initrd.gz") is EntryKind.file
        )
        if not arches:
            raise IsoError(
                f"{iso}: no netboot tree ({NETBOOT_DIR.lstrip('/')}/<arch>/linux, initrd.gz)",
                hint="a lucid server disc carries one; so does the demo base",
            )
        arch = "amd64" if "amd64" in arches else arches[0]
        menu = read_boot_menu(image)
        disc_entries = [
            e for e in menu.entries
            if e.kernel and _roles(e.append) is not None and e.submenu is None and not e.hidden
        ]  # fmt: skip
        if not disc_entries:
            raise IsoError(
                f"{iso}: its boot menu has no StackOps entry (stackops/roles=)",
                hint="export a disc made by `distro-builder build`",
            )
        layer = _layer_from_cd(image)
        codename = _codename(image)
        seeds: dict[str, bytes] = {}
        entries: list[PxeEntry] = []
        for e in disc_entries:
            m = next((m for w in e.append.split() if (m := _FILE_ARG.match(w))), None)
            if m is None or not _ENTRY_NAME.match(e.label):
                raise IsoError(f"boot entry {e.label!r}: no file=/cdrom/preseed/<entry>.seed")
            name = m[2]
            if name not in seeds:
                text = image.read_text(m[1])
                if text is None:
                    raise IsoError(f"boot entry {e.label!r}: {m[1]} is not on the disc")
                if mirror:
                    text += _mirror_lines(mirror, codename)
                seeds[name] = text.encode()
            args = (
                _url_args(e, f"{preseed_url}/{name}", seeds[name].decode())
                if preseed_url
                else [f"file=/{SEEDS_DIR}/{name}"]
            )
            roles = _roles(e.append) or ""
            entries.append(PxeEntry(e.label, e.menu_label, roles, _boot_args(e, args), name))
        kernel = image.read(f"{NETBOOT_DIR}/{arch}/linux")
        initrd = image.read(f"{NETBOOT_DIR}/{arch}/initrd.gz")
        serial = "serial 0" in "\n".join(
            (image.read_text(f) or "").lower() for f in menu.files
        ) or any("console=ttyS" in e.append for e in disc_entries)
    labels = [e.label for e in entries]
    default = default_entry or labels[0]
    if default not in labels:
        raise ConfigError(
            f"--default-entry {default!r} is not a StackOps entry of the disc",
            hint="entries: " + ", ".join(labels),
        )
    layer.update({f"{SEEDS_DIR}/{n}": data for n, data in seeds.items()})
    files: dict[str, bytes] = {
        f"ubuntu-installer/{arch}/linux": kernel,
        f"ubuntu-installer/{arch}/initrd.gz": append_to_initrd(initrd, layer),
        "pxelinux.cfg/default": _pxelinux_cfg(entries, arch, default, timeout, serial).encode(),
        **{f"preseed/{n}": data for n, data in seeds.items()},
    }
    out = out.absolute()
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        shutil.copyfile(PXELINUX, stage / "pxelinux.0")
        for m in MODULES:
            shutil.copyfile(SYSLINUX_MODULES / m, stage / m)
        for rel, data in files.items():
            path = stage / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        for p in [stage, *stage.rglob("*")]:
            p.chmod(0o755 if p.is_dir() else 0o644)  # TFTP servers serve world-readable files
        if out.exists():
            old = out.parent / f".{out.name}.old-{os.getpid()}"
            out.rename(old)
            stage.rename(out)
            shutil.rmtree(old)
        else:
            stage.rename(out)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    written = ("pxelinux.0", *MODULES, *files)
    log.info("netboot: %s -> %s (%d entries, %s)", iso, out, len(entries), arch)
    return PxeTree(out, arch, tuple(entries), default, tuple(sorted(written)))


def _has(image: IsoImage) -> bool:
    e = image.lookup(NETBOOT_DIR)
    return e is not None and e.kind is EntryKind.dir


def _codename(image: IsoImage) -> str:
    for e in image.walk("/dists"):
        if e.kind is EntryKind.dir and e.path.count("/") == 2:
            release = image.read_text(f"{e.path}/Release")
            if release:
                for line in release.splitlines():
                    if line.startswith("Codename:"):
                        return line.split(":", 1)[1].strip()
                return e.path.rsplit("/", 1)[1]
    raise IsoError("no dists/<codename>/Release on the disc: not an install disc")


def _pxelinux_cfg(
    entries: list[PxeEntry], arch: str, default: str, timeout: int, serial: bool
) -> str:
    lines = []
    if serial:
        lines.append("serial 0 115200")
    lines += [
        "# StackOps network install (distro-builder netboot): the disc's entries over TFTP",
        "ui menu.c32",
        f"default {default}",
        "prompt 0",
        f"timeout {timeout * 10}",
        "menu title StackOps network install",
        "",
    ]
    for e in entries:
        lines += [
            f"label {e.label}",
            f"  menu label {e.menu_label}",
            f"  kernel ubuntu-installer/{arch}/linux",
            f"  append initrd=ubuntu-installer/{arch}/initrd.gz {e.append}",
            "",
        ]
    lines += ["label local", "  menu label Boot from the local disk", "  localboot 0", ""]
    return "\n".join(lines)
