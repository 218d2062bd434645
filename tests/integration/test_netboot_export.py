"""`distro-builder netboot ISO -o DIR` (issue 13): the tree's preseed options and its refusals.
That the tree boots is tests/qemu/test_pxe.py's."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from distro_builder.build import BuildOptions, build_iso
from distro_builder.media.initrd import read_initrd_file
from tests.helpers import require_tool_or_skip

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def disc(tmp_path_factory: pytest.TempPathFactory, data_dir: Path, demo_base: Path) -> Path:
    require_tool_or_skip("debconf-set-selections")
    out = tmp_path_factory.mktemp("export") / "stackops.iso"
    build_iso(data_dir, BuildOptions(base=demo_base, output=out, packages=False))
    return out


def _netboot(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "distro_builder", "netboot", *args],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )  # fmt: skip


def test_preseed_url_and_mirror(disc: Path, tmp_path: Path) -> None:
    out = tmp_path / "tree"
    proc = _netboot(str(disc), "-o", str(out), "--preseed-url", "http://10.0.0.2:8000/preseed/",
                    "--mirror", "http://10.0.0.2:8080/disc")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    cfg = (out / "pxelinux.cfg" / "default").read_text()
    # d-i fetches a url= seed after netcfg: auto mode, netcfg answered on the command line
    assert (
        "auto=true priority=critical url=http://10.0.0.2:8000/preseed/stackops-compute.seed "
        "interface=auto netcfg/get_hostname=stackops netcfg/get_domain= stackops/roles=compute "
    ) in cfg
    assert "file=" not in cfg and "/cdrom" not in cfg and "timeout 0\n" in cfg
    assert "serial 0" not in cfg and " quiet " in cfg  # not a QA disc: as its menu says
    seed = (out / "preseed" / "stackops-compute.seed").read_text()
    assert "d-i mirror/http/hostname string 10.0.0.2:8080" in seed
    assert "d-i mirror/http/directory string /disc" in seed
    initrd = (out / "ubuntu-installer/amd64/initrd.gz").read_bytes()
    assert read_initrd_file(initrd, "stackops/seeds/stackops-compute.seed") == seed.encode()
    # a second export into it: refused, then replaced with --force
    again = _netboot(str(disc), "-o", str(out))
    assert again.returncode == 1 and "exists and is not empty" in again.stderr
    assert _netboot(str(disc), "-o", str(out), "--force").returncode == 0
    assert "file=/stackops/seeds/" in (out / "pxelinux.cfg" / "default").read_text()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tree")]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--default-entry", "nope"), "--default-entry 'nope' is not a StackOps entry"),
        (("--mirror", "ftp://x/y"), "--mirror 'ftp://x/y': an http://"),
        (("--preseed-url", "file:///x"), "--preseed-url 'file:///x'"),
        (("--timeout", "-1"), "--timeout: 0"),
    ],
)
def test_bad_options_are_refused(disc: Path, tmp_path: Path, args, message: str) -> None:
    proc = _netboot(str(disc), "-o", str(tmp_path / "t"), *args)
    assert proc.returncode == 1 and message in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "t").exists()


def test_a_base_disc_is_refused(demo_base: Path, tmp_path: Path) -> None:
    proc = _netboot(str(demo_base), "-o", str(tmp_path / "t"))
    assert proc.returncode == 1 and "no StackOps entry" in proc.stderr, proc.stderr
    assert "hint: export a disc made by `distro-builder build`" in proc.stderr
