"""Independent checkers: read an ISO with xorriso, isoinfo and raw bytes, never with pycdlib.

A test that checks our output with our own reader proves little; these use other tools.
"""

from __future__ import annotations

import re
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

SECTOR = 2048


def _out(argv: list[str]) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, check=True)
    return proc.stdout


def isoinfo_paths(iso: Path, mode: str) -> set[str]:
    """Every path isoinfo lists: mode 'rr' (-R), 'joliet' (-J) or 'iso' (plain ISO 9660)."""
    flag = {"rr": ["-R"], "joliet": ["-J"], "iso": []}[mode]
    return {line for line in _out(["isoinfo", *flag, "-f", "-i", str(iso)]).splitlines() if line}


def xorriso_find(iso: Path, kind: str) -> set[str]:
    """Rock Ridge paths of type kind ('f', 'd', 'l') according to xorriso."""
    text = _out(["xorriso", "-indev", str(iso), "-find", "/", "-type", kind])
    return {line.strip("'") for line in text.splitlines() if line.startswith("'")} - {"/"}


def xorriso_symlinks(iso: Path) -> dict[str, str]:
    """{path: target} of every symlink, from xorriso's `lsdl`."""
    text = _out(["xorriso", "-indev", str(iso), "-find", "/", "-type", "l", "-exec", "lsdl", "--"])
    links = {}
    for line in text.splitlines():
        if line.startswith("l") and " -> " in line:
            left, _, target = line.partition(" -> ")
            path = left[left.index("'") :].strip("'")
            links[path] = target.strip("'")
    return links


def xorriso_file_lba(iso: Path, path: str) -> int:
    """The first block of the file at `path`, as xorriso reads it (`-exec report_lba`)."""
    text = _out(["xorriso", "-indev", str(iso), "-find", path, "-exec", "report_lba"])
    m = re.search(r"File data lba:\s+\d+\s*,\s*(\d+)\s*,", text)
    assert m, text
    return int(m.group(1))


def xorriso_el_torito(iso: Path) -> list[dict[str, str]]:
    """The boot images xorriso reports (-report_el_torito plain)."""
    text = _out(["xorriso", "-indev", str(iso), "-report_el_torito", "plain"])
    images: dict[str, dict[str, str]] = {}
    for line in text.splitlines():
        if line.startswith("El Torito boot img :"):
            f = line.split(":", 1)[1].split()
            images[f[0]] = {
                "platform": f[1], "bootable": f[2], "emulation": f[3],
                "load_size": f[6], "lba": f[7],
            }  # fmt: skip
        elif line.startswith("El Torito img path :"):
            n, path = line.split(":", 1)[1].split(None, 1)
            images[n]["path"] = path.strip()
        elif line.startswith("El Torito img opts :"):
            n, opts = line.split(":", 1)[1].split(None, 1)
            images[n]["opts"] = opts.strip()
    return [images[k] for k in sorted(images)]


def extract(iso: Path, path: str, dest: Path) -> Path:
    """Copy one file out of the ISO with xorriso's osirrox."""
    subprocess.run(
        ["xorriso", "-osirrox", "on", "-indev", str(iso), "-extract", path, str(dest)],
        capture_output=True, check=True,
    )  # fmt: skip
    return dest


def extract_tree(iso: Path, dest: Path) -> Path:
    subprocess.run(
        ["xorriso", "-osirrox", "on", "-indev", str(iso), "-extract", "/", str(dest)],
        capture_output=True, check=True,
    )  # fmt: skip
    return dest


@dataclass(frozen=True)
class BootInfo:
    catalog_lba: int
    boot_lba: int
    load_sectors: int
    bi_pvd: int
    bi_file: int
    bi_length: int
    bi_csum: int
    computed_csum: int


def read_boot_info(iso: Path, boot_file_length: int) -> BootInfo:
    """Parse El Torito and the boot-info-table from raw bytes and recompute the checksum."""
    with open(iso, "rb") as f:
        f.seek(17 * SECTOR)
        brvd = f.read(SECTOR)
        assert brvd[0] == 0 and brvd[1:6] == b"CD001", "no boot record volume descriptor"
        assert brvd[7:39].rstrip(b"\0") == b"EL TORITO SPECIFICATION"
        catalog_lba = struct.unpack_from("<I", brvd, 71)[0]
        f.seek(catalog_lba * SECTOR)
        cat = f.read(SECTOR)
        assert cat[0] == 1 and cat[30:32] == b"\x55\xaa", "bad validation entry"
        words = struct.unpack_from("<16H", cat, 0)
        assert sum(words) & 0xFFFF == 0, "validation entry checksum"
        boot_indicator, media = cat[32], cat[33]
        assert boot_indicator == 0x88 and media == 0
        load_sectors = struct.unpack_from("<H", cat, 38)[0]
        boot_lba = struct.unpack_from("<I", cat, 40)[0]
        f.seek(boot_lba * SECTOR)
        image = f.read(boot_file_length)
    bi_pvd, bi_file, bi_length, bi_csum = struct.unpack_from("<4I", image, 8)
    body = image[64:] + b"\0" * (-len(image) % 4)
    csum = sum(struct.unpack(f"<{len(body) // 4}I", body)) & 0xFFFFFFFF
    return BootInfo(catalog_lba, boot_lba, load_sectors, bi_pvd, bi_file, bi_length, bi_csum, csum)
