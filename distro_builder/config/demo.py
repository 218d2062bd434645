"""demo/disc.yaml -> DemoDisc."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from distro_builder.config import Fields, load_yaml
from distro_builder.errors import ConfigError
from distro_builder.model import BootPart, DemoDisc, DemoPackage


def _boot_part(f: Fields, key: str) -> BootPart:
    sub = f.sub(key, {"package", "path"})
    return BootPart(package=sub.str("package"), path=sub.str("path"))


def load_demo_disc(data_dir: Path) -> DemoDisc:
    """Read demo/disc.yaml."""
    path = data_dir / "demo" / "disc.yaml"
    top = Fields(
        path, "", load_yaml(path), {"identity", "release", "boot", "maintainer", "packages"}
    )
    ident = top.sub(
        "identity",
        {
            "volume_id",
            "disk_info",
            "disk_name",
            "codename",
            "version",
            "arch",
            "components",
            "date",
            "epoch",
        },
    )
    volume_id = ident.str("volume_id")
    if len(volume_id) > 32:
        raise ConfigError(
            f"{path}: identity.volume_id is longer than 32 characters (ISO 9660 limit)"
        )
    release = top.data.get("release")
    if not isinstance(release, Mapping) or not release:
        raise ConfigError(f"{path}: release must be a mapping of Release fields")
    boot = top.sub("boot", {"isolinux", "modules", "kernel", "initrd", "memtest"})
    mods = boot.sub("modules", {"package", "dir", "files"})
    modules = tuple(
        BootPart(mods.str("package"), f"{mods.str('dir')}/{name}")
        for name in mods.str_list("files")
    )
    pkgs_raw = top.data.get("packages")
    if not isinstance(pkgs_raw, Mapping) or not pkgs_raw:
        raise ConfigError(f"{path}: packages must be a mapping of package name to fields")
    packages = []
    allowed = {
        "version",
        "arch",
        "section",
        "priority",
        "component",
        "source",
        "depends",
        "task",
        "udeb",
    }
    for name, raw in pkgs_raw.items():
        pf = Fields(path, f"packages.{name}", raw, allowed)
        arch = pf.str("arch")
        if arch not in ("all", ident.str("arch")):
            raise ConfigError(
                f"{path}: packages.{name}.arch must be 'all' or '{ident.str('arch')}'"
            )
        packages.append(
            DemoPackage(
                name=str(name),
                version=pf.str("version"),
                arch=arch,
                section=pf.str("section"),
                priority=pf.str("priority"),
                component=pf.str("component", "main"),
                source=pf.opt_str("source"),
                depends=pf.opt_str("depends"),
                task=pf.opt_str("task"),
                udeb=pf.bool("udeb"),
            )
        )
    components = ident.str_list("components")
    for p in packages:
        if p.component not in components:
            raise ConfigError(
                f"{path}: packages.{p.name}.component '{p.component}' is not in identity.components"
            )
    return DemoDisc(
        volume_id=volume_id,
        disk_info=ident.str("disk_info"),
        disk_name=ident.str("disk_name"),
        codename=ident.str("codename"),
        version=ident.str("version"),
        arch=ident.str("arch"),
        components=components,
        epoch=ident.int("epoch"),
        release=tuple((str(k), str(v)) for k, v in release.items()),
        maintainer=top.str("maintainer"),
        isolinux=_boot_part(boot, "isolinux"),
        modules=modules,
        kernel=_boot_part(boot, "kernel"),
        initrd=_boot_part(boot, "initrd"),
        memtest=_boot_part(boot, "memtest"),
        packages=tuple(packages),
    )
