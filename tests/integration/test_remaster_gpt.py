"""Remastering images with partitions appended after the ISO 9660 data (issue 23).

- tests/gpt_iso.py's image in Ubuntu 22.04's layout: GPT + protective MBR, GRUB's hybrid MBR and
  El Torito image, an EFI System Partition appended after the ISO data and the UEFI El Torito entry
  pointing into it, the volume size counting the appended part (as xorriso writes it);
- memtest86+'s ISO from Debian's memtest86+ package: no GPT, an MBR partition of type 0xef
  appended after the volume, the UEFI El Torito entry pointing into it;
- tests/gpt_iso.py's image in Debian 12's layout: isolinux's MBR, a GPT and an Apple partition
  map whose EFI partition is the file efi.img inside the volume, the backup GPT at the end of the
  volume, the image padded to whole cylinders.

Each is remastered with an overlay that makes the ISO data 3 MiB bigger, then read back with
sfdisk (the partition table, GPT checksums and backup header), xorriso's El Torito and system
area reports, and the bytes of the appended partitions: every partition is kept, with the same
type, name and size; the appended ones start where the new ISO data ends and hold the same bytes;
the UEFI El Torito entry points at the ESP's new start; the ISO 9660 partition ends where the
ESP begins. The boots (BIOS and UEFI, before and after) are in tests/qemu/test_gpt_esp_boot.py.
`build` goes through the same engine: the demo base given a GPT and an appended ESP by xorriso
(`-boot_image any replay -append_partition 2 0xef efi.img -boot_image any appended_part_as=gpt`)
is built into the distro with the partitions kept. About 7 s for the module.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from distro_builder.build import BuildOptions, build_iso
from distro_builder.errors import IsoError
from distro_builder.remaster import remaster
from tests import isocheck
from tests.gpt_iso import ESP_TYPE, PACKAGES, make_debian_iso, make_gpt_esp_iso, missing
from tests.helpers import IN_CI, require_tool_or_skip

pytestmark = pytest.mark.integration

MEMTEST_ISO = Path("/usr/lib/memtest86+/memtest86+x64.iso")


def _require_maker() -> None:
    require_tool_or_skip("xorriso", "sfdisk")
    lacking = missing()
    if lacking:
        msg = f"missing {', '.join(lacking)} (Debian packages {PACKAGES})"
        if IN_CI:
            pytest.fail(msg)
        pytest.skip(msg)


@pytest.fixture(scope="module")
def overlay(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("overlay")
    (root / "distro-builder").mkdir()
    (root / "distro-builder" / "big.bin").write_bytes(os.urandom(3 << 20))
    (root / "distro-builder" / "notes.txt").write_text("added by the engine\n")
    return root


@pytest.fixture(scope="module")
def gpt_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    _require_maker()
    return make_gpt_esp_iso(tmp_path_factory.mktemp("gpt"))


@pytest.fixture(scope="module")
def gpt_pair(gpt_base: Path, overlay: Path) -> tuple[Path, Path]:
    base = gpt_base
    out = base.parent / "remastered.iso"
    remaster(base, out, [overlay], source_date_epoch=1700000000)
    return base, out


@pytest.fixture(scope="module")
def memtest_pair(tmp_path_factory: pytest.TempPathFactory, overlay: Path) -> tuple[Path, Path]:
    require_tool_or_skip("xorriso", "sfdisk")
    if not MEMTEST_ISO.is_file():
        msg = f"{MEMTEST_ISO} is missing (Debian package memtest86+)"
        if IN_CI:
            pytest.fail(msg)
        pytest.skip(msg)
    out = tmp_path_factory.mktemp("memtest") / "remastered.iso"
    remaster(MEMTEST_ISO, out, [overlay], source_date_epoch=1700000000)
    return MEMTEST_ISO, out


def _sfdisk(iso: Path) -> dict:
    """sfdisk's JSON dump; it warns on stderr about a bad checksum or a misplaced backup GPT."""
    proc = subprocess.run(["sfdisk", "--json", str(iso)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == "", f"sfdisk on {iso.name}: {proc.stderr}"
    table: dict = json.loads(proc.stdout)["partitiontable"]
    return table


def _verify(iso: Path) -> str:
    """`sfdisk --verify`: overlaps, partitions past the end, the GPT's own checks."""
    proc = subprocess.run(["sfdisk", "--verify", str(iso)], capture_output=True, text=True)
    return proc.stdout + proc.stderr


def _report(iso: Path) -> list[str]:
    proc = subprocess.run(
        ["xorriso", "-indev", str(iso), "-report_el_torito", "plain",
         "-report_system_area", "plain"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return proc.stdout.splitlines()


def _uefi_entry(iso: Path) -> tuple[int, int]:
    """(LBA in 2048-byte blocks, load size in 512-byte sectors) of the UEFI El Torito entry."""
    for line in _report(iso):
        m = re.match(
            r"El Torito boot img :\s+\d+\s+UEFI\s+\S+\s+\S+\s+\S+\s+\S+\s+(\d+)\s+(\d+)", line
        )
        if m:
            return int(m.group(2)), int(m.group(1))
    raise AssertionError(f"no UEFI El Torito entry in {iso}")


def _volume_blocks(iso: Path) -> int:
    out = subprocess.run(["isoinfo", "-d", "-i", str(iso)], capture_output=True, text=True).stdout
    m = re.search(r"Volume size is: (\d+)", out)
    assert m, out
    return int(m.group(1))


def _bytes(iso: Path, sector: int, count: int) -> bytes:
    with open(iso, "rb") as f:
        f.seek(sector * 512)
        return f.read(count * 512)


def _data_end(iso: Path) -> int:
    """Where the ISO 9660 data ends (512-byte sectors): the end of the last file, by xorriso."""
    out = subprocess.run(
        ["xorriso", "-indev", str(iso), "-find", "/", "-type", "f", "-exec", "report_lba"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    ends = [
        (int(m.group(1)) + int(m.group(2))) * 4
        for m in re.finditer(r"File data lba:\s+\d+\s*,\s*(\d+)\s*,\s*(\d+)\s*,", out)
    ]
    assert ends, out
    return max(ends)


def test_gpt_esp_partitions_kept_and_moved(gpt_pair: tuple[Path, Path]) -> None:
    base, new = gpt_pair
    old, got = _sfdisk(base), _sfdisk(new)
    assert got["label"] == old["label"] == "gpt"
    assert got["id"] == old["id"]
    assert [(p["type"], p.get("name"), p["uuid"], p["size"]) for p in got["partitions"][1:]] == [
        (p["type"], p.get("name"), p["uuid"], p["size"]) for p in old["partitions"][1:]
    ]
    iso_part, esp, gap = got["partitions"]
    old_iso, old_esp, _ = old["partitions"]
    assert esp["type"].lower() == "c12a7328-f81f-11d2-ba4b-00a0c93ec93b"
    assert ESP_TYPE  # (the same GUID, as xorriso spells it)
    # The ISO data grew by the overlay: the ESP starts where it ends now, the gap after it.
    grown = esp["start"] - old_esp["start"]
    assert grown >= (3 << 20) // 512
    assert grown % 4 == 0  # whole 2048-byte blocks: the El Torito entry can follow
    assert esp["start"] >= _data_end(new)
    assert iso_part["start"] == old_iso["start"] == 64
    assert iso_part["start"] + iso_part["size"] == esp["start"]
    assert gap["start"] == esp["start"] + esp["size"]
    # The ESP's bytes are the base's, at the new place; the UEFI El Torito entry points there.
    assert _bytes(new, esp["start"], esp["size"]) == _bytes(base, old_esp["start"], old_esp["size"])
    lba, sectors = _uefi_entry(new)
    assert (lba * 4, sectors) == (esp["start"], esp["size"])
    # The backup GPT at the new end; checksums right (sfdisk said nothing on stderr).
    size = new.stat().st_size // 512
    assert got["lastlba"] - old["lastlba"] == grown
    assert size == base.stat().st_size // 512 + grown
    assert "No errors detected" in _verify(new), _verify(new)
    # The volume size counts the appended part, as the base's did.
    assert _volume_blocks(base) * 4 == base.stat().st_size // 512
    assert _volume_blocks(new) * 4 == size


def test_gpt_esp_protective_mbr_and_system_area(gpt_pair: tuple[Path, Path]) -> None:
    base, new = gpt_pair
    old, got = _report(base), _report(new)

    def pick(lines: list[str], key: str) -> list[str]:
        return [line.split(":", 1)[1].split() for line in lines if line.startswith(key)]

    # ("Partition offset: 16": xorriso finds the partition's own superblock at its block 16)
    for key in ("System area summary", "Partition offset", "GPT partname local",
                "GPT type GUID", "GPT partition flags", "GPT disk GUID"):  # fmt: skip
        assert pick(got, key) == pick(old, key), key
    size = new.stat().st_size // 512
    mbr = pick(got, "MBR partition      ")
    assert mbr[0][:5] == ["1", "0x00", "0xee", "1", str(size - 1)]  # protective: the whole disk
    assert mbr[1] == pick(old, "MBR partition      ")[1]  # --mbr-force-bootable's 0..1
    # GRUB's MBR boot code finds its El Torito image at the new address (+4: GRUB 2).
    bios_lba = int(next(f for f in pick(got, "El Torito boot img") if f[1] == "BIOS")[-1])
    assert int.from_bytes(_bytes(new, 0, 1)[432:440], "little") == bios_lba * 4 + 4


def test_memtest_appended_partition_kept(memtest_pair: tuple[Path, Path]) -> None:
    base, new = memtest_pair
    old, got = _sfdisk(base), _sfdisk(new)
    assert got["label"] == old["label"] == "dos"
    (iso_part, esp), (old_iso, old_esp) = got["partitions"], old["partitions"]
    assert esp["type"] == old_esp["type"] == "ef"
    assert esp["size"] == old_esp["size"]
    volume = _volume_blocks(new) * 4
    assert esp["start"] == volume  # right after the new volume, as xorriso put it
    assert volume - _volume_blocks(base) * 4 >= (3 << 20) // 512
    assert (iso_part["start"], iso_part["size"], iso_part.get("bootable")) == (
        0, volume, old_iso.get("bootable"),
    )  # fmt: skip
    assert _bytes(new, esp["start"], esp["size"]) == _bytes(base, old_esp["start"], old_esp["size"])
    # xorriso's 300 KiB of padding after the partition came along with it
    grown = esp["start"] - old_esp["start"]
    assert new.stat().st_size == base.stat().st_size + grown * 512
    lba, sectors = _uefi_entry(new)
    assert (lba * 4, sectors) == (esp["start"], esp["size"])
    assert "No errors detected" in _verify(new), _verify(new)


def test_boot_image_past_the_volume_without_a_partition_refused(tmp_path: Path) -> None:
    """memtest86+'s ISO with its partition table wiped: the UEFI image after the volume belongs
    to no partition the engine could carry, so it is refused, with nothing written."""
    if not MEMTEST_ISO.is_file():
        pytest.skip(f"{MEMTEST_ISO} is missing (Debian package memtest86+)")
    base = tmp_path / "memtest-no-table.iso"
    data = bytearray(MEMTEST_ISO.read_bytes())
    data[446:510] = bytes(64)
    base.write_bytes(bytes(data))
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(IsoError, match="outside any appended partition") as e:
        remaster(base, out / "memtest.iso")
    assert e.value.hint and "replay" in e.value.hint
    assert list(out.iterdir()) == []


def test_build_keeps_the_appended_esp(
    tmp_path: Path, demo_base: Path, data_dir: Path, gpt_base: Path
) -> None:
    require_tool_or_skip("debconf-set-selections")
    esp = gpt_base.parent / "efi.img"  # the ESP that tests/gpt_iso.py made
    base = tmp_path / "demo-gpt.iso"
    subprocess.run(
        ["xorriso", "-indev", str(demo_base), "-outdev", str(base),
         "-boot_image", "any", "replay", "-append_partition", "2", "0xef", str(esp),
         "-boot_image", "any", "appended_part_as=gpt", "-changes_pending", "yes", "-commit"],
        capture_output=True, check=True,
    )  # fmt: skip
    out = tmp_path / "stackops.iso"
    opts = BuildOptions(base=base, output=out, packages=False, source_date_epoch=1300000000)
    build_iso(data_dir, opts)
    old, got = _sfdisk_any(base), _sfdisk_any(out)
    assert [(p["type"], p.get("name"), p["uuid"]) for p in got["partitions"]] == [
        (p["type"], p.get("name"), p["uuid"]) for p in old["partitions"]
    ]
    (iso_part, new_esp), (_, old_esp) = got["partitions"], old["partitions"]
    grown = new_esp["start"] - old_esp["start"]
    assert grown > 0 and grown % 4 == 0  # the build added files
    assert new_esp["size"] == old_esp["size"] == esp.stat().st_size // 512
    assert iso_part["start"] + iso_part["size"] == new_esp["start"]
    assert _bytes(out, new_esp["start"], new_esp["size"]) == esp.read_bytes()
    assert got["lastlba"] - old["lastlba"] == grown
    # xorriso padded its image after the backup GPT, and sfdisk says so; the same of both
    assert re.sub(r"\d+", "N", _verify(out)) == re.sub(r"\d+", "N", _verify(base)).replace(
        base.name, out.name
    )


def _sfdisk_any(iso: Path) -> dict:
    proc = subprocess.run(["sfdisk", "--json", str(iso)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    table: dict = json.loads(proc.stdout)["partitiontable"]
    return table


def test_gpt_esp_remaster_is_reproducible(gpt_pair: tuple[Path, Path], overlay: Path) -> None:
    """The tail and the moved tables are bytes from the base and arithmetic: under the same
    SOURCE_DATE_EPOCH a second remaster is byte-identical (GUIDs kept, CRCs recomputed)."""
    base, first = gpt_pair
    again = first.parent / "again.iso"
    remaster(base, again, [overlay], source_date_epoch=1700000000)
    assert again.read_bytes() == first.read_bytes()


def test_gpt_esp_hybrid_refused(gpt_base: Path, tmp_path: Path) -> None:
    """--hybrid would replace the base's MBR and GPT with isolinux's and drop the ESP."""
    with pytest.raises(IsoError, match="hybrid disk image already") as e:
        remaster(gpt_base, tmp_path / "out.iso", hybrid=True)
    assert e.value.hint and "leave --hybrid out" in e.value.hint
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def debian_pair(tmp_path_factory: pytest.TempPathFactory, overlay: Path) -> tuple[Path, Path]:
    _require_maker()
    base = make_debian_iso(tmp_path_factory.mktemp("debian"))
    out = base.parent / "remastered.iso"
    remaster(base, out, [overlay], source_date_epoch=1700000000)
    return base, out


def test_debian_layout_kept(debian_pair: tuple[Path, Path]) -> None:
    base, new = debian_pair
    old_report, new_report = _report(base), _report(new)

    def pick(lines: list[str], key: str) -> list[list[str]]:
        return [line.split(":", 1)[1].split() for line in lines if line.startswith(key)]

    # MBR isohybrid cyl-align-on GPT APM: all three kept, still whole cylinders (1 MiB)
    assert pick(new_report, "System area summary") == pick(old_report, "System area summary")
    assert "GPT" in pick(new_report, "System area summary")[0]
    assert "APM" in pick(new_report, "System area summary")[0]
    size = new.stat().st_size // 512
    assert size % 2048 == 0 and size > base.stat().st_size // 512
    efi = isocheck.xorriso_file_lba(new, "/boot/grub/efi.img")
    assert efi != isocheck.xorriso_file_lba(base, "/boot/grub/efi.img")  # the overlay moved it
    esp_size = Path(base.parent / "efi.img").stat().st_size // 512
    # MBR: the whole image, and efi.img at its new place
    old_mbr, got_mbr = _sfdisk(base)["partitions"], _sfdisk(new)["partitions"]
    assert (got_mbr[0]["start"], got_mbr[0]["size"], got_mbr[0].get("bootable")) == (0, size, True)
    assert (got_mbr[1]["start"], got_mbr[1]["size"], got_mbr[1]["type"]) == (
        efi * 4,
        esp_size,
        "ef",
    )
    assert old_mbr[1]["size"] == esp_size
    # GPT (xorriso reads it only when its checksums hold): the ISO data and efi.img, the backup
    # header at the last block
    gpt = pick(new_report, "GPT start and size")
    old_gpt = pick(old_report, "GPT start and size")
    assert gpt[1] == ["2", str(efi * 4), str(esp_size)]
    assert gpt[0][:2] == ["1", "0"]
    assert int(gpt[0][2]) - int(old_gpt[0][2]) == size - base.stat().st_size // 512
    assert pick(new_report, "GPT lba range")[0][2] == str(size - 1)
    for key in ("GPT partname local", "GPT type GUID", "GPT disk GUID", "APM partition name"):
        assert pick(new_report, key) == pick(old_report, key), key
    # APM (2048-byte blocks): efi.img
    assert pick(new_report, "APM start and size") == [["1", str(efi), str(esp_size // 4)]]
    # The UEFI El Torito entry and the bytes of efi.img
    lba, sectors = _uefi_entry(new)
    assert (lba, sectors) == (efi, esp_size)
    assert _bytes(new, efi * 4, esp_size) == (base.parent / "efi.img").read_bytes()
    # isolinux's MBR code finds isolinux.bin at its new place (byte 432, no offset)
    bios_lba = isocheck.xorriso_file_lba(new, "/isolinux/isolinux.bin")
    assert int.from_bytes(_bytes(new, 0, 1)[432:440], "little") == bios_lba * 4
    assert re.sub(r"\d+", "N", _verify(new)) == re.sub(r"\d+", "N", _verify(base)).replace(
        base.name, new.name
    )


@pytest.mark.parametrize(
    ("where", "reason"),
    [
        (512 + 16, "a GPT header whose checksum is wrong"),  # the header's CRC-32
        (1024 + 32, "a GPT partition array whose checksum is wrong"),  # partition 1's first block
    ],
)
def test_damaged_gpt_refused(gpt_base: Path, tmp_path: Path, where: int, reason: str) -> None:
    """A GPT whose checksums do not hold is not moved (the moved one would be trusted)."""
    base = tmp_path / "damaged.iso"
    data = bytearray(gpt_base.read_bytes())
    data[where] ^= 0xFF
    base.write_bytes(bytes(data))
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(IsoError, match=reason):
        remaster(base, out / "x.iso")
    assert list(out.iterdir()) == []


def test_hostile_tables(gpt_base: Path, debian_pair: tuple[Path, Path], tmp_path: Path) -> None:
    """Seeded damage to the system area (MBR, GPT, APM) and the tail of the three layouts: each
    case is remastered or refused with an IsoError, never a traceback (400 cases of this kind
    ran clean while the engine was written; 30 here, ~3 s)."""
    import random

    bases = [gpt_base, debian_pair[0]] + ([MEMTEST_ISO] if MEMTEST_ISO.is_file() else [])
    rng = random.Random(23)
    src, out = tmp_path / "in.iso", tmp_path / "out.iso"
    for _ in range(30):
        data = bytearray(rng.choice(bases).read_bytes())
        for _ in range(rng.randint(1, 4)):
            if rng.random() < 0.75:
                off = rng.randrange(0, 32768)
            else:
                off = rng.randrange(len(data) - 64 * 1024, len(data) - 4)
            numbers = [0, 1, 0xFFFFFFFF, len(data) // 512, len(data) // 512 - 1]
            value = rng.choice([*numbers, rng.randrange(1 << 32)])
            data[off : off + 4] = value.to_bytes(4, "little")
        src.write_bytes(bytes(data))
        out.unlink(missing_ok=True)
        try:
            remaster(src, out, source_date_epoch=1700000000)
        except IsoError:
            assert not out.exists()


def _listing(iso: Path) -> dict[str, str]:
    out = subprocess.run(
        ["xorriso", "-indev", str(iso), "-find", "/", "-exec", "lsdl"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return {line.rsplit("'", 2)[-2]: line.split()[4] for line in out.splitlines() if "'" in line}


def test_gpt_esp_iso_partition_mounts(gpt_pair: tuple[Path, Path], tmp_path: Path) -> None:
    """-partition_offset 16 gave the base a second superblock and tree at the ISO partition's
    block 16, every address counted from the partition: the remastered partition has its own
    too, so the partition alone reads as the same ISO 9660 volume (Rock Ridge and Joliet)."""
    base, new = gpt_pair
    iso_part = _sfdisk(new)["partitions"][0]
    part = tmp_path / "partition1.img"
    part.write_bytes(_bytes(new, iso_part["start"], iso_part["size"]))
    whole, alone = _listing(new), _listing(part)
    assert "/distro-builder/big.bin" in alone
    assert alone == whole
    for name, iso in (("whole", new), ("alone", part)):
        subprocess.run(
            ["xorriso", "-osirrox", "on", "-indev", str(iso),
             "-extract", "/", str(tmp_path / name)],
            capture_output=True, check=True,
        )  # fmt: skip
    for path in (p for p, size in whole.items() if not p.endswith("/")):
        a, b = tmp_path / "whole" / path.lstrip("/"), tmp_path / "alone" / path.lstrip("/")
        if a.is_file():
            assert a.read_bytes() == b.read_bytes(), path
    joliet = subprocess.run(
        ["isoinfo", "-J", "-f", "-i", str(part)], capture_output=True, text=True, check=True
    ).stdout
    assert "/distro-builder/notes.txt" in joliet.splitlines()
    toc = subprocess.run(["xorriso", "-indev", str(part), "-toc"], capture_output=True, text=True)
    assert toc.returncode == 0 and not re.search("WARNING|SORRY|FAILURE", toc.stderr), toc.stderr
    # Remastered once more, from the remastered image: the partition still reads alone.
    again = tmp_path / "again.iso"
    extra = tmp_path / "extra"
    (extra / "more").mkdir(parents=True)
    (extra / "more" / "b.txt").write_text("again\n")
    remaster(new, again, [extra], source_date_epoch=1700000000)
    again_part = _sfdisk(again)["partitions"][0]
    part2 = tmp_path / "again-partition1.img"
    part2.write_bytes(_bytes(again, again_part["start"], again_part["size"]))
    assert _listing(part2) == _listing(again)
    assert "/more/b.txt" in _listing(part2)
    # The base's own partition reads the same way (the fixture is what Ubuntu's is).
    base_part = tmp_path / "base-partition1.img"
    old_part = _sfdisk(base)["partitions"][0]
    base_part.write_bytes(_bytes(base, old_part["start"], old_part["size"]))
    assert _listing(base_part) == _listing(base)
