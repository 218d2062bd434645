"""Benchmark of `distro-builder smoke` on the demo-based test disc (`make bench`, bench-smoke).

Builds the demo base and the QA test disc of tests/qemu/test_smoke.py (StackOps entries, serial
isolinux, a preseed in the initrd), then runs the smoke stages 1-3 for every entry, `--runs`
times, under TCG and, where the KVM probe says a guest really runs, under KVM. Prints the wall
time from QEMU start to the end of each stage (median, min, max). It asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests.qemu.test_smoke builds the test disc

from distro_builder.demo import build_demo_base  # noqa: E402
from distro_builder.qa.qemu import KVM_DEVICE, probe_kvm  # noqa: E402
from distro_builder.qa.smoke import smoke_test  # noqa: E402
from tests.qemu.test_smoke import build_smoke_disc  # noqa: E402

STAGES = ("menu", "boot", "preseed")


def note(msg: str) -> None:
    print(f"bench-smoke: {msg}", file=sys.stderr, flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=2, help="runs per entry and accelerator")
    ap.add_argument("--workdir", type=Path, help="keep the discs and logs here")
    ap.add_argument("--json", type=Path, help="write every run's numbers here")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-smoke-") as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        t = time.monotonic()
        base = build_demo_base(REPO, work / "demo-base.iso")
        disc = build_smoke_disc(base, work / "smoke.iso")
        note(f"discs built in {time.monotonic() - t:.1f} s")
        accels = ["tcg"]
        if probe_kvm(iso=disc):
            accels.append("kvm")
        else:
            why = "no /dev/kvm" if not KVM_DEVICE.exists() else "the KVM probe guest fails"
            note(f"KVM: not measured ({why})")
        results: dict[str, dict[str, dict[str, list[float]]]] = {}
        for accel in accels:
            for run in range(args.runs):
                report = smoke_test(
                    disc,
                    all_entries=True,
                    accel=accel,
                    log_dir=work / f"logs-{accel}-{run}",
                )
                for e in report.entries:
                    per = results.setdefault(accel, {}).setdefault(e.label, {})
                    for s in e.stages:
                        if s.status != "pass" or s.started_at is None:
                            note(f"{accel} {e.label} {s.name}: {s.status} {s.summary}")
                            continue
                        per.setdefault(s.name, []).append(s.started_at + s.seconds)
        print(f"smoke stages on the demo-based test disc, {args.runs} run(s) each")
        print(f"machine: {os.cpu_count()} cores, Python {platform.python_version()}")
        print("seconds from QEMU start to the end of the stage: median (min-max)")
        print(f"{'accel':<6} {'entry':<12} " + " ".join(f"{s:>20}" for s in STAGES))
        for accel, entries in results.items():
            for label, stages in entries.items():
                cells = []
                for s in STAGES:
                    xs = stages.get(s, [])
                    cells.append(
                        f"{statistics.median(xs):7.1f} ({min(xs):.1f}-{max(xs):.1f})" if xs else "-"
                    )
                print(f"{accel:<6} {label:<12} " + " ".join(f"{c:>20}" for c in cells))
        if "kvm" not in results:
            print("kvm    not measured: the probe guest does not run under KVM here")
        if args.json:
            args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
