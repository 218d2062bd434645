"""Benchmark of the remaster engine and the whole build against `cp` and xorriso (`make bench`).

Builds a ~650 MB lucid-like base once (the demo disc plus incompressible filler .debs), then times
three ways of producing a new image from it, each in a fresh child process so its peak RSS is its
own:

  cp        cp BASE OUT                                  (the I/O floor: no ISO work at all)
  xorriso   xorriso -indev BASE -outdev OUT ... -map OVERLAY / -commit
  remaster  distro_builder.remaster.remaster(BASE, OUT, [OVERLAY])

with --gpt, the same three on that base given a GPT and an 8 MiB EFI System Partition appended
after its ISO 9660 data by xorriso (the layout of Ubuntu 20.10 and later: the engine copies the
partition after the new data and moves the tables), and, on a second, ~774 MB base (the same
demo disc with more filler) and the DEMO repositories:

  cp         cp BASE OUT
  build      distro-builder build --base BASE -o OUT --sources DEMO-REPO/sources.list
  build-new  the same, as the first build from that base: its SHA-256 (for the manifest) not
             in the cache yet

Every timed region ends with `sync OUT`, outputs are deleted between runs, the page cache is
warm (dropping it needs root and is not reliable here), and Python's bytecode is cached as in an
installed copy (under WORKDIR/pycache; one untimed run of each writes it). Each ratio is taken
from the medians of one run of this script, and the last lines sum up the figures issues 15 and
23 set goals for. This prints numbers; it asserts nothing.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from distro_builder.archive import index
from distro_builder.config import find_data_dir
from distro_builder.config.demo import load_demo_disc
from distro_builder.demo import MKISOFS_OPTIONS, stage_tree
from distro_builder.media.layout import md5sum_excluded
from distro_builder.run import require_tool, run

MB = 1_000_000
MIB = 1 << 20
BASE_NAME = "base.iso"
STAMP_NAME = "base.json"  # what the cached base was built with; a mismatch rebuilds it
FILLER_VERSION = "1.0-0ubuntu1"
SEED = 1

# The child that runs the engine: a fresh interpreter, so imports and RSS count like a CLI run.
REMASTER_CODE = """\
import sys
from pathlib import Path
from distro_builder.remaster import remaster
remaster(Path(sys.argv[1]), Path(sys.argv[2]), [Path(sys.argv[3])], hybrid=False,
         source_date_epoch=None)
"""


def note(msg: str) -> None:
    print(f"bench: {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# The base and the overlay


def _write(path: Path, data: bytes | str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)


def _tree_size(tree: Path) -> int:
    total = 0
    for dirpath, _dirnames, filenames in os.walk(tree):
        for name in filenames:
            p = Path(dirpath) / name
            if not p.is_symlink():
                total += p.stat().st_size
    return total


def add_filler(tree: Path, budget: int, rng: random.Random) -> tuple[int, int]:
    """Incompressible 1-5 MB .debs under pool/main until `budget` bytes; (files, bytes)."""
    count = written = 0
    while budget - written >= MB:
        size = min(rng.randint(1 * MB, 5 * MB), budget - written)
        pkg = f"{chr(ord('a') + count % 26)}bench-filler{count:03d}"
        _write(
            tree / "pool" / "main" / pkg[0] / pkg / f"{pkg}_{FILLER_VERSION}_amd64.deb",
            rng.randbytes(size),
        )
        count += 1
        written += size
        if count % 25 == 0:
            note(f"  filler: {count} files, {written / MB:.0f} MB")
    return count, written


def build_base(workdir: Path, size_mb: int) -> Path:
    """The ~size_mb base ISO in workdir, reused when a previous run built the same one."""
    base = workdir / BASE_NAME
    stamp = workdir / STAMP_NAME
    want = {"size_mb": size_mb, "seed": SEED}
    if base.is_file() and stamp.is_file() and json.loads(stamp.read_text()) == want:
        note(f"reusing {base} ({base.stat().st_size / MB:.1f} MB)")
        return base
    base.unlink(missing_ok=True)
    stamp.unlink(missing_ok=True)
    mkisofs = require_tool("genisoimage", reason="build the benchmark's base ISO")
    data_dir = find_data_dir()
    disc = load_demo_disc(data_dir)
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="base-tree.", dir=workdir) as tmp:
        tree = Path(tmp) / "tree"
        note(f"staging the demo disc tree in {tree}")
        n = stage_tree(data_dir, disc, tree)
        demo_bytes = _tree_size(tree)
        note(f"  {n} demo packages, {demo_bytes / MB:.1f} MB")
        # ISO 9660 metadata and padding add a little; aim the files at the requested image size.
        budget = size_mb * MB - demo_bytes - 2 * MB
        count, written = add_filler(tree, budget, random.Random(SEED))
        note(f"  filler: {count} files, {written / MB:.1f} MB; regenerating md5sum.txt")
        files = []
        for dirpath, dirnames, filenames in os.walk(tree):
            dirnames.sort()
            for name in filenames:
                p = Path(dirpath) / name
                rel = p.relative_to(tree).as_posix()
                if not p.is_symlink() and not md5sum_excluded(rel):
                    files.append((rel, p))
        _write(tree / "md5sum.txt", index.md5sum_txt(sorted(files)))
        note(f"writing {base} with genisoimage")
        part = workdir / f".{BASE_NAME}.part"
        run(
            [mkisofs, "-quiet", *MKISOFS_OPTIONS, "-V", disc.volume_id, "-o", part, tree],
            env={"SOURCE_DATE_EPOCH": str(disc.epoch), "TZ": "UTC"},
        )
        os.replace(part, base)
    stamp.write_text(json.dumps(want) + "\n")
    note(f"base: {base.stat().st_size / MB:.1f} MB in {time.monotonic() - t0:.0f} s")
    return base


def gpt_base(workdir: Path, base: Path) -> Path:
    """`base` with a GPT and an 8 MiB FAT EFI System Partition appended by xorriso, its boot
    equipment replayed (rebuilt when the base is newer)."""
    out = workdir / "base-gpt.iso"
    if out.is_file() and out.stat().st_mtime >= base.stat().st_mtime:
        note(f"reusing {out}")
        return out
    esp = workdir / "esp.img"
    esp.unlink(missing_ok=True)
    mkfs = require_tool("mkfs.msdos", reason="make the EFI System Partition (dosfstools)")
    run([mkfs, "--invariant", "-i", "deb00001", "-C", esp, "8192"], capture=True)
    xorriso = require_tool("xorriso", reason="append the EFI System Partition")
    out.unlink(missing_ok=True)
    run(
        [xorriso, "-indev", base, "-outdev", out, "-boot_image", "any", "replay",
         "-append_partition", "2", "0xef", esp, "-boot_image", "any", "appended_part_as=gpt",
         "-changes_pending", "yes", "-commit"],
        capture=True,
    )  # fmt: skip
    note(f"GPT base: {out.stat().st_size / MB:.1f} MB")
    return out


def demo_repo(workdir: Path) -> tuple[Path, Path]:
    """The DEMO repositories (`distro-builder demo-repo`) and a package cache for `build`."""
    repo = workdir / "demo-repo"
    if not (repo / "sources.list").is_file():
        tool = Path(sys.executable).with_name("distro-builder")
        run([tool, "demo-repo", "-o", repo])
    cache = workdir / "cache"
    cache.mkdir(exist_ok=True)
    return repo / "sources.list", cache


def _stanza(pkg: str, version: str, filename: str, data: bytes) -> dict[str, str]:
    return {
        "Package": pkg,
        "Priority": "optional",
        "Section": "net",
        "Installed-Size": str(len(data) // 1024),
        "Maintainer": "distro-builder benchmark <bench@example.invalid>",
        "Architecture": "all",
        "Version": version,
        "Filename": filename,
        "Size": str(len(data)),
        "MD5sum": hashlib.md5(data).hexdigest(),
        "SHA256": hashlib.sha256(data).hexdigest(),
        "Description": f"{pkg} (benchmark stand-in)",
    }


def build_overlay(workdir: Path) -> Path:
    """The kind of change a distro build makes: extras pool + index, two seeds, a menu file."""
    overlay = workdir / "overlay"
    if overlay.exists():
        shutil.rmtree(overlay)
    rng = random.Random(SEED + 1)
    debs = [
        ("nova-compute", "2011.2-0ubuntu1"),
        ("nova-compute-kvm", "2011.2-0ubuntu1"),
        ("nova-common", "2011.2-0ubuntu1"),
        ("python-nova", "2011.2-0ubuntu1"),
        ("python-novaclient", "2.4.3-0ubuntu1~lucid1"),
        ("stackops-agent", "0.1-1"),
    ]
    stanzas = []
    for pkg, version in debs:
        filename = f"pool/extras/{pkg}_{version}_all.deb"
        data = rng.randbytes(rng.randint(1 * MB, 3 * MB))
        _write(overlay / filename, data)
        stanzas.append(_stanza(pkg, version, filename, data))
    packages = index.render_packages(stanzas).encode()
    extras = overlay / "dists" / "lucid" / "extras" / "binary-amd64"
    _write(extras / "Packages", packages)
    _write(extras / "Packages.gz", gzip.compress(packages, compresslevel=9, mtime=0))
    seed = "d-i pkgsel/include string nova-compute\nd-i debian-installer/locale string en_US\n"
    _write(overlay / "preseed" / "nova.seed", seed)
    more = "tasksel tasksel/first multiselect\n"
    _write(overlay / "preseed" / "ubuntu-server-nova.seed", seed + more)
    text_cfg = (find_data_dir() / "demo" / "tree" / "isolinux" / "text.cfg").read_text()
    text_cfg += (
        "label nova\n"
        "  menu label Install OpenStack ^Nova compute node\n"
        "  kernel /install/vmlinuz\n"
        "  append  file=/cdrom/preseed/nova.seed initrd=/install/initrd.gz quiet --\n"
    )
    _write(overlay / "isolinux" / "text.cfg", text_cfg)
    return overlay


# ---------------------------------------------------------------------------------------------
# Measuring


@dataclass
class Method:
    name: str
    argv: list[str]
    before: Callable[[], None] | None = None  # untimed, before each run
    walls: list[float] = field(default_factory=list)
    rss_kib: list[int] = field(default_factory=list)
    out_bytes: int = 0


def build_methods(base: Path, out: Path, sources: Path, cache: Path) -> list[Method]:
    """cp and the whole `build` on the build base (package cache warmed before the runs)."""
    b, o = os.fspath(base), os.fspath(out)
    tool = Path(sys.executable).with_name("distro-builder")
    cmd = [os.fspath(tool)] if tool.exists() else [sys.executable, "-m", "distro_builder"]
    build_argv = [
        *cmd, "build", "--base", b, "-o", o,
        "--sources", os.fspath(sources), "--cache", os.fspath(cache),
    ]  # fmt: skip

    def forget_base_sha256() -> None:  # build.py keeps it in the cache folder
        shutil.rmtree(cache / "base-sha256", ignore_errors=True)

    return [
        Method("cp", ["cp", b, o]),
        Method("build", build_argv),
        Method("build-new", build_argv, before=forget_base_sha256),
    ]


def methods(base: Path, out: Path, overlay: Path) -> list[Method]:
    xorriso = require_tool("xorriso", reason="compare the remaster engine with xorriso")
    b, o, ov = os.fspath(base), os.fspath(out), os.fspath(overlay)
    xorriso_argv = [
        xorriso, "-indev", b, "-outdev", o,
        "-joliet", "on",
        "-compliance", "no_emul_toc",
        "-boot_image", "any", "replay",
        "-map", ov, "/",
        "-commit",
    ]  # fmt: skip
    return [
        Method("cp", ["cp", b, o]),
        Method("xorriso", xorriso_argv),
        Method("remaster", [sys.executable, "-c", REMASTER_CODE, b, o, ov]),
    ]


def child_env(workdir: Path) -> dict[str, str]:
    """The timed children's environment: Python bytecode cached (under WORKDIR/pycache, not in
    the checkout) as an installed copy has it, even where PYTHONDONTWRITEBYTECODE is set; the
    untimed warm-up runs write it."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = os.fspath(workdir / "pycache")
    return env


def measure(
    argv: Sequence[str], out: Path, time_tool: str | None, env: dict[str, str] | None = None
) -> tuple[float, int]:
    """(wall seconds including `sync OUT`, peak RSS in KiB of the child) of one run.

    The RSS comes from `/usr/bin/time -f %M` when installed: wait4() on our own child would also
    count this Python process, because Linux carries the pre-exec RSS of a forked (or vforked)
    child into its maxrss. Without `time` that inflated figure is all there is.
    """
    subprocess.run(["sync"], check=True)  # settle earlier writes (and deletes) outside the clock
    with tempfile.NamedTemporaryFile("r", prefix="bench-rss.") as rss_file:
        cmd = list(argv)
        if time_tool is not None:
            cmd = [time_tool, "-f", "%M", "-o", rss_file.name, *cmd]
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        assert proc.stderr is not None
        stderr = proc.stderr.read()
        proc.stderr.close()
        _pid, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = rc = os.waitstatus_to_exitcode(status)
        if rc != 0:
            raise SystemExit(f"bench: {argv[0]} failed ({rc}):\n{stderr.decode(errors='replace')}")
        subprocess.run(["sync", os.fspath(out)], check=True)
        wall = time.perf_counter() - t0
        rss = int(rss_file.read().split()[-1]) if time_tool is not None else usage.ru_maxrss
    return wall, rss


def warm_cache(path: Path) -> None:
    with open(path, "rb") as f:
        while f.read(8 * MIB):
            pass


def bench(
    base: Path, todo: list[Method], out: Path, runs: int, env: dict[str, str] | None = None
) -> list[Method]:
    time_tool = shutil.which("time", path="/usr/bin:/bin")
    if time_tool is None:
        note(
            "/usr/bin/time is missing (Debian package `time`): peak RSS falls back to wait4(), "
            "which also counts this Python process; install it for per-method figures"
        )
    warm_cache(base)
    for i in range(runs):
        # Interleaved, so a slow moment of the machine hits every method alike, and each round
        # starts one method later: the write after a big write and delete was often slow on
        # this VM (remaster right after xorriso 1.2-1.45 s, the next remaster 0.6 s), so a
        # fixed order charged it to one method in every round.
        for m in todo[i % len(todo) :] + todo[: i % len(todo)]:
            out.unlink(missing_ok=True)
            if m.before is not None:
                m.before()
            wall, rss = measure(m.argv, out, time_tool, env)
            m.walls.append(wall)
            m.rss_kib.append(rss)
            m.out_bytes = out.stat().st_size
            note(f"run {i + 1}/{runs} {m.name}: {wall:.2f} s, {rss / 1024:.1f} MiB")
            out.unlink()
            for beside in (out.with_name("SHA256SUMS"), out.with_name(out.name + ".build.json")):
                beside.unlink(missing_ok=True)  # what `build` writes beside the ISO
    return todo


# ---------------------------------------------------------------------------------------------
# Reporting


def report(todo: list[Method], base: Path, subject: str) -> dict[str, object]:
    """Print the table and the ratios of `subject` (and of any other method named like it,
    e.g. build-new) against every other method; the JSON part."""
    med = {m.name: (statistics.median(m.walls), statistics.median(m.rss_kib) / 1024) for m in todo}
    best = {m.name: min(m.walls) for m in todo}
    rows = [("method", "median wall s", "runs (s)", "median peak RSS MiB", "output MB")]
    for m in todo:
        wall, rss = med[m.name]
        runs = ", ".join(f"{w:.2f}" for w in m.walls)
        rows.append((m.name, f"{wall:.2f}", runs, f"{rss:.1f}", f"{m.out_bytes / MB:.1f}"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    print(f"base: {base} ({base.stat().st_size / MB:.1f} MB), warm page cache, sync in the clock")
    for n, r in enumerate(rows):
        right = [c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True)]
        cells = [r[0].ljust(widths[0]), *right]
        print("  ".join(cells))
        if n == 0:
            print("  ".join("-" * w for w in widths))
    ratios: dict[str, float] = {}
    print()
    subjects = [m.name for m in todo if m.name.startswith(subject)]
    for subj in subjects:
        for m in todo:
            other = m.name
            if other in subjects:
                continue
            ratios[f"wall {subj}/{other}"] = med[subj][0] / med[other][0]
            ratios[f"fastest wall {subj}/{other}"] = best[subj] / best[other]
            ratios[f"rss {subj}/{other}"] = med[subj][1] / med[other][1]
            print(
                f"{subj}/{other}: wall x{ratios[f'wall {subj}/{other}']:.2f} "
                f"(fastest runs x{ratios[f'fastest wall {subj}/{other}']:.2f}), "
                f"peak RSS x{ratios[f'rss {subj}/{other}']:.2f}"
            )
    return {
        "base_bytes": base.stat().st_size,
        "cache": "warm",
        "methods": {
            m.name: {
                "argv": m.argv if m.name != "remaster" else ["python", "-c", "remaster(...)"],
                "wall_s": m.walls,
                "peak_rss_kib": m.rss_kib,
                "median_wall_s": med[m.name][0],
                "median_peak_rss_mib": med[m.name][1],
                "output_bytes": m.out_bytes,
            }
            for m in todo
        },
        "ratios": ratios,
    }


# Issues 15 and 23's goals: (figure, goal, how it compares); ratios are wall-time medians of
# this run. The GPT base has no goal of its own: it is shown beside the plain one.
GOALS = (
    ("remaster", "wall remaster/cp", 1.3, "x"),
    ("remaster", "wall remaster/xorriso", 1.0, "x"),
    ("remaster", "remaster peak RSS", 64.0, "MiB"),
    ("remaster-gpt", "wall remaster/cp", None, "x"),
    ("remaster-gpt", "wall remaster/xorriso", None, "x"),
    ("remaster-gpt", "remaster peak RSS", None, "MiB"),
    ("build", "wall build/cp", 3.0, "x"),
    ("build", "wall build-new/cp", 3.0, "x"),
    ("build", "build peak RSS", None, "MiB"),
)


def summary(data: dict[str, object]) -> None:
    """The figures issues 15 and 23 set goals for, from this one run, each beside its goal."""
    print("summary: medians of this run (cp and xorriso timed in it too), sync in every clock")
    for part, name, goal, unit in GOALS:
        section = data.get(part)
        if not isinstance(section, dict):
            continue
        if name.endswith("peak RSS"):
            method = section["methods"][name.split()[0]]
            value = method["median_peak_rss_mib"]
        else:
            value = section["ratios"].get(name)
            if value is None:
                continue
        shown = f"x{value:.2f}" if unit == "x" else f"{value:.1f} MiB"
        label = name.removeprefix("wall ") + (" (GPT)" if part.endswith("-gpt") else "")
        if goal is None:
            verdict = ""
        else:
            limit = f"x{goal:g}" if unit == "x" else f"{goal:g} MiB"
            met = value <= goal if unit == "x" else value < goal
            op = "<=" if unit == "x" else "<"
            verdict = f"  (goal {op} {limit}: {'met' if met else 'NOT met'})"
        print(f"  {label:<20} {shown:>10}{verdict}")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5, help="runs per method (default 5)")
    ap.add_argument("--size-mb", type=int, default=650, help="base image size (default 650)")
    ap.add_argument(
        "--build-size-mb",
        type=int,
        default=774,
        help="the build's base size (default 774; 0: skip)",
    )
    ap.add_argument("--workdir", type=Path, help="where the base is built and reused")
    ap.add_argument("--keep", action="store_true", help="keep the temporary workdir")
    ap.add_argument("--json", type=Path, help="also write the numbers to this file")
    ap.add_argument(
        "--gpt", action="store_true", help="also time remaster on the base with a GPT + ESP"
    )
    args = ap.parse_args(argv)
    if args.runs < 1 or args.size_mb < 50:
        ap.error("--runs must be >= 1 and --size-mb >= 50")

    if args.workdir is not None:
        workdir: Path = args.workdir.resolve()
        workdir.mkdir(parents=True, exist_ok=True)
        temporary = False
    else:
        workdir = Path(tempfile.mkdtemp(prefix="distro-builder-bench."))
        temporary = True
    try:
        base = build_base(workdir, args.size_mb)
        overlay = build_overlay(workdir)
        out = workdir / "out.iso"
        env = child_env(workdir)
        todo = methods(base, out, overlay)
        note("one untimed remaster (bytecode, page cache)")
        subprocess.run(todo[-1].argv, check=True, capture_output=True, env=env)
        out.unlink()
        todo = bench(base, todo, out, args.runs, env)
        if args.gpt:
            base_gpt = gpt_base(workdir, base)
            gpt_todo = bench(base_gpt, methods(base_gpt, out, overlay), out, args.runs, env)
        data: dict[str, object] = {
            "machine": {
                "cpus": os.cpu_count(),
                "mem_bytes": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"),
                "python": platform.python_version(),
            },
        }
        if args.build_size_mb:
            build_dir = workdir / "build"
            build_dir.mkdir(exist_ok=True)
            build_base_iso = build_base(build_dir, args.build_size_mb)
            sources, cache = demo_repo(build_dir)
            build_out = build_dir / "out" / "stackops.iso"
            build_out.parent.mkdir(exist_ok=True)
            build_todo = build_methods(build_base_iso, build_out, sources, cache)
            note("warming the package cache with one untimed build")
            subprocess.run(build_todo[1].argv, check=True, capture_output=True, env=env)
            for left in build_out.parent.iterdir():
                left.unlink()
            build_todo = bench(build_base_iso, build_todo, build_out, args.runs, env)
        print()
        data["remaster"] = report(todo, base, "remaster")
        if args.gpt:
            print()
            data["remaster-gpt"] = report(gpt_todo, base_gpt, "remaster")
        if args.build_size_mb:
            print()
            data["build"] = report(build_todo, build_base_iso, "build")
        print()
        summary(data)
        if args.json is not None:
            args.json.write_text(json.dumps(data, indent=2) + "\n")
            note(f"wrote {args.json}")
    finally:
        if temporary and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        elif temporary:
            note(f"kept {workdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
