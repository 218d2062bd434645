"""The packages debs.py builds, read by the real dpkg-deb, and index.py's stanzas against
dpkg-scanpackages' (sizes, hashes, control fields)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from distro_builder.archive.debs import build_deb, build_udeb, deb_filename, pool_path
from distro_builder.archive.index import packages_stanza, read_packages
from distro_builder.run import run
from tests.helpers import require_tool_or_skip

pytestmark = pytest.mark.integration

CONTROL = {
    "Package": "nova-compute",
    "Source": "nova",
    "Version": "1:2011.2-0ubuntu1",
    "Architecture": "all",
    "Maintainer": "Demo <demo@example.invalid>",
    "Depends": "nova-common (= 1:2011.2-0ubuntu1), python (>= 2.6)",
    "Section": "net",
    "Priority": "extra",
    "Homepage": "http://openstack.org",
    "Description": "OpenStack Compute - compute node (demo)\nDemo payload.\n\nNot the real thing.",
}
FILES: dict[str, bytes | tuple[bytes, int]] = {
    "/usr/bin/nova-compute": (b"#!/usr/bin/python\nprint 'nova'\n", 0o755),
    "/etc/nova/nova-compute.conf": b"--flagfile=/etc/nova/nova.conf\n",
    "/etc/init/nova-compute.conf": b"start on runlevel [2345]\n",
    "/usr/share/doc/nova-compute/copyright": b"Apache-2.0\n",
}
SCRIPTS = {"postinst": "#!/bin/sh\nset -e\nexit 0\n", "prerm": "#!/bin/sh\nexit 0\n"}


@pytest.fixture
def deb(tmp_path: Path) -> Path:
    data = build_deb(
        CONTROL,
        FILES,
        symlinks={"/usr/bin/nova-compute-demo": "nova-compute", "/etc/nova/link": "/etc/hosts"},
        directories=["/var/lib/nova/instances"],
        conffiles=["/etc/nova/nova-compute.conf", "/etc/init/nova-compute.conf"],
        maintainer_scripts=SCRIPTS,
        mtime=1302652800,
    )
    path = tmp_path / deb_filename(CONTROL["Package"], CONTROL["Version"], "all")
    path.write_bytes(data)
    return path


def dpkg_deb(*args: str | os.PathLike[str]) -> str:
    """stdout of dpkg-deb; it must not warn about the package."""
    proc = run(["dpkg-deb", *args], capture=True)
    assert "warning" not in proc.stderr, proc.stderr
    return str(proc.stdout)


def test_info_lists_control_members(deb: Path) -> None:
    require_tool_or_skip("dpkg-deb")
    info = dpkg_deb("--info", deb)
    assert "new Debian package, version 2.0." in info
    for member in ("control", "md5sums", "conffiles", "postinst", "prerm"):
        assert f" {member} " in info, member
    assert " Description: OpenStack Compute - compute node (demo)\n  Demo payload.\n  .\n" in info


def test_field_values(deb: Path) -> None:
    require_tool_or_skip("dpkg-deb")
    assert dpkg_deb("--field", deb, "Version").strip() == "1:2011.2-0ubuntu1"
    assert dpkg_deb("--field", deb, "Package").strip() == "nova-compute"
    assert dpkg_deb("--field", deb, "Depends").strip() == CONTROL["Depends"]
    assert int(dpkg_deb("--field", deb, "Installed-Size")) > 0
    raw = dpkg_deb("-I", deb, "conffiles")
    assert raw == "/etc/nova/nova-compute.conf\n/etc/init/nova-compute.conf\n"


def test_contents_owner_mode_mtime(deb: Path) -> None:
    require_tool_or_skip("dpkg-deb")
    lines = dpkg_deb("--contents", deb).splitlines()
    names = [line.split()[5] for line in lines]
    assert names[0] == "./"
    assert "./var/lib/nova/instances/" in names
    assert names.index("./usr/") < names.index("./usr/bin/") < names.index("./usr/bin/nova-compute")
    assert all(line.split()[1] == "root/root" for line in lines)
    assert all(" 2011-04-13 " in line for line in lines)
    by_name = {line.split()[5]: line for line in lines}
    assert by_name["./usr/bin/nova-compute"].startswith("-rwxr-xr-x")
    assert by_name["./usr/bin/nova-compute-demo"].startswith("lrwxrwxrwx")
    assert by_name["./usr/bin/nova-compute-demo"].endswith("-> nova-compute")


def test_extract(deb: Path, tmp_path: Path) -> None:
    require_tool_or_skip("dpkg-deb")
    root, ctrl = tmp_path / "root", tmp_path / "ctrl"
    run(["dpkg-deb", "-x", deb, root])
    run(["dpkg-deb", "-e", deb, ctrl])
    for path, content in FILES.items():
        data, mode = content if isinstance(content, tuple) else (content, 0o644)
        extracted = root / path.lstrip("/")
        assert extracted.read_bytes() == data
        assert stat.S_IMODE(extracted.lstat().st_mode) == mode, path
    link = root / "usr/bin/nova-compute-demo"
    assert link.is_symlink() and os.readlink(link) == "nova-compute"
    assert os.readlink(root / "etc/nova/link") == "/etc/hosts"
    assert (root / "var/lib/nova/instances").is_dir()
    assert os.path.getmtime(root / "usr/bin/nova-compute") == 1302652800
    for script, text in SCRIPTS.items():
        assert (ctrl / script).read_text() == text
        assert stat.S_IMODE((ctrl / script).stat().st_mode) == 0o755
    assert (ctrl / "conffiles").read_text().splitlines() == [
        "/etc/nova/nova-compute.conf",
        "/etc/init/nova-compute.conf",
    ]
    # md5sums agree with the extracted files
    run(["md5sum", "--check", "--quiet", ctrl / "md5sums"], cwd=root)


def test_udeb_readable(tmp_path: Path) -> None:
    require_tool_or_skip("dpkg-deb")
    udeb = tmp_path / "x.udeb"
    control = {**CONTROL, "Package": "stackops-preseed", "Depends": "di-utils"}
    udeb.write_bytes(build_udeb(control, {"/lib/x": b"x"}, mtime=0))
    assert dpkg_deb("--field", udeb, "Section").strip() == "net"
    run(["dpkg-deb", "-x", udeb, tmp_path / "root"])
    assert (tmp_path / "root/lib/x").read_bytes() == b"x"


@pytest.mark.parametrize("udeb", [False, True], ids=["deb", "udeb"])
def test_stanza_matches_dpkg_scanpackages(tmp_path: Path, udeb: bool) -> None:
    require_tool_or_skip("dpkg-scanpackages")
    builder = build_udeb if udeb else build_deb
    stanzas = {}
    for package, source in (("nova-compute", "nova"), ("libvirt0", "libvirt")):
        control = {**CONTROL, "Package": package, "Source": source}
        data = builder(control, {f"/usr/share/{package}/x": package.encode()}, mtime=0)
        name = pool_path(
            "main", source, deb_filename(package, CONTROL["Version"], "all", udeb=udeb)
        )
        (tmp_path / name).parent.mkdir(parents=True)
        (tmp_path / name).write_bytes(data)
        stanzas[package] = packages_stanza(data, name)
    argv = ["dpkg-scanpackages", *(["-t", "udeb"] if udeb else []), "-m", "pool", "/dev/null"]
    out = run(argv, capture=True, binary=True, cwd=tmp_path).stdout
    theirs = {s["Package"]: dict(s) for s in read_packages(out, "dpkg-scanpackages output")}
    assert set(theirs) == set(stanzas)
    for package, ours in stanzas.items():
        assert ours == theirs[package], package
    assert stanzas["libvirt0"]["Filename"].startswith("pool/main/libv/libvirt/")
