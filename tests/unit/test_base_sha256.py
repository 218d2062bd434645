"""The base ISO's SHA-256 (build manifest) is remembered for the file as it is, not trusted after
a change."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from distro_builder import basedigest


def test_base_sha256_is_remembered_until_the_file_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base, cache = tmp_path / "base.iso", tmp_path / "cache"
    base.write_bytes(b"lucid" * 1000)
    reads: list[Path] = []
    real = basedigest.sha256_file

    def counted(path: Path, *, background: bool = False) -> str:
        assert background  # below the build's own threads (nice)
        reads.append(path)
        return real(path, background=background)

    monkeypatch.setattr(basedigest, "sha256_file", counted)
    want = hashlib.sha256(base.read_bytes()).hexdigest()
    assert basedigest.base_sha256(base, cache) == want
    assert basedigest.base_sha256(base, cache) == want
    assert len(reads) == 1  # the second build did not read it

    st = base.stat()
    with base.open("r+b") as f:  # same size, same mtime: the ctime still moves
        f.write(b"L")
    os.utime(base, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert basedigest.base_sha256(base, cache) == hashlib.sha256(base.read_bytes()).hexdigest()
    assert len(reads) == 2

    (link := tmp_path / "link.iso").symlink_to(base)  # the same file by another name
    assert basedigest.base_sha256(link, cache) == basedigest.base_sha256(base, cache)
    assert len(reads) == 2


def test_a_bad_or_unwritable_cache_only_costs_the_hash(tmp_path: Path) -> None:
    base = tmp_path / "base.iso"
    base.write_bytes(b"x" * 100)
    want = hashlib.sha256(base.read_bytes()).hexdigest()
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the cache folder would be\n")
    assert basedigest.base_sha256(base, blocked) == want
    cache = tmp_path / "cache"
    assert basedigest.base_sha256(base, cache) == want
    (entry,) = (cache / "base-sha256").iterdir()
    entry.write_text(entry.read_text().replace(want, "0" * 64)[:-5])  # damaged JSON
    assert basedigest.base_sha256(base, cache) == want


@pytest.mark.parametrize(
    "name", ["base.iso", "-starts-with-a-dash.iso", "new\nline.iso", "back\\slash.iso"]
)
def test_openssl_hashes_the_base_and_python_is_the_fallback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """`openssl dgst` hashes in a process of its own (no GIL to share with the build's main
    thread); a name openssl prints escaped, or no openssl, falls back to hashlib here."""
    from distro_builder.run import require_tool

    require_tool("openssl", reason="hash the base ISO beside the build")
    base = tmp_path / name
    base.write_bytes(os.urandom(3 << 20))
    want = hashlib.sha256(base.read_bytes()).hexdigest()
    here = basedigest._sha256_here
    used_here: list[Path] = []

    def counted(path: Path) -> str:
        used_here.append(path)
        return here(path)

    monkeypatch.setattr(basedigest, "_sha256_here", counted)
    assert basedigest.sha256_file(base) == want
    # OpenSSL 1.1 prints "\<hex>" for a name with a newline or a backslash; 3.0 does not
    escaped = subprocess.run(["openssl", "dgst", "-sha256", "-r", os.fspath(base)],
                             capture_output=True, check=True).stdout.startswith(b"\\")  # fmt: skip
    assert len(used_here) == (1 if escaped else 0)

    monkeypatch.setattr(basedigest, "find_tool", lambda _name: None)
    assert basedigest.sha256_file(base) == want
    assert len(used_here) == (2 if escaped else 1)


def test_the_base_is_hashed_below_the_builds_own_threads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In the background (base_sha256) openssl runs at nice 10: the build's write and its
    own hash come first; the manifest takes the digest last."""
    from distro_builder.run import require_tool

    require_tool("openssl", reason="hash the base ISO beside the build")
    require_tool("nice", reason="lower the base hash's priority")
    base = tmp_path / "base.iso"
    base.write_bytes(b"lucid" * 1000)
    seen: list[list[str]] = []
    real = basedigest.run

    def recorded(argv, **kw):  # type: ignore[no-untyped-def]
        seen.append([os.path.basename(str(a)) for a in argv])
        return real(argv, **kw)

    monkeypatch.setattr(basedigest, "run", recorded)
    want = hashlib.sha256(base.read_bytes()).hexdigest()
    assert basedigest.base_sha256(base, tmp_path / "cache") == want
    assert basedigest.sha256_file(base) == want
    assert seen[0][:4] == ["nice", "-n", "10", "openssl"]
    assert seen[1][0] == "openssl"  # in the foreground: as it is
