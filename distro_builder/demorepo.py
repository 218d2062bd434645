"""The demo repositories: demo/ppa.yaml written out as real apt repositories (file:// sources).

Each repository (the DEMO slice of the lucid archive, the DEMO Cactus PPA) becomes
`<out>/<name>/` with `pool/<component>/<prefix>/<source>/*.deb` (tiny, reproducible packages),
`dists/<suite>/<component>/binary-<arch>/Packages` in the compressions such archives used (lucid's
archive: .gz + .bz2; Launchpad PPAs: plain, .gz, .bz2), per-component `Release`, a top-level
`Release` with MD5Sum/SHA1/SHA256, and with a signing key a detached `Release.gpg`. A
`sources.list` beside them names every repository as an apt source line.
"""

from __future__ import annotations

import bz2
import logging
import os
import shutil
import tempfile
from collections import defaultdict
from pathlib import Path

from distro_builder.archive import debs, index, sign
from distro_builder.config.packages import load_demo_repos
from distro_builder.log import step
from distro_builder.model import DemoRepo, DemoRepoPackage, DemoRepos
from distro_builder.seed.render import render_template

log = logging.getLogger(__name__)

SOURCES_LIST = "sources.list"
KEYRING = "keyring.gpg"
# Which index files each kind of archive carries (lucid's mirror drops the plain Packages).
_COMPRESSIONS = {"ubuntu": ("gz", "bz2"), "ppa": ("", "gz", "bz2")}


def _control(repos: DemoRepos, repo: DemoRepo, pkg: DemoRepoPackage) -> dict[str, str]:
    fields = {
        "Package": pkg.name,
        "Version": pkg.version,
        "Architecture": pkg.arch,
        "Maintainer": repos.maintainer,
        "Section": pkg.section,
        "Priority": pkg.priority,
    }
    if pkg.source and pkg.source != pkg.name:
        fields["Source"] = pkg.source
    for key, value in (
        ("Pre-Depends", pkg.pre_depends),
        ("Depends", pkg.depends),
        ("Recommends", pkg.recommends),
        ("Provides", pkg.provides),
    ):
        if value:
            fields[key] = value
    fields["Description"] = (
        f"{pkg.name} (DEMO stand-in)\n Tiny stand-in from the distro-builder demo repository "
        f"'{repo.name}'.\n Real name, version and relations; no payload."
    )
    return fields


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def write_repo(
    data_dir: Path,
    repos: DemoRepos,
    repo: DemoRepo,
    root: Path,
    *,
    sign_key: str | None = None,
    gnupg_home: Path | None = None,
) -> int:
    """Write one demo repository under `root`; returns its package count."""
    templates = Path(data_dir) / "demo" / "templates"
    stanzas: dict[str, list[dict[str, str]]] = defaultdict(list)
    for pkg in repo.packages:
        readme = render_template(
            templates,
            "README.repo.j2",
            package=pkg.name,
            version=pkg.version,
            repository=repo.name,
            description=repo.description,
        )
        deb = debs.build_deb(
            _control(repos, repo, pkg),
            {f"/usr/share/doc/{pkg.name}/README.demo": readme.encode()},
            mtime=repos.epoch,
        )
        filename = debs.deb_filename(pkg.name, pkg.version, pkg.arch)
        pool = debs.pool_path(pkg.component, pkg.source or pkg.name, filename)
        _write(root / pool, deb)
        stanzas[pkg.component].append(index.packages_stanza(deb, pool))
    dists = root / "dists" / repo.suite
    listed: dict[str, bytes] = {}
    for comp in repo.components:
        rel = f"{comp}/binary-{repo.arch}"
        plain = index.render_packages(stanzas.get(comp, [])).encode()
        for ext in _COMPRESSIONS.get(repo.name, ("", "gz")):
            data = {
                "": plain,
                "gz": index.gzip_bytes(plain, mtime=repos.epoch),
                "bz2": bz2.compress(plain, 9),
            }[ext]
            name = f"{rel}/Packages" + (f".{ext}" if ext else "")
            _write(dists / name, data)
            listed[name] = data
        comp_release = index.render_component_release(
            repo.suite, repo.version, comp, repo.origin, repo.label, repo.arch
        ).encode()
        _write(dists / rel / "Release", comp_release)
        listed[f"{rel}/Release"] = comp_release
    fields = {
        "Origin": repo.origin,
        "Label": repo.label,
        "Suite": repo.suite,
        "Version": repo.version,
        "Codename": repo.codename,
        "Date": index.release_date(repos.epoch),
        "Architectures": repo.arch,
        "Components": " ".join(repo.components),
        "Description": f"{repo.description} (DEMO)",
    }
    _write(dists / "Release", index.render_release(fields, listed).encode())
    if sign_key:
        sign.sign_detached(dists / "Release", sign_key, homedir=gnupg_home)
    return len(repo.packages)


def build_demo_repo(
    data_dir: Path,
    out_dir: Path,
    *,
    sign_key: str | None = None,
    gnupg_home: Path | None = None,
) -> Path:
    """Write every demo repository under `out_dir` (replaced atomically) and a sources.list.

    With `sign_key` each Release is signed and `keyring.gpg` holds the public key; the
    sources.list then uses `signed-by=`, otherwise `trusted=yes`. Returns `out_dir`.
    """
    repos = load_demo_repos(data_dir)
    out_dir = Path(out_dir).resolve()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".demo-repo.", dir=out_dir.parent) as tmp:
        stage = Path(tmp) / "repo"
        stage.mkdir()
        lines = ["# DEMO repositories made by `distro-builder demo-repo` from demo/ppa.yaml"]
        if sign_key:
            _write(stage / KEYRING, sign.export_public_key(sign_key, homedir=gnupg_home))
        for repo in repos.repositories:
            with step(f"Writing DEMO repository '{repo.name}' ({repo.description})"):
                n = write_repo(
                    data_dir, repos, repo, stage / repo.name, sign_key=sign_key,
                    gnupg_home=gnupg_home,
                )  # fmt: skip
                log.info("    %d packages", n)
            opt = f"signed-by={out_dir / KEYRING}" if sign_key else "trusted=yes"
            lines.append(
                f"deb [arch={repo.arch} {opt}] file://{out_dir / repo.name} {repo.suite} "
                + " ".join(repo.components)
            )
        _write(stage / SOURCES_LIST, ("\n".join(lines) + "\n").encode())
        old = Path(tmp) / "old"
        if out_dir.exists():
            os.replace(out_dir, old)
        os.replace(stage, out_dir)
        if old.exists():
            shutil.rmtree(old)
    return out_dir
