"""A role is a unit: adding a folder under roles/ is all it takes to add a role.

tests/data/fifth-role/image/ (Glance alone on its node: one question, one package list, one
step) is copied into a copy of the data folders, plus one node shape in architectures.yaml (data
too). Then, with no Python or shell code changed, the real tool, run with --data-dir on that
copy, gives the role everything a role has: a boot entry, its preseed, its metapackage, its
question in the installer (late.sh under busybox with cdebconf) and on the node (the agent in a
debootstrap root asks it), its first-boot step, and a place in the Smart Installer.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from distro_builder.agent import build_agent_deb
from distro_builder.config.roles import load_roles
from distro_builder.media.initrd import read_initrd_file
from distro_builder.media.iso import IsoImage
from distro_builder.media.layout import read_boot_menu
from distro_builder.smart_installer.db import Database
from distro_builder.smart_installer.store import Store
from tests.helpers import require_tool_or_skip

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
FIFTH = ROOT / "tests" / "data" / "fifth-role" / "image"
DATA_FOLDERS = ("demo", "roles", "questions", "preseed", "bootmenu", "d-i", "agent",
                "smart_installer")  # fmt: skip
NODE_SHAPE = (
    "      - {name: volume, label: Install StackOps volume node, roles: [volume], max: null}\n"
)


def _cli(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "distro_builder", "--data-dir", str(data), *args],
        capture_output=True, text=True, timeout=600, env={**os.environ},
    )  # fmt: skip


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    copy = tmp_path_factory.mktemp("five-roles")
    for folder in DATA_FOLDERS:
        shutil.copytree(data_dir / folder, copy / folder)
    shutil.copytree(FIFTH, copy / "roles" / "image")
    arch = copy / "roles" / "architectures.yaml"
    text = arch.read_text()
    assert text.count(NODE_SHAPE) == 1  # multi-node's volume node: the image node after it
    arch.write_text(
        text.replace(
            NODE_SHAPE,
            NODE_SHAPE + "      - {name: image, label: Install StackOps image node, "
            "roles: [image], min: 0, max: null}\n",
        )
    )
    return copy


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, data: Path, demo_base: Path) -> Path:
    require_tool_or_skip("debconf-set-selections", "dpkg-deb")
    out = tmp_path_factory.mktemp("five-roles-iso")
    repo = _cli(data, "demo-repo", "-o", str(out / "repo"))
    assert repo.returncode == 0, repo.stderr
    iso = out / "stackops.iso"
    proc = _cli(data, "build", "--base", str(demo_base), "-o", str(iso),
                "--sources", str(out / "repo" / "sources.list"))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return iso


def test_the_roles_are_the_folders(data: Path) -> None:
    roleset = load_roles(data)
    assert roleset.names == ("controller", "network", "volume", "image", "compute")  # order: 35
    assert roleset.asked_by("image_store") == ("image",)


def test_the_disc_has_its_entry_preseed_metapackage_and_question(built: Path) -> None:
    with IsoImage(built) as image:
        menu = read_boot_menu(image)
        entry = next(e for e in menu.entries if e.label == "image")
        assert entry.menu_label == "Install StackOps image node"
        assert "stackops/roles=image" in entry.append.split()
        seed = image.read_text("/preseed/stackops-image.seed") or ""
        assert "d-i pkgsel/include string stackops-image" in seed
        assert "mysql-server" not in seed  # no role of it asks for MySQL's root password
        pool = [e.path for e in image.walk("/pool/extras") if e.path.endswith(".deb")]
        meta = next(p for p in pool if p.rsplit("/", 1)[-1].startswith("stackops-image_"))
        control = _control(image.read(meta))
        assert "Depends: " in control and "glance" in control.split("Depends: ")[1]
        agent = image.read(next(p for p in pool if "/stackops-agent_" in p))
        initrd = image.read("/install/initrd.gz")
    table = (read_initrd_file(initrd, "stackops/questions") or b"").decode()
    line = next(ln for ln in table.splitlines() if ln.startswith("image_store|"))
    assert line.split("|")[1:3] == ["name", "image"]
    templates = (read_initrd_file(initrd, "stackops/stackops.templates") or b"").decode()
    assert "Template: stackops/image_store" in templates
    shipped = _data_files(agent)
    assert "./usr/share/stackops/roles/image/steps.sh" in shipped
    assert b"image|node|base|image-store|glance-api|" in shipped["./usr/share/stackops/roles.table"]
    assert b"image_store|name|image|" in shipped["./usr/share/stackops/questions"]


def _ar_members(deb: bytes) -> dict[str, bytes]:
    assert deb[:8] == b"!<arch>\n"
    out, pos = {}, 8
    while pos < len(deb):
        name = deb[pos : pos + 16].decode().strip().rstrip("/")
        size = int(deb[pos + 48 : pos + 58].decode().strip())
        out[name] = deb[pos + 60 : pos + 60 + size]
        pos += 60 + size + (size % 2)
    return out


def _control(deb: bytes) -> str:
    member = next(v for k, v in _ar_members(deb).items() if k.startswith("control.tar"))
    with tarfile.open(fileobj=io.BytesIO(member)) as tar:
        f = tar.extractfile("./control")
        assert f is not None
        return f.read().decode()


def _data_files(deb: bytes) -> dict[str, bytes]:
    member = next(v for k, v in _ar_members(deb).items() if k.startswith("data.tar"))
    out = {}
    with tarfile.open(fileobj=io.BytesIO(member)) as tar:
        for m in tar.getmembers():
            f = tar.extractfile(m) if m.isfile() else None
            if f is not None:
                out[m.name] = f.read()
    return out


def test_the_installer_asks_its_question(tmp_path: Path, data: Path) -> None:
    from tests.integration.test_installer_script import Installer, env_ok

    env_ok.__wrapped__()  # type: ignore[attr-defined]
    installer = Installer(tmp_path, data)
    # Typed: hostname, controller address, public interface (default), the image store. The
    # passwords come on the command line (the text frontend's password prompt reads the rest of
    # a piped stdin).
    typed = "img1\n10.1.2.3\n\nimages\n"
    cmdline = (
        "stackops/roles=image stackops/nova_db_password=n0va-secret "
        "stackops/rabbit_password=r4b-secret"
    )
    proc = installer.run(cmdline, typed=typed)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "Name of the image store" in proc.stdout
    answers = installer.answers()
    assert answers["roles"] == "image" and answers["image_store"] == "images"


def test_the_node_asks_it_and_runs_its_step(tmp_path: Path, data: Path) -> None:
    from tests.integration.rootfs import Node, require_root_or_skip

    require_root_or_skip()
    require_tool_or_skip("debootstrap")
    name, deb = build_agent_deb(data, version="0.1.0", mtime=0)
    (tmp_path / name).write_bytes(deb)
    node = Node.create(tmp_path)
    node.install_deb(tmp_path / name)
    node.install_role_metapackages(("image",))  # what the installer installs for the role
    from tests.integration.test_agent_firstboot import healthy_cloud

    healthy_cloud(node)  # the controller is ready (the wait every non-controller node does)
    node.write_answers({
        "roles": "image", "hostname": "img1", "controller_address": "10.0.0.1",
        "nova_db_password": "n0va-secret", "rabbit_password": "r4bbit-secret",
    })  # fmt: skip
    run = node.run_agent("dash", stdin="images\n", env={"STACKOPS_PLAIN": "1"})
    assert run.returncode == 0, run.output
    assert "Name of the image store: " in run.output  # asked on the console
    assert "role=image name=image-store status=ok" in run.output
    assert "STACKOPS-FIRSTBOOT done roles=image" in run.output
    assert node.path("/var/lib/glance/images").is_dir()
    conf = node.path("/etc/glance/image-store.conf").read_text()
    assert conf == "filesystem_store_datadir = /var/lib/glance/images\n"


def test_the_smart_installer_assigns_it(tmp_path: Path, data: Path) -> None:
    store = Store(Database(f"sqlite:///{tmp_path / 'db.sqlite'}"), load_roles(data))
    _, token = store.create_deployment("lab", "multi-node")
    node_id, _ = store.register(token, [("hostname", "img1"), ("nic", "eth0 52:54:00:00:00:01 up")])
    node = store.assign("lab", node_id, ["image"])
    assert node["roles"] in (["image"], "image")
    assert "image_store" in str(store.deployment("lab"))  # asked of the admin now
