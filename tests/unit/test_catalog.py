"""Catalogs: an index read into rows, IndexPackages made on demand, the parsed-index cache (keyed
by content and code, atomic, a damaged entry rebuilt), and the resolver seeing the same packages
through a Catalog as through a list."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pytest

from distro_builder.archive import catalog, deb822
from distro_builder.archive.catalog import Catalog, read_catalog, to_index_package
from distro_builder.archive.resolve import Universe, resolve
from distro_builder.errors import ArchiveError

INDEX = b"""\
Package: nova-compute
Version: 2011.2-0ubuntu1
Architecture: all
Depends: nova-common (= 2011.2-0ubuntu1), kvm | qemu-kvm, python-libvirt
Source: nova (2011.2-0ubuntu1)
Section: net
Filename: pool/main/n/nova/nova-compute_2011.2-0ubuntu1_all.deb
Size: 1234
SHA256: aa
Description: OpenStack Compute - compute node
 The compute worker.

Package: nova-common
Version: 2011.2-0ubuntu1
Architecture: all
Filename: pool/main/n/nova/nova-common_2011.2-0ubuntu1_all.deb
Size: 10

Package: qemu-kvm
Version: 0.12.3
Architecture: amd64
Provides: kvm, qemu (= 0.12.3)
Filename: pool/main/q/qemu-kvm/qemu-kvm_0.12.3_amd64.deb
Size: 20

Package: qemu-kvm
Version: 0.12.4
Architecture: i386
Provides: kvm
Filename: pool/main/q/qemu-kvm/qemu-kvm_0.12.4_i386.deb
Size: 21

Package: python-libvirt
Version: 0.8.3
Architecture: amd64
Filename: pool/main/p/python-libvirt/python-libvirt_0.8.3_amd64.deb
Size: 30
"""

ARGS = {"origin": "lucid/main", "repo": "file:///r", "flat": False}


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    prepare = catalog._prepare

    def counted(raw: bytes, name: str, **kw: object) -> object:
        calls.append(name)
        return prepare(raw, name, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(catalog, "_prepare", counted)
    return calls


def test_catalog_holds_what_to_index_package_makes() -> None:
    cat = read_catalog(INDEX, "Packages", **ARGS)
    expected = [to_index_package(s, **ARGS) for s in deb822.parse(INDEX, "Packages")]
    assert list(cat) == expected and len(cat) == 5
    assert [p.version for p in cat.named("qemu-kvm")] == ["0.12.3", "0.12.4"]
    assert cat.named("qemu-kvm")[0] is cat.named("qemu-kvm")[0]  # made once
    assert cat.named("nova-compute")[0].source == "nova"
    assert [(p.key, v) for p, v in cat.providing("qemu")] == [("qemu-kvm_0.12.3_amd64", "0.12.3")]
    assert [p.arch for p, _ in cat.providing("kvm")] == ["amd64", "i386"]
    assert cat.names() == {
        "nova-compute",
        "nova-common",
        "qemu-kvm",
        "python-libvirt",
        "kvm",
        "qemu",
    }
    assert list(Catalog.join([cat, Catalog.of(list(cat)[:1])]))[-1].name == "nova-compute"


def test_resolution_is_the_same_through_a_catalog() -> None:
    cat = read_catalog(gzip.compress(INDEX), "Packages.gz", **ARGS)
    packages = [to_index_package(s, **ARGS) for s in deb822.parse(INDEX, "Packages")]
    via_catalog = resolve(["nova-compute"], Universe([cat], "amd64")).packages
    via_list = resolve(["nova-compute"], Universe([packages], "amd64")).packages
    assert via_catalog == via_list
    assert [p.key for p in via_catalog] == [
        "nova-common_2011.2-0ubuntu1_all",
        "nova-compute_2011.2-0ubuntu1_all",
        "python-libvirt_0.8.3_amd64",
        "qemu-kvm_0.12.3_amd64",
    ]


def test_cache_is_keyed_by_content(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _counting(monkeypatch)
    first = list(read_catalog(INDEX, "a", cache_dir=tmp_path, **ARGS))
    again = list(read_catalog(INDEX, "b", cache_dir=tmp_path, **ARGS))
    assert first == again and calls == ["a"]  # the second read came from the cache
    changed = INDEX.replace(b"Version: 0.8.3", b"Version: 0.8.4")
    assert (
        read_catalog(changed, "c", cache_dir=tmp_path, **ARGS).named("python-libvirt")[0].version
        == "0.8.4"
    )
    assert calls == ["a", "c"]
    # the checks depend on flat: a flat read is not served a dists/ read's rows
    read_catalog(INDEX, "d", cache_dir=tmp_path, **{**ARGS, "flat": True})
    assert calls[-1] == "d"
    assert not [f for f in (tmp_path / "parsed").iterdir() if f.name.startswith(".")]


@pytest.mark.parametrize(
    "damage",
    [
        lambda b: b"\x00garbage",
        lambda b: b[: len(b) // 2],  # cut short
        lambda b: b[:-3] + bytes([b[-3] ^ 1]) + b[-2:],  # one bit flipped
        lambda b: b"",
    ],
    ids=["garbage", "truncated", "bit-flip", "empty"],
)
def test_damaged_cache_entry_is_rebuilt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, damage: object
) -> None:
    calls = _counting(monkeypatch)
    first = list(read_catalog(INDEX, "a", cache_dir=tmp_path, **ARGS))
    (entry,) = (tmp_path / "parsed").iterdir()
    entry.write_bytes(damage(entry.read_bytes()))  # type: ignore[operator]
    assert list(read_catalog(INDEX, "b", cache_dir=tmp_path, **ARGS)) == first
    assert calls == ["a", "b"]
    assert list(read_catalog(INDEX, "c", cache_dir=tmp_path, **ARGS)) == first
    assert calls == ["a", "b"]  # rewritten whole


def test_changed_code_is_a_new_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _counting(monkeypatch)
    read_catalog(INDEX, "a", cache_dir=tmp_path, **ARGS)
    (tmp_path / "parsed" / "0123.v1.marshal").write_bytes(b"an entry of the old stanza cache")
    monkeypatch.setattr(catalog, "_code", lambda: "another-version")
    read_catalog(INDEX, "b", cache_dir=tmp_path, **ARGS)
    assert calls == ["a", "b"]
    # what another version wrote is gone
    assert [f.name.rsplit(".", 1)[1] for f in (tmp_path / "parsed").iterdir()] == [
        "another-version"
    ]


def test_unwritable_cache_costs_only_time(tmp_path: Path) -> None:
    (tmp_path / "parsed").write_text("a file where the folder should be")
    assert len(read_catalog(INDEX, "a", cache_dir=tmp_path, **ARGS)) == 5


def test_bad_stanzas_are_refused(tmp_path: Path) -> None:
    cases = [
        (b"Package: a\nFilename: pool/a\n\nVersion: 1\n", r"^Packages: stanza 2 has no Package"),
        (b"Package: a\nFilename: pool/a\nSize: big\n", r"^lucid/main: a: Size is not a number"),
        (b"Package: a\nFilename: ../a\n", r"^refused Filename '../a' in lucid/main"),
        (
            b"Package: a\nFilename: pool/a\nDepends: b\x00c\n",
            r"^Packages: stanza 1 \(a\): a .* NUL",
        ),
    ]
    for raw, message in cases:
        with pytest.raises(ArchiveError, match=message):
            read_catalog(raw, "Packages", cache_dir=tmp_path, **ARGS)
    assert not (tmp_path / "parsed").exists()  # nothing refused is cached


def test_least_recently_used_entries_go_beyond_the_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three versions of an index (a mirror that moved on twice); the limit holds two entries.
    The one read again most recently stays, the oldest goes, the one just written stays."""
    calls = _counting(monkeypatch)
    versions = [INDEX.replace(b"2011.2-0ubuntu1", f"2011.2-0ubuntu{i}".encode()) for i in (1, 2, 3)]
    read_catalog(versions[0], "v1", cache_dir=tmp_path, **ARGS)
    (entry,) = (tmp_path / "parsed").iterdir()
    monkeypatch.setattr(catalog, "KEEP_BYTES", 2 * entry.stat().st_size + 10)
    read_catalog(versions[1], "v2", cache_dir=tmp_path, **ARGS)
    old = 1_000_000_000  # both entries long unused ...
    for f in (tmp_path / "parsed").iterdir():
        os.utime(f, (old, old))
    read_catalog(versions[0], "v1 again", cache_dir=tmp_path, **ARGS)  # ... then v1 is a hit
    read_catalog(versions[2], "v3", cache_dir=tmp_path, **ARGS)  # a miss: written, then pruned
    assert calls == ["v1", "v2", "v3"]
    read_catalog(versions[0], "v1 kept", cache_dir=tmp_path, **ARGS)
    read_catalog(versions[2], "v3 kept", cache_dir=tmp_path, **ARGS)
    assert calls == ["v1", "v2", "v3"]
    read_catalog(versions[1], "v2 gone", cache_dir=tmp_path, **ARGS)
    assert calls == ["v1", "v2", "v3", "v2 gone"]
