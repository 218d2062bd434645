"""Publish packages on the disc: the `extras` component, role metapackages, keyrings, Release.

Everything is staged into an overlay directory that remaster lays over the base:

- `pool/extras/<prefix>/<source>/<file>.deb` for the fetched packages and our own (.udeb files
  go to the `extras/debian-installer` index);
- `dists/<codename>/extras/binary-<arch>/{Packages,Packages.gz,Release}`;
- the uncompressed `Packages` of every existing index that only has `Packages.gz` on the disc
  (byte-identical to the shipped index, so main/restricted keep their Task: fields): the lucid
  Release lists those files although debian-cd deleted them (reference/lucid-and-nova.md §1.5,
  trap 5); apt and debootstrap want them listed, and we list only what exists;
- a rewritten `dists/<codename>/Release`: the base's header, `Components` gains `extras`, and
  fresh MD5Sum/SHA1/SHA256 lines for every index file on the output disc; with a signing key a
  detached `Release.gpg`.

Trust (reference §2.2): with a key the Release is signed and the key is shipped in keyring
packages the metapackages depend on (`stackops-keyring`, plus a rebuilt `ubuntu-keyring` deb and
udeb when the base has them); without one the result says the preseed must set
`debian-installer/allow_unauthenticated`.
"""

from __future__ import annotations

import gzip
import io
import logging
import tarfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path, PurePosixPath

from distro_builder.archive import debs, index, sign
from distro_builder.archive.controls import ControlCache
from distro_builder.errors import ArchiveError
from distro_builder.filedigest import Digest, Identity, Prehashed, file_identity
from distro_builder.imagemodel import Flavor
from distro_builder.model import IndexPackage, Plan, PublishResult

log = logging.getLogger(__name__)

COMPONENT = "extras"
METAPACKAGE_PREFIX = "stackops-"
KEYRING_PACKAGE = "stackops-keyring"
KEYRING_SUFFIX = "+stackops1"
_KEYRING_FILES = (
    "/usr/share/keyrings/stackops-archive-keyring.gpg",
    # lucid's apt (0.7.25) also reads /etc/apt/trusted.gpg.d/ [INFERRED from its changelog]
    "/etc/apt/trusted.gpg.d/stackops.gpg",
)


def build_metapackage(
    role: str,
    depends: Sequence[str],
    *,
    version: str,
    mtime: int,
    maintainer: str,
) -> tuple[str, bytes]:
    """`stackops-<role>`: an Architecture: all package whose Depends are `depends`."""
    if not depends:
        raise ArchiveError(
            f"role {role} has no packages", hint="check the packages: of roles/<role>/role.yaml"
        )
    name = f"{METAPACKAGE_PREFIX}{role}"
    control = {
        "Package": name,
        "Version": version,
        "Architecture": "all",
        "Maintainer": maintainer,
        "Depends": ", ".join(depends),
        "Section": "metapackages",
        "Priority": "extra",
        "Description": f"StackOps {role} node (metapackage)\n"
        f" Depends on everything a Nova (2011.2, Cactus) {role} node needs, so the\n"
        f" installer installs one name and apt resolves the rest from the disc.",
    }
    readme = (
        f"stackops-{role} {version}: installs the StackOps {role} role.\n"
        f"Depends: {', '.join(depends)}\n"
    ).encode()
    data = debs.build_deb(control, {f"/usr/share/doc/{name}/README": readme}, mtime=mtime)
    return debs.deb_filename(name, version, "all"), data


def build_keyring_package(
    key: bytes, *, version: str, mtime: int, maintainer: str
) -> tuple[str, bytes]:
    """`stackops-keyring`: the disc's signing key where apt and the installer look for keys."""
    control = {
        "Package": KEYRING_PACKAGE,
        "Version": version,
        "Architecture": "all",
        "Maintainer": maintainer,
        "Section": "misc",
        "Priority": "extra",
        "Description": "OpenPGP key of the StackOps disc archive\n"
        " The key that signs the StackOps disc's Release file, for apt.",
    }
    files = {path: key for path in _KEYRING_FILES}
    data = debs.build_deb(control, files, mtime=mtime)
    return debs.deb_filename(KEYRING_PACKAGE, version, "all"), data


def rebuild_keyring(
    deb: bytes, key: bytes, *, udeb: bool, mtime: int, name: str
) -> tuple[str, bytes, str]:
    """A keyring .deb/.udeb (ubuntu-keyring) with `key` appended to each of its *.gpg keyrings.

    Returns (file name, bytes, new version). An OpenPGP keyring is a sequence of packets, so
    appending a key keeps every original key.
    """
    from debian import debfile  # 20 ms of imports that a build without a signing key skips

    try:
        pkg = debfile.DebFile(fileobj=io.BytesIO(deb))
        control = {str(k): str(v) for k, v in pkg.debcontrol().items()}
        scripts = {}
        for member in ("preinst", "postinst", "prerm", "postrm", "config", "templates"):
            if pkg.control.has_file(member):
                scripts[member] = pkg.control.get_content(member).decode()
        conffiles = []
        if pkg.control.has_file("conffiles"):
            conffiles = pkg.control.get_content("conffiles").decode().split()
        files: dict[str, bytes | tuple[bytes, int]] = {}
        links: dict[str, str] = {}
        dirs: list[str] = []
        appended = 0
        tar = pkg.data.tgz()
        for m in tar.getmembers():
            path = "/" + str(PurePosixPath(m.name.lstrip("./")))
            if m.isdir():
                if path != "/.":
                    dirs.append(path)
            elif m.issym():
                links[path] = m.linkname
            elif m.isfile():
                content = tar.extractfile(m).read()  # type: ignore[union-attr]
                if path.endswith(".gpg") and "/keyrings/" in path:
                    content += key
                    appended += 1
                files[path] = (content, m.mode & 0o7777)
    except (debfile.DebError, tarfile.TarError, OSError, KeyError) as e:
        raise ArchiveError(f"{name}: cannot read the keyring package: {e}") from e
    if not appended:
        raise ArchiveError(f"{name}: no /usr/share/keyrings/*.gpg inside to add the key to")
    version = control["Version"] + KEYRING_SUFFIX
    control["Version"] = version
    control.pop("Installed-Size", None)
    file_dirs = {str(PurePosixPath(p).parent) for p in [*files, *links]}
    empty_dirs = [d for d in dirs if d not in file_dirs and not any(
        f.startswith(d + "/") for f in [*files, *links])]  # fmt: skip
    if udeb:
        data = debs.build_udeb(
            control, files, symlinks=links, directories=empty_dirs,
            maintainer_scripts=scripts, mtime=mtime,
        )  # fmt: skip
    else:
        data = debs.build_deb(
            control, files, symlinks=links, directories=empty_dirs, conffiles=conffiles,
            maintainer_scripts=scripts, mtime=mtime,
        )  # fmt: skip
    filename = debs.deb_filename(control["Package"], version, control["Architecture"], udeb=udeb)
    return filename, data, version


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _pool(filename: str, stanza: Mapping[str, str]) -> str:
    comp = COMPONENT
    source = str(stanza.get("Source") or stanza["Package"]).split(" ", 1)[0]
    base = filename.rsplit("/", 1)[-1]
    return debs.pool_path(comp, source, base)


def stage_packages(
    read: Callable[[str], bytes | None],
    flavor: Flavor,
    plan: Plan,
    overlay_dir: Path,
    *,
    fetched: Mapping[str, Path],
    extra_debs: Sequence[tuple[str, bytes]] = (),
    extra_udebs: Sequence[tuple[str, bytes]] = (),
    keyring_names: Sequence[str] = (),
    sign_key: str | None = None,
    gnupg_home: Path | None = None,
    mtime: int,
    placed: dict[str, Path] | None = None,
    prehashed: Prehashed | None = None,
    controls: ControlCache | None = None,
) -> PublishResult:
    """Stage the extras component and a new top-level Release into `overlay_dir`.

    `read(path)` returns a file of the base disc or None. `fetched` maps IndexPackage.key to the
    cached .deb of every package in plan.to_add that came from a repository; `extra_debs` are
    (file name, bytes) of our own packages (metapackages, agent, keyrings); `keyring_names`
    says which of them carry the signing key. Given `placed`, the fetched .debs are not copied
    into `overlay_dir`: their disc path goes in it with the cached file (`/pool/...` -> path),
    for the caller to lay over the disc as it is (remaster's file overlay). On this machine
    the 108 small files of a demo build took 70-185 ms to write into the staging folder, and a
    lucid build's 100-200 MB of packages are read once less. `prehashed` gets the MD5, SHA-256
    and size the stanza took from each placed file's bytes, for the remaster's md5sum.txt and
    manifest, which would otherwise hash those files again. `controls`: the packages' control
    fields kept by SHA-256 (archive/controls.py), so a cached package is not parsed again.
    """
    reader = read
    overlay_dir = Path(overlay_dir)
    arch = plan.arch
    dists_rel = flavor.release_path.rsplit("/", 1)[0].lstrip("/")  # dists/lucid
    stanzas: dict[str, list[dict[str, str]]] = {"deb": [], "udeb": []}
    pool_files: list[str] = []
    seen: set[tuple[str, str, str]] = set()

    def add(
        filename: str,
        data: bytes,
        udeb: bool,
        origin: str,
        cached: tuple[Path, Identity] | None = None,
        sums: index.FileDigest | None = None,
    ) -> None:
        stanza = index.packages_stanza(
            data, "pool/x/" + filename.rsplit("/", 1)[-1], digest=sums, controls=controls
        )
        ident = (stanza["Package"], stanza["Version"], stanza["Architecture"])
        if ident in seen:
            return
        seen.add(ident)
        pool = _pool(filename, stanza)
        if placed is not None and cached is not None:
            path, identity = cached
            placed["/" + pool] = path
            if prehashed is not None:
                sums = Digest(stanza["MD5sum"], stanza["SHA256"], int(stanza["Size"]))
                prehashed.known(path, sums, identity)
        else:
            _write(overlay_dir / pool, data)
        stanza["Filename"] = pool  # the .deb is read once: only its place in the pool changes
        stanzas["udeb" if udeb else "deb"].append(stanza)
        pool_files.append(pool)
        log.debug("extras: %s (%s)", pool, origin)

    from_repos: list[IndexPackage] = [p for p in plan.to_add if p.repo]
    for p in from_repos:
        path = fetched.get(p.key)
        if path is None:
            raise ArchiveError(
                f"{p.key} ({p.origin}) was not fetched", hint="fetch the plan before staging"
            )
        path = Path(path)
        identity = file_identity(path)  # before the read: a change during it shows too
        data = path.read_bytes()
        sums = index.sums_from_index(data, p)
        add(p.filename, data, False, p.origin, (path, identity), sums)
    for filename, data in extra_debs:
        add(filename, data, False, "generated")
    for filename, data in extra_udebs:
        add(filename, data, True, "generated")

    written: dict[str, bytes] = {}
    release_info = index.read_release(reader(flavor.release_path) or b"", flavor.release_path)
    version = str(release_info.get("Version", ""))
    origin = str(release_info.get("Origin", "Ubuntu"))
    label = str(release_info.get("Label", origin))
    for kind, sub in (("deb", COMPONENT), ("udeb", f"{COMPONENT}/debian-installer")):
        if kind == "udeb" and not stanzas["udeb"]:
            continue
        rel = f"{sub}/binary-{arch}"
        plain = index.render_packages(stanzas[kind]).encode()
        written[f"{rel}/Packages"] = plain
        written[f"{rel}/Packages.gz"] = index.gzip_bytes(plain, mtime=mtime)
        if kind == "deb":
            written[f"{rel}/Release"] = index.render_component_release(
                flavor.codename, version, COMPONENT, origin, label, arch
            ).encode()

    # Existing indexes: only the uncompressed Packages is added (identical content).
    existing: dict[str, bytes] = {}
    components = list(flavor.components)
    for comp in components:
        for sub in (comp, f"{comp}/debian-installer"):
            for a in flavor.architectures:
                rel = f"{sub}/binary-{a}"
                for name in ("Packages", "Packages.gz", "Packages.bz2", "Packages.xz", "Release"):
                    data = reader(f"/{dists_rel}/{rel}/{name}")
                    if data is not None:
                        existing[f"{rel}/{name}"] = data
                gz = existing.get(f"{rel}/Packages.gz")
                if gz is not None and f"{rel}/Packages" not in existing:
                    try:
                        written[f"{rel}/Packages"] = gzip.decompress(gz)
                    except (OSError, EOFError) as e:
                        raise ArchiveError(f"{dists_rel}/{rel}/Packages.gz is corrupt: {e}") from e
    for rel, data in written.items():
        _write(overlay_dir / dists_rel / rel, data)

    header = {
        str(k): str(v)
        for k, v in release_info.items()
        if k.lower() not in ("md5sum", "sha1", "sha256", "sha512")
    }
    if COMPONENT not in components:
        components.append(COMPONENT)
    header["Components"] = " ".join(components)
    if "Date" in header:
        header["Date"] = index.release_date(mtime)
    listed = {**existing, **written}
    release_text = index.render_release(header, listed).encode()
    release_path = overlay_dir / dists_rel / "Release"
    _write(release_path, release_text)
    index_files = sorted(f"{dists_rel}/{r}" for r in written) + [f"{dists_rel}/Release"]

    signed_by = None
    stale: list[str] = []
    if sign_key:
        key = sign.signing_key(sign_key, homedir=gnupg_home)
        sign.sign_detached(release_path, sign_key, homedir=gnupg_home)
        index_files.append(f"{dists_rel}/Release.gpg")
        signed_by = key.fingerprint
    elif reader(f"/{dists_rel}/Release.gpg") is not None:
        stale.append(f"/{dists_rel}/Release.gpg")
        log.warning(
            "the base's %s/Release.gpg no longer matches the new Release: remove it", dists_rel
        )
    keyrings = tuple(
        sorted({str(s["Package"]) for s in stanzas["deb"] + stanzas["udeb"]} & set(keyring_names))
    )
    metas = tuple(
        sorted(
            str(s["Package"])
            for s in stanzas["deb"]
            if str(s["Package"]).startswith(METAPACKAGE_PREFIX)
            and str(s.get("Section", "")) == "metapackages"
        )
    )
    return PublishResult(
        component=COMPONENT,
        packages=tuple(sorted(pool_files)),
        metapackages=metas,
        index_files=tuple(index_files),
        release_path=f"/{dists_rel}/Release",
        signed=bool(sign_key),
        sign_key=signed_by,
        keyring_packages=keyrings if sign_key else (),
        allow_unauthenticated=not sign_key,
        stale_paths=tuple(stale),
    )
