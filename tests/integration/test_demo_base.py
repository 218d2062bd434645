"""The demo base read back with xorriso, isoinfo and dpkg-deb: every lucid quirk is there."""

from __future__ import annotations

import gzip
import hashlib
import subprocess
from pathlib import Path

import pytest

from tests import isocheck
from tests.helpers import require_tool_or_skip

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def tree(demo_base: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_tool_or_skip("xorriso", "isoinfo")
    return isocheck.extract_tree(demo_base, tmp_path_factory.mktemp("demo-tree") / "t")


def test_volume_id_and_mkisofs_options(demo_base: Path) -> None:
    require_tool_or_skip("isoinfo")
    d = subprocess.run(["isoinfo", "-d", "-i", demo_base], capture_output=True, text=True).stdout
    assert "Volume id: Ubuntu-Server 10.04.4 LTS amd64" in d
    assert "Joliet with UCS level 3 found" in d  # -J
    assert "Rock Ridge signatures version 1 found" in d  # -r
    assert "Nsect 4" in d  # -boot-load-size 4
    assert "Boot media 0 (No Emulation Boot)" in d
    long_iso = [
        p for p in isocheck.isoinfo_paths(demo_base, "iso") if len(p.rsplit("/", 1)[1]) > 14
    ]
    assert long_iso, "-l: ISO 9660 names longer than 8.3 expected"


def test_el_torito_and_boot_info_table(demo_base: Path) -> None:
    require_tool_or_skip("xorriso")
    (img,) = isocheck.xorriso_el_torito(demo_base)
    assert img["platform"] == "BIOS" and img["emulation"] == "none" and img["load_size"] == "4"
    assert img["path"] == "/isolinux/isolinux.bin"
    assert "boot-info-table" in img["opts"]
    size = Path("/usr/lib/ISOLINUX/isolinux.bin").stat().st_size
    bi = isocheck.read_boot_info(demo_base, size)
    assert bi.boot_lba == int(img["lba"])
    assert (bi.bi_pvd, bi.bi_file, bi.bi_length) == (16, bi.boot_lba, size)
    assert bi.bi_csum == bi.computed_csum


def test_disk_files(tree: Path) -> None:
    info = (tree / ".disk" / "info").read_bytes()
    assert info == b'Ubuntu-Server 10.04.4 LTS "Lucid Lynx" - Release amd64 (20120214.2)'
    assert not info.endswith(b"\n")
    assert (tree / ".disk" / "base_components").read_text() == "main\nrestricted\n"
    assert (tree / ".disk" / "cd_type").read_text() == "full_cd/single\n"
    assert "netcfg" in (tree / ".disk" / "udeb_include").read_text().split()
    defines = (tree / "README.diskdefines").read_text()
    assert '#define DISKNAME  Ubuntu-Server 10.04.4 LTS "Lucid Lynx" - Release amd64\n' in defines
    assert "#define ARCHamd64  1\n" in defines and "#define TOTALNUM0  1\n" in defines


def test_symlinks(demo_base: Path) -> None:
    require_tool_or_skip("xorriso")
    links = isocheck.xorriso_symlinks(demo_base)
    top = {k: v for k, v in links.items() if not k.startswith("/install/netboot/")}
    assert top == {"/ubuntu": ".", "/dists/stable": "lucid", "/dists/unstable": "lucid"}
    # lucid's install/netboot/ tree keeps the netboot tarball's links (pxelinux.0, pxelinux.cfg)
    netboot = {k: v for k, v in links.items() if k.startswith("/install/netboot/")}
    assert netboot["/install/netboot/pxelinux.0"] == "ubuntu-installer/amd64/pxelinux.0"
    assert netboot["/install/netboot/ubuntu-installer/amd64/pxelinux.cfg/default"] == (
        "../boot-screens/syslinux.cfg"
    )


def test_isolinux_files_are_lucids(tree: Path) -> None:
    iso = tree / "isolinux"
    assert (iso / "isolinux.cfg").read_text() == (
        "include menu.cfg\ndefault vesamenu.c32\nprompt 0\ntimeout 0\ngfxboot bootlogo\n"
    )
    for name in ("menu.cfg", "stdmenu.cfg", "text.cfg", "adtext.cfg", "gfxboot.cfg"):
        assert (iso / name).is_file(), name
    assert not (iso / "txt.cfg").exists()
    assert "label install\n  menu label ^Install Ubuntu Server\n" in (iso / "text.cfg").read_text()
    seed = (tree / "preseed" / "ubuntu-server.seed").read_text()
    assert "d-i\tbase-installer/kernel/override-image\tstring linux-server\n" in seed
    assert "tasksel\ttasksel/force-tasks\tstring server\n" in seed


def test_release_lists_absent_uncompressed_packages(tree: Path) -> None:
    release = (tree / "dists" / "lucid" / "Release").read_text()
    assert "Codename: lucid" in release and "Components: main restricted" in release
    sha256 = release.split("SHA256:\n", 1)[1].splitlines()
    listed = {line.split()[2]: (line.split()[0], int(line.split()[1])) for line in sha256}
    assert "main/binary-amd64/Packages" in listed
    assert not (tree / "dists/lucid/main/binary-amd64/Packages").exists()
    gz = tree / "dists/lucid/main/binary-amd64/Packages.gz"
    plain = gzip.decompress(gz.read_bytes())
    # the absent file is listed with the hashes of the content it would have had
    assert listed["main/binary-amd64/Packages"] == (hashlib.sha256(plain).hexdigest(), len(plain))
    assert listed["main/binary-amd64/Packages.gz"][0] == hashlib.sha256(gz.read_bytes()).hexdigest()
    assert "main/debian-installer/binary-amd64/Packages.gz" in listed
    for line in sha256:  # every file that is on the disc matches
        h, size, rel = line.split()
        p = tree / "dists" / "lucid" / rel
        if p.exists():
            assert hashlib.sha256(p.read_bytes()).hexdigest() == h and p.stat().st_size == int(size)


def test_packages_have_task_fields_and_real_debs(tree: Path, tmp_path: Path) -> None:
    require_tool_or_skip("dpkg-deb")
    text = gzip.decompress((tree / "dists/lucid/main/binary-amd64/Packages.gz").read_bytes())
    stanzas = [s for s in text.decode().split("\n\n") if s.strip()]
    assert len(stanzas) > 30
    tasks = [s for s in stanzas if "\nTask: " in s]
    assert any("Package: openssh-server\n" in s and "Task: openssh-server" in s for s in tasks)
    assert any("Task: lamp-server" in s for s in tasks)
    for s in stanzas:
        fields = dict(
            line.split(": ", 1) for line in s.splitlines() if ": " in line and line[0] != " "
        )
        deb = tree / fields["Filename"]
        assert deb.stat().st_size == int(fields["Size"])
        assert hashlib.md5(deb.read_bytes()).hexdigest() == fields["MD5sum"]
    sample = tree / "pool/main/o/openssh/openssh-server_5.3p1-3ubuntu7_amd64.deb"
    out = subprocess.run(
        ["dpkg-deb", "--field", sample, "Package", "Version", "Depends"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "Version: 1:5.3p1-3ubuntu7" in out and "openssh-client (= 1:5.3p1-3ubuntu7)" in out
    udebs = gzip.decompress(
        (tree / "dists/lucid/main/debian-installer/binary-amd64/Packages.gz").read_bytes()
    ).decode()
    assert "Package: netcfg\n" in udebs and ".udeb\n" in udebs


def test_md5sum_txt_is_debian_cds(tree: Path) -> None:
    lines = (tree / "md5sum.txt").read_text().splitlines()
    listed = {}
    for line in lines:
        md5, path = line.split("  ", 1)
        assert path.startswith("./")
        listed[path[2:]] = md5
    for rel, md5 in listed.items():
        assert hashlib.md5((tree / rel).read_bytes()).hexdigest() == md5, rel
    assert "install/vmlinuz" in listed and ".disk/info" in listed
    assert not any(p.startswith(("isolinux/", "dists/stable", "dists/unstable")) for p in listed)
    assert "md5sum.txt" not in listed
