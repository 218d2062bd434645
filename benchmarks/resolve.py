"""Benchmark: resolve every role against the full Debian 12 main index and compare with apt.

Input: the machine's apt list for bookworm main (amd64), ~64,000 stanzas (run `apt-get update`
first). The role lists name 2011 Ubuntu packages; they are mapped to their Debian 12 names
(MAP below; names with no Debian 12 counterpart are dropped and listed). For each role, one run:

- distro-builder: parse the index (sources.parse_index + to_index_package), build the Universe,
  resolve the role (resolve.resolve); time each part;
- apt: `apt-get install --simulate --no-install-recommends <names>` with an empty dpkg status and
  a private lists folder that holds only the same bookworm main index.

It prints times and the difference between the two package sets (both directions).
"""

from __future__ import annotations

import argparse
import glob
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from distro_builder.archive import deb822  # noqa: E402
from distro_builder.archive.resolve import Universe, resolve  # noqa: E402
from distro_builder.archive.sources import (  # noqa: E402
    INDEX_FIELDS,
    parse_index,
    to_index_package,
)
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--show", type=int, default=15, help="differences listed per role")
    args = ap.parse_args()
    packages_path, release = find_index()
    print(f"index: {packages_path} ({packages_path.stat().st_size:,} bytes on disk)")

    t0 = time.perf_counter()
    raw = read_index(packages_path)
    t1 = time.perf_counter()
    stanzas = parse_index(raw, packages_path.name)
    t2 = time.perf_counter()
    pkgs = [
        to_index_package(s, origin="bookworm/main", repo="http://deb.debian.org/debian", flat=False)
        for s in stanzas
    ]
    t3 = time.perf_counter()
    universe = Universe([pkgs], "amd64")
    t4 = time.perf_counter()
    print(
        f"{len(stanzas):,} stanzas: decompress {t1 - t0:.2f}s, parse {t2 - t1:.2f}s, "
        f"records {t3 - t2:.2f}s, index {t4 - t3:.2f}s"
    )
    # What `packages resolve` does on a second run: the parsed-index cache keyed by the index's
    # SHA-256 (cold: parse and store; warm: hash and load), then records and the universe.
    with tempfile.TemporaryDirectory(prefix="resolve-bench-") as cache:
        c0 = time.perf_counter()
        deb822.cached_stanzas(raw, packages_path.name, Path(cache), parse_index, INDEX_FIELDS)
        c1 = time.perf_counter()
        warm = deb822.cached_stanzas(
            raw, packages_path.name, Path(cache), parse_index, INDEX_FIELDS
        )
        c2 = time.perf_counter()
    warm_universe = Universe(
        [[to_index_package(s, origin="bookworm/main", repo="http://deb.debian.org/debian",
                           flat=False) for s in warm]],
        "amd64",
    )  # fmt: skip
    c3 = time.perf_counter()
    print(
        f"cache: cold parse+store {c1 - c0:.2f}s, warm load {c2 - c1:.2f}s, "
        f"records+index {c3 - c2:.2f}s"
    )
    warm_read = c3 - c1
    total_ours = total_apt = 0.0
    known = set(universe.by_name) | set(universe.providers)
    roots = role_roots(find_data_dir(None), None, "amd64")
    head = ("role", "names", "ours", "apt", "same", "resolve", "apt-get")
    print("\n{:<11} {:>5} {:>5} {:>5} {:>5} {:>8} {:>8}".format(*head))
    notes = []
    for role in roots:
        names, dropped = [], []
        for n in roots[role]:
            m = MAP.get(n, n)
            if m is None or m not in known:
                dropped.append(n)
            else:
                names.append(m)
        try:
            start = time.perf_counter()
            ours = {p.name for p in resolve(names, warm_universe).packages}
            took = time.perf_counter() - start
            cold_ours = {p.name for p in resolve(names, universe).packages}
        except DependencyError as e:
            print(f"{role}: resolve failed: {e}")
            continue
        if cold_ours != ours:
            notes.append(f"{role}: the cached index resolves differently from the parsed one")
        apt, apt_took = apt_simulate(packages_path, release, names)
        total_ours += took
        total_apt += apt_took
        same = len(ours & apt)
        print(
            f"{role:<11} {len(names):>5} {len(ours):>5} {len(apt):>5} {same:>5} "
            f"{took:>7.2f}s {apt_took:>7.2f}s"
        )
        if dropped:
            notes.append(f"{role}: no Debian 12 package for {', '.join(dropped)}")
        only_ours, only_apt = sorted(ours - apt), sorted(apt - ours)
        if only_ours:
            notes.append(f"{role}: only distro-builder: {', '.join(only_ours[: args.show])}"
                         + (" ..." if len(only_ours) > args.show else ""))  # fmt: skip
        if only_apt:
            notes.append(f"{role}: only apt: {', '.join(only_apt[: args.show])}"
                         + (" ..." if len(only_apt) > args.show else ""))  # fmt: skip
    warm_all = warm_read + total_ours
    print(
        f"\nwarm read + resolve of every role: {warm_all:.2f}s (target 0.5 s; read "
        f"{warm_read:.2f}s, resolve {total_ours:.2f}s); apt-get for the same roles "
        f"{total_apt:.2f}s: x{total_apt / warm_all:.1f} faster"
    )
    print()
    for n in notes:
        print(n)


if __name__ == "__main__":
    main()
