"""Remastering an isolinux hybrid whose partition 1 starts at block 16 (issue 23).

tests/gpt_iso.py's make_isolinux_offset_iso: xorriso -as mkisofs -isohybrid-mbr isohdpfx.bin
-partition_offset 16, isolinux's El Torito image, GRUB's efi.img as the UEFI El Torito entry;
"esp": efi.img appended too as MBR partition 2 (type 0xef, `-append_partition 2 0xef`), the ISO
partition ending at a whole cylinder where it begins; "plain": no appended partition, the image
padded to whole cylinders. Partition 1 starts at 512-byte sector 64 and holds a second superblock
at its block 16 (image block 32) and a second tree whose addresses count from the partition.

Each is remastered with an overlay that makes the ISO data 3 MiB bigger, then read back by
sfdisk, xorriso (-report_system_area, -find, -toc, -extract), isoinfo and the bytes of the file,
never by distro-builder's code: the MBR's code, id, geometry and entries are the base's with
partition 1 still at sector 64 and ending where the new ISO data (padded to a cylinder) ends,
the ESP moved after it with the same bytes; byte 432 points at isolinux.bin's new place; the
partition read alone is the same ISO 9660 volume (Rock Ridge and Joliet) as the whole image.
Before the fix pycdlib rebuilt this MBR itself: geometry 64 x 31 (read from the size), partition
2 dropped, no superblock at the offset ("Partition offset: 0"). The boots are in
tests/qemu/test_gpt_esp_boot.py. `--hybrid` over it is refused; seeded damage to its tables ends
in a remaster or an IsoError; `build` keeps it on the demo base. About 9 s for the module (15
tests), half of it the damage cases and the build.

What the output does not keep of xorriso's bytes: the base's blocks 20-31 were zeros, the
engine's layout has set terminators in 20-30 (blocks reserved so the second set keeps block 32);
the Joliet descriptor's volume size counted up to the ESP on the base (the primary's counted the
whole file), both count the whole file now; the partition's folders and path tables are copies
after the ISO data, not before the files. Sectors 1-63 are the base's (test_system_area_kept).
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from distro_builder.build import BuildOptions, build_iso
from distro_builder.errors import IsoError
from distro_builder.remaster import remaster
from tests.gpt_iso import ISOLINUX, PACKAGES, make_isolinux_offset_iso, missing
from tests.helpers import IN_CI, require_tool_or_skip
from tests.integration.test_remaster_gpt import _bytes, _data_end, _listing, _sfdisk

pytestmark = pytest.mark.integration

CYLINDER = 64 * 32  # 512-byte sectors: the geometry xorriso gives isolinux's MBR


@pytest.fixture(scope="module")
def overlay(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("overlay")
    (root / "distro-builder").mkdir()
    (root / "distro-builder" / "big.bin").write_bytes(os.urandom(3 << 20))
    (root / "distro-builder" / "notes.txt").write_text("added by the engine\n")
    return root


@pytest.fixture(scope="module", params=["esp", "plain"])
def pair(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, overlay: Path
) -> tuple[Path, Path]:
    require_tool_or_skip("xorriso", "sfdisk", "isoinfo")
    lacking = missing()
    if lacking:
        msg = f"missing {', '.join(lacking)} (Debian packages {PACKAGES})"
        if IN_CI:
            pytest.fail(msg)
        pytest.skip(msg)
    base = make_isolinux_offset_iso(
        tmp_path_factory.mktemp(request.param), esp=request.param == "esp"
    )
    out = base.parent / "remastered.iso"
    remaster(base, out, [overlay], source_date_epoch=1700000000)
    return base, out


def _report(iso: Path) -> dict[str, list[list[str]]]:
    out = subprocess.run(
        ["xorriso", "-indev", str(iso), "-report_el_torito", "plain",
         "-report_system_area", "plain"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    rows: dict[str, list[list[str]]] = {}
    for line in out.splitlines():
        if ":" in line:
            key, value = line.split(":", 1)
            rows.setdefault(key.strip(), []).append(value.split())
    return rows


def _isoinfo(iso: Path, *args: str) -> str:
    return subprocess.run(
        ["isoinfo", *args, "-i", str(iso)], capture_output=True, text=True, check=True
    ).stdout


def _partition_alone(iso: Path, tmp_path: Path, name: str) -> Path:
    first = _sfdisk(iso)["partitions"][0]
    part = tmp_path / name
    part.write_bytes(_bytes(iso, first["start"], first["size"]))
    return part


def test_partition_table_moved(pair: tuple[Path, Path]) -> None:
    base, new = pair
    old, got = _sfdisk(base), _sfdisk(new)
    assert got["label"] == old["label"] == "dos"
    assert got["id"] == old["id"]
    assert len(got["partitions"]) == len(old["partitions"])
    first, old_first = got["partitions"][0], old["partitions"][0]
    assert first["start"] == old_first["start"] == 64
    assert (first["type"], first.get("bootable")) == (old_first["type"], old_first.get("bootable"))
    assert first["type"] == "17"
    end = first["start"] + first["size"]
    assert end >= _data_end(new)
    assert end - (old_first["start"] + old_first["size"]) >= (3 << 20) // 512  # the overlay
    assert end % CYLINDER == 0  # xorriso's cyl-align-on, kept
    size = new.stat().st_size // 512
    if len(old["partitions"]) == 1:  # "plain": the partition ends with the padded image
        assert end == size and size % CYLINDER == 0
        assert old_first["start"] + old_first["size"] == base.stat().st_size // 512
        return
    esp, old_esp = got["partitions"][1], old["partitions"][1]
    assert esp["type"] == old_esp["type"] == "ef"
    assert esp["size"] == old_esp["size"]
    assert esp["start"] == end  # right after the ISO partition, as in the base
    assert old_esp["start"] == old_first["start"] + old_first["size"]
    assert _bytes(new, esp["start"], esp["size"]) == _bytes(base, old_esp["start"], old_esp["size"])
    # What followed the ESP (xorriso's 300 KiB of padding) follows it still.
    assert size - (esp["start"] + esp["size"]) == base.stat().st_size // 512 - (
        old_esp["start"] + old_esp["size"]
    )


def test_system_area_report(pair: tuple[Path, Path]) -> None:
    base, new = pair
    old, got = _report(base), _report(new)
    for key in ("System area summary", "Partition offset", "MBR heads per cyl",
                "MBR secs per head"):  # fmt: skip
        assert got[key] == old[key], key
    assert got["Partition offset"] == [["16"]]
    assert got["System area summary"] == [["MBR", "isohybrid", "cyl-align-on"]]
    assert (got["MBR heads per cyl"], got["MBR secs per head"]) == ([["64"]], [["32"]])
    # status and type of each MBR entry as they were
    assert [r[:3] for r in got["MBR partition"]] == [r[:3] for r in old["MBR partition"]]
    # The volume counts the whole file, as xorriso's did.
    assert int(got["ISO image size/512"][0][0]) == new.stat().st_size // 512
    assert int(old["ISO image size/512"][0][0]) == base.stat().st_size // 512
    # isolinux's MBR loads isolinux.bin by the 512-byte address at byte 432.
    bios = next(r for r in got["El Torito boot img"] if r[1] == "BIOS")
    assert int.from_bytes(_bytes(new, 0, 1)[432:440], "little") == int(bios[-1]) * 4
    old_mbr, new_mbr = _bytes(base, 0, 1), _bytes(new, 0, 1)
    assert new_mbr[:432] == old_mbr[:432]  # isohdpfx.bin's code
    assert new_mbr[440:446] == old_mbr[440:446]  # the disk id
    assert new_mbr[510:] == b"\x55\xaa"
    assert not any(_bytes(new, 1, 63))  # as the base's: nothing else in the system area
    assert not any(_bytes(base, 1, 63))


def test_offset_superblock_and_tree(pair: tuple[Path, Path], tmp_path: Path) -> None:
    """The second superblock at the partition's block 16, and the partition read alone by
    xorriso and isoinfo is the whole image's volume: same names, same bytes, Joliet too."""
    base, new = pair
    first = _sfdisk(new)["partitions"][0]
    assert _bytes(new, first["start"] + 64, 1)[:6] == b"\x01CD001"
    part = _partition_alone(new, tmp_path, "partition1.img")
    whole, alone = _listing(new), _listing(part)
    assert "/distro-builder/big.bin" in alone
    assert alone == whole
    info = _isoinfo(part, "-d")
    assert re.search(r"Volume id: DB-ISO23 OFFSET", info), info
    m = re.search(r"Volume size is: (\d+)", info)
    assert m and int(m.group(1)) * 4 == first["size"], info
    assert "/distro-builder/notes.txt" in _isoinfo(part, "-J", "-f").splitlines()
    for name, iso in (("whole", new), ("alone", part)):
        subprocess.run(
            ["xorriso", "-osirrox", "on", "-indev", str(iso),
             "-extract", "/", str(tmp_path / name)],
            capture_output=True, check=True,
        )  # fmt: skip
    for path in whole:
        a, b = tmp_path / "whole" / path.lstrip("/"), tmp_path / "alone" / path.lstrip("/")
        if a.is_file():
            assert a.read_bytes() == b.read_bytes(), path
    toc = subprocess.run(["xorriso", "-indev", str(part), "-toc"], capture_output=True, text=True)
    assert toc.returncode == 0 and not re.search("WARNING|SORRY|FAILURE", toc.stderr), toc.stderr
    # The base's own partition reads the same way (the fixture is the layout it says).
    assert _listing(_partition_alone(base, tmp_path, "base1.img")) == _listing(base)


def test_remastered_twice_and_reproducible(pair: tuple[Path, Path], tmp_path: Path) -> None:
    base, new = pair
    extra = tmp_path / "extra"
    (extra / "more").mkdir(parents=True)
    (extra / "more" / "b.txt").write_text("again\n")
    again = tmp_path / "again.iso"
    remaster(new, again, [extra], source_date_epoch=1700000000)
    assert [(p["start"], p["type"]) for p in _sfdisk(again)["partitions"]][0] == (64, "17")
    assert len(_sfdisk(again)["partitions"]) == len(_sfdisk(base)["partitions"])
    assert _report(again)["Partition offset"] == [["16"]]
    alone = _listing(_partition_alone(again, tmp_path, "again1.img"))
    assert "/more/b.txt" in alone and alone == _listing(again)
    # Same inputs, same bytes.
    overlay = tmp_path / "overlay"
    (overlay / "distro-builder").mkdir(parents=True)
    (overlay / "distro-builder" / "x.txt").write_text("x\n")
    one, two = tmp_path / "one.iso", tmp_path / "two.iso"
    remaster(base, one, [overlay], source_date_epoch=1700000000)
    remaster(base, two, [overlay], source_date_epoch=1700000000)
    assert one.read_bytes() == two.read_bytes()


def test_hybrid_refused(pair: tuple[Path, Path], tmp_path: Path) -> None:
    """--hybrid would put pycdlib's isolinux MBR over the base's (it raised pycdlib's "EFI lba on
    a non-EFI ISO" as a bug in distro-builder): refused as over any hybrid disk image."""
    base, _ = pair
    out = tmp_path / "out.iso"
    with pytest.raises(IsoError, match="hybrid disk image already") as e:
        remaster(base, out, hybrid=True)
    assert "leave --hybrid out" in (e.value.hint or "")
    assert not out.exists()


def test_hostile_tables(pair: tuple[Path, Path], tmp_path: Path) -> None:
    """Seeded damage to the MBR's entries and boot address, the partition's second descriptor
    set (image blocks 32-34) and the rest of the system area: each case is remastered or refused
    with an IsoError, never a traceback (40 cases, ~4 s each layout)."""
    import random

    base, _ = pair
    rng = random.Random(2316)
    src, out = tmp_path / "in.iso", tmp_path / "out.iso"
    clean = base.read_bytes()
    size = len(clean) // 512
    for _ in range(40):
        data = bytearray(clean)
        for _ in range(rng.randint(1, 3)):
            where = rng.random()
            if where < 0.5:
                off = rng.choice([432, *range(446, 510, 4)])
            elif where < 0.8:
                off = rng.randrange(32 * 2048, 35 * 2048 - 4)
            else:
                off = rng.randrange(0, 32768 - 4)
            numbers = [0, 1, 64, 0xFFFFFFFF, size, size - 1, size - 64]
            value = rng.choice([*numbers, rng.randrange(1 << 32)])
            data[off : off + 4] = value.to_bytes(4, "little")
        src.write_bytes(bytes(data))
        out.unlink(missing_ok=True)
        try:
            remaster(src, out, source_date_epoch=1700000000)
        except IsoError:
            assert not out.exists()


def test_system_area_kept(pair: tuple[Path, Path], tmp_path: Path) -> None:
    """What a writer put in sectors 1-63 of the base (xorriso -G: any 32 KiB) is the output's
    too: only the MBR's fields move (before, sectors 1-63 came out zero without a GPT)."""
    base, _ = pair
    data = bytearray(base.read_bytes())
    data[5 * 512 : 5 * 512 + 16] = b"system area data"
    src, out = tmp_path / "in.iso", tmp_path / "out.iso"
    src.write_bytes(bytes(data))
    remaster(src, out, source_date_epoch=1700000000)
    assert _bytes(out, 1, 63) == _bytes(src, 1, 63)


def test_build_keeps_the_offset_partition(tmp_path: Path, demo_base: Path, data_dir: Path) -> None:
    """`build` writes through the same engine: the demo base's tree made again by xorriso with
    lucid's mkisofs options plus isolinux's MBR and -partition_offset 16 is built into the
    distro with partition 1 at sector 64, its own superblock, whole cylinders, and isolinux's
    boot-info table at its new place. (Not `xorriso -indev -outdev ... -boot_image any replay`:
    that writes the volume at block 32 with a superblock copy at 16, another layout.)"""
    require_tool_or_skip("xorriso", "sfdisk", "debconf-set-selections")
    tree, base = tmp_path / "tree", tmp_path / "demo-offset.iso"
    subprocess.run(
        ["xorriso", "-osirrox", "on", "-indev", str(demo_base), "-extract", "/", str(tree)],
        capture_output=True, check=True,
    )  # fmt: skip
    subprocess.run(
        ["xorriso", "-as", "mkisofs", "-r", "-J", "-l", "-V", "Ubuntu-Server 10.04.4 LTS amd64",
         "-o", str(base), "-isohybrid-mbr", str(ISOLINUX / "isohdpfx.bin"),
         "-partition_offset", "16", "-b", "isolinux/isolinux.bin", "-c", "isolinux/boot.cat",
         "-no-emul-boot", "-boot-load-size", "4", "-boot-info-table", str(tree)],
        capture_output=True, check=True,
    )  # fmt: skip
    assert _report(base)["Partition offset"] == [["16"]]
    out = tmp_path / "stackops.iso"
    opts = BuildOptions(base=base, output=out, packages=False, source_date_epoch=1300000000)
    build_iso(data_dir, opts)
    (first,) = _sfdisk(out)["partitions"]
    assert (first["start"], first["type"]) == (64, "17")
    assert first["start"] + first["size"] == out.stat().st_size // 512
    assert out.stat().st_size % (CYLINDER * 512) == 0
    report = _report(out)
    assert report["Partition offset"] == [["16"]]
    assert report["System area summary"] == [["MBR", "isohybrid", "cyl-align-on"]]
    assert report["El Torito img opts"] == [["1", "boot-info-table", "isohybrid-suitable"]]
    part = _partition_alone(out, tmp_path, "partition1.img")
    assert _listing(part) == _listing(out)


def test_cylinders_kept_with_bytes_after_the_image(pair: tuple[Path, Path], tmp_path: Path) -> None:
    """300 KiB after the image (as xorriso's -outdev leaves, or a copy with something appended):
    the file is no longer whole cylinders, partition 1 still ends at one, and so it does after."""
    base, _ = pair
    src, out = tmp_path / "in.iso", tmp_path / "out.iso"
    src.write_bytes(base.read_bytes() + bytes(300 << 10))
    remaster(src, out, source_date_epoch=1700000000)
    first = _sfdisk(out)["partitions"][0]
    assert first["start"] == 64
    assert (first["start"] + first["size"]) % CYLINDER == 0
    assert _report(out)["System area summary"] == [["MBR", "isohybrid", "cyl-align-on"]]
