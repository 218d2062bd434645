"""One deployment, every node: the nodes' configurations agree with each other (issue 14).

For each reference architecture (roles/architectures.yaml) and a deployment's answers, every
node's configuration is rendered by the agent's own code (its libraries and the roles' steps and
nova.conf fragments, as the stackops-agent .deb installs them, under dash): nova.conf and the
plan of steps. Then the nodes are checked against each other, the way a real cloud needs them:
one sql_connection and rabbit_host; the API hosts and ec2_dmz_host point at the controller; the
DHCP range starts inside fixed_range, past the gateway; every compute node finds the volume
node's iSCSI targets (iscsi_ip_prefix, volume_host); every node that bridges the flat network
brings its interface up. Nova itself stays out (nothing here runs it); the facts these rules
come from are in docs/nova-2011.2-facts.md.
"""

from __future__ import annotations

import ipaddress
import os
import subprocess
from pathlib import Path

import pytest

from distro_builder.agent import agent_files
from distro_builder.config.roles import load_roles
from tests.helpers import require_tool_or_skip

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SHARE = "/usr/share/stackops/"
ADDRESS = {"controller": "10.0.0.1", "network": "10.0.0.2", "volume": "10.0.0.3",
           "compute": "10.0.0.4"}  # fmt: skip
ANSWERS = {
    "controller_address": "10.0.0.1",
    "mysql_root_password": "r00t-secret",
    "nova_db_password": "n0va-secret",
    "rabbit_password": "r4bbit-secret",
    "admin_password": "adm1n-secret",
    "floating_range": "172.16.0.0/28",
    "fixed_range": "192.168.100.0/24",
}


@pytest.fixture(scope="module")
def lib(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("agent-lib")
    for path, content in agent_files(ROOT).items():
        if not path.startswith(SHARE):
            continue
        data = content[0] if isinstance(content, tuple) else content
        dst = root / path[len(SHARE) :]
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(data)
    return root


DRIVER = r"""
SO_LIB=$1
for _lib in common validate answers installer service render steps; do
    . "$SO_LIB/lib/$_lib.sh"
done
for _role in $(awk -F'|' '!/^#/ { print $1 }' "$SO_ROLES_TABLE"); do
    [ -f "$SO_LIB/roles/$_role/steps.sh" ] && . "$SO_LIB/roles/$_role/steps.sh"
done
SO_ANSWERS=$2 SO_LOG=/dev/null
so_answers_load
SO_ROLES=$(printf '%s' "$roles" | tr , ' ')
so_nova_conf
echo ===
so_plan
"""


def render_node(lib: Path, tmp: Path, name: str, roles: tuple[str, ...], answers: dict[str, str],
                address: str) -> tuple[dict[str, str], list[str]]:  # fmt: skip
    """(nova.conf flags, [step names]) of one node, by the agent's code under dash."""
    node = tmp / name
    (node / "bin").mkdir(parents=True)
    ip = node / "bin" / "ip"  # the node's own address on public_interface
    ip.write_text(f"#!/bin/sh\necho '2: eth0    inet {address}/24 scope global eth0'\n")
    ip.chmod(0o755)
    file = node / "answers"
    lines = [f"roles='{','.join(roles)}'", f"hostname='{name}'"]
    lines += [f"{k}='{v}'" for k, v in answers.items()]
    lines += ["public_interface='eth0'", "flat_interface='eth1'", "network_size='256'"]
    file.write_text("\n".join(lines) + "\n")
    env = {"PATH": f"{node / 'bin'}:{os.environ['PATH']}", "LC_ALL": "C"}
    proc = subprocess.run(["dash", "-c", DRIVER, "driver", str(lib), str(file)],
                          capture_output=True, text=True, env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    conf, _, plan = proc.stdout.partition("===\n")
    flags = {}
    for line in conf.splitlines():
        key, _, value = line[2:].partition("=")
        flags[key] = value
    return flags, [ln.split()[2] for ln in plan.splitlines() if ln.strip()]


def _nodes(arch_name: str) -> list[tuple[str, tuple[str, ...]]]:
    arch = load_roles(ROOT).architecture(arch_name)
    out = []
    for shape in arch.nodes:
        for i in range(max(shape.min_count, 2 if shape.max_count is None else 1)):
            out.append((f"{shape.name}{i + 1}", shape.roles))
    return out


def render_deployment(lib: Path, tmp: Path, arch_name: str) -> tuple[dict, str]:
    """Every node of a deployment of `arch_name`: name -> (roles, address, flags, plan)."""
    nodes = _nodes(arch_name)
    volume_node = next(name for name, roles in nodes if "volume" in roles)
    volume_roles = next(roles for name, roles in nodes if name == volume_node)
    answers = dict(ANSWERS)
    if "controller" not in volume_roles:  # a volume node of its own: the deployment says where
        answers |= {"volume_address": ADDRESS["volume"], "volume_host": volume_node}
    rendered = {}
    for name, roles in nodes:
        own = ADDRESS[roles[0]] if len(roles) == 1 else ADDRESS["controller"]
        if roles == ("compute",):
            own = f"10.0.0.{40 + int(name[-1])}"
        rendered[name] = (roles, own, *render_node(lib, tmp, name, roles, answers, own))
    return rendered, volume_node


def check_nodes(rendered: dict, volume_node: str) -> None:
    controller_ip = next(own for roles, own, *_ in rendered.values() if "controller" in roles)
    volume_ip = rendered[volume_node][1]
    sql = {f.get("sql_connection") for _, _, f, _ in rendered.values()}
    rabbit = {f.get("rabbit_host") for _, _, f, _ in rendered.values()}
    assert sql == {f"mysql://nova:n0va-secret@{controller_ip}/nova"} and rabbit == {controller_ip}
    for name, (roles, own, flags, plan) in rendered.items():
        assert flags.get("my_ip") == own, name  # every node says its own address
        for api in ("ec2_host", "osapi_host", "s3_host", "glance_host"):
            assert flags.get(api) == controller_ip, (name, api)
        if "network" in roles:
            assert flags.get("ec2_dmz_host") == controller_ip  # metadata DNAT to the API
            fixed = ipaddress.IPv4Network(flags["fixed_range"])
            # Cactus's default without the flag: 10.0.0.2 (docs/nova-2011.2-facts.md §2)
            start = ipaddress.IPv4Address(flags.get("flat_network_dhcp_start", "10.0.0.2"))
            assert start in fixed and start > fixed.network_address + 1, start
        if "compute" in roles:  # finds the volume node's targets
            prefix = flags.get("iscsi_ip_prefix", own)  # Cactus's default: $my_ip
            assert volume_ip.startswith(prefix), (name, prefix)
            assert "volume-host" in plan
        if "flat_interface" in flags:  # bridges the flat network: brings the NIC up
            assert "flat-interface" in plan, name
        if "controller" not in roles:
            assert "controller-ready" in plan  # waits for the controller's database and queue
    assert any("flat_interface" in f for _, _, f, _ in rendered.values())


@pytest.mark.parametrize("arch_name", ["single-node", "dual-node", "multi-node"])
def test_the_nodes_of_a_deployment_agree(lib: Path, tmp_path: Path, arch_name: str) -> None:
    require_tool_or_skip("dash")
    check_nodes(*render_deployment(lib, tmp_path, arch_name))


@pytest.mark.parametrize(
    ("role", "flag"),
    [("network", "flat_network_dhcp_start"), ("compute", "iscsi_ip_prefix"),
     ("network", "ec2_dmz_host"), ("base", "my_ip")],
)  # fmt: skip
def test_the_contract_notices_a_missing_flag(
    lib: Path, tmp_path: Path, role: str, flag: str
) -> None:
    """Each of the issue-14 flags dropped again: the cross-node check fails."""
    conf = lib / "roles" / role / "nova.conf"
    saved = conf.read_text()
    try:
        conf.write_text("".join(ln for ln in saved.splitlines(True) if f"--{flag}=" not in ln))
        assert conf.read_text() != saved
        with pytest.raises(AssertionError):
            check_nodes(*render_deployment(lib, tmp_path, "multi-node"))
    finally:
        conf.write_text(saved)
