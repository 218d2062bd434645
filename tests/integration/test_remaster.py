"""remaster read back with independent tools: names, links, modes, boot, md5sum.txt."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from distro_builder.errors import OutputError
from distro_builder.remaster import remaster
from tests import isocheck
from tests.helpers import require_tool_or_skip

pytestmark = pytest.mark.integration

LONG = "linux-image-2.6.32-21-generic-pae-with-a-very-long-suffix_2.6.32-21.{}_amd64.deb"
DEBS = [
    "nova-compute_2011.2-0ubuntu1_all.deb",
    "nova-compute_2011.2-0ubuntu1~ppa1_all.deb",
    "nova-compute-kvm_2011.2-0ubuntu1_all.deb",
    "nova-compute-xen_2011.2-0ubuntu1_all.deb",
    "nova-common_2011.2-0ubuntu1_all.deb",
    "nova-common_2011.2-0ubuntu2_all.deb",
    *(LONG.format(n) for n in range(30, 36)),
]


@pytest.fixture(scope="module")
def overlay(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("overlay")
    extras = root / "pool" / "extras"
    extras.mkdir(parents=True)
    for i, name in enumerate(DEBS):
        (extras / name).write_bytes(f"{name} {i}\n".encode() * (i + 1))
    (root / "preseed").mkdir()
    (root / "preseed" / "nova.seed").write_text("d-i\tpkgsel/include\tstring stackops-compute\n")
    os.symlink("nova.seed", root / "preseed" / "compute.seed")
    (root / "isolinux").mkdir()
    (root / "isolinux" / "text.cfg").write_text(
        "default nova\nlabel nova\n  menu label ^Install StackOps compute node\n"
        "  kernel /install/vmlinuz\n  append initrd=/install/initrd.gz quiet --\n"
    )
    (root / "stackops").mkdir()
    script = root / "stackops" / "late.sh"
    script.write_text("#!/bin/sh\necho late\n")
    script.chmod(0o755)
    return root


@pytest.fixture(scope="module")
def remastered(demo_base: Path, overlay: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("out") / "stackops.iso"
    remaster(demo_base, out, [overlay], source_date_epoch=1302825600)
    return out


def _overlay_paths(overlay: Path) -> set[str]:
    return {"/" + p.relative_to(overlay).as_posix() for p in overlay.rglob("*")}


def test_file_list_is_base_plus_overlay(demo_base: Path, overlay: Path, remastered: Path) -> None:
    require_tool_or_skip("isoinfo", "xorriso")
    base_rr = isocheck.isoinfo_paths(demo_base, "rr")
    out_rr = isocheck.isoinfo_paths(remastered, "rr")
    assert out_rr == base_rr | _overlay_paths(overlay) | {"/.disk/distro-builder.json"}
    # xorriso agrees, type by type
    out_files = isocheck.xorriso_find(remastered, "f")
    assert {"/pool/extras/" + d for d in DEBS} <= out_files
    assert "/isolinux/text.cfg" in out_files and "/stackops/late.sh" in out_files


def test_no_name_vanished_in_iso9660_or_joliet(demo_base: Path, remastered: Path) -> None:
    require_tool_or_skip("isoinfo")
    rr = isocheck.isoinfo_paths(remastered, "rr")
    iso = isocheck.isoinfo_paths(remastered, "iso")
    joliet = isocheck.isoinfo_paths(remastered, "joliet")
    assert len(iso) == len(rr), "an ISO 9660 name was lost or duplicated"
    # Joliet has no symlinks: the one we added has no Joliet name (genisoimage gave the base's
    # symlinks empty Joliet files); every other name is there, the long ones cut to 64.
    assert len(joliet) == len(rr) - 1
    short = {p for p in rr if len(p.rsplit("/", 1)[1]) <= 64} - {"/preseed/compute.seed"}
    assert short <= joliet
    extras = sorted(p.rsplit("/", 1)[1] for p in iso if p.startswith("/POOL/EXTRAS/"))
    assert len(extras) == len(set(extras)) == len(DEBS)
    assert all(len(n.split(";")[0]) <= 31 and n.endswith(".DEB;1") for n in extras)
    jextras = [p.rsplit("/", 1)[1] for p in joliet if p.startswith("/pool/extras/")]
    assert len(set(jextras)) == len(DEBS)
    assert all(len(n) <= 64 and n.endswith(".deb") for n in jextras)
    assert sum(len(n) == 64 for n in jextras) >= 1  # the long ones were cut, not dropped


def test_contents_symlinks_and_modes(
    demo_base: Path, overlay: Path, remastered: Path, tmp_path: Path
) -> None:
    require_tool_or_skip("xorriso")
    tree = isocheck.extract_tree(remastered, tmp_path / "t")
    for name in DEBS:
        assert (tree / "pool/extras" / name).read_bytes() == (
            overlay / "pool/extras" / name
        ).read_bytes()
    assert (tree / "isolinux/text.cfg").read_text() == (overlay / "isolinux/text.cfg").read_text()
    links = isocheck.xorriso_symlinks(remastered)
    assert links == isocheck.xorriso_symlinks(demo_base) | {  # the base's (netboot/...) kept
        "/ubuntu": ".",
        "/dists/stable": "lucid",
        "/dists/unstable": "lucid",
        "/preseed/compute.seed": "nova.seed",
    }
    listing = subprocess.run(
        ["xorriso", "-indev", remastered, "-lsdl", "/stackops/late.sh", "/preseed/nova.seed",
         "/isolinux/text.cfg", "/install/vmlinuz", "/pool"],
        capture_output=True, text=True, check=True,
    ).stdout.splitlines()  # fmt: skip
    modes = {line.split("'")[1]: line.split()[0] for line in listing if "'" in line}
    assert modes["/stackops/late.sh"] == "-r-xr-xr-x"
    assert modes["/preseed/nova.seed"] == "-r--r--r--"
    assert modes["/isolinux/text.cfg"] == "-r--r--r--"
    assert modes["/install/vmlinuz"] == "-r--r--r--"
    assert modes["/pool"] == "dr-xr-xr-x"


def test_el_torito_and_boot_info_table_survive(remastered: Path) -> None:
    require_tool_or_skip("xorriso")
    (img,) = isocheck.xorriso_el_torito(remastered)
    assert img["platform"] == "BIOS" and img["emulation"] == "none" and img["load_size"] == "4"
    assert img["path"] == "/isolinux/isolinux.bin" and "boot-info-table" in img["opts"]
    size = Path("/usr/lib/ISOLINUX/isolinux.bin").stat().st_size
    bi = isocheck.read_boot_info(remastered, size)
    assert (bi.bi_pvd, bi.bi_file, bi.bi_length) == (16, int(img["lba"]), size)
    assert bi.bi_csum == bi.computed_csum


def test_replayed_base_boot_info_table_moves(
    demo_replay_base: Path, overlay: Path, tmp_path: Path
) -> None:
    """A base written by `xorriso -indev -outdev -boot_image any replay` counts isolinux's
    boot-info table from its session's descriptor at block 48 (a copy at 16). The output's
    volume starts at 0: the table says 16 and isolinux.bin's new block, or isolinux loads the
    rest of itself from the old one ("Image checksum error", measured before the fix)."""
    require_tool_or_skip("xorriso")
    size = Path("/usr/lib/ISOLINUX/isolinux.bin").stat().st_size
    old = isocheck.read_boot_info(demo_replay_base, size)
    assert (old.bi_pvd, old.bi_file, old.bi_length) == (48, old.boot_lba, size)
    assert old.bi_csum == old.computed_csum
    out = tmp_path / "out.iso"
    remaster(demo_replay_base, out, [overlay], source_date_epoch=1302825600)
    extent = isocheck.xorriso_file_lba(out, "/isolinux/isolinux.bin")
    assert extent != old.bi_file  # it moved
    bi = isocheck.read_boot_info(out, size)
    assert (bi.bi_pvd, bi.bi_file, bi.bi_length, bi.boot_lba) == (16, extent, size, extent)
    assert bi.bi_csum == bi.computed_csum == old.bi_csum
    with open(out, "rb") as f:
        f.seek(bi.bi_pvd * isocheck.SECTOR)
        assert f.read(7) == b"\x01CD001\x01"  # isolinux reads its PVD there
    (img,) = isocheck.xorriso_el_torito(out)  # xorriso names a table only when it holds
    assert "boot-info-table" in img["opts"]


def test_md5sum_txt_regenerated(remastered: Path, tmp_path: Path) -> None:
    require_tool_or_skip("xorriso")
    tree = isocheck.extract_tree(remastered, tmp_path / "t")
    listed = {}
    for line in (tree / "md5sum.txt").read_text().splitlines():
        md5, path = line.split("  ", 1)
        listed[path[2:]] = md5
    on_disc = {
        p.relative_to(tree).as_posix()
        for p in tree.rglob("*")
        if p.is_file() and not p.is_symlink() and ".." not in p.parts
    }
    expected = {
        p for p in on_disc
        if p != "md5sum.txt" and not p.startswith(("isolinux/", "dists/stable/", "dists/unstable/"))
    }  # fmt: skip
    assert set(listed) == expected
    for rel, md5 in listed.items():
        assert hashlib.md5((tree / rel).read_bytes()).hexdigest() == md5, rel
    assert "pool/extras/nova-compute_2011.2-0ubuntu1_all.deb" in listed


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "distro_builder", *args],
        capture_output=True, text=True, env={**os.environ, **(env or {})},
    )  # fmt: skip


@pytest.mark.parametrize("hybrid", [False, True])
def test_reproducible_whatever_the_time_zone(
    demo_base: Path, overlay: Path, tmp_path: Path, hybrid: bool
) -> None:
    digests = []
    for i, tz in enumerate(["America/New_York", "Asia/Kolkata", "UTC"]):
        out = tmp_path / f"r{i}.iso"
        args = ["remaster", str(demo_base), "-o", str(out), "--add", str(overlay)]
        proc = _cli(*args, *(["--hybrid"] if hybrid else []),
                    env={"TZ": tz, "SOURCE_DATE_EPOCH": "1302825600"})  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        digests.append(hashlib.sha256(out.read_bytes()).hexdigest())
    assert len(set(digests)) == 1
    # and without SOURCE_DATE_EPOCH the time really is part of the image (the pin does something)
    out = tmp_path / "now.iso"
    proc = _cli("remaster", str(demo_base), "-o", str(out), "--add", str(overlay),
                *(["--hybrid"] if hybrid else []), env={"TZ": "UTC"})  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert hashlib.sha256(out.read_bytes()).hexdigest() != digests[0]


def test_interrupted_write_leaves_nothing(demo_base: Path, overlay: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.iso"
    out.write_bytes(b"previous good build")

    def interrupt(done: int, total: int) -> None:
        if done > total // 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        remaster(demo_base, out, [overlay], progress=interrupt)
    assert out.read_bytes() == b"previous good build"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.iso"]


def test_refuses_to_write_onto_the_base(demo_base: Path, tmp_path: Path) -> None:
    link = tmp_path / "same.iso"
    os.link(demo_base, link) if demo_base.stat().st_dev == tmp_path.stat().st_dev else None
    target = link if link.exists() else demo_base
    before = hashlib.sha256(demo_base.read_bytes()).hexdigest()
    with pytest.raises(OutputError, match="overwrite the base"):
        remaster(demo_base, target)
    assert hashlib.sha256(demo_base.read_bytes()).hexdigest() == before


def test_hybrid_mbr_points_at_isolinux(demo_base: Path, tmp_path: Path) -> None:
    require_tool_or_skip("xorriso")
    out = tmp_path / "hybrid.iso"
    remaster(demo_base, out, hybrid=True)
    data = out.read_bytes()[:512]
    assert data[510:512] == b"\x55\xaa"
    (img,) = isocheck.xorriso_el_torito(out)
    boot_lba_512 = int.from_bytes(data[432:436], "little")
    assert boot_lba_512 == int(img["lba"]) * 4, "MBR must load isolinux.bin (pycdlib LBA-0 bug)"
    part = data[446:462]
    assert part[0] == 0x80 and part[4] == 0x17  # active, type 0x17 as isohybrid makes it
    assert out.stat().st_size % (1024 * 1024) == 0  # padded to a cylinder boundary
    report = subprocess.run(
        ["xorriso", "-indev", out, "-report_system_area", "plain"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "MBR" in report and "isohybrid" in report


def test_remove_drops_a_base_file_and_says_so(demo_base: Path, tmp_path: Path) -> None:
    require_tool_or_skip("isoinfo")
    out = tmp_path / "rm.iso"
    result = remaster(demo_base, out, remove=["/preseed/cli.seed", "dists/lucid/Release"])
    assert {(c.path, c.action) for c in result.changes} == {
        ("/preseed/cli.seed", "removed"),
        ("/dists/lucid/Release", "removed"),
    }
    paths = isocheck.isoinfo_paths(out, "rr")
    assert paths == isocheck.isoinfo_paths(demo_base, "rr") - {
        "/preseed/cli.seed",
        "/dists/lucid/Release",
    } | {"/.disk/distro-builder.json"}
    assert len(isocheck.isoinfo_paths(out, "iso")) == len(paths)
    assert "/preseed/cli.seed" not in {p.lower() for p in isocheck.isoinfo_paths(out, "joliet")}
    with pytest.raises(Exception, match="not on the base"):
        remaster(demo_base, tmp_path / "x.iso", remove=["/nope"])
    with pytest.raises(Exception, match="directory"):
        remaster(demo_base, tmp_path / "x.iso", remove=["/preseed"])


@pytest.fixture(scope="module")
def long_names(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """Files whose names are 116 (fits the directory record), 117, 200 and 255 bytes long."""
    root = tmp_path_factory.mktemp("long-names")
    paths = []
    for n in (116, 117, 200, 255):
        for folder in ("", "sub/", "deep/er/still/"):
            name = f"{n}-" + "x" * (n - 8) + ".deb"
            assert len(name.encode()) == n
            (root / folder).mkdir(parents=True, exist_ok=True)
            (root / folder / name).write_bytes(name.encode())
            paths.append("/" + folder + name)
    return root, paths


@pytest.mark.parametrize("hybrid", [False, True])
def test_long_rock_ridge_names_read_back(
    demo_base: Path, long_names: tuple[Path, list[str]], tmp_path: Path, hybrid: bool
) -> None:
    require_tool_or_skip("xorriso", "isoinfo")
    root, paths = long_names
    out = tmp_path / "long.iso"
    remaster(demo_base, out, [root], hybrid=hybrid)
    proc = subprocess.run(["xorriso", "-indev", out, "-find", "/", "-type", "f"],
                          capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 0 and "Damaged" not in proc.stderr, proc.stderr
    assert set(paths) <= isocheck.xorriso_find(out, "f")
    assert set(paths) <= isocheck.isoinfo_paths(out, "rr")
    for p in (paths[3], paths[-1]):  # 117 at the root, 255 three folders down
        data = isocheck.extract(out, p, tmp_path / "x").read_bytes()
        assert data == p.rsplit("/", 1)[1].encode()
    proc = _cli("inspect", str(out))
    assert proc.returncode == 0, proc.stderr


def test_a_damaged_image_is_not_kept(
    demo_base: Path,
    long_names: tuple[Path, list[str]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The self-check on the written file, shown by taking the Rock Ridge fix away."""
    from distro_builder.errors import IsoError
    from distro_builder.media import iso

    monkeypatch.setattr(iso.IsoImage, "_settle_root_er", lambda self: None)
    out = tmp_path / "out.iso"
    out.write_bytes(b"previous good build")
    with pytest.raises(IsoError, match="damaged, so it was not kept") as e:
        remaster(demo_base, out, [long_names[0]])
    assert "Invalid RR version" in str(e.value) and "117-xxx" in str(e.value)
    assert out.read_bytes() == b"previous good build"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.iso"]
