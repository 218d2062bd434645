"""Source lines, package lists, untrusted Filename: values, and reading local repositories in
every compression (xz, bz2, gz, plain) with Release hash checks."""

from __future__ import annotations

import bz2
import gzip
import lzma
from pathlib import Path

import pytest
import yaml

from distro_builder.archive import index
from distro_builder.archive.debs import build_deb
from distro_builder.archive.fetch import Fetcher, check_filename
from distro_builder.archive.repository import Repository
from distro_builder.archive.sources import (
    describe,
    parse_repo_arg,
    parse_source_line,
    read_sources_list,
)
from distro_builder.config.packages import package_notes, parse_packages, role_packages
from distro_builder.config.roles import load_roles
from distro_builder.errors import ArchiveError, ConfigError


def test_source_line_with_options() -> None:
    spec = parse_source_line(
        "deb [arch=amd64 signed-by=/k.gpg] "
        "http://ppa.launchpad.net/openstack-release/2011.2/ubuntu lucid main"
    )
    assert spec.url == "http://ppa.launchpad.net/openstack-release/2011.2/ubuntu"
    assert (spec.suite, spec.components, spec.arch, spec.keyring) == (
        "lucid",
        ("main",),
        "amd64",
        "/k.gpg",
    )
    assert not spec.trusted and not spec.flat


def test_flat_and_trusted_and_without_deb_keyword() -> None:
    spec = parse_source_line("[trusted=yes] file:///srv/debs ./")
    assert spec.flat and spec.trusted and spec.suite == ""


@pytest.mark.parametrize(
    ("line", "match"),
    [
        ("deb ftp://x lucid main", "unsupported URL scheme"),
        ("deb [foo=bar] file:///x lucid main", "unknown option 'foo'"),
        ("deb file:///x lucid", "without components"),
        ("deb relative/dir lucid main", "not a URL"),
        ("deb [arch=amd64 file:///x lucid main", "unclosed"),
        ("deb-src file:///x lucid main", "source lines"),
    ],
)
def test_bad_source_lines(line: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        parse_source_line(line)


def test_repo_arg_local_directory(tmp_path: Path) -> None:
    spec = parse_repo_arg(str(tmp_path))
    assert spec.flat and spec.url == str(tmp_path.resolve())


def test_sources_list_file(tmp_path: Path) -> None:
    f = tmp_path / "sources.list"
    f.write_text(
        "# demo\ndeb [trusted=yes] file:///a lucid main universe  # trailing\n"
        "\ndeb file:///b lucid main\n"
    )
    specs = read_sources_list(f)
    assert [s.url for s in specs] == ["file:///a", "file:///b"]
    assert specs[0].components == ("main", "universe")
    f.write_text("# nothing\n")
    with pytest.raises(ConfigError, match="no `deb"):
        read_sources_list(f)


@pytest.mark.parametrize(
    "filename",
    ["../../etc/passwd", "/etc/passwd", "pool/../../x.deb", "pool/main/./x.deb", "", "http://evil/x.deb",
     "dists/lucid/x.deb", "pool\\..\\x.deb"],
)  # fmt: skip
def test_escaping_filenames_are_refused(filename: str) -> None:
    with pytest.raises(ArchiveError, match="escapes the repository root or the pool"):
        check_filename(filename)


def test_pool_filenames_pass_and_flat_ones_need_no_pool() -> None:
    assert (
        check_filename("pool/main/n/nova/nova-api_2011.2_all.deb")
        == "pool/main/n/nova/nova-api_2011.2_all.deb"
    )
    assert check_filename("sub/x.deb", flat=True) == "sub/x.deb"
    with pytest.raises(ArchiveError):
        check_filename("../x.deb", flat=True)


def test_package_lists_of_the_project_load_with_arch_limits(data_dir: Path) -> None:
    lists = load_roles(data_dir)
    compute_amd64 = role_packages(lists, "compute", "amd64")
    compute_armel = role_packages(lists, "compute", "armel")
    assert compute_amd64[0] == "nova-common"  # the shared role's (roles/base) first
    assert "nova-compute" in compute_amd64 and "kvm" in compute_amd64
    assert "kvm" not in compute_armel and "nova-compute" in compute_armel
    assert len(compute_amd64) == len(set(compute_amd64))
    with pytest.raises(ConfigError, match="unknown role"):
        role_packages(lists, "web", "amd64")


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("description: x\npackages: [Nova]\n", "not a Debian package name"),
        ("description: x\npackages: [a1, a1]\n", "listed twice"),
        (
            "description: x\npackages: [{kvm: {arches: [amd64]}}]\n",
            "unknown key packages\\[0\\].kvm.arches",
        ),
        ("description: x\npackages: []\n", "non-empty list"),
        ("description: x\npackages: [{a1: {version: '0.8.1'}}]\n", "an operator and a version"),
        ("description: x\npackages: [{a1: {version: '>= '}}]\n", "an operator and a version"),
        ("description: x\npackages: [{a1: {version: 8}}]\n", "an operator and a version"),
        ("description: x\npackages: [{a1: {version: '=> 1'}}]\n", "an operator and a version"),
        ("description: x\npackages: [{a1: {version: '> 1.0'}}]\n", "'>' is obsolete"),
        ("description: x\npackages: [{a1: {version: '< 1.0'}}]\n", "'<' is obsolete"),
        ("description: x\npackages: [{a1: {version: '>= v1'}}]\n", "'v1' is not a Debian"),
        ("description: x\npackages: [{a1: {version: '>= 1.0-'}}]\n", "not a Debian version"),
        ("description: x\npackages: [{a1: {version: '>= 1_0'}}]\n", "not a Debian version"),
        ("description: x\npackages: [{a1: {why: because}}]\n", "a1.why without a version"),
        ("description: x\npackages: [{a1: {version: '>= 1', why: [x]}}]\n", "why must be a text"),
        ("description: x\npackages: [{a1: {versions: '>= 1'}}]\n", "unknown key .*versions"),
    ],
)
def test_bad_package_lists_name_file_and_key(tmp_path: Path, text: str, match: str) -> None:
    f = tmp_path / "role.yaml"
    with pytest.raises(ConfigError, match=match):
        parse_packages(f, yaml.safe_load(text)["packages"])


@pytest.mark.parametrize(
    ("value", "op", "version"),
    [
        (">= 0.8.1", ">=", "0.8.1"),
        (">=0.8.1", ">=", "0.8.1"),  # dpkg takes it without the space too
        ("  <<  2011.2-0ubuntu1  ", "<<", "2011.2-0ubuntu1"),
        ("= 1:13.b.3-dfsg-2ubuntu2", "=", "1:13.b.3-dfsg-2ubuntu2"),
        (">> 0.8.8-1ubuntu3~ppalucid1", ">>", "0.8.8-1ubuntu3~ppalucid1"),
        ("<= 1.0+dfsg", "<=", "1.0+dfsg"),
    ],
)
def test_version_relations_parse(tmp_path: Path, value: str, op: str, version: str) -> None:
    f = tmp_path / "role.yaml"
    (e,) = parse_packages(f, [{"libvirt-bin": {"version": value, "why": "x\n  y"}}])
    assert (e.name, e.op, e.version, e.why) == ("libvirt-bin", op, version, "x y")
    assert e.relation == f"libvirt-bin ({op} {version})"


def test_the_compute_role_needs_libvirt_with_nwfilter(data_dir: Path) -> None:
    """Nova 2011.2's libvirt driver needs nwfilter, libvirt >= 0.8.1 (docs/nova-2011.2-facts.md
    §16): the compute role's package set says so, with why (the resolver's hint)."""
    lists = load_roles(data_dir)
    compute = role_packages(lists, "compute", "amd64")
    assert "libvirt-bin (>= 0.8.1)" in compute and "python-libvirt (>= 0.8.1)" in compute
    assert "libvirt-bin" not in compute
    notes = package_notes(lists)
    assert set(notes) >= {"libvirt-bin (>= 0.8.1)", "python-libvirt (>= 0.8.1)"}
    assert "nwfilter" in notes["libvirt-bin (>= 0.8.1)"]
    assert "ppa:nova-core/release" in notes["libvirt-bin (>= 0.8.1)"]


def test_not_arch_entries(tmp_path: Path) -> None:
    f = tmp_path / "x.yaml"
    f.write_text(
        "description: x\npackages:\n  - a1\n  - b1: {not-arch: [i386]}\n"
        "  - c1: {arch: 'amd64, i386'}\n"
    )
    entries = parse_packages(f, yaml.safe_load(f.read_text())["packages"])
    assert [e.name for e in entries if e.applies("i386")] == ["a1", "c1"]
    assert [e.name for e in entries if e.applies("armel")] == ["a1", "b1"]


def _repo(tmp_path: Path, compression: str) -> Path:
    deb = build_deb(
        {"Package": "python-eventlet", "Version": "0.9.12", "Architecture": "all",
         "Maintainer": "t <t@example.invalid>", "Depends": "python-greenlet (>= 0.3.1)",
         "Description": "test\n test"},
        {"/usr/share/doc/python-eventlet/x": b"x"}, mtime=0,
    )  # fmt: skip
    pool = "pool/main/p/python-eventlet/python-eventlet_0.9.12_all.deb"
    (tmp_path / pool).parent.mkdir(parents=True)
    (tmp_path / pool).write_bytes(deb)
    plain = index.render_packages([index.packages_stanza(deb, pool)]).encode()
    data = {
        "xz": lzma.compress(plain),
        "bz2": bz2.compress(plain),
        "gz": gzip.compress(plain),
        "": plain,
    }[compression]
    name = "main/binary-amd64/Packages" + (f".{compression}" if compression else "")
    d = tmp_path / "dists" / "lucid"
    (d / name).parent.mkdir(parents=True)
    (d / name).write_bytes(data)
    (d / "Release").write_text(
        index.render_release({"Suite": "lucid", "Codename": "lucid"}, {name: data})
    )
    return d / name


@pytest.mark.parametrize("compression", ["xz", "bz2", "gz", ""])
def test_indexes_are_read_in_every_compression(tmp_path: Path, compression: str) -> None:
    _repo(tmp_path, compression)
    repo = Repository.read(
        parse_source_line(f"deb file://{tmp_path} lucid main"), Fetcher(tmp_path / "c")
    )
    (p,) = repo.packages
    assert (p.name, p.version, p.origin, p.repo) == (
        "python-eventlet",
        "0.9.12",
        "lucid/main",
        f"file://{tmp_path}",
    )
    assert len(p.sha256) == 64 and p.size > 0
    assert not repo.authenticated


def test_index_not_matching_the_release_is_refused(tmp_path: Path) -> None:
    path = _repo(tmp_path, "gz")
    path.write_bytes(
        gzip.compress(gzip.decompress(path.read_bytes()).replace(b"0.9.12", b"0.9.13"))
    )
    with pytest.raises(ArchiveError, match="does not match the Release's SHA256"):
        Repository.read(
            parse_source_line(f"deb file://{tmp_path} lucid main"), Fetcher(tmp_path / "c")
        )


@pytest.mark.parametrize("release_file", ["Release", "InRelease"])
@pytest.mark.parametrize(
    ("release", "why"),
    [
        ("Origin: x\nSuite: lucid\nCodename: lucid\n", "it has no MD5Sum, SHA1 or SHA256 field"),
        (
            "Suite: lucid\nSHA256:\n " + "0" * 64 + " 3 restricted/binary-amd64/Packages\n",
            "it does not list it",
        ),
    ],
    ids=["no-checksum-fields", "index-not-listed"],
)
def test_index_no_release_checksum_covers_is_refused(
    tmp_path: Path, release_file: str, release: str, why: str
) -> None:
    """A tampered index is not let through because the Release says nothing about it."""
    path = _repo(tmp_path, "gz")
    path.write_bytes(gzip.compress(b"Package: evil\nVersion: 6.6.6\nArchitecture: all\n"))
    (tmp_path / "dists" / "lucid" / "Release").unlink()
    (tmp_path / "dists" / "lucid" / release_file).write_text(release)
    with pytest.raises(ArchiveError) as e:
        Repository.read(
            parse_source_line(f"deb file://{tmp_path} lucid main"), Fetcher(tmp_path / "c")
        )
    assert str(e.value) == (
        f"file://{tmp_path} lucid: no checksum in file://{tmp_path}/dists/lucid/{release_file} "
        f"covers main/binary-amd64/Packages.gz ({why}); an index nothing vouches for could be "
        "tampered with, so it is not read"
    )
    assert "apt-ftparchive" in (e.value.hint or "")


def test_index_with_an_escaping_filename_is_refused(tmp_path: Path) -> None:
    d = tmp_path / "dists" / "lucid" / "main" / "binary-amd64"
    d.mkdir(parents=True)
    plain = (
        b"Package: evil\nVersion: 1\nArchitecture: all\n"
        b"Filename: pool/../../../etc/shadow\nSize: 1\nSHA256: 00\n\n"
    )
    (d / "Packages").write_bytes(plain)
    (tmp_path / "dists" / "lucid" / "Release").write_text(
        index.render_release({"Suite": "lucid"}, {"main/binary-amd64/Packages": plain})
    )
    with pytest.raises(ArchiveError, match="refused Filename 'pool/../../../etc/shadow'"):
        Repository.read(
            parse_source_line(f"deb file://{tmp_path} lucid main"), Fetcher(tmp_path / "c")
        )


def test_unauthenticated_source_is_announced(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _repo(tmp_path, "gz")
    Repository.read(parse_source_line(f"deb file://{tmp_path} lucid main"), Fetcher(tmp_path / "c"))
    assert "UNAUTHENTICATED" in caplog.text


def test_local_directory_of_debs(tmp_path: Path) -> None:
    _repo(tmp_path / "r", "gz")
    repo = Repository.read(parse_repo_arg(str(tmp_path / "r" / "pool")), Fetcher(tmp_path / "c"))
    (p,) = repo.packages
    assert p.filename == "main/p/python-eventlet/python-eventlet_0.9.12_all.deb"


def test_a_source_may_name_more_mirrors_of_the_same_repository(tmp_path: Path) -> None:
    from distro_builder.config.packages import load_repositories_yaml

    mirrors = "mirror=http://b/ubuntu/ mirror=https://c/ubuntu"
    line = f"deb [arch=amd64 {mirrors}] http://a/ubuntu lucid main"
    spec = parse_source_line(line)
    assert spec.url == "http://a/ubuntu"
    assert spec.mirrors == ("http://b/ubuntu", "https://c/ubuntu")
    assert parse_source_line(describe(spec)) == spec
    with pytest.raises(ConfigError, match="unsupported URL scheme"):
        parse_source_line("deb [mirror=ftp://b/ubuntu] http://a/ubuntu lucid main")
    y = tmp_path / "r.yaml"
    y.write_text(
        "repositories:\n- url: http://a/ubuntu\n  suite: lucid\n  components: [main]\n"
        "  mirrors: [http://b/ubuntu]\n"
    )
    (from_yaml,) = load_repositories_yaml(y)
    assert from_yaml.mirrors == ("http://b/ubuntu",)
