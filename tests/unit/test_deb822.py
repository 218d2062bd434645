"""The one deb822 reader: apt_pkg's TagFile and the Python rules agree."""

from __future__ import annotations

import pytest

from distro_builder.archive import deb822
from distro_builder.errors import ArchiveError

CORPUS = """\
Package: nova-compute
Version: 2011.2-0ubuntu1
Depends: nova-common (= 2011.2-0ubuntu1), kvm | qemu-kvm,
 libvirt-bin (>= 0.8.3),
\tpython-libvirt
Description: OpenStack Compute - compute node
 The compute worker.
 .
 Second paragraph.\x20\x20
Empty:

Package: b
Version: 1:2.0~rc1-3
Multi-Arch: foreign


Package: c
Version: 1
Long-Field: a:b:c
"""

EXPECTED = [
    {
        "Package": "nova-compute",
        "Version": "2011.2-0ubuntu1",
        "Depends": "nova-common (= 2011.2-0ubuntu1), kvm | qemu-kvm,\n libvirt-bin (>= 0.8.3),"
        "\n\tpython-libvirt",
        "Description": "OpenStack Compute - compute node\n The compute worker.\n .\n"
        " Second paragraph.",
        "Empty": "",
    },
    {"Package": "b", "Version": "1:2.0~rc1-3", "Multi-Arch": "foreign"},
    {"Package": "c", "Version": "1", "Long-Field": "a:b:c"},
]

PARSERS = [False, pytest.param(True, marks=pytest.mark.skipif(
    not deb822.has_apt_pkg(), reason="apt_pkg (python3-apt) not importable"))]  # fmt: skip


@pytest.mark.parametrize("apt", PARSERS)
def test_both_parsers_read_the_corpus_alike(apt: bool) -> None:
    assert deb822.parse(CORPUS, "corpus", apt=apt) == EXPECTED
    assert deb822.parse(CORPUS.replace("\n", "\r\n").encode(), "corpus", apt=apt) == EXPECTED


@pytest.mark.parametrize("apt", PARSERS)
@pytest.mark.parametrize(
    ("text", "line"),
    [(" leading continuation\n", 1), ("Package: a\nthis is no field\n", 2)],
)
def test_malformed_text_names_the_line(apt: bool, text: str, line: int) -> None:
    with pytest.raises(ArchiveError, match=f"^control:{line}: "):
        deb822.parse(text, "control", apt=apt)


def test_not_utf8() -> None:
    with pytest.raises(ArchiveError, match="not UTF-8"):
        deb822.parse(b"Package: \xff\n", "Packages")


@pytest.mark.parametrize("apt", PARSERS)
def test_parse_fields_is_parse_for_some_fields(apt: bool) -> None:
    fields = ("Version", "Package", "Missing")
    assert deb822.parse_fields(CORPUS, "corpus", fields, apt=apt) == [
        tuple(s.get(f, "") for f in fields) for s in EXPECTED
    ]


@pytest.mark.parametrize("apt", PARSERS)
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # TagFile would make "# note\nVersion" one field name, and keep one stanza over a line of
        # spaces: both read as deb822(5) says
        ("Package: a\n# note\nVersion: 1\n", [{"Package": "a", "Version": "1"}]),
        ("Package: a\n \t\nPackage: b\n", [{"Package": "a"}, {"Package": "b"}]),
        ("\n\nPackage: a\n\n\n", [{"Package": "a"}]),
    ],
    ids=["comment", "spaces-line", "blank-lines"],
)
def test_both_parsers_agree_where_tagfile_differs(apt: bool, text: str, expected: list) -> None:
    assert deb822.parse(text, "x", apt=apt) == expected
