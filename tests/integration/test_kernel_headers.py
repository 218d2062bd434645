"""The volume role's kernel headers match the disc's kernel (issue 22 finding 9).

iscsitarget-dkms builds ietd's module against the running kernel's headers; the demo disc (like
a real point-release disc) ships linux-image-2.6.32-38-server while the archive's
linux-headers-server may still depend on older headers (the demo's: 2.6.32-31). The package set
takes the headers of the kernel the installer installs from the disc, or refuses the build
saying which are missing. Against the demo base and the demo repositories. 1 s (the session's
demo base).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from distro_builder.archive.sources import read_disc_packages
from distro_builder.cli import main
from distro_builder.demorepo import build_demo_repo
from distro_builder.errors import DependencyError
from distro_builder.media.iso import IsoImage
from distro_builder.media.layout import detect_flavor
from distro_builder.model import IndexPackage
from distro_builder.packageset import image_reader, match_kernel_headers

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def demo_repo(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    return build_demo_repo(data_dir, tmp_path_factory.mktemp("repo") / "repo")


def test_the_volume_role_gets_the_discs_kernel_headers(
    demo_base: Path, demo_repo: Path, data_dir: Path, tmp_path: Path
) -> None:
    result = CliRunner().invoke(main, [
        "--data-dir", str(data_dir), "resolve", "--base", str(demo_base), "--role", "volume",
        "--sources", str(demo_repo / "sources.list"), "--cache", str(tmp_path / "cache"), "--json",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    role = plan["roles"]["volume"]
    names = set(role["closure"])
    assert "linux-headers-2.6.32-38-server" in names, sorted(names)
    assert not {n for n in names if n.startswith("linux-headers-2.6.32-31")}
    assert "linux-headers-server" not in role["roots"]


def _disc(demo_base: Path) -> list[IndexPackage]:
    with IsoImage(demo_base) as image:
        return list(read_disc_packages(image_reader(image), detect_flavor(image)))


def _headers(name: str, version: str) -> IndexPackage:
    return IndexPackage(name, version, "amd64", "lucid/main", depends="coreutils")


def test_no_headers_for_the_discs_kernel_refuses_the_build(demo_base: Path) -> None:
    disc = _disc(demo_base)
    stale = [
        IndexPackage(
            "linux-headers-server",
            "2.6.32.38.44",
            "amd64",
            "lucid/main",
            depends="linux-headers-2.6.32-31-server",
        ),  # fmt: skip
        _headers("linux-headers-2.6.32-31-server", "2.6.32-31.61"),
    ]
    roots = {"volume": ("nova-volume", "linux-headers-server")}
    with pytest.raises(DependencyError) as e:
        match_kernel_headers(roots, disc, [stale], "amd64", "linux-server")
    assert "linux-image-2.6.32-38-server" in str(e.value)
    assert "linux-headers-2.6.32-38-server" in str(e.value)
    assert e.value.hint and "linux-headers-2.6.32-38-server" in e.value.hint
    fixed = match_kernel_headers(
        roots, disc, [[*stale, _headers("linux-headers-2.6.32-38-server", "2.6.32-38.83")]],
        "amd64", "linux-server",
    )  # fmt: skip
    assert fixed == {"volume": ("nova-volume", "linux-headers-2.6.32-38-server")}
    # roles without headers are left alone
    assert match_kernel_headers({"compute": ("nova-compute",)}, disc, [stale], "amd64",
                                "linux-server") == {"compute": ("nova-compute",)}  # fmt: skip
