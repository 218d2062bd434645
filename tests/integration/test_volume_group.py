"""A one-disk node is a volume node (issue 22 finding 8): the volume-group step under dash.

The installer's stackops-volumes recipe (preseed/stackops.seed.j2) leaves the volume group
nova-volumes on the first disk with a placeholder volume, nova-reserve, holding the room for
volumes; the step removes it, adds volume_device when one is answered, and makes the group on
volume_device alone where the installer made none (an older layout).

RECORDER: LVM itself cannot run here (no lvm2 on the test machine, device-mapper is the host's
kernel's and loop partitions get no device nodes without udev), so vgs, lvs, pvs, lvremove,
pvcreate, vgcreate and vgextend are a recorder with a tiny LVM state (files), answering in
LVM2's `--noheadings` output format. The step itself is the disc's roles/volume/steps.sh with
the agent's own common.sh, under dash. 0.2 s.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.helpers import require_tool_or_skip

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]

# LVM state: $LVM/vg/<vg> lists its PVs; $LVM/lv/<vg>/<lv> exists per volume.
RECORDER = r"""#!/bin/sh
name=${0##*/}
echo "$name $*" >>"$LVM/actions"
case $name in
vgs)
    for a in "$@"; do
        case $a in -*|vg_name) ;; *) [ -f "$LVM/vg/$a" ] || exit 5; echo "  $a"; exit 0 ;; esac
    done
    for v in "$LVM"/vg/*; do [ -f "$v" ] && echo "  ${v##*/}"; done; exit 0 ;;
lvs)
    vg=$(for a in "$@"; do case $a in -*|lv_name|vg_name,lv_name) ;; *) echo "$a" ;; esac; done)
    [ -d "$LVM/lv/$vg" ] || exit 5
    for l in "$LVM/lv/$vg"/*; do [ -e "$l" ] && echo "  ${l##*/}"; done; exit 0 ;;
pvs)
    dev=$(for a in "$@"; do case $a in /dev/*) echo "$a" ;; esac; done)
    for v in "$LVM"/vg/*; do
        grep -qx "$dev" "$v" 2>/dev/null && { echo "  ${v##*/}"; exit 0; }
    done
    grep -qx "$dev" "$LVM/pvs" 2>/dev/null && { echo "  "; exit 0; }
    echo "  Failed to find physical volume \"$dev\"." >&2; exit 5 ;;
lvremove)
    lv=$(for a in "$@"; do case $a in -*) ;; *) echo "$a" ;; esac; done)
    [ -e "$LVM/lv/$lv" ] || exit 5; rm -f "$LVM/lv/$lv" ;;
pvcreate)
    for a in "$@"; do case $a in /dev/*) echo "$a" >>"$LVM/pvs" ;; esac; done ;;
vgcreate)
    [ -f "$LVM/vg/$1" ] && exit 5; echo "$2" >"$LVM/vg/$1"; mkdir -p "$LVM/lv/$1" ;;
vgextend)
    [ -f "$LVM/vg/$1" ] || exit 5; echo "$2" >>"$LVM/vg/$1" ;;
esac
exit 0
"""
TOOLS = ("vgs", "lvs", "pvs", "lvremove", "pvcreate", "vgcreate", "vgextend")


def _node(tmp: Path, vgs: dict[str, list[str]], lvs: dict[str, list[str]]) -> Path:
    lvm = tmp / "lvm"
    (lvm / "vg").mkdir(parents=True)
    for vg, pvs in vgs.items():
        (lvm / "vg" / vg).write_text("".join(p + "\n" for p in pvs))
        (lvm / "lv" / vg).mkdir(parents=True)
        for lv in lvs.get(vg, []):
            (lvm / "lv" / vg / lv).touch()
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    for t in TOOLS:
        (bin_dir / t).write_text(RECORDER)
        (bin_dir / t).chmod(0o755)
    return lvm


def _step(tmp: Path, volume_device: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    lvm = tmp / "lvm"
    script = (
        f"SO_LIB={ROOT}/agent; . {ROOT}/agent/lib/common.sh; . {ROOT}/roles/volume/steps.sh; "
        "so_step_volume_group"
    )
    env = {
        "PATH": f"{tmp / 'bin'}:/usr/bin:/bin",
        "LVM": str(lvm),
        "volume_device": volume_device,
    }
    proc = subprocess.run(
        ["dash", "-c", "volume_device=$volume_device; " + script],
        env=env, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    actions = (lvm / "actions").read_text().splitlines() if (lvm / "actions").exists() else []
    (lvm / "actions").unlink(missing_ok=True)
    return proc, [a for a in actions if not a.startswith(("vgs", "lvs", "pvs"))]


INSTALLED = {"nova-volumes": ["/dev/sda5"]}
INSTALLED_LVS = {"nova-volumes": ["root", "swap", "nova-reserve"]}


def test_one_disk_the_installers_group_gets_the_room(tmp_path: Path) -> None:
    require_tool_or_skip("dash")
    lvm = _node(tmp_path, INSTALLED, INSTALLED_LVS)
    proc, acts = _step(tmp_path, "")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert acts == ["lvremove -f nova-volumes/nova-reserve"]
    assert sorted(p.name for p in (lvm / "lv" / "nova-volumes").iterdir()) == ["root", "swap"]
    again, acts = _step(tmp_path, "")  # a second run (after a power cut) changes nothing
    assert again.returncode == 0 and acts == [], again.stdout + again.stderr


def test_a_second_disk_joins_the_group(tmp_path: Path) -> None:
    require_tool_or_skip("dash")
    lvm = _node(tmp_path, INSTALLED, INSTALLED_LVS)
    proc, acts = _step(tmp_path, "/dev/sdb")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert acts == [
        "lvremove -f nova-volumes/nova-reserve",
        "pvcreate -ff -y /dev/sdb",
        "vgextend nova-volumes /dev/sdb",
    ]
    assert (lvm / "vg" / "nova-volumes").read_text().split() == ["/dev/sda5", "/dev/sdb"]
    again, acts = _step(tmp_path, "/dev/sdb")
    assert again.returncode == 0 and acts == [], again.stdout + again.stderr


def test_no_group_from_the_installer_one_is_made_on_the_device(tmp_path: Path) -> None:
    """A node partitioned with the plain recipe (its group named after the host)."""
    require_tool_or_skip("dash")
    _node(tmp_path, {"node1-vg": ["/dev/sda5"]}, {"node1-vg": ["root", "swap_1"]})
    proc, acts = _step(tmp_path, "/dev/sdb")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert acts == ["pvcreate -ff -y /dev/sdb", "vgcreate nova-volumes /dev/sdb"]


def test_no_group_and_no_device_fails_clearly(tmp_path: Path) -> None:
    require_tool_or_skip("dash")
    _node(tmp_path, {"node1-vg": ["/dev/sda5"]}, {"node1-vg": ["root", "swap_1"]})
    proc, acts = _step(tmp_path, "")
    assert proc.returncode != 0
    assert acts == []
    assert "no volume group nova-volumes" in proc.stderr
    assert "node1-vg" in proc.stderr  # what the installer did make
    assert "volume_device" in proc.stderr
