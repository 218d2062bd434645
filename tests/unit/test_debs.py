"""Unit tests for distro_builder.archive.debs: format, reproducibility, validation (no tools)."""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile

import pytest

from distro_builder.archive.debs import (
    build_deb,
    build_udeb,
    deb_filename,
    installed_size_kib,
    order_control_fields,
    pool_path,
    render_control,
)
from distro_builder.errors import ArchiveError

MTIME = 1302652800  # 2011-04-13, around the Cactus release

CONTROL = {
    "Package": "nova-compute",
    "Version": "2011.2-0ubuntu1",
    "Architecture": "all",
    "Maintainer": "Demo <demo@example.invalid>",
    "Description": "OpenStack Compute - compute node (demo)\nDemo payload.\n\nNot the real thing.",
}


def parse_ar(data: bytes) -> list[tuple[str, bytes, bytes]]:
    """(name, 60-byte header, content) of each member of an ar archive."""
    assert data[:8] == b"!<arch>\n"
    pos, members = 8, []
    while pos < len(data):
        header = data[pos : pos + 60]
        assert header[58:60] == b"`\n"
        size = int(header[48:58])
        members.append((header[:16].decode().strip(), header, data[pos + 60 : pos + 60 + size]))
        pos += 60 + size + (size % 2)
    assert pos == len(data)
    return members


def tar_of(deb: bytes, member: str) -> tarfile.TarFile:
    content = {name: data for name, _, data in parse_ar(deb)}[member]
    return tarfile.open(fileobj=io.BytesIO(gzip.decompress(content)), mode="r:")


def names(tar: tarfile.TarFile) -> list[str]:
    """Member names as stored (tarfile strips the trailing '/' of directories when reading)."""
    return [m.name + "/" if m.isdir() else m.name for m in tar.getmembers()]


def control_text(deb: bytes) -> str:
    with tar_of(deb, "control.tar.gz") as tar:
        f = tar.extractfile("./control")
        assert f is not None
        return f.read().decode()


def sample(**kw: object) -> bytes:
    args: dict[str, object] = {
        "files": {
            "/usr/bin/nova-compute": (b"#!/usr/bin/python\nprint 'hi'\n", 0o755),
            "/etc/nova/nova-compute.conf": b"--flagfile=/etc/nova/nova.conf\n",
            "usr/share/doc/nova-compute/copyright": b"Apache-2.0\n",
        },
        "symlinks": {"/usr/bin/nova-compute-demo": "nova-compute"},
        "conffiles": ["/etc/nova/nova-compute.conf"],
        "maintainer_scripts": {"postinst": "#!/bin/sh\nset -e\nexit 0\n"},
        "mtime": MTIME,
    }
    args.update(kw)
    return build_deb(CONTROL, **args)  # type: ignore[arg-type]


def test_two_builds_are_byte_identical() -> None:
    assert sample() == sample()


def test_ar_layout_and_headers() -> None:
    members = parse_ar(sample())
    assert [m[0] for m in members] == ["debian-binary", "control.tar.gz", "data.tar.gz"]
    assert members[0][2] == b"2.0\n"
    for _, header, _ in members:
        assert int(header[16:28]) == MTIME
        assert int(header[28:34]) == 0 and int(header[34:40]) == 0
        assert header[40:48].strip() == b"100644"


def test_gzip_headers_carry_mtime_and_no_name() -> None:
    for name, _, data in parse_ar(sample())[1:]:
        assert data[:2] == b"\x1f\x8b", name
        assert int.from_bytes(data[4:8], "little") == MTIME
        assert data[3] & 0x08 == 0, "FNAME flag must be clear"


def test_mtime_is_honoured_everywhere() -> None:
    other = sample(mtime=MTIME + 1)
    assert other != sample()
    for member in ("control.tar.gz", "data.tar.gz"):
        with tar_of(other, member) as tar:
            assert {m.mtime for m in tar.getmembers()} == {MTIME + 1}


def test_data_members_sorted_with_parents_root_owned() -> None:
    with tar_of(sample(), "data.tar.gz") as tar:
        members = tar.getmembers()
        stored = names(tar)
    assert stored == [
        "./",
        "./etc/",
        "./etc/nova/",
        "./etc/nova/nova-compute.conf",
        "./usr/",
        "./usr/bin/",
        "./usr/bin/nova-compute",
        "./usr/bin/nova-compute-demo",
        "./usr/share/",
        "./usr/share/doc/",
        "./usr/share/doc/nova-compute/",
        "./usr/share/doc/nova-compute/copyright",
    ]
    for m in members:
        assert (m.uid, m.gid, m.uname, m.gname) == (0, 0, "root", "root")
    by_name = {m.name + "/" if m.isdir() else m.name: m for m in members}
    assert by_name["./usr/"].isdir() and by_name["./usr/"].mode == 0o755
    assert by_name["./usr/bin/nova-compute"].mode == 0o755
    assert by_name["./etc/nova/nova-compute.conf"].mode == 0o644
    link = by_name["./usr/bin/nova-compute-demo"]
    assert link.issym() and link.linkname == "nova-compute"


def test_member_order_does_not_depend_on_input_order() -> None:
    files = {"/b/x": b"1", "/a/y": b"2", "/a-b/z": b"3"}
    reordered = dict(reversed(list(files.items())))
    one = build_deb(CONTROL, files, mtime=0)
    assert one == build_deb(CONTROL, reordered, mtime=0)
    with tar_of(one, "data.tar.gz") as tar:
        # parents come before children: "a/" sorts before "a-b/" component-wise
        assert names(tar) == ["./", "./a/", "./a/y", "./a-b/", "./a-b/z", "./b/", "./b/x"]


def test_control_archive_members() -> None:
    deb = sample()
    with tar_of(deb, "control.tar.gz") as tar:
        by_name = {m.name: m for m in tar.getmembers()}
        assert names(tar) == ["./", "./conffiles", "./control", "./md5sums", "./postinst"]
        assert by_name["./postinst"].mode == 0o755
        assert by_name["./control"].mode == 0o644
        conffiles = tar.extractfile("./conffiles")
        md5sums = tar.extractfile("./md5sums")
        assert conffiles is not None and md5sums is not None
        assert conffiles.read() == b"/etc/nova/nova-compute.conf\n"
        md5 = hashlib.md5(b"Apache-2.0\n").hexdigest()
        lines = md5sums.read().decode().splitlines()
    assert f"{md5}  usr/share/doc/nova-compute/copyright" in lines
    assert not any("etc/nova" in line for line in lines), "conffiles are not in md5sums"


def test_control_field_order_and_description_folding() -> None:
    control = {
        "Description": "synopsis\nline one\n\nline two",
        "Priority": "optional",
        "Section": "net",
        "Depends": "nova-common (= 2011.2-0ubuntu1)",
        "X-Demo": "yes",
        "Homepage": "http://openstack.org",
        "Maintainer": "Demo <demo@example.invalid>",
        "Pre-Depends": "dpkg (>= 1.15)",
        "Architecture": "all",
        "Provides": "nova-node",
        "Version": "1:2011.2-0ubuntu1",
        "Source": "nova",
        "Package": "nova-compute",
    }
    text = render_control(control)
    keys = [line.split(":", 1)[0] for line in text.splitlines() if not line.startswith(" ")]
    assert keys == [
        "Package",
        "Source",
        "Version",
        "Architecture",
        "Maintainer",
        "Pre-Depends",
        "Depends",
        "Provides",
        "Section",
        "Priority",
        "Homepage",
        "X-Demo",
        "Description",
    ]
    assert text.endswith("Description: synopsis\n line one\n .\n line two\n")


def test_prefolded_description_is_kept() -> None:
    text = render_control({**CONTROL, "Description": "s\n already folded\n .\n  verbatim"})
    assert text.endswith("Description: s\n already folded\n .\n  verbatim\n")


def test_installed_size_computed_in_kib_unless_given() -> None:
    deb = build_deb(CONTROL, {"/usr/share/a": b"x" * 1025, "/usr/share/b": b"y"}, mtime=0)
    # 2 KiB + 1 KiB for the files, 2 directories (usr, usr/share) at 1 KiB each
    assert "Installed-Size: 5\n" in control_text(deb)
    assert installed_size_kib([("file", 0), ("file", 1024), ("dir", 0)]) == 2
    given = build_deb({**CONTROL, "Installed-Size": "99"}, {}, mtime=0)
    assert "Installed-Size: 99\n" in control_text(given)
    fields = [line.split(":")[0] for line in control_text(deb).splitlines()]
    assert fields.index("Installed-Size") == fields.index("Maintainer") + 1


def test_empty_directories() -> None:
    deb = build_deb(CONTROL, {}, directories=["/var/lib/nova/instances"], mtime=0)
    with tar_of(deb, "data.tar.gz") as tar:
        assert names(tar) == ["./", "./var/", "./var/lib/", "./var/lib/nova/",
                                  "./var/lib/nova/instances/"]  # fmt: skip


def test_udeb_has_no_md5sums_and_installer_section() -> None:
    udeb = build_udeb(CONTROL, {"/lib/x": b"1"}, mtime=0)
    with tar_of(udeb, "control.tar.gz") as tar:
        assert names(tar) == ["./", "./control"]
    text = control_text(udeb)
    assert "Section: debian-installer\n" in text and "Priority: extra\n" in text
    with pytest.raises(TypeError):
        build_udeb(CONTROL, {}, conffiles=["/etc/x"], mtime=0)  # type: ignore[call-arg]


@pytest.mark.parametrize("name", ["Nova", "n", "-nova", "nova_compute", "nova compute", ""])
def test_bad_package_names_rejected(name: str) -> None:
    with pytest.raises(ArchiveError) as e:
        build_deb({**CONTROL, "Package": name}, {}, mtime=0)
    assert e.value.hint


@pytest.mark.parametrize(
    "version", ["", "abc", "1.0 beta", "a:1.0", "1.0-", "1:2:3_4", "2011.2-0ubuntu1!", "-1"]
)
def test_bad_versions_rejected(version: str) -> None:
    with pytest.raises(ArchiveError) as e:
        build_deb({**CONTROL, "Version": version}, {}, mtime=0)
    assert e.value.hint


@pytest.mark.parametrize(
    "field", ["Package", "Version", "Architecture", "Maintainer", "Description"]
)
def test_required_fields(field: str) -> None:
    control = {k: v for k, v in CONTROL.items() if k != field}
    with pytest.raises(ArchiveError, match=field):
        build_deb(control, {}, mtime=0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"files": {"/usr/../etc/x": b""}},
        {"files": {"/": b""}},
        {"files": {"/a": b"", "a": b""}},
        {"files": {"/a": b""}, "symlinks": {"/a/b": "x"}},
        {"files": {"/a": b""}, "conffiles": ["/etc/missing"]},
        {"files": {}, "maintainer_scripts": {"postinst": "set -e\n"}},
        {"files": {}, "maintainer_scripts": {"evil": "#!/bin/sh\n"}},
        {"files": {}, "mtime": -1},
        {"files": {}, "mtime": 1.5},
    ],
)
def test_bad_input_rejected(kwargs: dict[str, object]) -> None:
    args: dict[str, object] = {"mtime": 0, **kwargs}
    with pytest.raises(ArchiveError) as e:
        build_deb(CONTROL, **args)  # type: ignore[arg-type]
    assert e.value.hint


def test_bad_control_fields_rejected() -> None:
    for control in (
        {**CONTROL, "Architecture": "any"},
        {**CONTROL, "Bad Field": "x"},
        {**CONTROL, "Depends": ""},
        {**CONTROL, "Description": "\n\nno synopsis"},
        {**CONTROL, "Installed-Size": "12k"},
        {**CONTROL, "package": "dup"},
    ):
        with pytest.raises(ArchiveError):
            render_control(control)


def test_order_control_fields_unknown_fields_keep_order() -> None:
    fields = order_control_fields({"Description": "d", "Z": "1", "A": "2", "Package": "p"})
    assert [k for k, _ in fields] == ["Package", "Z", "A", "Description"]


def test_deb_filename() -> None:
    assert deb_filename("nova-compute", "2011.2-0ubuntu1", "all") == (
        "nova-compute_2011.2-0ubuntu1_all.deb"
    )
    assert deb_filename("python-nova", "1:2011.2-0ubuntu1", "all") == (
        "python-nova_2011.2-0ubuntu1_all.deb"
    )
    assert deb_filename("netcfg", "1.51ubuntu1", "amd64", udeb=True) == (
        "netcfg_1.51ubuntu1_amd64.udeb"
    )
    with pytest.raises(ArchiveError):
        deb_filename("nova", "x", "all")


def test_pool_path() -> None:
    assert pool_path("main", "nova", "nova-compute_2011.2-0ubuntu1_all.deb") == (
        "pool/main/n/nova/nova-compute_2011.2-0ubuntu1_all.deb"
    )
    assert pool_path("main", "libvirt", "libvirt0_0.8.8_amd64.deb") == (
        "pool/main/libv/libvirt/libvirt0_0.8.8_amd64.deb"
    )
    assert pool_path("extras", "glibc (2.11.1-0ubuntu7)", "x.deb") == "pool/extras/g/glibc/x.deb"
    for bad in (("Main", "nova", "x.deb"), ("main", "Nova", "x.deb"), ("main", "nova", "a/b")):
        with pytest.raises(ArchiveError):
            pool_path(*bad)
