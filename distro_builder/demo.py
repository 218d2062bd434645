"""The demo base: a lucid-faithful stand-in for ubuntu-10.04.4-server-amd64.iso.

No Ubuntu ISO can be downloaded where this project is built and tested, so the demo base is made
from demo/ (identity, isolinux files, seeds, package universe) plus boot parts from the host's
Debian packages, with the real disc's quirks (../shared/DESIGN.md §5): `.disk/info` without a
trailing newline, the `ubuntu -> .` and `dists/stable|unstable` symlinks, a Release listing absent
uncompressed Packages files, Task: fields, a debian-installer index, md5sum.txt without isolinux/,
and Ubuntu's mkisofs options.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

from distro_builder.archive import debs, index
from distro_builder.config.demo import load_demo_disc
from distro_builder.errors import ToolError
from distro_builder.log import step
from distro_builder.media.iso import check_output_path
from distro_builder.media.layout import md5sum_excluded
from distro_builder.model import BootPart, DemoDisc, DemoPackage
from distro_builder.run import require_tool, run
from distro_builder.seed.render import render_template

log = logging.getLogger(__name__)

# Ubuntu's mkisofs options for lucid (lucid-and-nova.md §1.4), without -o, -V and the tree.
MKISOFS_OPTIONS = (
    "-r", "-J", "-l", "-cache-inodes",
    "-b", "isolinux/isolinux.bin", "-c", "isolinux/boot.cat",
    "-no-emul-boot", "-boot-load-size", "4", "-boot-info-table",
)  # fmt: skip


def require_boot_part(part: BootPart) -> Path:
    """The host file of a boot part, or ToolError naming the package to install."""
    p = Path(part.path)
    if not p.is_file():
        raise ToolError(
            f"{p} is missing: the demo base takes it from the Debian package {part.package}",
            hint=f"install it: apt-get install {part.package}",
        )
    return p


def _control(disc: DemoDisc, pkg: DemoPackage) -> dict[str, str]:
    fields = {
        "Package": pkg.name,
        "Version": pkg.version,
        "Architecture": pkg.arch,
        "Maintainer": disc.maintainer,
        "Section": pkg.section,
        "Priority": pkg.priority,
        "Description": f"{pkg.name} (DEMO stand-in)\n"
        f" Tiny stand-in for the Ubuntu {disc.version} package {pkg.name}, made by\n"
        " distro-builder for its demo base. Real name, version and relations; no payload.",
    }
    if pkg.source and pkg.source != pkg.name:
        fields["Source"] = pkg.source
    if pkg.depends:
        fields["Depends"] = pkg.depends
    return fields


def _build_package(data_dir: Path, disc: DemoDisc, pkg: DemoPackage) -> tuple[str, bytes]:
    """(pool path, .deb bytes) of one demo package."""
    readme = render_template(
        data_dir / "demo" / "templates", "README.demo.j2", package=pkg.name, version=pkg.version
    )
    files = {f"/usr/share/doc/{pkg.name}/README.demo": readme.encode()}
    build = debs.build_udeb if pkg.udeb else debs.build_deb
    deb = build(_control(disc, pkg), files, mtime=disc.epoch)
    filename = debs.deb_filename(pkg.name, pkg.version, pkg.arch, udeb=pkg.udeb)
    return debs.pool_path(pkg.component, pkg.source or pkg.name, filename), deb


def _write(path: Path, data: bytes | str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)


def stage_tree(data_dir: Path, disc: DemoDisc, tree: Path) -> int:
    """Lay out the demo disc's file tree under `tree`; returns the number of packages."""
    shutil.copytree(data_dir / "demo" / "tree", tree, symlinks=True, dirs_exist_ok=True)
    templates = data_dir / "demo" / "templates"
    # .disk/info is written with `echo -n` by debian-cd: no trailing newline.
    _write(
        tree / ".disk" / "info",
        render_template(templates, "info.j2", disk_info=disc.disk_info).rstrip("\n"),
    )
    _write(
        tree / "README.diskdefines",
        render_template(
            templates, "README.diskdefines.j2", disk_name=disc.disk_name, arch=disc.arch
        ),
    )
    # Boot parts from the host's Debian packages.
    shutil.copyfile(require_boot_part(disc.isolinux), tree / "isolinux" / "isolinux.bin")
    for mod in disc.modules:
        src = require_boot_part(mod)
        shutil.copyfile(src, tree / "isolinux" / src.name)
    (tree / "install").mkdir(exist_ok=True)
    shutil.copyfile(require_boot_part(disc.kernel), tree / "install" / "vmlinuz")
    shutil.copyfile(require_boot_part(disc.initrd), tree / "install" / "initrd.gz")
    shutil.copyfile(require_boot_part(disc.memtest), tree / "install" / "mt86plus")
    stage_netboot(tree / "install" / "netboot")

    # The archive: pool, Packages.gz (with Task:), per-component Release, top-level Release.
    dists = tree / "dists" / disc.codename
    stanzas: dict[str, list[dict[str, str]]] = defaultdict(list)
    for pkg in disc.packages:
        pool, deb = _build_package(data_dir, disc, pkg)
        _write(tree / pool, deb)
        stanza = index.packages_stanza(deb, pool)
        if pkg.task:  # Ubuntu's archive adds Task: through an override, not in the .deb
            stanza = _insert_after(stanza, "Priority", "Task", pkg.task)
        where = f"{pkg.component}/debian-installer" if pkg.udeb else pkg.component
        stanzas[where].append(stanza)
    listed: dict[str, bytes] = {}
    for comp in disc.components:
        for sub in (comp, f"{comp}/debian-installer"):
            if sub not in stanzas and sub != comp:
                continue
            rel = f"{sub}/binary-{disc.arch}"
            packages = index.render_packages(stanzas.get(sub, [])).encode()
            gz = index.gzip_bytes(packages, mtime=disc.epoch)
            _write(dists / rel / "Packages.gz", gz)
            # The uncompressed Packages is listed in Release but deleted from the disc
            # (debian-cd add_secured): apt and debootstrap want it mentioned.
            listed[f"{rel}/Packages"] = packages
            listed[f"{rel}/Packages.gz"] = gz
            if sub == comp:
                rel_file = index.render_component_release(
                    disc.codename, disc.version, comp, "Ubuntu", "Ubuntu", disc.arch
                ).encode()
                _write(dists / rel / "Release", rel_file)
                listed[f"{rel}/Release"] = rel_file
        (dists / comp / "source").mkdir(parents=True, exist_ok=True)
    _write(dists / "Release", index.render_release(dict(disc.release), listed))

    # The symlinks debian-cd's add_dirs makes.
    os.symlink(".", tree / "ubuntu")
    for name in ("stable", "unstable"):
        os.symlink(disc.codename, tree / "dists" / name)

    _write(tree / "md5sum.txt", index.md5sum_txt(sorted(_md5_files(tree))))
    return len(disc.packages)


# Debian's netboot tree (the unpacked netboot.tar.gz d-i's build makes, as lucid's server disc
# carries it under install/netboot/ with ubuntu-installer/ for debian-installer/).
NETBOOT_PACKAGE = "debian-installer-12-netboot-amd64"
NETBOOT_SOURCE = Path("/usr/lib/debian-installer/images/12/amd64/text")


def stage_netboot(dest: Path, source: Path = NETBOOT_SOURCE) -> None:
    """install/netboot/: pxelinux.0, pxelinux.cfg, ubuntu-installer/<arch>/{linux, initrd.gz,
    pxelinux.0, pxelinux.cfg/default, boot-screens/}: d-i's netboot layout, renamed as Ubuntu's."""
    if not (source / "debian-installer").is_dir():
        raise ToolError(
            f"{source} is missing: the demo base's netboot tree comes from {NETBOOT_PACKAGE}",
            hint=f"install it: apt-get install {NETBOOT_PACKAGE}",
        )
    for dirpath, dirnames, filenames in os.walk(source):
        dirnames[:] = sorted(d for d in dirnames if d != "grub")  # no EFI in 2010
        for name in sorted(dirnames + filenames):
            if name.endswith(".efi"):
                continue
            src = Path(dirpath) / name
            rel = src.relative_to(source).as_posix().replace("debian-installer", "ubuntu-installer")
            out = dest / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            if src.is_symlink():
                os.symlink(os.readlink(src).replace("debian-installer", "ubuntu-installer"), out)
            elif src.is_dir():
                out.mkdir(exist_ok=True)
            elif src.suffix in (".cfg", ".txt", ".info") or name == "default":
                text = src.read_bytes().replace(b"debian-installer/", b"ubuntu-installer/")
                out.write_bytes(text)
            else:
                shutil.copyfile(src, out)


def _insert_after(stanza: dict[str, str], after: str, key: str, value: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in stanza.items():
        out[k] = v
        if k == after:
            out[key] = value
    out.setdefault(key, value)
    return out


def _md5_files(tree: Path) -> Iterator[tuple[str, Path]]:
    for dirpath, dirnames, filenames in os.walk(tree):
        dirnames.sort()
        for name in filenames:
            p = Path(dirpath) / name
            rel = p.relative_to(tree).as_posix()
            if p.is_symlink() or md5sum_excluded(rel):
                continue
            yield rel, p


def _pin_mtimes(tree: Path, epoch: int) -> None:
    for dirpath, dirnames, filenames in os.walk(tree):
        for name in dirnames + filenames:
            os.utime(Path(dirpath) / name, (epoch, epoch), follow_symlinks=False)
    os.utime(tree, (epoch, epoch))


def build_demo_base(data_dir: Path, out: Path) -> Path:
    """Build the demo base ISO at `out` (atomically); returns `out`."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    check_output_path(out)
    mkisofs = require_tool("genisoimage", reason="build the demo base ISO as Ubuntu's mkisofs did")
    disc = load_demo_disc(data_dir)
    with tempfile.TemporaryDirectory(prefix="demo-base.", dir=out.parent) as tmp:
        tree = Path(tmp) / "tree"
        with step(f"Staging the demo disc tree ({disc.volume_id})"):
            n = stage_tree(data_dir, disc, tree)
            log.info("    %d demo packages in pool/", n)
            _pin_mtimes(tree, disc.epoch)
        part = Path(tmp) / "out.iso"
        with step(f"Writing {out} with genisoimage"):
            run(
                [mkisofs, "-quiet", *MKISOFS_OPTIONS, "-V", disc.volume_id, "-o", part, tree],
                env={"SOURCE_DATE_EPOCH": str(disc.epoch), "TZ": "UTC"},
            )
            os.chmod(part, 0o644)
            os.replace(part, out)
    return out
