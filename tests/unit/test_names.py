"""ISO 9660 / Joliet name generation: limits per interchange level, uniqueness, extensions."""

from __future__ import annotations

import re

import pytest

from distro_builder.media import names

D_NAME = re.compile(r"^[A-Z0-9_]+\.[A-Z0-9_]*;1$")


def test_level3_name_fits_30_characters_and_keeps_extension() -> None:
    n = names.iso_file_name("nova-compute_2011.2-0ubuntu1_all.deb", 3, set())
    assert n == "NOVA_COMPUTE_2011_2_0UBUNTU.DEB;1"
    assert len(n.split(";")[0]) <= 31 and D_NAME.match(n)


def test_names_that_collapse_to_the_same_identifier_stay_distinct() -> None:
    taken: set[str] = set()
    rr = [
        "nova-compute_2011.2-0ubuntu1_all.deb",
        "nova-compute_2011.2-0ubuntu2_all.deb",
        "nova-compute-kvm_2011.2-0ubuntu1_all.deb",
        "nova-common_2011.2-0ubuntu1_all.deb",
        "nova-compute_2011.2-0ubuntu1_all.DEB",
    ] + [f"nova-compute_2011.2-0ubuntu1~ppa{i}_all.deb" for i in range(15)]
    got = []
    for name in rr:
        ident = names.iso_file_name(name, 3, taken)
        taken.add(ident.split(";")[0])
        got.append(ident)
    assert len(set(got)) == len(rr)
    assert all(D_NAME.match(g) and len(g.split(";")[0]) <= 31 for g in got)
    assert all(g.endswith(".DEB;1") for g in got)


def test_level1_is_8_3() -> None:
    taken: set[str] = set()
    for rr in ["ubuntu-server.seed", "ubuntu-server-minimal.seed", "ubuntu-server-x.seed"]:
        ident = names.iso_file_name(rr, 1, taken)
        stem, ext = ident.split(";")[0].split(".")
        assert len(stem) <= 8 and len(ext) <= 3
        assert ident.split(";")[0] not in taken
        taken.add(ident.split(";")[0])
    assert len(taken) == 3


def test_file_without_extension_gets_a_trailing_dot() -> None:
    assert names.iso_file_name("Packages", 3, set()) == "PACKAGES.;1"


def test_directory_names() -> None:
    assert names.iso_dir_name("binary-amd64", 3, set()) == "BINARY_AMD64"
    assert names.iso_dir_name("debian-installer", 1, set()) == "DEBIAN_I"
    assert names.iso_dir_name("debian-installer", 1, {"DEBIAN_I"}) == "DEBIAN_1"
    long = "x" * 40
    assert len(names.iso_dir_name(long, 3, set())) == 31


@pytest.mark.parametrize("length", [64, 65, 77, 200])
def test_joliet_cut_to_64_keeping_extension(length: int) -> None:
    rr = "l" * (length - 4) + ".deb"
    j = names.joliet_name(rr, set())
    assert len(j) == min(length, 64)
    assert j.endswith(".deb")


def test_joliet_long_names_sharing_a_prefix_stay_distinct() -> None:
    stem = "linux-image-2.6.32-21-generic-pae-with-a-very-long-suffix_2.6.32-21."
    taken: set[str] = set()
    out = []
    for rev in range(12):
        j = names.joliet_name(f"{stem}{rev}_amd64.deb", taken)
        assert len(j) <= 64 and j.endswith(".deb") and ".." not in j
        assert j.lower() not in {t.lower() for t in taken}
        taken.add(j)
        out.append(j)
    assert len(set(out)) == 12


def test_joliet_forbidden_characters_replaced() -> None:
    assert names.joliet_name("a:b;c*d?.txt", set()) == "a_b_c_d_.txt"
