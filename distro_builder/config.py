"""YAML -> validated model records. The only importer of yaml.

Every error names the file and the key (and the line where yaml knows it) and says how to fix it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from distro_builder.errors import ConfigError
from distro_builder.model import BootPart, DemoDisc, DemoPackage

DATA_MARKER = "demo/disc.yaml"


def find_data_dir(explicit: Path | None = None) -> Path:
    """The folder holding demo/, preseed/, roles/, package_lists/.

    Order: --data-dir, $DISTRO_BUILDER_DATA, the source checkout, the installed share folder.
    """
    candidates: list[Path] = []
    if explicit is not None:
        candidates.append(Path(explicit))
    elif os.environ.get("DISTRO_BUILDER_DATA"):
        candidates.append(Path(os.environ["DISTRO_BUILDER_DATA"]))
    else:
        candidates.append(Path(__file__).resolve().parent.parent)
        candidates.append(Path(sys.prefix) / "share" / "distro-builder")
    for c in candidates:
        if (c / DATA_MARKER).is_file():
            return c
    raise ConfigError(
        f"no data folder found (looked in {', '.join(str(c) for c in candidates)})",
        hint="run from a checkout of distro-builder or pass --data-dir",
    )


def _load_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror}", hint="check the path") from e
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(e, "problem", None) or str(e)
        raise ConfigError(f"{where}: invalid YAML: {problem}", hint="fix the YAML syntax") from e


class _Fields:
    """Typed access to one mapping of a YAML file, with errors naming file and key."""

    def __init__(self, path: Path, where: str, data: Any, allowed: set[str]) -> None:
        if not isinstance(data, Mapping):
            raise ConfigError(f"{path}: {where or 'top level'} must be a mapping")
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise ConfigError(
                f"{path}: unknown key {where + '.' if where else ''}{unknown[0]}",
                hint=f"allowed keys: {', '.join(sorted(allowed))}",
            )
        self.path, self.where, self.data = path, where, data

    def _key(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def str(self, key: str, default: str | None = None) -> str:
        value = self.data.get(key, default)
        if value is None:
            raise ConfigError(f"{self.path}: missing key {self._key(key)}")
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ConfigError(f"{self.path}: {self._key(key)} must be a string")
        return str(value)

    def opt_str(self, key: str) -> str | None:
        return self.str(key) if self.data.get(key) is not None else None

    def int(self, key: str) -> int:
        value = self.data.get(key)
        if not isinstance(value, int) or isinstance(value, bool):
            raise ConfigError(f"{self.path}: {self._key(key)} must be an integer")
        return value

    def bool(self, key: str, default: bool = False) -> bool:
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            raise ConfigError(f"{self.path}: {self._key(key)} must be true or false")
        return value

    def str_list(self, key: str) -> tuple[str, ...]:
        value = self.data.get(key)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{self.path}: {self._key(key)} must be a list of strings")
        return tuple(value)

    def sub(self, key: str, allowed: set[str]) -> _Fields:
        if key not in self.data:
            raise ConfigError(f"{self.path}: missing key {self._key(key)}")
        return _Fields(self.path, self._key(key), self.data[key], allowed)


def _boot_part(f: _Fields, key: str) -> BootPart:
    sub = f.sub(key, {"package", "path"})
    return BootPart(package=sub.str("package"), path=sub.str("path"))


def load_demo_disc(data_dir: Path) -> DemoDisc:
    """Read demo/disc.yaml."""
    path = data_dir / "demo" / "disc.yaml"
    top = _Fields(
        path, "", _load_yaml(path), {"identity", "release", "boot", "maintainer", "packages"}
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
        pf = _Fields(path, f"packages.{name}", raw, allowed)
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
