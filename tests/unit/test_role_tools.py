"""What Nova 2011.2 runs or reads on a node comes with the node's roles (issue 22 finding 12).

Each row names the Nova source that needs it (release tarball nova-2011.2, file:line; facts in
docs/nova-2011.2-facts.md §15).
"""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from distro_builder.config.roles import load_roles

ROOT = Path(__file__).resolve().parents[2]
NOVA_TARBALL = ROOT.parent.parent / "shared" / "upstream" / "nova-2011.2.tar.gz"

# package -> the roles whose nodes run the Nova code that needs it
NEEDED = {
    # CreateKeyPair: nova/api/ec2/cloud.py:68 -> crypto.generate_key_pair runs ssh-keygen
    # (nova/crypto.py:109-112), in nova-api on the controller
    "openssh-client": ("controller",),
    # ensure_bridge runs `sudo route -n` / `route del|add default` (nova/network/linux_net.py:
    # 500-516) in nova-network and, through setup_compute_network (nova/network/manager.py:
    # 445-449), in nova-compute
    "net-tools": ("network", "compute"),
}


def _packages(roleset: object, name: str) -> set[str]:
    role = roleset.role(name)  # type: ignore[attr-defined]
    names = {p.name for p in role.packages}
    for inc in role.includes:
        names |= {p.name for p in roleset.role(inc).packages}  # type: ignore[attr-defined]
    return names


@pytest.mark.parametrize("package", sorted(NEEDED))
def test_roles_install_what_nova_runs(package: str) -> None:
    roleset = load_roles(ROOT)
    for role in NEEDED[package]:
        assert package in _packages(roleset, role), f"{role} does not install {package}"


def test_the_controller_carries_nova_2011_2_api_paste_ini() -> None:
    """nova-api needs /etc/nova/api-paste.ini (nova/wsgi.py:570-577); the controller role carries
    2011.2's own (etc/nova/api-paste.ini) and its services step installs it when missing."""
    if not NOVA_TARBALL.exists():
        pytest.fail(f"{NOVA_TARBALL}: Nova 2011.2's release tarball is missing")
    with tarfile.open(NOVA_TARBALL) as tar:
        f = tar.extractfile("nova-2011.2/etc/nova/api-paste.ini")
        assert f is not None
        upstream = f.read()
    assert (ROOT / "roles" / "controller" / "api-paste.ini").read_bytes() == upstream
    steps = (ROOT / "roles" / "controller" / "steps.sh").read_text()
    assert '<"$SO_ROLEDIR/api-paste.ini"' in steps
