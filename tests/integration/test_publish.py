"""The packages published on the demo base, judged by the real tools: apt-get reads the extracted
disc (`apt-get update` with a file: source and the signing key, then `install --simulate` of
every role metapackage with an empty dpkg status), dose-distcheck finds no broken package,
dpkg-deb reads the metapackages, gpgv checks Release.gpg, and `verify` passes.

A throw-away RSA 2048 key in a temporary GNUPGHOME signs the demo repositories and the disc.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from distro_builder.archive import index
from distro_builder.archive.fetch import Fetcher
from distro_builder.archive.repository import Repository
from distro_builder.archive.sources import parse_source_line
from distro_builder.demorepo import build_demo_repo
from distro_builder.errors import ArchiveError, ConfigError
from distro_builder.filedigest import Digest, Prehashed, digest_file
from distro_builder.media.iso import IsoImage
from distro_builder.media.layout import MANIFEST_PATH, detect_flavor
from distro_builder.model import Plan, PublishResult
from distro_builder.packageset import collect_specs, stage_package_overlay
from distro_builder.remaster import remaster
from distro_builder.run import run
from distro_builder.verify import verify_archive
from tests.helpers import require_tool_or_skip

pytestmark = pytest.mark.integration

ROLES = ("controller", "network", "volume", "compute")
EPOCH = 1302825600


@pytest.fixture(scope="module")
def gnupg() -> Iterator[tuple[Path, str]]:
    """(GNUPGHOME, fingerprint) of a fresh unprotected RSA 2048 signing key."""
    require_tool_or_skip("gpg", "gpgv", "gpgconf")
    home = Path(tempfile.mkdtemp(prefix="gpg.", dir="/tmp"))  # short: gpg-agent socket path
    os.chmod(home, 0o700)
    env = {"GNUPGHOME": str(home)}
    run(
        ["gpg", "--batch", "--passphrase", "", "--quick-gen-key",
         "StackOps test CD <cd@example.invalid>", "rsa2048", "sign", "never"],
        env=env,
    )  # fmt: skip
    out = run(["gpg", "--batch", "--with-colons", "--list-secret-keys"], capture=True, env=env)
    fpr = next(ln.split(":")[9] for ln in out.stdout.splitlines() if ln.startswith("fpr:"))
    try:
        yield home, fpr
    finally:
        run(["gpgconf", "--kill", "gpg-agent"], check=False, env=env)
        shutil.rmtree(home, ignore_errors=True)


@dataclass
class Built:
    iso: Path
    tree: Path
    plan: Plan
    result: PublishResult
    overlay: Path
    repo: Path


def _stage(data_dir: Path, base: Path, sources: Path, overlay: Path, cache: Path, **kw: object):  # type: ignore[no-untyped-def]
    with IsoImage(base) as image:
        flavor = detect_flavor(image)
        return stage_package_overlay(
            data_dir, image, flavor, overlay, specs=collect_specs(sources=[sources]),
            fetcher=Fetcher(cache), mtime=EPOCH, **kw,
        )  # fmt: skip


@pytest.fixture(scope="module")
def built(
    tmp_path_factory: pytest.TempPathFactory, data_dir: Path, demo_base: Path, gnupg
) -> Built:  # type: ignore[no-untyped-def]
    require_tool_or_skip("xorriso", "apt-get", "dose-distcheck", "dpkg-deb")
    home, fpr = gnupg
    tmp = tmp_path_factory.mktemp("publish")
    repo = build_demo_repo(data_dir, tmp / "repo", sign_key=fpr, gnupg_home=home)
    overlay = tmp / "overlay"
    plan, result = _stage(
        data_dir, demo_base, repo / "sources.list", overlay, tmp / "cache",
        sign_key=fpr, gnupg_home=home,
    )  # fmt: skip
    iso = tmp / "out.iso"
    remaster(demo_base, iso, [overlay], source_date_epoch=EPOCH)
    tree = tmp / "tree"
    run(["xorriso", "-osirrox", "on", "-indev", iso, "-extract", "/", tree])
    run(["chmod", "-R", "u+w", tree])
    return Built(iso, tree, plan, result, overlay, repo)


def _apt(tmp: Path, source_line: str) -> list[str]:
    """apt-get options for a private apt that sees only `source_line` and an empty dpkg status."""
    for d in ("state/lists/partial", "cache/archives/partial", "etc/sources.list.d",
              "etc/preferences.d", "etc/apt.conf.d"):  # fmt: skip
        (tmp / d).mkdir(parents=True, exist_ok=True)
    (tmp / "status").write_text("")
    (tmp / "etc/sources.list").write_text(source_line + "\n")
    return [
        "-o", f"Dir::State={tmp / 'state'}", "-o", f"Dir::State::status={tmp / 'status'}",
        "-o", f"Dir::Cache={tmp / 'cache'}", "-o", f"Dir::Etc={tmp / 'etc'}",
        "-o", "Dir::Etc::Trusted=/dev/null", "-o", f"Dir::Etc::TrustedParts={tmp / 'etc'}",
        "-o", "APT::Architecture=amd64", "-o", "APT::Architectures::=amd64",
        "-o", "Debug::NoLocking=1", "-o", "APT::Get::AllowUnauthenticated=false",
    ]  # fmt: skip


def test_apt_reads_the_signed_disc_and_installs_every_role(
    built: Built, tmp_path: Path, gnupg
) -> None:  # type: ignore[no-untyped-def]
    keyring = tmp_path / "key.gpg"
    home, fpr = gnupg
    keyring.write_bytes(run(["gpg", "--export", fpr], capture=True, binary=True,
                            env={"GNUPGHOME": str(home)}).stdout)  # fmt: skip
    opts = _apt(
        tmp_path, f"deb [signed-by={keyring}] file:{built.tree} lucid main restricted extras"
    )
    update = run(["apt-get", *opts, "update"], capture=True)
    assert "extras" in update.stdout
    assert "NO_PUBKEY" not in update.stderr and "not signed" not in update.stderr, update.stderr
    for role in ROLES:
        proc = run(
            ["apt-get", *opts, "install", "--simulate", "--no-install-recommends", "-q",
             f"stackops-{role}"],
            capture=True,
        )  # fmt: skip
        installed = set(re.findall(r"^Inst (\S+)", proc.stdout, re.M))
        rp = next(r for r in built.plan.roles if r.role == role)
        assert f"stackops-{role}" in installed
        # apt installs exactly the closure the resolver computed, plus the metapackage
        assert installed == {p.name for p in rp.closure} | {f"stackops-{role}"}, role
        assert "WARNING: The following packages cannot be authenticated" not in proc.stdout


def test_apt_refuses_the_disc_without_the_key(built: Built, tmp_path: Path) -> None:
    opts = _apt(tmp_path, f"deb file:{built.tree} lucid main restricted extras")
    proc = run(["apt-get", *opts, "update"], capture=True, check=False)
    assert "NO_PUBKEY" in proc.stderr or "not signed" in proc.stderr or proc.returncode != 0


def test_dose_distcheck_finds_no_broken_package(built: Built) -> None:
    dists = built.tree / "dists" / "lucid"
    indexes = [
        f"deb://{dists / c / 'binary-amd64' / 'Packages'}" for c in ("main", "restricted", "extras")
    ]
    proc = run(
        ["dose-distcheck", "--deb-native-arch=amd64", "-f", "-e", *indexes],
        capture=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout
    total = int(re.search(r"total-packages: (\d+)", proc.stdout).group(1))  # type: ignore[union-attr]
    assert total == len(built.result.packages) + 43  # the base's 43 debs + ours
    assert "broken-packages: 0" in proc.stdout


def test_dose_distcheck_would_see_a_missing_dependency(built: Built, tmp_path: Path) -> None:
    """Control: the judge is not blind (drop python-eventlet from extras)."""
    extras = (built.tree / "dists/lucid/extras/binary-amd64/Packages").read_text()
    stanzas = [
        s for s in extras.split("\n\n") if s.strip() and "Package: python-eventlet\n" not in s
    ]
    cut = tmp_path / "Packages"
    cut.write_text("\n\n".join(stanzas) + "\n")
    main = built.tree / "dists/lucid/main/binary-amd64/Packages"
    proc = run(["dose-distcheck", "--deb-native-arch=amd64", "-f", f"deb://{main}", f"deb://{cut}"],
               capture=True, check=False)  # fmt: skip
    assert proc.returncode != 0
    assert "python-nova" in proc.stdout


def test_release_is_fresh_complete_and_signed(built: Built) -> None:
    dists = built.tree / "dists" / "lucid"
    release = (dists / "Release").read_text()
    assert re.search(r"^Components: main restricted extras$", release, re.M)
    listed = set(re.findall(r"^ [0-9a-f]{64} +\d+ (\S+)$", release, re.M))
    on_disc = {p.relative_to(dists).as_posix() for p in dists.rglob("*") if p.is_file()} - {
        "Release", "Release.gpg"
    }  # fmt: skip
    assert listed == on_disc  # every index file, and only those that exist
    assert "main/binary-amd64/Packages" in listed and "extras/binary-amd64/Packages.gz" in listed
    keyring = built.repo / "keyring.gpg"
    proc = run(
        ["gpgv", "--keyring", keyring, dists / "Release.gpg", dists / "Release"],
        check=False,
        capture=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert built.result.signed and not built.result.allow_unauthenticated
    assert built.result.keyring_packages == ("stackops-keyring",)


def test_main_index_is_untouched_and_keeps_task_fields(built: Built, demo_base: Path) -> None:
    import gzip

    with IsoImage(demo_base) as base:
        orig = base.read("/dists/lucid/main/binary-amd64/Packages.gz")
    dists = built.tree / "dists/lucid/main/binary-amd64"
    assert (dists / "Packages.gz").read_bytes() == orig
    assert (dists / "Packages").read_bytes() == gzip.decompress(orig)
    assert "\nTask: " in (dists / "Packages").read_text()


def test_metapackages_read_by_dpkg_deb(built: Built, data_dir: Path) -> None:
    from distro_builder.config.packages import role_packages
    from distro_builder.config.roles import load_roles

    lists = load_roles(data_dir)
    for role in ROLES:
        (deb,) = (built.tree / "pool/extras/s" / f"stackops-{role}").glob("*.deb")
        info = run(["dpkg-deb", "--info", deb], capture=True)
        assert "warning" not in info.stderr
        depends = re.search(r"^ Depends: (.*)$", info.stdout, re.M).group(1).split(", ")  # type: ignore[union-attr]
        # the headers are those of the disc's kernel (issue 22 finding 9)
        wanted = [
            "linux-headers-2.6.32-38-server" if p == "linux-headers-server" else p
            for p in role_packages(lists, role, "amd64")
        ]
        assert depends[: len(wanted)] == wanted
        if role == "compute":  # nwfilter (docs/nova-2011.2-facts.md §16): apt must not take 0.7.5
            assert {"libvirt-bin (>= 0.8.1)", "python-libvirt (>= 0.8.1)"} <= set(depends)
        assert "stackops-keyring" in depends
        assert re.search(r"^ Architecture: all$", info.stdout, re.M)
        contents = run(["dpkg-deb", "--contents", deb], capture=True).stdout
        assert f"./usr/share/doc/stackops-{role}/README" in contents


def test_verify_passes_on_the_output_and_flags_the_base(built: Built, demo_base: Path) -> None:
    checks = {c.name: c for c in verify_archive(built.iso)}
    assert all(c.ok for c in checks.values()), {n: c.problems for n, c in checks.items()}
    assert checks["closure"].checked == len(built.result.packages) + 43
    base = {c.name: c for c in verify_archive(demo_base)}
    assert not base["release"].ok
    assert any(
        "main/binary-amd64/Packages is listed but absent" in p for p in base["release"].problems
    )


def test_staging_is_reproducible(
    built: Built, data_dir: Path, demo_base: Path, tmp_path: Path
) -> None:
    # unsigned this time (signatures carry a timestamp): the rest must be byte-identical
    a, b = tmp_path / "a", tmp_path / "b"
    for out in (a, b):
        _, res = _stage(data_dir, demo_base, built.repo / "sources.list", out, tmp_path / "cache")
    assert res.allow_unauthenticated and not res.signed and res.keyring_packages == ()
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files_a == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    for rel in files_a:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel


def test_a_second_staging_takes_the_kept_control_fields_and_stages_the_same_bytes(
    built: Built, data_dir: Path, demo_base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first staging keeps every package's control fields in the cache (controls.json,
    archive/controls.py); the second parses no .deb, fetched or our own, and stages the same."""
    cache, sources = tmp_path / "cache", built.repo / "sources.list"
    a, b = tmp_path / "a", tmp_path / "b"
    _, first = _stage(data_dir, demo_base, sources, a, cache)
    kept = json.loads((cache / "controls.json").read_text())["entries"]
    assert len(kept) >= len(first.packages) > 10

    def refuse(deb: bytes, filename: str) -> dict[str, str]:
        raise AssertionError(f"{filename} was parsed again")

    monkeypatch.setattr(index, "_read_control", refuse)
    _stage(data_dir, demo_base, sources, b, cache)
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    for rel in files:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel


def test_signed_repository_is_checked_with_gpgv(built: Built, tmp_path: Path) -> None:
    line = (built.repo / "sources.list").read_text().splitlines()[1]
    spec = parse_source_line(line)
    assert spec.keyring and Repository.read(spec, Fetcher(tmp_path / "c")).authenticated
    copy = tmp_path / "ppa"
    shutil.copytree(built.repo / "ppa", copy)
    signed = parse_source_line(f"deb [signed-by={spec.keyring}] file://{copy} lucid main")
    tampered = copy / "dists/lucid/Release"
    tampered.write_text(tampered.read_text().replace("Cactus", "Diablo"))
    with pytest.raises(ArchiveError, match="BAD signature"):
        Repository.read(signed, Fetcher(tmp_path / "c"))
    (copy / "dists/lucid/Release.gpg").unlink()
    with pytest.raises(ArchiveError, match="no signature"):
        Repository.read(signed, Fetcher(tmp_path / "c"))


def test_ecc_signing_keys_are_refused(tmp_path: Path) -> None:
    require_tool_or_skip("gpg")
    home = Path(tempfile.mkdtemp(prefix="gpg.", dir="/tmp"))
    os.chmod(home, 0o700)
    env = {"GNUPGHOME": str(home)}
    try:
        run(["gpg", "--batch", "--passphrase", "", "--quick-gen-key", "ecc <e@example.invalid>",
             "ed25519", "sign", "never"], env=env)  # fmt: skip
        from distro_builder.archive.sign import signing_key

        with pytest.raises(ConfigError, match="EdDSA: lucid's gpg 1.4"):
            signing_key("e@example.invalid", homedir=home)
    finally:
        run(["gpgconf", "--kill", "gpg-agent"], check=False, env=env)
        shutil.rmtree(home, ignore_errors=True)


def test_placed_debs_give_the_disc_a_copied_overlay_gives(
    built: Built, data_dir: Path, demo_base: Path, tmp_path: Path
) -> None:
    """The build lays the cached .debs over the disc where they are (`placed`) instead of
    copying them into its staging folder first: the same disc, byte for byte."""
    copied, slim = tmp_path / "copied", tmp_path / "slim"
    sources, cache = built.repo / "sources.list", tmp_path / "cache"
    _, res_copied = _stage(data_dir, demo_base, sources, copied, cache)
    placed: dict[str, Path] = {}
    _, res_slim = _stage(data_dir, demo_base, sources, slim, cache, placed=placed)
    assert res_slim == res_copied
    fetched = [p for p in built.plan.to_add if p.repo]
    assert len(placed) == len(fetched) > 10
    for disc_path, cached in placed.items():
        assert cached.is_relative_to(cache), cached  # the cache's own file, not a copy
        assert not (slim / disc_path.lstrip("/")).exists()
        assert (copied / disc_path.lstrip("/")).read_bytes() == cached.read_bytes()
    isos = []
    for name, overlays in (("copied", [copied]), ("slim", [slim, placed])):
        iso = tmp_path / f"{name}.iso"
        remaster(demo_base, iso, overlays, source_date_epoch=EPOCH)
        isos.append(iso.read_bytes())
    assert isos[0] == isos[1]


def test_placed_debs_are_not_hashed_again_unless_they_changed(
    built: Built, data_dir: Path, demo_base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The MD5 and SHA-256 the Packages stanza took from a placed .deb go to the remaster's
    md5sum.txt and manifest (no second read of the file); a file touched after staging is read
    again, and every sum on the disc is the file's own."""
    import distro_builder.remaster as remaster_mod

    sources, cache, slim = built.repo / "sources.list", tmp_path / "cache", tmp_path / "slim"
    placed: dict[str, Path] = {}
    known = Prehashed()
    summed: set[str] = set()  # what file_digest hashed three ways, by SHA-256
    whole = index.file_digest

    def three_sums(source: index.Source) -> index.FileDigest:
        digest = whole(source)
        summed.add(digest.sha256)
        return digest

    with monkeypatch.context() as m:  # the fetched .debs' sums come from their index
        m.setattr(index, "file_digest", three_sums)
        _stage(data_dir, demo_base, sources, slim, cache, placed=placed, prehashed=known)
    assert len(placed) > 10
    again = {p for p in placed.values() if hashlib.sha256(p.read_bytes()).hexdigest() in summed}
    assert not again, "hashed three ways again, not summed from their index"
    hashed: list[Path] = []

    def counting(path: Path) -> Digest:
        hashed.append(Path(path))
        return digest_file(path)

    monkeypatch.setattr(remaster_mod, "digest_file", counting)
    touched = sorted(placed)[0]
    for round_ in ("as staged", "one touched"):
        hashed.clear()
        iso = tmp_path / f"{round_}.iso"
        remaster(demo_base, iso, [slim, placed], source_date_epoch=EPOCH, prehashed=known)
        again = {p for p in hashed if p in set(placed.values())}
        assert again == (set() if round_ == "as staged" else {placed[touched]}), round_
        with IsoImage(iso) as image:
            manifest = json.loads(image.read(MANIFEST_PATH))
            md5sums = index.read_md5sum_txt(image.read_text("/md5sum.txt") or "")
        sha = {e["path"]: e.get("sha256") for e in manifest["changes"]}
        for disc_path, path in placed.items():
            data = path.read_bytes()
            assert sha[disc_path] == hashlib.sha256(data).hexdigest(), disc_path
            assert md5sums[disc_path.lstrip("/")] == hashlib.md5(data).hexdigest(), disc_path
        os.utime(placed[touched])  # its ctime moves: the staged sums no longer count
