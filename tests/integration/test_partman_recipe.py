"""The entries that may be volume nodes partition for nova-volumes (issue 22 finding 8).

Their preseed passes the real debconf-set-selections --checkonly and holds the stackops-volumes
recipe in partman-auto's recipe grammar (d-i's doc/devel/partman-auto-recipe.txt §1, checked
by the parser below); the sizes partman-auto would give (the algorithm of that file's §5) leave
nova-volumes real room on one disk. No lucid partman runs here (the netboot initrd has no
partman udebs and Debian's archive serves none): what partman-auto-lvm does with the recipe is
INFERRED (docs/nova-2011.2-facts.md §15). 1 s.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from distro_builder.build import load_inputs
from distro_builder.seed.check import check_preseed
from distro_builder.seed.preseed import boot_entries, render_preseed
from tests.helpers import require_tool_or_skip

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
# <partition> ::= <min> <priority> <max> <parted fs> <specifiers> .   (recipe doc §1)
_PART_RE = re.compile(r"(\d+%?) (\d+%?) (\d+%?|-1) (\S+) ((?:\S+\{[^{}]*\} )*)\.")
_SPEC_RE = re.compile(r"(\$?[a-z_]+)\{ ?([^{}]*?) ?\}")


def _seeds() -> dict[str, str]:
    inputs = load_inputs(ROOT, None)
    out = {}
    for entry in boot_entries(inputs.roleset, None):
        seed = render_preseed(
            ROOT, entry, roleset=inputs.roleset, deployment=None, codename="lucid",
            flavor_version="10.04", arch="amd64", allow_unauthenticated=False,
        )  # fmt: skip
        out[entry.name] = seed.text
    return out


def _value(text: str, key: str) -> str:
    m = re.search(rf"^d-i {re.escape(key)} \S+ (.*)$", text, re.M)
    assert m, key
    return m.group(1)


def parse_recipe(recipe: str) -> tuple[str, list[dict[str, object]]]:
    """(name, partitions) of one recipe; AssertionError where the grammar is broken."""
    text = re.sub(r"\s+", " ", recipe).strip() + " "
    head, sep, body = text.partition(" :: ")
    assert sep, "a debconf-less recipe name ends with ' :: '"
    parts = []
    pos = 0
    body = body.strip() + " "
    while pos < len(body.strip()):
        m = _PART_RE.match(body, pos)
        assert m, f"not a partition at: {body[pos : pos + 60]!r}"
        specs = dict(_SPEC_RE.findall(m.group(5)))
        assert " {" not in m.group(5), "no space before '{'"
        parts.append({"min": m.group(1), "prio": m.group(2), "max": m.group(3),
                      "fs": m.group(4), **specs})  # fmt: skip
        pos = m.end() + 1
    return head, parts


def partition_sizes(parts: list[dict[str, object]], free: int, ram: int) -> list[int]:
    """partman-auto's sizes (recipe doc §5); a % is of the RAM; partitions with
    $defaultignore{ } are kept (the LVM case)."""

    def mb(v: object) -> int:
        s = str(v)
        return ram * int(s[:-1]) // 100 if s.endswith("%") else int(s)

    mins = [mb(p["min"]) for p in parts]
    maxs = [mb(p["max"]) for p in parts]
    factor = [mb(p["prio"]) - mins[i] for i, p in enumerate(parts)]
    ready = False
    while not ready:
        minsum, factsum = sum(mins), sum(factor)
        ready = True
        for i in range(len(parts)):
            x = mins[i] + (free - minsum) * factor[i] // factsum
            x = min(x, maxs[i])
            if x != mins[i]:
                ready = False
                mins[i] = x
    return mins


def test_volume_entries_partition_for_nova_volumes() -> None:
    require_tool_or_skip("debconf-set-selections")
    seeds = _seeds()
    for name, text in seeds.items():
        check_preseed(text, name)  # the real debconf-set-selections --checkonly
    # every entry whose roles may include volume (first-boot: any role), and only those
    volume = {"all-in-one", "cloud-controller", "volume", "first-boot"}
    for name, text in seeds.items():
        recipe = _value(text, "partman-auto/choose_recipe")
        assert recipe == ("stackops-volumes" if name in volume else "atomic"), name
    text = seeds["all-in-one"]
    assert _value(text, "partman-auto-lvm/new_vg_name") == "nova-volumes"
    assert _value(text, "partman-auto/method") == "lvm"
    head, parts = parse_recipe(_value(text, "partman-auto/expert_recipe"))
    assert head == "stackops-volumes"
    by_lv = {p.get("lv_name"): p for p in parts}
    assert set(by_lv) == {None, "root", "swap", "nova-reserve"}
    boot = by_lv[None]
    assert boot["mountpoint"] == "/boot" and "$defaultignore" in boot and "$primary" in boot
    assert by_lv["root"]["mountpoint"] == "/" and "$lvmok" in by_lv["root"]
    reserve = by_lv["nova-reserve"]
    assert reserve["method"] == "keep" and "mountpoint" not in reserve and "format" not in reserve


@pytest.mark.parametrize(("disk_gb", "ram_gb"), [(20, 2), (100, 8), (2000, 32)])
def test_one_disk_leaves_room_for_volumes(disk_gb: int, ram_gb: int) -> None:
    _, parts = parse_recipe(_value(_seeds()["all-in-one"], "partman-auto/expert_recipe"))
    sizes = dict(
        zip([p.get("lv_name") or "boot" for p in parts],
            partition_sizes(parts, disk_gb * 1024, ram_gb * 1024), strict=True)
    )  # fmt: skip
    assert 4000 <= sizes["root"] <= 30000
    assert sizes["nova-reserve"] >= disk_gb * 1024 * 0.4, sizes
    assert sum(sizes.values()) <= disk_gb * 1024
