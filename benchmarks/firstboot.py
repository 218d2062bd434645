"""Benchmark of stage 5 (firstboot) on the stand-in node (`make bench`, bench-firstboot).

For every node of the reference architectures (all-in-one, cloud-controller, controller, network,
volume, compute), installs the agent and role metapackages built from this working tree (the same
bytes `build` puts on the disc) and the answers written by d-i/late.sh on a fresh overlay of the
stand-in image (qa/standin.py), boots it under TCG and prints the wall time from power-on to
`STACKOPS-FIRSTBOOT done`, and each step's own time. Also reports how long getting the image took
(cold: debootstrap + mkfs; warm: from the cache). It asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from distro_builder.qa import firstboot, standin  # noqa: E402

NODES = firstboot.node_entries(REPO)  # roles/architectures.yaml


def note(msg: str) -> None:
    print(f"bench-firstboot: {msg}", file=sys.stderr, flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", default=",".join(NODES), help="comma-separated node names")
    ap.add_argument("--workdir", type=Path, help="keep the logs here")
    ap.add_argument("--json", type=Path, help="write the numbers here")
    args = ap.parse_args()
    why = standin.cannot_build() or firstboot.cannot_write_answers()
    if why:
        note(f"skipped: {why}")
        return 0
    t0 = time.monotonic()
    image = standin.node_image()
    got = time.monotonic() - t0
    note(
        f"image {image.key}: {'cached' if image.cached else 'built'} in {got:.1f} s"
        f" (built in {image.build_seconds:.0f} s)"
    )
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-firstboot-"))
    rows = []
    for name in args.nodes.split(","):
        roles = NODES[name]
        inputs = firstboot.inputs_from_tree(REPO, roles)
        t = time.monotonic()
        result = firstboot.run_firstboot(
            inputs, log_dir=work / "logs", name=name, again=False, accel="tcg"
        )
        first = result.boots[0]
        rows.append(
            {
                "node": name,
                "roles": roles,
                "ok": not result.problems,
                "power_on_to_done_s": first.seconds_to_end,
                "first_step_s": None,
                "steps": [(s.name, s.seconds) for s in first.steps],
                "wall_s": time.monotonic() - t,
                "problems": result.problems,
            }
        )
        done = f"{first.seconds_to_end:.0f} s" if first.seconds_to_end else "no end line"
        note(f"{name}: power-on to done {done}; {first.end or 'no end'}; {result.problems[:2]}")
    print(f"{'node':<18} {'roles':<36} {'power-on->done':>15} {'steps':>6}  ok")
    for r in rows:
        t = r["power_on_to_done_s"]
        print(
            f"{r['node']:<18} {r['roles']:<36} {(f'{t:.0f} s' if t else '-'):>15}"
            f" {len(r['steps']):>6}  {'yes' if r['ok'] else 'NO'}"
        )
    if args.json:
        args.json.write_text(json.dumps({"image_s": got, "runs": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
