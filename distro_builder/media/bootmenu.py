"""Read an isolinux configuration the way isolinux does: follow includes, collect labels.

Pure parsing over a `read(path) -> text | None` callback, so it works on an opened image or a
directory tree alike. Keywords are case-insensitive; relative paths are relative to the directory
isolinux.bin was loaded from (syslinux's working directory).
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from distro_builder.imagemodel import BootMenu, MenuEntry

Reader = Callable[[str], str | None]
_INITRD_RE = re.compile(r"(?:^|\s)initrd=(\S+)")
_MAX_DEPTH = 16


@dataclass
class _Label:
    label: str
    config_file: str
    submenu: str | None
    menu_label: str = ""
    kernel: str | None = None
    append: str = ""
    initrd: str | None = None
    hidden: bool = False
    localboot: str | None = None


@dataclass
class _State:
    read: Reader
    cwd: str
    files: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    labels: list[_Label] = field(default_factory=list)
    globals: dict[str, str] = field(default_factory=dict)
    submenus: list[str] = field(default_factory=list)


def resolve_path(path: str, cwd: str) -> str:
    """An absolute disc path for a path written in a cfg file."""
    if path.startswith("/"):
        return posixpath.normpath(path)
    return posixpath.normpath(posixpath.join(cwd, path))


def parse_boot_menu(read: Reader, config: str = "/isolinux/isolinux.cfg") -> BootMenu:
    """Parse `config` and everything it includes into a BootMenu."""
    state = _State(read=read, cwd=posixpath.dirname(config))
    _parse_file(state, config, depth=0)
    g = state.globals
    default = g.get("default")
    # Old style: `default vesamenu.c32` runs the menu module; the menu's default is a label.
    ui = g.get("ui") or g.get("default_module")
    entries = tuple(_finish(lbl, state.cwd) for lbl in state.labels)
    return BootMenu(
        files=tuple(state.files),
        default=default,
        timeout=_int(g.get("timeout")),
        prompt=_int(g.get("prompt")),
        ui=ui,
        serial=g.get("serial"),
        gfxboot=g.get("gfxboot"),
        entries=entries,
        missing_includes=tuple(state.missing),
        menu_rows=_int(g.get("menu_rows")),
    )


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _finish(lbl: _Label, cwd: str) -> MenuEntry:
    initrd = lbl.initrd
    found = _INITRD_RE.findall(lbl.append)
    if found:
        initrd = found[-1].split(",")[0]  # the last initrd= wins, as in the kernel
    kernel = lbl.kernel
    if kernel is not None and not kernel.lower().endswith(".c32"):
        kernel = resolve_path(kernel, cwd)
    return MenuEntry(
        label=lbl.label,
        menu_label=(lbl.menu_label or lbl.label).replace("^", ""),
        kernel=kernel,
        initrd=resolve_path(initrd, cwd) if initrd else None,
        append=lbl.append.strip(),
        config_file=lbl.config_file,
        submenu=lbl.submenu,
        hidden=lbl.hidden,
        localboot=lbl.localboot,
    )


def _parse_file(state: _State, path: str, depth: int) -> None:
    if depth > _MAX_DEPTH:
        state.missing.append(f"{path} (include nesting too deep)")
        return
    text = state.read(path)
    if text is None:
        state.missing.append(path)
        return
    state.files.append(path)
    current: _Label | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        if "\t" in word:
            word, _, more = word.partition("\t")
            rest = (more + " " + rest).strip()
        key = word.lower()
        rest = rest.strip()
        if key == "menu":
            sub, _, arg = rest.partition(" ")
            if "\t" in sub:
                sub, _, more = sub.partition("\t")
                arg = (more + " " + arg).strip()
            sub = sub.lower()
            arg = arg.strip()
            if sub == "label" and current is not None:
                current.menu_label = arg
            elif sub == "hide" and current is not None:
                current.hidden = True
            elif sub == "include":
                _parse_file(state, resolve_path(arg.split()[0], state.cwd), depth + 1)
            elif sub == "begin":
                current = None
                state.submenus.append(arg or "submenu")
            elif sub == "rows":
                state.globals["menu_rows"] = arg  # in parse order: a later one wins
            elif sub == "title" and state.submenus:
                state.submenus[-1] = arg
            elif sub == "end":
                current = None
                if state.submenus:
                    state.submenus.pop()
            continue
        if key == "label":
            current = _Label(
                label=rest,
                config_file=path,
                submenu=state.submenus[-1] if state.submenus else None,
            )
            state.labels.append(current)
        elif key == "include":
            _parse_file(state, resolve_path(rest.split()[0], state.cwd), depth + 1)
        elif key in ("kernel", "linux", "com32", "boot", "bss", "pxe", "fdimage", "comboot"):
            if current is not None:
                current.kernel = rest.split()[0] if rest else None
            else:
                state.globals.setdefault("kernel", rest)
        elif key == "append":
            if current is not None:
                current.append = rest
        elif key == "initrd":
            if current is not None:
                current.initrd = rest.split()[0] if rest else None
        elif key == "localboot":
            if current is not None:
                current.localboot = rest
        elif key == "default" and rest.split()[:1] and rest.split()[0].lower().endswith(".c32"):
            state.globals["default_module"] = rest.split()[0]
        elif key in ("default", "ui", "timeout", "prompt", "serial", "gfxboot", "totaltimeout"):
            state.globals[key] = rest  # a later setting overrides an earlier one
