"""Benchmark: read Debian 12's main index as a repository and resolve every role; compare with apt.

Input: the machine's apt list for bookworm main (amd64), ~64,000 stanzas (run `apt-get update`
first), set up as a local repository: apt's InRelease and the index, decompressed (the Release
lists that `Packages` file too). The role lists name 2011 Ubuntu packages; they are mapped to
their Debian 12 names (MAP below; names with no Debian 12 counterpart are dropped and listed).

- distro-builder: `Repository.read()` on `deb [signed-by=debian-archive-keyring.gpg]
  file://REPO bookworm main` (gpgv, the Release's SHA-256, the Catalog through the parsed-index
  cache), once with an empty cache (cold) and once more (warm), then a Universe over the warm
  Catalog and each role resolved; the stages of a read are also timed one by one;
- apt: `apt-get install --simulate --no-install-recommends <names>` with an empty dpkg status and
  a private lists folder that holds only the same bookworm main index.

It prints times and the difference between the two package sets (both directions); `--profile`
adds where the warm path spends its time (cProfile).
"""

from __future__ import annotations

import argparse
import cProfile
import glob
import hashlib
import io
import pstats
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from distro_builder.archive import deb822, index, sign  # noqa: E402
from distro_builder.archive.catalog import INDEX_FIELDS, read_catalog  # noqa: E402
from distro_builder.archive.fetch import Fetcher  # noqa: E402
from distro_builder.archive.repository import Repository  # noqa: E402
from distro_builder.archive.resolve import Universe, resolve  # noqa: E402
from distro_builder.archive.sources import parse_source_line  # noqa: E402
from distro_builder.config import find_data_dir  # noqa: E402
from distro_builder.errors import DependencyError  # noqa: E402
from distro_builder.packageset import role_roots  # noqa: E402

LISTS = "/var/lib/apt/lists"
# Ubuntu 10.04 / Cactus PPA name -> Debian 12 name (None: no counterpart in Debian 12)
MAP: dict[str, str | None] = {
    "python-nova": "python3-nova",
    "python-mysqldb": "python3-mysqldb",
    "python-greenlet": "python3-greenlet",
    "python-libvirt": "python3-libvirt",
    "libvirt-bin": "libvirt-daemon-system",
    "kvm": "qemu-system-x86",
    "mysql-server": "default-mysql-server",
    "iscsitarget": "tgt",
    "nova-volume": "cinder-volume",
    "nova-network": "neutron-linuxbridge-agent",
    "nova-objectstore": None,
    "nova-ajax-console-proxy": "nova-novncproxy",
    "euca2ools": None,
}


def find_index() -> tuple[Path, Path]:
    """(Packages file, InRelease) of bookworm main amd64 from the apt lists."""
    hits = sorted(glob.glob(f"{LISTS}/*_dists_bookworm_main_binary-amd64_Packages*"))
    if not hits:
        sys.exit(f"no bookworm main amd64 index in {LISTS}: run apt-get update first")
    packages = Path(hits[0])
    release = Path(str(packages).split("_main_binary-amd64_")[0] + "_InRelease")
    return packages, release


def read_index(path: Path) -> bytes:
    """The decompressed index (apt stores .lz4 lists; apt-helper reads every format)."""
    if path.suffix in (".lz4", ".zst"):
        return subprocess.run(
            ["/usr/lib/apt/apt-helper", "cat-file", str(path)], check=True, capture_output=True
        ).stdout
    return path.read_bytes()


def apt_simulate(packages: Path, release: Path, names: list[str]) -> tuple[set[str], float]:
    """apt-get's choice for `names` with an empty status and only this index."""
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        (t / "lists/partial").mkdir(parents=True)
        (t / "cache/archives/partial").mkdir(parents=True)
        (t / "etc/apt.conf.d").mkdir(parents=True)
        (t / "etc/preferences.d").mkdir(parents=True)
        (t / "etc/sources.list.d").mkdir(parents=True)
        shutil.copy(packages, t / "lists" / packages.name)
        shutil.copy(release, t / "lists" / release.name)
        (t / "status").write_text("")
        (t / "etc/sources.list").write_text("deb http://deb.debian.org/debian bookworm main\n")
        argv = [
            "apt-get",
            "-o", f"Dir::State::Lists={t / 'lists'}", "-o", f"Dir::State::status={t / 'status'}",
            "-o", f"Dir::Cache={t / 'cache'}", "-o", f"Dir::Etc={t / 'etc'}",
            "-o", "APT::Architecture=amd64", "-o", "APT::Architectures::=amd64",
            "-o", "Debug::NoLocking=1",
            "install", "--simulate", "--no-install-recommends", "-q", *names,
        ]  # fmt: skip
        start = time.perf_counter()
        proc = subprocess.run(argv, capture_output=True, text=True)
        took = time.perf_counter() - start
        if proc.returncode != 0:
            print(proc.stdout[-2000:], proc.stderr[-2000:])
            raise SystemExit(f"apt-get failed for {' '.join(names)}")
        return set(re.findall(r"^Inst (\S+)", proc.stdout, re.M)), took


KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")


def make_repository(packages: Path, release: Path, raw: bytes, where: Path) -> str:
    """A local copy of bookworm main laid out as a mirror; returns its source line."""
    dists = where / "dists" / "bookworm"
    (dists / "main" / "binary-amd64").mkdir(parents=True)
    shutil.copy(release, dists / "InRelease")
    (dists / "main" / "binary-amd64" / "Packages").write_bytes(raw)
    signed = f"signed-by={KEYRING} " if KEYRING.is_file() else ""
    return f"deb [arch=amd64 {signed}] file://{where} bookworm main"


def role_names(roots: dict[str, tuple[str, ...]], known: set[str]) -> dict[str, list[str]]:
    """Each role's Debian 12 names; the dropped ones under the key 'role:dropped'."""
    out: dict[str, list[str]] = {}
    for role, names in roots.items():
        for n in names:
            m = MAP.get(n, n)
            key = role if m is not None and m in known else f"{role}:dropped"
            out.setdefault(key, []).append(m if key == role else n)  # type: ignore[arg-type]
    return out


def timed(fn, *args, **kw):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    out = fn(*args, **kw)
    return out, time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--show", type=int, default=15, help="differences listed per role")
    ap.add_argument("--profile", action="store_true", help="cProfile the warm read + resolve")
    args = ap.parse_args()
    packages_path, release = find_index()
    print(f"index: {packages_path} ({packages_path.stat().st_size:,} bytes on disk)")
    raw = read_index(packages_path)
    roots = role_roots(find_data_dir(None), None, "amd64")
    with tempfile.TemporaryDirectory(prefix="resolve-bench-") as tmp:
        line = make_repository(packages_path, release, raw, Path(tmp) / "mirror")
        spec = parse_source_line(line)
        fetcher = Fetcher(Path(tmp) / "cache")
        print(f"repository: {line}\n")

        # the stages of a read, one by one
        inrelease = (Path(tmp) / "mirror/dists/bookworm/InRelease").read_bytes()
        if spec.keyring:
            (text, _), t_release = timed(sign.verify_clearsigned, inrelease, KEYRING, name="x")
        else:
            text, t_release = inrelease, 0.0
        checksums = index.release_checksums(index.read_release(text, "InRelease"))
        url = f"{spec.url}/dists/bookworm/main/binary-amd64/Packages"
        data, t_fetch = timed(fetcher.read, url)
        assert data is not None
        digest, t_hash = timed(lambda: hashlib.sha256(data).hexdigest())
        assert checksums["main/binary-amd64/Packages"][1] == digest, "InRelease and index differ"
        rows, t_parse = timed(deb822.parse_fields, data, "Packages", INDEX_FIELDS)
        kw = {"origin": "bookworm/main", "repo": spec.url, "flat": False}
        _, t_catalog = timed(read_catalog, data, "Packages", **kw)
        stage_cache = Path(tmp) / "stage-cache"
        timed(read_catalog, data, "Packages", cache_dir=stage_cache, sha256=digest, **kw)
        _, t_load = timed(
            read_catalog, data, "Packages", cache_dir=stage_cache, sha256=digest, **kw
        )
        print(
            f"{len(rows):,} stanzas. Stages: Release + gpgv {t_release:.2f}s, index read "
            f"{t_fetch:.2f}s, SHA-256 {t_hash:.2f}s; cold: parse (TagFile) {t_parse:.2f}s, "
            f"catalog (parse + rows + Provides) {t_catalog:.2f}s; warm: cache load {t_load:.2f}s"
        )

        # the whole way, as `distro-builder resolve` takes it
        cold, t_cold = timed(Repository.read, spec, fetcher)
        warm, t_warm = timed(Repository.read, spec, fetcher)
        universe, t_universe = timed(Universe, [warm.packages], "amd64")
        print(
            f"Repository.read: cold {t_cold:.2f}s, warm {t_warm:.2f}s "
            f"({'authenticated' if warm.authenticated else 'UNAUTHENTICATED'}, "
            f"{len(warm.packages):,} packages); Universe {t_universe:.3f}s"
        )
        if args.profile:
            profile_warm(spec, fetcher, role_names(roots, universe.names()))
    names = role_names(roots, universe.names())
    # the same resolution over every package made up front (what the cache's rows must equal)
    eager = Universe([list(cold.packages)], "amd64")
    total_ours = total_apt = 0.0
    head = ("role", "names", "ours", "apt", "same", "resolve", "apt-get")
    print("\n{:<11} {:>5} {:>5} {:>5} {:>5} {:>8} {:>8}".format(*head))
    notes = []
    for role in roots:
        try:
            res, took = timed(resolve, names[role], universe)
            ours = {p.name for p in res.packages}
            eager_ours = {p.name for p in resolve(names[role], eager).packages}
        except DependencyError as e:
            print(f"{role}: resolve failed: {e}")
            continue
        if eager_ours != ours:
            notes.append(f"{role}: the cached catalog resolves differently from the parsed one")
        apt, apt_took = apt_simulate(packages_path, release, names[role])
        total_ours += took
        total_apt += apt_took
        same = len(ours & apt)
        print(
            f"{role:<11} {len(names[role]):>5} {len(ours):>5} {len(apt):>5} {same:>5} "
            f"{took:>7.3f}s {apt_took:>7.2f}s"
        )
        if dropped := names.get(f"{role}:dropped"):
            notes.append(f"{role}: no Debian 12 package for {', '.join(dropped)}")
        only_ours, only_apt = sorted(ours - apt), sorted(apt - ours)
        if only_ours:
            notes.append(f"{role}: only distro-builder: {', '.join(only_ours[: args.show])}"
                         + (" ..." if len(only_ours) > args.show else ""))  # fmt: skip
        if only_apt:
            notes.append(f"{role}: only apt: {', '.join(only_apt[: args.show])}"
                         + (" ..." if len(only_apt) > args.show else ""))  # fmt: skip
    warm_all = t_warm + t_universe + total_ours
    print(
        f"\nwarm read + resolve of every role: {warm_all:.2f}s (target 0.5 s; read "
        f"{t_warm:.2f}s, universe {t_universe:.3f}s, resolve {total_ours:.2f}s); cold read "
        f"{t_cold:.2f}s; apt-get for the same roles {total_apt:.2f}s: x{total_apt / warm_all:.1f}"
        " faster"
    )
    print()
    for n in notes:
        print(n)


def profile_warm(spec, fetcher, names) -> None:  # type: ignore[no-untyped-def]
    """cProfile of a warm read + every role resolved: the functions that take the time."""

    def run() -> None:
        repo = Repository.read(spec, fetcher)
        universe = Universe([repo.packages], "amd64")
        for role, roots in names.items():
            if not role.endswith(":dropped"):
                resolve(roots, universe)

    prof = cProfile.Profile()
    prof.runcall(run)
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(15)
    print("\n".join(out.getvalue().splitlines()[:40]))


if __name__ == "__main__":
    main()
