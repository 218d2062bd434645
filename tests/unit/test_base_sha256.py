"""The base ISO's SHA-256 (build manifest) is remembered for the file as it is, not trusted after
a change."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from distro_builder import build


def test_base_sha256_is_remembered_until_the_file_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base, cache = tmp_path / "base.iso", tmp_path / "cache"
    base.write_bytes(b"lucid" * 1000)
    reads: list[Path] = []
    real = build._sha256_file

    def counted(path: Path) -> str:
        reads.append(path)
        return real(path)

    monkeypatch.setattr(build, "_sha256_file", counted)
    want = hashlib.sha256(base.read_bytes()).hexdigest()
    assert build._base_sha256(base, cache) == want
    assert build._base_sha256(base, cache) == want
    assert len(reads) == 1  # the second build did not read it

    st = base.stat()
    with base.open("r+b") as f:  # same size, same mtime: the ctime still moves
        f.write(b"L")
    os.utime(base, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert build._base_sha256(base, cache) == hashlib.sha256(base.read_bytes()).hexdigest()
    assert len(reads) == 2

    (link := tmp_path / "link.iso").symlink_to(base)  # the same file by another name
    assert build._base_sha256(link, cache) == build._base_sha256(base, cache)
    assert len(reads) == 2


def test_a_bad_or_unwritable_cache_only_costs_the_hash(tmp_path: Path) -> None:
    base = tmp_path / "base.iso"
    base.write_bytes(b"x" * 100)
    want = hashlib.sha256(base.read_bytes()).hexdigest()
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the cache folder would be\n")
    assert build._base_sha256(base, blocked) == want
    cache = tmp_path / "cache"
    assert build._base_sha256(base, cache) == want
    (entry,) = (cache / "base-sha256").iterdir()
    entry.write_text(entry.read_text().replace(want, "0" * 64)[:-5])  # damaged JSON
    assert build._base_sha256(base, cache) == want
