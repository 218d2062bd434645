"""archive/controls.py: a .deb's control fields kept by its SHA-256, in the package cache."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
from pathlib import Path

import pytest

from distro_builder.archive import controls, index
from distro_builder.archive.controls import FILE_NAME, ControlCache
from distro_builder.archive.debs import build_deb
from distro_builder.archive.index import packages_stanza

FILENAME = "pool/main/n/nova/nova-common_2011.2-0ubuntu1_all.deb"


def make_deb(package: str = "nova-common", description: str = "demo package") -> bytes:
    control = {
        "Package": package,
        "Version": "2011.2-0ubuntu1",
        "Architecture": "all",
        "Maintainer": "Demo <demo@example.invalid>",
        "Depends": "python (>= 2.6)",
        "Description": f"{description}\nSecond line.\n\nThird.",
    }
    return build_deb(control, {f"/usr/share/doc/{package}/README": b"demo\n"}, mtime=0)


def no_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(deb: bytes, filename: str) -> dict[str, str]:
        raise AssertionError(f"{filename} was parsed again")

    monkeypatch.setattr(index, "_read_control", refuse)


def test_the_stanza_is_the_same_with_kept_fields_and_the_next_run_parses_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    debs = [make_deb(f"pkg{i}") for i in range(3)]
    plain = [packages_stanza(d, FILENAME) for d in debs]
    first = ControlCache(tmp_path)
    assert [packages_stanza(d, FILENAME, controls=first) for d in debs] == plain
    first.save()
    kept = json.loads((tmp_path / FILE_NAME).read_text())
    assert set(kept["entries"]) == {hashlib.sha256(d).hexdigest() for d in debs}

    no_parsing(monkeypatch)  # a new run (a new cache object) reads them from the file
    second = ControlCache(tmp_path)
    assert [packages_stanza(d, FILENAME, controls=second) for d in debs] == plain
    with pytest.raises(AssertionError, match="parsed again"):
        packages_stanza(make_deb("new"), FILENAME, controls=second)


def test_one_run_parses_a_file_once_even_without_a_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    deb = make_deb()
    cache = ControlCache()
    stanza = packages_stanza(deb, FILENAME, controls=cache)
    stanza["Package"] = "changed by the caller"  # a copy each time
    no_parsing(monkeypatch)
    assert packages_stanza(deb, FILENAME, controls=cache)["Package"] == "nova-common"
    cache.save()  # no folder: nothing to write, no error


def test_the_key_is_the_bytes_not_the_name(tmp_path: Path) -> None:
    a, b = make_deb(description="one"), make_deb(description="two")  # same name and version
    cache = ControlCache(tmp_path)
    assert packages_stanza(a, FILENAME, controls=cache)["Description"].startswith("one")
    assert packages_stanza(b, FILENAME, controls=cache)["Description"].startswith("two")


def test_another_python_debian_version_starts_afresh(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    deb = make_deb()
    cache = ControlCache(tmp_path)
    packages_stanza(deb, FILENAME, controls=cache)
    cache.save()
    monkeypatch.setattr(controls, "python_debian_version", lambda: "99.0")
    calls: list[str] = []
    real = index._read_control

    def counted(data: bytes, filename: str) -> dict[str, str]:
        calls.append(filename)
        return real(data, filename)

    monkeypatch.setattr(index, "_read_control", counted)
    again = ControlCache(tmp_path)
    packages_stanza(deb, FILENAME, controls=again)
    assert calls == [FILENAME]
    again.save()
    assert json.loads((tmp_path / FILE_NAME).read_text())["python-debian"] == "99.0"


@pytest.mark.parametrize(
    "damage",
    [
        b"{not json",
        b'{"format": "controls-1"}',
        b"[]",
        b"\xff\xfe",
    ],
)
def test_a_damaged_file_costs_only_the_parsing(tmp_path: Path, damage: bytes) -> None:
    deb = make_deb()
    (tmp_path / FILE_NAME).write_bytes(damage)
    cache = ControlCache(tmp_path)
    assert packages_stanza(deb, FILENAME, controls=cache) == packages_stanza(deb, FILENAME)
    cache.save()
    kept = json.loads((tmp_path / FILE_NAME).read_text())
    assert list(kept["entries"]) == [hashlib.sha256(deb).hexdigest()]


@pytest.mark.parametrize(
    "entry",
    [
        [["Package", "x"], ["Version", "1"]],  # no Architecture
        [["Package", ""], ["Version", "1"], ["Architecture", "all"]],
        [["Package", "x", "extra"]],
        "Package: x",
        [[1, 2]],
    ],
)
def test_a_damaged_entry_is_parsed_again(tmp_path: Path, entry: object) -> None:
    deb = make_deb()
    sha = hashlib.sha256(deb).hexdigest()
    data = {
        "format": controls.FORMAT,
        "python-debian": index.python_debian_version(),
        "entries": {sha: entry},
    }
    (tmp_path / FILE_NAME).write_text(json.dumps(data))
    stanza = packages_stanza(deb, FILENAME, controls=ControlCache(tmp_path))
    assert stanza == packages_stanza(deb, FILENAME)


def test_the_oldest_entries_go_and_this_runs_stay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(controls, "MAX_ENTRIES", 3)
    debs = [make_deb(f"p{i}") for i in range(5)]
    shas = [hashlib.sha256(d).hexdigest() for d in debs]
    first = ControlCache(tmp_path)
    for d in debs[:3]:
        packages_stanza(d, FILENAME, controls=first)
    first.save()
    second = ControlCache(tmp_path)  # uses p0 again, adds p3 and p4
    for d in (debs[0], debs[3], debs[4]):
        packages_stanza(d, FILENAME, controls=second)
    second.save()
    kept = json.loads((tmp_path / FILE_NAME).read_text())["entries"]
    assert list(kept) == [shas[0], shas[3], shas[4]]


def test_nothing_new_nothing_written(tmp_path: Path) -> None:
    deb = make_deb()
    first = ControlCache(tmp_path)
    packages_stanza(deb, FILENAME, controls=first)
    first.save()
    path = tmp_path / FILE_NAME
    before = path.stat().st_mtime_ns
    path.chmod(0o444)
    second = ControlCache(tmp_path)
    packages_stanza(deb, FILENAME, controls=second)
    second.save()
    assert path.stat().st_mtime_ns == before


def test_a_folder_that_cannot_be_written_is_not_an_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    cache = ControlCache(blocker / "cache")
    stanza = packages_stanza(make_deb(), FILENAME, controls=cache)
    cache.save()
    assert stanza["Package"] == "nova-common"


def test_python_debian_version_is_the_installed_one() -> None:
    # the catalog cache's key carries it too: the same string as importlib.metadata's
    assert index.python_debian_version() == importlib.metadata.version("python-debian")
