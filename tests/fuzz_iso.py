"""The base-ISO mutation fuzzer (issue 20): seeded corruptions of the demo base, through the CLI.

Each case takes the demo base, applies one seeded mutation of tests/isomutate.py (bit flips and
byte sets in the structures a reader parses, field-level corruptions of directory records,
System Use entries, Rock Ridge modes, names and symlinks, the volume descriptor and the El
Torito catalog), and runs `inspect`, `remaster` (with a small overlay) and, when asked,
`build --no-packages` on it, each in a fresh process with a timeout. The contract, per command:

- exit 0, and an output (remaster, build) that xorriso and isoinfo read: `xorriso -indev OUT
  -find /` without a SORRY or worse, `isoinfo -R -f` and `isoinfo -d` exit 0; or
- exit 1 with exactly one `error:` line and a `hint:` line;
- never a traceback, a crash, another exit code, or the timeout.

`python -m tests.fuzz_iso --cases N --seed S [--build]` runs cases by hand and prints each
finding with the seed that makes it again; tests/integration/test_fuzz_iso.py runs a fixed
sample in `make test` and a few hundred cases in `make e2e`.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests import isomutate

TIMEOUT = {"inspect": 60, "remaster": 120, "build": 300}
READ_TIMEOUT = 60


@dataclass
class Outcome:
    """What one case did: the mutation, and per command its exit and what broke the contract."""

    seed: int
    mutation: str
    exits: dict[str, int | str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)  # command -> its `error:` line
    findings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def __str__(self) -> str:
        head = f"seed {self.seed} ({self.mutation}): " + ", ".join(
            f"{c} {e}" for c, e in self.exits.items()
        )
        return head + "".join(f"\n    {f}" for f in self.findings)


class Fuzzer:
    """Runs cases on copies of one base, in `work` (one case at a time)."""

    def __init__(self, base: Path, work: Path, *, build: bool = False) -> None:
        self.base = Path(base)
        self.work = Path(work)
        self.build = build
        self.original = bytearray(self.base.read_bytes())
        self.layout = isomutate.IsoLayout(self.original)
        self.overlay = self.work / "overlay"
        (self.overlay / "preseed").mkdir(parents=True, exist_ok=True)
        (self.overlay / "preseed" / "fuzz.seed").write_text("# fuzz\n")
        (self.overlay / "README.diskdefines").write_text("#define FUZZ 1\n")
        self.case_iso = self.work / "case.iso"
        with open(self.case_iso, "wb") as f:
            f.write(self.original)

    def run(self, seed: int, *, build: bool | None = None) -> Outcome:
        data = bytearray(self.original)
        mutation = isomutate.mutate(data, self.layout, seed)
        self._write_case(data)
        outcome = Outcome(seed, mutation)
        start = time.monotonic()
        try:
            self._command(outcome, "inspect", ["inspect", str(self.case_iso)], None)
            out = self.work / "out.iso"
            self._command(
                outcome,
                "remaster",
                ["remaster", str(self.case_iso), "-o", str(out), "--add", str(self.overlay)],
                out,
            )
            if self.build if build is None else build:
                out = self.work / "built.iso"
                self._command(
                    outcome,
                    "build",
                    ["build", "--base", str(self.case_iso), "-o", str(out), "--no-packages"],
                    out,
                )
        finally:
            self._write_case(self.original)  # the next case starts from the base again
            for name in ("out.iso", "built.iso", "SHA256SUMS", "built.iso.build.json"):
                (self.work / name).unlink(missing_ok=True)
        outcome.seconds = time.monotonic() - start
        return outcome

    def _write_case(self, data: bytearray) -> None:
        """Only the bytes that can differ are written: the mutations touch the structures at
        the front (descriptors, path tables, directories, CE areas, the catalog)."""
        end = max(at + n for at, n in self.layout.metadata) + isomutate.SECTOR
        with open(self.case_iso, "r+b") as f:
            f.write(data[:end])

    def _command(self, outcome: Outcome, name: str, args: list[str], out: Path | None) -> None:
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "distro_builder", *args],
                capture_output=True, text=True, timeout=TIMEOUT[name], cwd=self.work,
                env={**os.environ, "SOURCE_DATE_EPOCH": "1300000000"},
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            outcome.exits[name] = "timeout"
            outcome.findings.append(f"{name}: no end within {TIMEOUT[name]} s")
            return
        outcome.exits[name] = proc.returncode
        err = proc.stderr
        if "Traceback" in err:
            tail = err.strip().splitlines()[-1] if err.strip() else ""
            outcome.findings.append(f"{name}: traceback: {tail}")
            return
        if proc.returncode == 0:
            if out is not None:
                outcome.findings += [f"{name}: {p}" for p in read_problems(out)]
            return
        lines = err.splitlines()
        errors = [ln for ln in lines if ln.startswith("error: ")]
        if errors:
            outcome.errors[name] = errors[0]
        hints = [ln for ln in lines if ln.startswith("hint: ")]
        if proc.returncode != 1 or len(errors) != 1 or not hints:
            outcome.findings.append(
                f"{name}: exit {proc.returncode} with {len(errors)} error and {len(hints)} "
                f"hint lines: {err.strip()[-300:]}"
            )
        if out is not None and out.exists():
            outcome.findings.append(f"{name}: failed, but left {out.name}")


def read_problems(iso: Path) -> list[str]:
    """Why xorriso or isoinfo does not read `iso` (empty: both read it)."""
    if not iso.exists():
        return ["exit 0 without an output"]
    problems = []
    for argv in (
        ["xorriso", "-abort_on", "FAILURE", "-return_with", "SORRY", "32", "-indev", str(iso),
         "-find", "/"],
        ["isoinfo", "-R", "-f", "-i", str(iso)],
        ["isoinfo", "-d", "-i", str(iso)],
    ):  # fmt: skip
        try:
            proc = subprocess.run(argv, capture_output=True, timeout=READ_TIMEOUT)
        except subprocess.TimeoutExpired:
            problems.append(f"exit 0, but {argv[0]} did not end within {READ_TIMEOUT} s")
            continue
        if proc.returncode != 0:
            tail = proc.stderr.decode(errors="replace").strip().splitlines()[-2:]
            problems.append(f"exit 0, but {' '.join(argv[:2])} exits {proc.returncode}: {tail}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, help="the demo base (built when not given)")
    parser.add_argument("--cases", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0, help="the first seed")
    parser.add_argument("--build", action="store_true", help="also run build --no-packages")
    parser.add_argument("--work", type=Path, default=Path("build/fuzz"))
    parser.add_argument("-v", "--verbose", action="store_true", help="show the error lines")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    base = args.base
    if base is None:
        from distro_builder.demo import build_demo_base

        base = build_demo_base(Path(__file__).resolve().parents[1], args.work / "base.iso")
    fuzzer = Fuzzer(base, args.work, build=args.build)
    bad = 0
    start = time.monotonic()
    for seed in range(args.seed, args.seed + args.cases):
        outcome = fuzzer.run(seed)
        bad += bool(outcome.findings)
        print(outcome, flush=True)
        for command, line in outcome.errors.items() if args.verbose else ():
            print(f"    {command}: {line}")
    took = time.monotonic() - start
    print(f"{args.cases} cases, {bad} with findings, {took:.0f} s")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
