"""Unit tests for distro_builder.archive.index: stanzas, Packages, Release, md5sum.txt."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import lzma
import re
from pathlib import Path

import pytest

from distro_builder.archive.debs import build_deb, build_udeb
from distro_builder.archive.index import (
    FileDigest,
    decompress,
    file_digest,
    gzip_bytes,
    md5sum_txt,
    packages_stanza,
    read_md5sum_txt,
    read_packages,
    read_release,
    release_checksums,
    release_date,
    render_component_release,
    render_packages,
    render_release,
    sums_from_index,
)
from distro_builder.errors import ArchiveError
from distro_builder.model import IndexPackage


def make_deb(package: str = "nova-common", version: str = "2011.2-0ubuntu1", **extra: str) -> bytes:
    control = {
        "Package": package,
        "Version": version,
        "Architecture": "all",
        "Maintainer": "Demo <demo@example.invalid>",
        "Depends": "python (>= 2.6)",
        **extra,
        "Description": "demo package\nSecond line.\n\nThird.",
    }
    return build_deb(control, {f"/usr/share/doc/{package}/README": b"demo\n"}, mtime=0)


FILENAME = "pool/main/n/nova/nova-common_2011.2-0ubuntu1_all.deb"


def test_packages_stanza_fields_and_hashes() -> None:
    deb = make_deb()
    stanza = packages_stanza(deb, FILENAME)
    assert list(stanza) == [
        "Package",
        "Version",
        "Architecture",
        "Maintainer",
        "Installed-Size",
        "Depends",
        "Filename",
        "Size",
        "MD5sum",
        "SHA1",
        "SHA256",
        "Description",
    ]
    assert stanza["Filename"] == FILENAME
    assert stanza["Size"] == str(len(deb))
    assert stanza["MD5sum"] == hashlib.md5(deb).hexdigest()
    assert stanza["SHA1"] == hashlib.sha1(deb).hexdigest()
    assert stanza["SHA256"] == hashlib.sha256(deb).hexdigest()
    assert stanza["Description"] == "demo package\n Second line.\n .\n Third."


def test_packages_stanza_hashes_are_the_files_own_whatever_its_control_says() -> None:
    """A control file that names a Size, an MD5sum or a Filename of its own (before or after
    its Description) does not put them in the stanza: the disc's Packages, md5sum.txt and the
    manifest take these sums as the file's."""
    control = {
        "Package": "liar",
        "Version": "1",
        "Architecture": "all",
        "Maintainer": "Demo <demo@example.invalid>",
        "md5sum": "0" * 32,
        "Description": "lies\nabout itself.",
        "Size": "1",
        "SHA256": "f" * 64,
        "Filename": "pool/elsewhere.deb",
    }
    deb = build_deb(control, {"/usr/share/doc/liar/README": b"x\n"}, mtime=0)
    stanza = packages_stanza(deb, FILENAME)
    assert stanza["Filename"] == FILENAME
    assert stanza["Size"] == str(len(deb))
    assert stanza["MD5sum"] == hashlib.md5(deb).hexdigest()
    assert stanza["SHA256"] == hashlib.sha256(deb).hexdigest()
    assert not {k for k in stanza if k.lower() == "md5sum" and k != "MD5sum"}
    assert list(stanza)[-1] == "Description"


def test_packages_stanza_of_udeb() -> None:
    udeb = build_udeb(
        {
            "Package": "stackops-preseed",
            "Version": "1.0",
            "Architecture": "all",
            "Maintainer": "Demo <demo@example.invalid>",
            "Description": "demo udeb",
        },
        {"/usr/lib/x": b"x"},
        mtime=0,
    )
    stanza = packages_stanza(udeb, "pool/main/s/stackops/stackops-preseed_1.0_all.udeb")
    assert stanza["Section"] == "debian-installer"


@pytest.mark.parametrize("data", [b"", b"not a deb", b"!<arch>\n"])
def test_packages_stanza_rejects_garbage(data: bytes) -> None:
    with pytest.raises(ArchiveError) as e:
        packages_stanza(data, "pool/main/x/x/x.deb")
    assert "x.deb" in str(e.value) and e.value.hint


@pytest.mark.parametrize("filename", ["", "/pool/x.deb", "pool/../x.deb", "pool//x.deb"])
def test_packages_stanza_rejects_bad_filename(filename: str) -> None:
    with pytest.raises(ArchiveError):
        packages_stanza(make_deb(), filename)


def test_render_packages_sorted_and_separated() -> None:
    stanzas = [
        {"Package": "nova-compute", "Version": "2011.2-0ubuntu1", "Architecture": "all"},
        {"Package": "nova-api", "Version": "2011.2-0ubuntu10", "Architecture": "all"},
        {"Package": "nova-api", "Version": "2011.2-0ubuntu9", "Architecture": "all"},
        {"Package": "nova-api", "Version": "1:2010.1-0ubuntu1", "Architecture": "all"},
    ]
    text = render_packages(stanzas)
    versions = re.findall(r"^Package: (\S+)\nVersion: (\S+)", text, re.M)
    assert versions == [
        ("nova-api", "2011.2-0ubuntu9"),
        ("nova-api", "2011.2-0ubuntu10"),
        ("nova-api", "1:2010.1-0ubuntu1"),
        ("nova-compute", "2011.2-0ubuntu1"),
    ]
    paragraphs = text.split("\n\n")
    assert len(paragraphs) == 5 and paragraphs[-1] == ""
    assert text.endswith("Architecture: all\n\n")
    assert render_packages([]) == ""


def test_render_packages_keeps_field_order_and_folds() -> None:
    stanza = {"Package": "a", "Zeta": "1", "Alpha": "2", "Description": "s\nlong\n\nmore"}
    assert render_packages([stanza]) == (
        "Package: a\nZeta: 1\nAlpha: 2\nDescription: s\n long\n .\n more\n\n"
    )
    with pytest.raises(ArchiveError):
        render_packages([{"Version": "1"}])


def test_gzip_bytes_is_deterministic() -> None:
    data = b"Package: x\n" * 100
    one = gzip_bytes(data)
    assert one == gzip_bytes(data)
    assert gzip.decompress(one) == data
    assert one[4:8] == b"\0\0\0\0" and one[3] & 0x08 == 0
    assert int.from_bytes(gzip_bytes(data, mtime=1234)[4:8], "little") == 1234


@pytest.mark.parametrize(
    "compress",
    [lambda b: b, gzip_bytes, bz2.compress, lzma.compress],
    ids=["plain", "gz", "bz2", "xz"],
)
def test_read_packages_round_trip(compress: object) -> None:
    debs = [make_deb("nova-compute"), make_deb("nova-api", Task="openstack")]
    text = render_packages(
        packages_stanza(d, f"pool/main/n/nova/{i}.deb") for i, d in enumerate(debs)
    )
    data = compress(text.encode())  # type: ignore[operator]
    stanzas = read_packages(data, "Packages")
    assert [s["Package"] for s in stanzas] == ["nova-api", "nova-compute"]
    assert stanzas[0]["Task"] == "openstack"
    assert stanzas[1]["Description"] == "demo package\n Second line.\n .\n Third."
    assert render_packages(dict(s) for s in stanzas) == text


def test_read_packages_errors_name_the_file() -> None:
    with pytest.raises(ArchiveError, match="Packages.gz"):
        read_packages(b"\x1f\x8b\x08\x00garbage", "dists/lucid/main/binary-amd64/Packages.gz")
    with pytest.raises(ArchiveError, match="no Package field"):
        read_packages(b"Version: 1\n", "Packages")
    with pytest.raises(ArchiveError, match="UTF-8"):
        read_packages(b"Package: \xff\n", "Packages")
    assert decompress(b"plain", "x") == b"plain"


FIELDS = {
    "Origin": "Ubuntu",
    "Label": "Ubuntu",
    "Suite": "lucid",
    "Version": "10.04",
    "Codename": "lucid",
    "Date": "Wed, 16 Feb 2012 18:56:42 UTC",
    "Architectures": "amd64",
    "Components": "main restricted",
    "Description": "Ubuntu Lucid 10.04",
}


def test_render_release_format() -> None:
    packages = b"Package: x\n\n"
    files = {
        "restricted/binary-amd64/Packages.gz": gzip_bytes(packages),
        "main/binary-amd64/Packages": packages,  # listed though absent from the disc
        "main/binary-amd64/Release": b"Archive: lucid\n",
    }
    text = render_release(FIELDS, files)
    header, rest = text.split("MD5Sum:\n", 1)
    assert header.splitlines() == [f"{k}: {v}" for k, v in FIELDS.items()]
    md5_block, rest = rest.split("SHA1:\n")
    sha1_block, sha256_block = rest.split("SHA256:\n")
    for block, algo in ((md5_block, "md5"), (sha1_block, "sha1"), (sha256_block, "sha256")):
        lines = block.splitlines()
        assert [line.rsplit(" ", 1)[1] for line in lines] == sorted(files)
        for line in lines:
            path = line.rsplit(" ", 1)[1]
            content = files[path]
            digest = hashlib.new(algo, content).hexdigest()
            # debian-cd: printf " %s %8d %s\n"
            assert line == " %s %8d %s" % (digest, len(content), path)  # noqa: UP031
    assert f" {hashlib.md5(packages).hexdigest()}       12 main/binary-amd64/Packages\n" in text
    assert text.endswith("\n") and not text.endswith("\n\n")


def test_render_release_accepts_digests_and_strips_old_hashes() -> None:
    digest = FileDigest("a" * 32, "b" * 40, "c" * 64, 123456789)
    text = render_release(
        {**FIELDS, "MD5Sum": "\n stale 1 x", "SHA256": "\n stale 1 x"},
        {"main/binary-amd64/Packages": digest, "extras/binary-amd64/Packages": ("d", "e", "f", 1)},
    )
    assert "stale" not in text
    assert text.count("MD5Sum:") == 1
    assert f" {'a' * 32} 123456789 main/binary-amd64/Packages\n" in text
    assert " d        1 extras/binary-amd64/Packages\n" in text
    release = read_release(text.encode(), "Release")
    assert release["Codename"] == "lucid"
    assert [e["name"] for e in release["SHA256"]] == [
        "extras/binary-amd64/Packages",
        "main/binary-amd64/Packages",
    ]
    with pytest.raises(ArchiveError):
        render_release(FIELDS, {"/abs/path": b""})


def test_release_date() -> None:
    assert release_date(0) == "Thu, 01 Jan 1970 00:00:00 UTC"
    assert release_date(1329418602) == "Thu, 16 Feb 2012 18:56:42 UTC"


def test_render_component_release() -> None:
    assert render_component_release("lucid", "10.04", "extras", "Ubuntu", "Ubuntu", "amd64") == (
        "Archive: lucid\nVersion: 10.04\nComponent: extras\nOrigin: Ubuntu\nLabel: Ubuntu\n"
        "Architecture: amd64\n"
    )


def test_file_digest_sources(tmp_path: Path) -> None:
    data = b"x" * (3 << 20)
    path = tmp_path / "big"
    path.write_bytes(data)
    expected = FileDigest(
        hashlib.md5(data).hexdigest(),
        hashlib.sha1(data).hexdigest(),
        hashlib.sha256(data).hexdigest(),
        len(data),
    )
    assert file_digest(data) == expected
    assert file_digest(path) == expected
    assert file_digest(io.BytesIO(data)) == expected
    assert file_digest(lambda: data) == expected
    assert file_digest(lambda: io.BytesIO(data)) == expected


def test_md5sum_txt(tmp_path: Path) -> None:
    (tmp_path / "initrd.gz").write_bytes(b"initrd")
    opened: list[io.BytesIO] = []

    def lazy() -> io.BytesIO:
        stream = io.BytesIO(b"lazy")
        opened.append(stream)
        return stream

    text = md5sum_txt(
        [
            ("./pool/main/n/nova/x.deb", b"deb"),
            ("/install/initrd.gz", tmp_path / "initrd.gz"),
            (".disk/info", lazy),
            ("README.diskdefines", io.BytesIO(b"defines")),
        ]
    )
    contents = {"deb": b"deb", "initrd": b"initrd", "lazy": b"lazy", "defines": b"defines"}
    md5 = {k: hashlib.md5(v).hexdigest() for k, v in contents.items()}
    assert text == (
        f"{md5['lazy']}  ./.disk/info\n"
        f"{md5['defines']}  ./README.diskdefines\n"
        f"{md5['initrd']}  ./install/initrd.gz\n"
        f"{md5['deb']}  ./pool/main/n/nova/x.deb\n"
    )
    assert opened and opened[0].closed, "streams opened by a callable are closed"
    assert md5sum_txt({"b": b"", "a": b""}) == (
        "d41d8cd98f00b204e9800998ecf8427e  ./a\nd41d8cd98f00b204e9800998ecf8427e  ./b\n"
    )
    with pytest.raises(ArchiveError):
        md5sum_txt([("a", b""), ("./a", b"")])
    with pytest.raises(ArchiveError):
        md5sum_txt({"../etc/passwd": b""})


def test_md5sum_txt_escapes_names_as_gnu_md5sum() -> None:
    """Issue 20 item 12: a newline or backslash in a name is escaped and the line starts with a
    backslash (GNU coreutils, md5sum invocation); reading it back gives the names again."""
    empty = "d41d8cd98f00b204e9800998ecf8427e"
    names = ["a\nb", "back\\slash", "cr\rname", "plain"]
    text = md5sum_txt({n: b"" for n in names})
    assert text.split("\n")[:-1] == [
        f"\\{empty}  ./a\\nb",
        f"\\{empty}  ./back\\\\slash",
        f"{empty}  ./cr\rname",
        f"{empty}  ./plain",
    ]
    assert read_md5sum_txt(text) == {n: empty for n in names}
    assert read_md5sum_txt(f"\\{empty}  ./bad\\q\n") == {}  # an unknown escape: no entry


def test_read_release_hash_lists_any_case_and_damaged_lines() -> None:
    text = (
        "Origin: Ubuntu\ncodename: lucid\nMD5sum:\n"
        f" {'a' * 32}     1234 main/binary-amd64/Packages\n"
        "Sha256:\n"
        f" {'b' * 64}     1234 main/binary-amd64/Packages\n"
    )
    release = read_release(text.encode(), "Release")
    assert release["Codename"] == "lucid"
    assert release["MD5Sum"] == [
        {"md5sum": "a" * 32, "size": "1234", "name": "main/binary-amd64/Packages"}
    ]
    assert release_checksums(release) == {"main/binary-amd64/Packages": ("sha256", "b" * 64, 1234)}
    with pytest.raises(ArchiveError, match=r"SHA256 line .* is not '<hash> <size> <path>'"):
        read_release(b"Codename: lucid\nSHA256:\n " + b"c" * 64 + b" 12\n", "Release")
    with pytest.raises(ArchiveError, match="no fields"):
        read_release(b"\n", "Release")
    with pytest.raises(ArchiveError, match="UTF-8"):
        read_release(b"Codename: \xff\n", "Release")


def test_sums_from_index_only_for_the_file_the_index_describes() -> None:
    """The index's MD5 and SHA1 stand for the bytes only when their size and SHA-256 are the
    index's: another file, or an index without all three sums, gets None (computed then)."""
    deb = make_deb()
    real = file_digest(deb)

    def listed(size: int, md5: str, sha1: str, sha256: str) -> IndexPackage:
        return IndexPackage(
            "nova-common", "1", "all", "test", size=size, md5=md5, sha1=sha1, sha256=sha256
        )

    given = sums_from_index(
        deb, listed(real.size, real.md5.upper(), real.sha1, real.sha256.upper())
    )
    assert given == real
    assert sums_from_index(deb, listed(real.size, real.md5, real.sha1, "0" * 64)) is None
    assert sums_from_index(deb, listed(real.size + 1, real.md5, real.sha1, real.sha256)) is None
    assert sums_from_index(deb, listed(real.size, "", real.sha1, real.sha256)) is None
    assert sums_from_index(deb, listed(real.size, real.md5, "", real.sha256)) is None
    assert (
        sums_from_index(deb + b"x", listed(real.size + 1, real.md5, real.sha1, real.sha256)) is None
    )
    stanza = packages_stanza(deb, FILENAME, digest=given)
    assert (stanza["MD5sum"], stanza["SHA1"], stanza["SHA256"]) == real[:3]
