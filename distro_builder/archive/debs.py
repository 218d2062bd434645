"""Build real, reproducible binary packages (.deb/.udeb) in pure Python, and name them.

Owns the on-disk format of the packages this project generates (demo base, role metapackages,
the node agent): an `ar` archive holding `debian-binary`, `control.tar.gz` and `data.tar.gz`, the
format lucid's dpkg 1.15 reads (gzip only: no xz/zstd members). Output is a pure function of the
input: members are sorted, every parent directory is present, owners are root:root (0/0) and one
fixed `mtime` is used in the tar, gzip and ar headers. Also owns the pool layout (`pool_path`) and
package file names (`deb_filename`). Imports python-debian only for version syntax.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import re
import tarfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from distro_builder.errors import ArchiveError

FileContent = bytes | tuple[bytes, int]
"""A file in a package: its content (mode 0644) or (content, mode)."""

# dpkg-gencontrol's order for binary control files; fields not listed keep their given order and go
# after Homepage; Description is always last.
CONTROL_FIELD_ORDER: tuple[str, ...] = (
    "Package",
    "Package-Type",
    "Source",
    "Version",
    "Architecture",
    "Essential",
    "Multi-Arch",
    "Origin",
    "Bugs",
    "Maintainer",
    "Original-Maintainer",
    "Installed-Size",
    "Pre-Depends",
    "Depends",
    "Recommends",
    "Suggests",
    "Enhances",
    "Conflicts",
    "Breaks",
    "Replaces",
    "Provides",
    "Section",
    "Priority",
    "Homepage",
)
REQUIRED_FIELDS: tuple[str, ...] = (
    "Package",
    "Version",
    "Architecture",
    "Maintainer",
    "Description",
)

# Control-archive members a caller may supply: executable maintainer scripts and plain data files.
SCRIPT_MEMBERS: frozenset[str] = frozenset({"preinst", "postinst", "prerm", "postrm", "config"})
DATA_MEMBERS: frozenset[str] = frozenset({"templates", "triggers", "shlibs"})

PACKAGE_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")
ARCH_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")
FIELD_NAME_RE = re.compile(r"^[!-9;-~]+$")  # printable ASCII without ':' and space
COMPONENT_RE = re.compile(r"^[a-z0-9][a-z0-9-]*(/[a-z0-9][a-z0-9-]*)?$")

_DIR_MODE = 0o755
_FILE_MODE = 0o644
_SCRIPT_MODE = 0o755
_SYMLINK_MODE = 0o777


def _fail(message: str, hint: str) -> ArchiveError:
    return ArchiveError(message, hint=hint)


def check_package_name(name: str) -> str:
    """Return `name` if it is a valid Debian package name, else raise ArchiveError."""
    if not PACKAGE_NAME_RE.match(name):
        raise _fail(
            f"Invalid package name {name!r}",
            "package names are at least two characters of a-z, 0-9, '+', '-', '.', "
            "starting with a letter or digit (Debian Policy 5.6.7)",
        )
    return name


def check_version(version: str) -> str:
    """Return `version` if dpkg would accept it in a binary package, else raise ArchiveError."""
    hint = "use [epoch:]upstream[-revision], upstream starting with a digit, e.g. 2011.2-0ubuntu1"
    # imported here: python-debian costs the remaster engine's start-up 10 ms (archive/index.py)
    from debian.debian_support import Version

    try:
        parsed = Version(version)
    except ValueError as e:
        raise _fail(f"Invalid version {version!r}: {e}", hint) from e
    upstream = parsed.upstream_version or ""
    if not upstream[:1].isdigit():
        raise _fail(f"Invalid version {version!r}: upstream part does not start with a digit", hint)
    if parsed.epoch is None and ":" in upstream:
        raise _fail(f"Invalid version {version!r}: ':' without an epoch", hint)
    if parsed.debian_revision is None and "-" in upstream:
        raise _fail(f"Invalid version {version!r}: '-' without a Debian revision", hint)
    return version


def deb_filename(package: str, version: str, arch: str, *, udeb: bool = False) -> str:
    """Pool file name of a package: `<package>_<version without epoch>_<arch>.deb` (or .udeb)."""
    check_package_name(package)
    check_version(version)
    _check_arch(arch)
    bare = version.split(":", 1)[1] if ":" in version else version
    return f"{package}_{bare}_{arch}.{'udeb' if udeb else 'deb'}"


def pool_path(component: str, source_or_package: str, filename: str) -> str:
    """Archive-relative pool path: `pool/<component>/<prefix>/<source>/<filename>`.

    The prefix is the first letter, or the first four for `lib*` sources (`libvirt` → `libv`).
    A `Source:` value with a version in parentheses (`glibc (2.11.1-0ubuntu7)`) is accepted.
    """
    if not COMPONENT_RE.match(component):
        raise _fail(f"Invalid archive component {component!r}", "use e.g. main, restricted, extras")
    source = source_or_package.split("(", 1)[0].strip()
    check_package_name(source)
    if not filename or "/" in filename or filename in (".", ".."):
        raise _fail(
            f"Invalid pool file name {filename!r}", "give a bare file name, see deb_filename()"
        )
    prefix = source[:4] if source.startswith("lib") else source[0]
    return f"pool/{component}/{prefix}/{source}/{filename}"


def _check_arch(arch: str) -> str:
    if not ARCH_RE.match(arch) or arch == "any":
        raise _fail(
            f"Invalid binary package architecture {arch!r}", "use 'all' or a Debian arch like amd64"
        )
    return arch


def fold_field(name: str, value: str) -> str:
    """One deb822 `Name: value` field (control files and indexes): folded, empty lines ' .'."""
    first, *rest = str(value).rstrip("\n").split("\n")
    lines = [f"{name}: {first.strip()}" if first.strip() else f"{name}:"]
    for line in rest:
        if not line.strip() or line.strip() == ".":
            lines.append(" .")
        elif line[0] in " \t":
            lines.append(line.rstrip())
        else:
            lines.append(" " + line.rstrip())
    return "\n".join(lines) + "\n"


def order_control_fields(control: Mapping[str, str]) -> list[tuple[str, str]]:
    """The fields of `control` in dpkg-gencontrol's order.

    Unknown fields keep their given order after Homepage; Description is always last.
    """
    known = [(f, control[f]) for f in CONTROL_FIELD_ORDER if f in control]
    extra = [
        (f, v) for f, v in control.items() if f not in CONTROL_FIELD_ORDER and f != "Description"
    ]
    tail = [("Description", control["Description"])] if "Description" in control else []
    return known + extra + tail


def render_control(control: Mapping[str, str]) -> str:
    """The text of a DEBIAN/control file for `control` (validated, canonical order)."""
    _validate_control(control)
    return "".join(fold_field(name, value) for name, value in order_control_fields(control))


def _validate_control(control: Mapping[str, str]) -> None:
    missing = [f for f in REQUIRED_FIELDS if not str(control.get(f, "")).strip()]
    if missing:
        raise _fail(
            f"Control data of package {control.get('Package', '?')!r} lacks {', '.join(missing)}",
            f"a binary package needs {', '.join(REQUIRED_FIELDS)}",
        )
    seen: set[str] = set()
    for name, value in control.items():
        if not FIELD_NAME_RE.match(name) or name[0] in "#-":
            raise _fail(f"Invalid control field name {name!r}", "field names are ASCII without ':'")
        if name.lower() in seen:
            raise _fail(f"Duplicate control field {name!r}", "field names are case-insensitive")
        seen.add(name.lower())
        if not isinstance(value, str):
            raise _fail(
                f"Control field {name!r} is not a string: {value!r}", "give every value as str"
            )
        if name != "Description" and not value.strip():
            raise _fail(f"Control field {name!r} is empty", "drop the field or give it a value")
    check_package_name(control["Package"])
    check_version(control["Version"])
    _check_arch(control["Architecture"])
    synopsis = control["Description"].split("\n", 1)[0]
    if not synopsis.strip():
        raise _fail(
            f"Package {control['Package']!r} has an empty Description synopsis",
            "the first line of Description is the one-line summary",
        )
    if "Installed-Size" in control and not control["Installed-Size"].strip().isdigit():
        raise _fail(
            f"Installed-Size {control['Installed-Size']!r} is not a number of KiB",
            "leave it out and it is computed",
        )


def _norm_path(path: str, what: str) -> str:
    """`/usr/bin/x`, `./usr/bin/x` or `usr/bin/x` → `usr/bin/x`; reject `..`, empty parts."""
    p = path[2:] if path.startswith("./") else path.lstrip("/")
    parts = p.split("/")
    if not p or any(part in ("", ".", "..") for part in parts):
        raise _fail(f"Invalid {what} path {path!r}", "use a normalised path like /usr/bin/tool")
    return p


def _sort_key(path: str) -> tuple[str, ...]:
    return tuple(path.split("/"))


@dataclass(frozen=True, slots=True)
class _Entry:
    kind: str  # "dir" | "file" | "symlink"
    mode: int
    data: bytes = b""
    target: str = ""


def _data_entries(
    files: Mapping[str, FileContent],
    symlinks: Mapping[str, str],
    directories: Iterable[str],
) -> dict[str, _Entry]:
    entries: dict[str, _Entry] = {}

    def add(path: str, entry: _Entry) -> None:
        if path in entries:
            raise _fail(
                f"Path /{path} is given twice", "a path is either a file, a symlink or a directory"
            )
        entries[path] = entry

    for raw, content in files.items():
        data, mode = content if isinstance(content, tuple) else (content, _FILE_MODE)
        if not isinstance(data, bytes | bytearray) or not 0 <= mode <= 0o7777:
            raise _fail(f"Bad content for /{raw.lstrip('/')}", "give bytes or (bytes, mode)")
        add(_norm_path(raw, "file"), _Entry("file", mode, bytes(data)))
    for raw, target in symlinks.items():
        if not target or "\0" in target:
            raise _fail(f"Symlink {raw!r} has an empty target", "give the link target as a string")
        add(_norm_path(raw, "symlink"), _Entry("symlink", _SYMLINK_MODE, target=target))
    for raw in directories:
        add(_norm_path(raw, "directory"), _Entry("dir", _DIR_MODE))
    for path in list(entries):
        parts = path.split("/")
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            existing = entries.get(parent)
            if existing is None:
                entries[parent] = _Entry("dir", _DIR_MODE)
            elif existing.kind != "dir":
                raise _fail(
                    f"/{parent} is a {existing.kind} but /{path} is inside it", "fix the paths"
                )
    return entries


def installed_size_kib(entries: Iterable[tuple[str, int]]) -> int:
    """dpkg-gencontrol's estimate: each file's size rounded up to KiB, 1 KiB per other entry.

    `entries` holds (kind, size) with kind "file", "dir" or "symlink".
    """
    return sum((size + 1023) // 1024 if kind == "file" else 1 for kind, size in entries)


def _tar(members: list[tuple[str, _Entry]], mtime: int) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, entry in members:
            info = tarfile.TarInfo(name)
            info.mtime = mtime
            info.mode = entry.mode
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            if entry.kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif entry.kind == "symlink":
                info.type = tarfile.SYMTYPE
                info.linkname = entry.target
                tar.addfile(info)
            else:
                info.size = len(entry.data)
                tar.addfile(info, io.BytesIO(entry.data))
    return buf.getvalue()


def _gzip(data: bytes, mtime: int) -> bytes:
    out = io.BytesIO()
    # filename="" leaves FNAME out of the header; mtime pins MTIME.
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, compresslevel=9, mtime=mtime) as gz:
        gz.write(data)
    return out.getvalue()


def _ar(members: list[tuple[str, bytes]], mtime: int) -> bytes:
    """A System V / GNU `ar` archive as dpkg-deb writes it (names without '/', mode 100644)."""
    out = [b"!<arch>\n"]
    for name, data in members:
        header = f"{name:<16}{mtime:<12}{0:<6}{0:<6}{0o100644:<8o}{len(data):<10}`\n".encode(
            "ascii"
        )
        assert len(header) == 60, header
        out += [header, data, b"\n" if len(data) % 2 else b""]
    return b"".join(out)


def _build(
    control: Mapping[str, str],
    files: Mapping[str, FileContent],
    *,
    symlinks: Mapping[str, str],
    directories: Iterable[str],
    conffiles: Iterable[str],
    maintainer_scripts: Mapping[str, str],
    mtime: int,
    udeb: bool,
) -> bytes:
    if not isinstance(mtime, int) or isinstance(mtime, bool) or mtime < 0:
        raise _fail(
            f"Invalid mtime {mtime!r}", "give seconds since the epoch, e.g. SOURCE_DATE_EPOCH"
        )
    entries = _data_entries(files, symlinks, directories)

    fields = dict(control)
    if "Installed-Size" not in fields:
        size = installed_size_kib((e.kind, len(e.data)) for e in entries.values())
        fields["Installed-Size"] = str(size)
    control_text = render_control(fields)

    conf = [f"/{_norm_path(c, 'conffile')}" for c in conffiles]
    for c in conf:
        entry = entries.get(c[1:])
        if entry is None or entry.kind != "file":
            raise _fail(f"Conffile {c} is not a regular file of the package", "add it to files")
    if udeb and conf:
        raise _fail("A udeb cannot have conffiles", "drop conffiles from the udeb")
    if len(set(conf)) != len(conf):
        raise _fail("A conffile is listed twice", "list each conffile once")

    ctrl: dict[str, _Entry] = {"control": _Entry("file", _FILE_MODE, control_text.encode("utf-8"))}
    if conf:
        ctrl["conffiles"] = _Entry("file", _FILE_MODE, "".join(f"{c}\n" for c in conf).encode())
    if not udeb:
        md5 = [
            f"{hashlib.md5(e.data).hexdigest()}  {p}\n"
            for p, e in sorted(entries.items(), key=lambda kv: _sort_key(kv[0]))
            if e.kind == "file" and f"/{p}" not in conf
        ]
        if md5:
            ctrl["md5sums"] = _Entry("file", _FILE_MODE, "".join(md5).encode("utf-8"))
    for name, text in maintainer_scripts.items():
        if name in SCRIPT_MEMBERS:
            if not text.startswith("#!"):
                raise _fail(f"Maintainer script {name} has no #! line", "start it with #!/bin/sh")
            ctrl[name] = _Entry("file", _SCRIPT_MODE, text.encode("utf-8"))
        elif name in DATA_MEMBERS:
            ctrl[name] = _Entry("file", _FILE_MODE, text.encode("utf-8"))
        else:
            raise _fail(
                f"Unknown control member {name!r}",
                f"use one of {', '.join(sorted(SCRIPT_MEMBERS | DATA_MEMBERS))}",
            )

    control_members = [("./", _Entry("dir", _DIR_MODE))] + [
        (f"./{n}", e) for n, e in sorted(ctrl.items())
    ]
    data_members = [("./", _Entry("dir", _DIR_MODE))] + [
        (f"./{p}/" if e.kind == "dir" else f"./{p}", e)
        for p, e in sorted(entries.items(), key=lambda kv: _sort_key(kv[0]))
    ]
    return _ar(
        [
            ("debian-binary", b"2.0\n"),
            ("control.tar.gz", _gzip(_tar(control_members, mtime), mtime)),
            ("data.tar.gz", _gzip(_tar(data_members, mtime), mtime)),
        ],
        mtime,
    )


def build_deb(
    control: Mapping[str, str],
    files: Mapping[str, FileContent],
    *,
    symlinks: Mapping[str, str] | None = None,
    directories: Iterable[str] = (),
    conffiles: Iterable[str] = (),
    maintainer_scripts: Mapping[str, str] | None = None,
    mtime: int,
) -> bytes:
    """Build a .deb and return its bytes; the same arguments always give the same bytes.

    `files` maps a path (`/usr/bin/x`, `usr/bin/x` or `./usr/bin/x`) to content or (content, mode);
    `symlinks` maps a path to its target; `directories` adds empty directories. Parent directories
    are added (0755). `conffiles` are absolute paths of files in `files`. `maintainer_scripts` maps
    preinst/postinst/prerm/postrm/config (mode 0755, need `#!`) or templates/triggers/shlibs (0644)
    to their text. `Installed-Size` is computed when absent; an `md5sums` member is written.
    Raises ArchiveError on invalid input.
    """
    return _build(
        control,
        files,
        symlinks=symlinks or {},
        directories=directories,
        conffiles=conffiles,
        maintainer_scripts=maintainer_scripts or {},
        mtime=mtime,
        udeb=False,
    )


def build_udeb(
    control: Mapping[str, str],
    files: Mapping[str, FileContent],
    *,
    symlinks: Mapping[str, str] | None = None,
    directories: Iterable[str] = (),
    maintainer_scripts: Mapping[str, str] | None = None,
    mtime: int,
) -> bytes:
    """Build a debian-installer .udeb: the .deb format without conffiles and md5sums.

    Section defaults to `debian-installer` and Priority to `extra` when not given.
    """
    fields = {"Section": "debian-installer", "Priority": "extra", **control}
    return _build(
        fields,
        files,
        symlinks=symlinks or {},
        directories=directories,
        conffiles=(),
        maintainer_scripts=maintainer_scripts or {},
        mtime=mtime,
        udeb=True,
    )
