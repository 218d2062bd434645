"""The distro build pipeline (library entry point): base ISO + roles + deployment -> StackOps ISO.

1. Load and check every input before slow work: roles/, the deployment file (cross-field rules),
   preseed/ and d-i/ templates, the tools (debconf-set-selections), the output path.
2. Open the base, detect its flavor, make the boot entries and render one preseed per entry;
   each must pass `debconf-set-selections --checkonly` (one run for all, in the background
   while the next steps run; the build waits for it before writing).
3. Stage the overlay: preseeds, isolinux menu files, install/initrd.gz with preseed.cfg and the
   installer scripts appended (hashed in the background for md5sum.txt), the build manifest.
4. Packages: resolve, fetch and stage the extras component with the role metapackages and the
   node agent (packageset.stage_package_overlay).
5. remaster() (reproducible under SOURCE_DATE_EPOCH) the opened base to a file beside the output.
6. Verify it: every file the boot menu names exists, every StackOps entry is there with its
   preseed, the initrd carries our preseed.cfg. Only a verified ISO is renamed into place, then
   SHA256SUMS and the manifest are written beside it.

The image's bytes go through the copy once, and besides it only what must be read is: the
base's SHA-256 (for the manifest) is hashed by `openssl dgst` from the moment the CLI has its
arguments, while the imports and the next steps run, and remembered in the cache for the next
build from the same file (basedigest.py); the output's is hashed while it is written
(remaster(digest=True)); md5sum.txt takes the base's MD5 of untouched files; the initrd is
staged by a copy out of the ISO plus the archive appended (hashed meanwhile); the verification
runs on the image the write re-opens for its own check (opened while the copy goes on): the
directory tree, the menus, the preseeds and the initrd's appended archive.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from distro_builder import __version__
from distro_builder.agent import check_nova_flags
from distro_builder.basedigest import in_background, sha256_file, start_base_sha256
from distro_builder.config.deployment import load_deployment
from distro_builder.config.roles import load_roles
from distro_builder.errors import ConfigError, DistroBuilderError, IsoError, OutputError
from distro_builder.filedigest import Prehashed
from distro_builder.imagemodel import EntryKind, Flavor
from distro_builder.log import step
from distro_builder.media.bootmenu import parse_boot_menu
from distro_builder.media.initrd import append_to_initrd, read_initrd_file
from distro_builder.media.iso import IsoImage, check_output_path
from distro_builder.media.layout import detect_flavor
from distro_builder.media.menu import MenuPlan, missing_references, plan_menu
from distro_builder.model import (
    BootEntry,
    Deployment,
    InstallerSettings,
    PublishResult,
    RepoSpec,
    RoleSet,
    SystemSettings,
)
from distro_builder.remaster import collector_paused, remaster
from distro_builder.seed.check import check_preseed, check_preseeds, require_checker
from distro_builder.seed.crypt import hash_login_password
from distro_builder.seed.preseed import (
    RenderedSeed,
    boot_entries,
    find_entry,
    initrd_files,
    render_preseed,
)

log = logging.getLogger(__name__)

BUILD_MANIFEST_PATH = "/.disk/stackops-build.json"
DEFAULT_MTIME = 1302825600  # 2011-04-15, the Cactus release, when no SOURCE_DATE_EPOCH is set
INPUT_FOLDERS = ("roles", "questions", "preseed", "bootmenu", "d-i", "smart_installer", "agent")


@dataclass(frozen=True, slots=True)
class BuildOptions:
    base: Path
    output: Path
    deployment: Path | None = None
    serial_console: bool = False
    default_entry: str | None = None
    timeout: int = 0  # seconds; 0: the menu waits
    hybrid: bool = False
    sign_key: str | None = None  # None: unsigned Release, allow_unauthenticated in the preseeds
    packages: bool = True  # False: skip the package step (menus and preseeds only)
    specs: tuple[RepoSpec, ...] = ()
    cache: Path | None = None
    offline: bool = False
    source_date_epoch: int | None = None
    installer: InstallerSettings | None = None  # the Smart Installer (--installer-url)
    architecture: str | None = None  # the menu's reference architecture (else the deployment's)


@dataclass(frozen=True, slots=True)
class BuildResult:
    output: str
    size: int
    sha256: str
    sha256sums: str
    manifest: str
    entries: tuple[BootEntry, ...]
    seeds: tuple[RenderedSeed, ...]
    default_entry: str
    serial_console: bool
    packages: PublishResult | None
    plaintext_secrets: tuple[str, ...]
    warnings: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class Inputs:
    """Everything loaded and checked before the base is opened."""

    data_dir: Path
    roleset: RoleSet
    deployment: Deployment | None
    system: SystemSettings
    architecture: str | None = None  # the menu offers this architecture's entries only


def load_inputs(data_dir: Path, deployment: Path | None, architecture: str | None = None) -> Inputs:
    """roles/ and the deployment file, checked; ConfigError naming file, line and key."""
    roleset = load_roles(data_dir)
    dep = None
    if deployment is not None:
        dep = load_deployment(deployment, roleset, hash_login_password)
    boot_entries(roleset, dep, architecture)  # an unknown or contradicting architecture: now
    return Inputs(data_dir, roleset, dep, dep.system if dep else SystemSettings(), architecture)


def render_seeds(
    inputs: Inputs,
    flavor: Flavor,
    *,
    allow_unauthenticated: bool,
    check: bool = True,
    installer: InstallerSettings | None = None,
) -> tuple[tuple[BootEntry, ...], tuple[RenderedSeed, ...]]:
    """Every entry's preseed, each checked with debconf-set-selections --checkonly."""
    entries = boot_entries(inputs.roleset, inputs.deployment, inputs.architecture)
    seeds = []
    for entry in entries:
        seed = render_preseed(
            inputs.data_dir,
            entry,
            roleset=inputs.roleset,
            deployment=inputs.deployment,
            codename=flavor.codename,
            flavor_version=flavor.version,
            arch=flavor.architectures[0] if flavor.architectures else "amd64",
            allow_unauthenticated=allow_unauthenticated,
            installer=installer,
        )
        seeds.append(seed)
    if check:
        check_seeds(seeds)
    return entries, tuple(seeds)


def check_seeds(seeds: Sequence[RenderedSeed]) -> None:
    """Every preseed through debconf-set-selections --checkonly (one run for all of them)."""
    check_preseeds([(s.text, s.entry.seed_path) for s in seeds])


def render_entry_seed(
    data_dir: Path,
    entry_name: str,
    *,
    deployment: Path | None = None,
    codename: str = "lucid",
    version: str = "10.04",
    arch: str = "amd64",
    allow_unauthenticated: bool = True,
    installer: InstallerSettings | None = None,
) -> RenderedSeed:
    """One entry's preseed without a base ISO (the `preseed` command), checked."""
    inputs = load_inputs(data_dir, deployment)
    entries = boot_entries(inputs.roleset, inputs.deployment)
    entry = find_entry(entries, entry_name)
    seed = render_preseed(
        data_dir,
        entry,
        roleset=inputs.roleset,
        deployment=inputs.deployment,
        codename=codename,
        flavor_version=version,
        arch=arch,
        allow_unauthenticated=allow_unauthenticated,
        installer=installer,
    )
    check_preseed(seed.text, entry.seed_path)
    return seed


def _input_hashes(data_dir: Path, deployment: Path | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for folder in INPUT_FOLDERS:
        root = data_dir / folder
        if not root.is_dir():
            continue
        for p in sorted(root.rglob("*")):
            if p.is_file() and "__pycache__" not in p.parts:
                out[p.relative_to(data_dir).as_posix()] = hashlib.sha256(p.read_bytes()).hexdigest()
    if deployment is not None:
        out[f"deployment:{deployment.name}"] = hashlib.sha256(deployment.read_bytes()).hexdigest()
    return out


def _sums_path(out: Path) -> Path:
    return out.parent / "SHA256SUMS"


def _manifest_path(out: Path) -> Path:
    return out.with_name(out.name + ".build.json")


def _sha256sums(path: Path, name: str, digest: str | None) -> bytes:
    """SHA256SUMS with the line for `name` replaced (digest) or left out (None)."""
    lines: list[str] = []
    if path.is_file():
        for line in path.read_text().splitlines():
            parts = line.split(None, 1)
            if len(parts) == 2 and parts[1].lstrip("*") != name:
                lines.append(line)
    if digest is not None:
        lines.append(f"{digest}  {name}")
    return "".join(line + "\n" for line in sorted(lines, key=lambda s: s.split()[-1])).encode()


def _put_in_place(out: Path, staged_iso: Path, digest: str, manifest: bytes, tmp: Path) -> None:
    """Rename the verified ISO into place with its SHA256SUMS line and manifest, in an order
    that a kill at any point (SIGKILL: nothing unwinds) leaves detectable: SHA256SUMS first loses
    the line for `out` and the old manifest goes, then the ISO and the new manifest are renamed
    in, and SHA256SUMS with the new line comes last. A line in SHA256SUMS is the commit: while
    it is there, the ISO and manifest beside it are the ones it describes; a killed build leaves
    an ISO without a line (and without a manifest), never a line for another ISO. Everything is
    written into `tmp` (the staging folder beside -o) first, so a kill leaves no other litter.
    On an error the new ISO and manifest are removed (no ISO without its line and manifest)."""
    sums, manifest_path = _sums_path(out), _manifest_path(out)
    staged_manifest, staged_sums = tmp / "build.json", tmp / "SHA256SUMS"
    _stage(staged_manifest, manifest)
    _stage(staged_sums, _sha256sums(sums, out.name, digest))
    if sums.is_file():
        _stage(tmp / "SHA256SUMS.old", _sha256sums(sums, out.name, None))
        os.replace(tmp / "SHA256SUMS.old", sums)
    manifest_path.unlink(missing_ok=True)
    os.replace(staged_iso, out)
    try:
        os.replace(staged_manifest, manifest_path)
        os.replace(staged_sums, sums)
    except BaseException:
        out.unlink(missing_ok=True)
        manifest_path.unlink(missing_ok=True)
        raise


# The staging folder beside -o is named for the process that owns it (pid and start time, as in
# /proc/<pid>/stat), so a later build can tell the folder of a killed build from a live one's.
_STAGING_PREFIX = "distro-builder-"
_STAGING_RE = re.compile(re.escape(_STAGING_PREFIX) + r"([0-9]+)-([0-9]+)-[A-Za-z0-9_]+")


def _process_start(pid: int) -> str | None:
    """The start time of process `pid` (clock ticks after boot), or None when there is none."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else None  # field 22 of proc(5), after pid and comm


def _staging_prefix() -> str:
    return f"{_STAGING_PREFIX}{os.getpid()}-{_process_start(os.getpid()) or 0}-"


def _remove_dead_staging(folder: Path) -> None:
    """Remove the staging folders that killed builds left in `folder` (issue 20 #17): only
    folders named for a process that is gone (or whose pid now belongs to a newer process)."""
    if _process_start(os.getpid()) is None:
        return  # no /proc: no way to tell a dead build from a live one
    try:
        names = [p for p in folder.iterdir() if _STAGING_RE.fullmatch(p.name)]
    except OSError:
        return
    for p in names:
        m = _STAGING_RE.fullmatch(p.name)
        assert m is not None
        if _process_start(int(m.group(1))) == m.group(2) or p.is_symlink() or not p.is_dir():
            continue
        log.info("removing %s (left by a build that was killed)", p)
        shutil.rmtree(p, ignore_errors=True)


def _stage(path: Path, data: bytes | str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    os.chmod(path, mode)


def _verify(image: IsoImage, entries: Sequence[BootEntry], seeds: Sequence[RenderedSeed],
            initrd_path: str, initrd_size: int, appended: bytes,
            preseed_cfg: bytes) -> list[str]:  # fmt: skip
    """What is wrong with the written ISO; reads the tree, menus, preseeds, the initrd's tail.

    The initrd is checked by its size and the archive the build appended (its last
    `len(appended)` bytes, which the kernel unpacks last): the base's part is the base's.
    """
    problems: list[str] = []
    image.require_bootable()

    def exists(p: str) -> bool:
        e = image.lookup(p)
        return e is not None and e.kind is EntryKind.file

    menu = parse_boot_menu(image.read_text, "/isolinux/isolinux.cfg")
    problems += missing_references(exists, menu)
    labels = {e.label: e for e in menu.entries}
    for entry, seed in zip(entries, seeds, strict=True):
        m = labels.get(entry.name)
        if m is None:
            problems.append(f"entry {entry.name} is not in the boot menu")
        elif f"stackops/roles={','.join(entry.roles)}" not in m.append.split():
            problems.append(f"entry {entry.name} does not name its roles")
        if image.read_text(entry.seed_path) != seed.text:
            problems.append(f"{entry.seed_path} differs from the checked preseed")
    initrd = image.lookup(initrd_path)
    tail = b""
    if initrd is not None and initrd.size == initrd_size and initrd_size >= len(appended):
        with image.open_file(initrd_path) as f:
            f.seek(initrd_size - len(appended))
            tail = f.read()
    if tail != appended or read_initrd_file(tail, "preseed.cfg") != preseed_cfg:
        problems.append(f"{initrd_path} does not carry our preseed.cfg")
    return problems


@dataclass
class _Build:
    """One build's state, filled in step by step (build_iso's steps read and add to it)."""

    data_dir: Path
    opts: BuildOptions
    base: Path
    out: Path
    mtime: int
    inputs: Inputs | None = None
    warnings: list[str] = field(default_factory=list)
    flavor: Flavor | None = None
    entries: tuple[BootEntry, ...] = ()
    seeds: tuple[RenderedSeed, ...] = ()
    menu: MenuPlan | None = None
    packages: PublishResult | None = None
    # the fetched .debs laid over the disc from the package cache: disc path -> cached file
    placed_debs: dict[str, Path] = field(default_factory=dict)
    initrd_files: dict[str, Any] = field(default_factory=dict)
    initrd_size: int = 0  # the staged initrd: the base's with `initrd_appended` after it
    initrd_appended: bytes = b""
    base_sha256: Future[str] | None = None
    seeds_checked: Future[None] | None = None
    prehashed: Prehashed = field(default_factory=Prehashed)
    manifest: bytes = b""

    def warn(self, msg: str) -> None:
        log.warning("WARNING: %s", msg)
        self.warnings.append(msg)


def build_iso(
    data_dir: Path, opts: BuildOptions, base_sha256: Future[str] | None = None
) -> BuildResult:
    """Build the StackOps ISO described by `opts`. Raises DistroBuilderError subclasses.

    `base_sha256`: the base's digest already being hashed (basedigest.start_base_sha256, which
    the CLI calls before it imports this module); None starts it here.

    The steps, in order: check the inputs, warn about secrets on the disc, then with the base
    open: render the preseeds (checked in the background), plan the boot menu, stage the
    installer files, stage the packages; write the manifest, remaster to a file beside the
    output, verify it, and only then put it in place with SHA256SUMS and the manifest beside
    it. An error or Ctrl-C
    at any step leaves no ISO (a previous one at the output path stays as it was).
    """
    b = _Build(
        data_dir, opts, Path(opts.base), Path(opts.output),
        mtime=opts.source_date_epoch if opts.source_date_epoch is not None else DEFAULT_MTIME,
    )  # fmt: skip
    with step("Checking the inputs"):
        _check_inputs(b)
    _remove_dead_staging(b.out.parent)
    # for the manifest; the CLI starts it before it imports this module
    b.base_sha256 = base_sha256 or start_base_sha256(b.base, opts.cache)
    _warn_about_secrets(b)
    with (
        collector_paused(),  # 130 collections, 40 ms of a 1.2 s build
        tempfile.TemporaryDirectory(prefix=_staging_prefix(), dir=b.out.parent) as tmp,
    ):
        pkg_overlay, overlay = Path(tmp) / "packages", Path(tmp) / "stackops"
        pkg_overlay.mkdir()
        overlay.mkdir()
        with IsoImage(b.base) as image, _joined(b):  # opened once: read, then remastered
            image.require_bootable()
            image.require_rock_ridge()
            b.flavor = detect_flavor(image)
            with step("Rendering the preseeds"):
                _render_preseeds(b)
            _plan_boot_menu(b, image)
            with step("Staging preseeds, boot menu and the installer's initrd"):
                _stage_installer_files(b, image, overlay)  # the initrd hashed meanwhile
            _stage_packages(b, image, pkg_overlay)
            late = _stage_manifest(b, image.volume_id, overlay)
            with step("Checking the preseeds with debconf-set-selections --checkonly"):
                assert b.seeds_checked is not None
                b.seeds_checked.result()  # it ran meanwhile
            unverified = Path(tmp) / b.out.name  # same file system as the output: renamed last
            res = remaster(
                b.base,
                unverified,
                [pkg_overlay, b.placed_debs, overlay],
                # e.g. the base's Release.gpg, which no longer matches the rewritten Release
                remove=b.packages.stale_paths if b.packages is not None else (),
                hybrid=opts.hybrid,
                source_date_epoch=opts.source_date_epoch,
                digest=True,  # SHA256SUMS: hashed while it is written
                image=image,
                verify=lambda written: _verify_output(b, written),  # before it is renamed
                prehashed=b.prehashed,
                shown_as=b.out,  # not the staging folder's temporary name
                late=late,
            )
        with step("Writing the ISO, SHA256SUMS and the build manifest"):
            digest = res.sha256 or sha256_file(unverified)
            sums, manifest_path = _sums_path(b.out), _manifest_path(b.out)
            _put_in_place(b.out, unverified, digest, b.manifest, Path(tmp))
    assert b.menu is not None
    return BuildResult(
        output=str(b.out),
        size=res.size,
        sha256=digest,
        sha256sums=str(sums),
        manifest=str(manifest_path),
        entries=b.entries,
        seeds=b.seeds,
        default_entry=b.menu.default,
        serial_console=opts.serial_console,
        packages=b.packages,
        plaintext_secrets=tuple(sorted({k for s in b.seeds for k in s.plaintext_secrets})),
        warnings=tuple(b.warnings),
    )


@contextlib.contextmanager
def _joined(b: _Build) -> Iterator[None]:
    """On an error or Ctrl-C, wait for the background preseed check and the base's hash before
    unwinding: their debconf-set-selections and openssl must not outlive the build (they hold
    the working directory and the base, which may be on a file system the caller unmounts
    next)."""
    try:
        yield
    except BaseException:
        for job in (b.seeds_checked, b.base_sha256):
            if job is not None:
                with contextlib.suppress(BaseException):
                    job.result()
        raise


def _check_inputs(b: _Build) -> None:
    """Step 1: every input and option checked before slow work."""
    opts = b.opts
    b.inputs = load_inputs(b.data_dir, opts.deployment, opts.architecture)
    check_nova_flags(b.inputs.roleset, b.data_dir)
    require_checker()
    if not b.base.is_file():
        raise IsoError(f"{b.base}: no such file", hint="give the base ISO with --base")
    check_output_path(b.out, b.base)
    for beside in (_sums_path(b.out), _manifest_path(b.out)):
        if beside.is_dir() or (beside.exists() and not beside.is_file()):
            raise OutputError(
                f"{beside}: is in the way (not a regular file); the build writes it beside the ISO",
                hint="remove or rename it, or choose another output folder",
            )
    if opts.packages and not opts.specs:
        raise ConfigError(
            "no package repositories given",
            hint="pass --repo/--sources (for the demo: distro-builder demo-repo), "
            "or --no-packages for menus and preseeds only",
        )
    if opts.timeout < 0:
        raise ConfigError(f"--timeout {opts.timeout}: must be 0 (wait) or more seconds")
    for spec in opts.specs:  # a missing keyring is found before any download
        if spec.keyring and not Path(spec.keyring).is_file():
            raise ConfigError(
                f"{spec.url} {spec.suite}: its keyring {spec.keyring} does not exist",
                hint="make it from the key that signs the repository (examples/keyrings/"
                "README.md shows how for lucid and the Cactus PPA), or drop signed-by= to use "
                "the source unauthenticated",
            )


def _warn_about_secrets(b: _Build) -> None:
    """Step 2: say loudly what secret ends up readable on the disc."""
    assert b.inputs is not None
    dep = b.inputs.deployment
    if dep is not None and dep.plaintext_on_disc:
        b.warn(
            "plaintext secrets on the disc: "
            + ", ".join(dep.plaintext_on_disc)
            + f" (from {Path(dep.path).name}; debconf and the answers file take them only in "
            "plain text). Anyone who can read the ISO can read them; keep it private."
        )
    installer = b.opts.installer
    if installer is not None:
        b.warn(
            f"the Smart Installer's enrolment token for {installer.url} is on the disc in "
            "plain text (installer_token in every preseed): anyone who can read the ISO can "
            "register nodes with the deployment. Keep it private; a new token makes it useless."
        )
        if installer.url.startswith("https:") and not installer.fingerprint:
            b.warn(
                "--installer-url is https without --installer-fingerprint: the nodes check the "
                "service's certificate against their CA certificates (a self-signed one fails)"
            )


def _render_preseeds(b: _Build) -> None:
    """Step 3: one preseed per boot entry; debconf-set-selections --checkonly checks them in
    the background while the next steps run (the build waits for it before writing)."""
    assert b.inputs is not None and b.flavor is not None
    b.entries, b.seeds = render_seeds(
        b.inputs,
        b.flavor,
        allow_unauthenticated=b.opts.sign_key is None,
        installer=b.opts.installer,
        check=False,
    )
    b.seeds_checked = in_background(check_seeds, b.seeds)
    for s in b.seeds:
        if b.inputs.deployment is not None and s.unanswered:
            b.warn(f"entry {s.entry.name} will still ask: {', '.join(s.unanswered)}")


def _plan_boot_menu(b: _Build, image: IsoImage) -> None:
    """Step 4: the isolinux files for the base's flavor, one entry per boot entry."""
    assert b.inputs is not None and b.flavor is not None

    def exists(p: str) -> bool:
        return image.lookup(p) is not None

    b.menu = plan_menu(
        b.data_dir,
        image.read_text,
        exists,
        b.flavor,
        b.entries,
        b.inputs.system,
        default_entry=b.opts.default_entry,
        timeout=b.opts.timeout,
        serial=b.opts.serial_console,
    )


def _stage_installer_files(b: _Build, image: IsoImage, overlay: Path) -> None:
    """Step 5: preseeds, menu files, and install/initrd.gz with our preseed.cfg and scripts."""
    assert b.inputs is not None and b.menu is not None
    for s in b.seeds:
        _stage(overlay / s.entry.seed_path.lstrip("/"), s.text)
    for path, text in b.menu.files.items():
        _stage(overlay / path.lstrip("/"), text)
    b.initrd_files = dict(initrd_files(b.data_dir, b.inputs.roleset, b.inputs.system))
    # The base's initrd, copied out of the ISO (never whole in memory), then one more gzip'd
    # cpio archive.
    b.initrd_appended = append_to_initrd(b"", b.initrd_files, mtime=b.mtime)
    staged = overlay / b.menu.initrd.lstrip("/")
    staged.parent.mkdir(parents=True, exist_ok=True)
    with staged.open("wb") as f:
        b.initrd_size = image.copy_to(b.menu.initrd, f) + len(b.initrd_appended)
        f.write(b.initrd_appended)
    os.chmod(staged, 0o644)
    b.prehashed.start(staged)  # for md5sum.txt and the remaster's manifest, while packages stage


def _stage_packages(b: _Build, image: IsoImage, pkg_overlay: Path) -> None:
    """Step 6: the extras component, role metapackages and the node agent (packageset.py)."""
    assert b.flavor is not None
    opts = b.opts
    if not opts.packages:
        b.warn("--no-packages: the disc has no stackops-* packages; installs will fail")
        return
    from distro_builder.archive.fetch import Fetcher
    from distro_builder.packageset import stage_package_overlay

    _, b.packages = stage_package_overlay(
        b.data_dir,
        image,
        b.flavor,
        pkg_overlay,
        specs=opts.specs,
        fetcher=Fetcher(opts.cache, offline=opts.offline),
        sign_key=opts.sign_key,
        mtime=b.mtime,
        roleset=b.inputs.roleset,
        placed=b.placed_debs,
        prehashed=b.prehashed,
    )
    if b.packages.allow_unauthenticated != (opts.sign_key is None):
        raise DistroBuilderError(
            "the package step and the preseeds disagree on signing", hint="report this as a bug"
        )


def _stage_manifest(b: _Build, volume_id: str, overlay: Path) -> dict[str, Callable[[], bytes]]:
    """Step 7: the build manifest into the overlay; the remaster's `late` for it.

    It carries the base's SHA-256, which may still be being hashed. So it is staged with
    zeros in its place, the remaster lays it out last, and the returned function gives the
    real one (and sets b.manifest) when the write gets there: the rest of the image is
    written and hashed meanwhile. A digest in hex is always 64 characters, so nothing moves.
    Always so, hashed or not: the layout must not depend on timing (same inputs, same ISO)."""
    job = b.base_sha256
    _stage(overlay / BUILD_MANIFEST_PATH.lstrip("/"), _manifest(b, volume_id, "0" * 64))

    def final() -> bytes:
        b.manifest = _manifest(b, volume_id, job.result() if job else sha256_file(b.base))
        return b.manifest

    return {BUILD_MANIFEST_PATH: final}


def _manifest(b: _Build, volume_id: str, base_sha256: str) -> bytes:
    """The build manifest, on the disc and beside it (no secret in it)."""
    assert b.flavor is not None and b.menu is not None
    opts, pkgs = b.opts, b.packages
    manifest: dict[str, Any] = {
        "generator": "distro-builder",
        "version": __version__,
        "source_date_epoch": opts.source_date_epoch,
        "base": {
            "file": b.base.name,
            "sha256": base_sha256,
            "volume_id": volume_id,
            "codename": b.flavor.codename,
            "version": b.flavor.version,
            "menu_style": b.flavor.menu_style,
        },
        "inputs": _input_hashes(b.data_dir, opts.deployment),
        "options": {
            "serial_console": opts.serial_console,
            "default_entry": b.menu.default,
            "timeout": opts.timeout,
            "hybrid": opts.hybrid,
            "signed": opts.sign_key is not None,
            "packages": opts.packages,
            # the URL only: the token is a secret
            "installer_url": opts.installer.url if opts.installer else None,
            "installer_fingerprint": opts.installer.fingerprint if opts.installer else None,
            "installer_wait": opts.installer.wait if opts.installer else None,
        },
        "entries": [
            {
                "name": s.entry.name,
                "label": s.entry.label,
                "roles": list(s.entry.roles),
                "kernel": b.menu.kernel,
                "initrd": b.menu.initrd,
                "preseed": s.entry.seed_path,
                "preseed_sha256": hashlib.sha256(s.text.encode()).hexdigest(),
                "asks": list(s.unanswered),
                "plaintext_secrets": list(s.plaintext_secrets),
            }
            for s in b.seeds
        ],
        "packages": None
        if pkgs is None
        else {
            "component": pkgs.component,
            "metapackages": list(pkgs.metapackages),
            "packages": list(pkgs.packages),
            "signed": pkgs.signed,
        },
    }
    return (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()


def _verify_output(b: _Build, written: IsoImage) -> None:
    """Step 8: the written ISO boots what the build planned, or the build fails (called by
    the write on the image it re-opened, before the rename)."""
    assert b.menu is not None
    with step("Verifying the written ISO"):
        problems = _verify(
            written, b.entries, b.seeds, b.menu.initrd, b.initrd_size, b.initrd_appended,
            b.initrd_files["preseed.cfg"],
        )  # fmt: skip
    if problems:
        raise OutputError(
            f"{b.out}: verification failed: " + "; ".join(problems),
            hint="nothing was written; report this with the inputs (the build is reproducible)",
        )
