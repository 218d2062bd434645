"""A node installed over the network links up with its first-boot agent (issue 13).

The install itself cannot run here (no lucid udebs), so the test takes the two ends that can:
the live `serve --disc` (tests/integration/installer_live.py) answers the installer's late
command with the node's registration, and that late command, taken verbatim from the served
preseed, runs under busybox ash with busybox wget against the live service into the debootstrap
root of tests/integration/rootfs.py (only /target is the root's path). Then the real agent .deb
in that root runs its first boot: the client sends the inventory iPXE could not see, gets its
roles and answers with the node token alone (no enrolment token anywhere on the node), and the
service shows the node done.

A volume node found by a network boot has reported no disks: the admin must name the device,
and the node's first-boot inventory is checked against it (poll says waiting with the reason).
"""

from __future__ import annotations

import re
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import require_tool_or_skip
from tests.integration.installer_live import (
    NETBOOT_PARAMS,
    Service,
    cli,
    parse_pairs,
)
from tests.integration.rootfs import Node
from tests.integration.test_agent_firstboot import healthy_cloud, plan, step_lines
from tests.integration.test_agent_installer import BOUNDS, fake_machine

pytestmark = [pytest.mark.integration, pytest.mark.slow]

IPXE = {"User-Agent": "iPXE/1.0.0+git-20190125.36a4c85"}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, demo_base: Path) -> Iterator[tuple]:
    tmp = tmp_path_factory.mktemp("netboot-firstboot")
    url = f"sqlite:///{tmp / 'installer.sqlite'}"
    cli("installer", "admin", "create", "admin", "--password-stdin", db=url,
        stdin="correct horse battery")  # fmt: skip
    svc = Service(url, tmp / "serve.log", extra=("--disc", str(demo_base)))
    admin = svc.login()
    for name, arch in (("lab", "dual-node"), ("multi", "multi-node")):
        assert svc.json("POST", "/api/deployments", token=admin,
                        json_body={"name": name, "architecture": arch})[0] == 201  # fmt: skip
        status, data = svc.json(
            "PUT", f"/api/deployments/{name}/params", token=admin, json_body=NETBOOT_PARAMS
        )
        assert status == 200, data
    yield svc, admin
    assert svc.stop() == 0


def _hostport(svc: Service) -> str:
    return svc.url.removeprefix("http://")


def _boot(svc: Service, admin: str, dep: str, mac: str, roles: list[str], **wanted: str):
    """iPXE discovers the machine, the admin assigns it, iPXE gets its install script and d-i
    its preseed: (node id, the kernel command line, the preseed text)."""
    headers = {**IPXE, "Host": _hostport(svc)}
    assert svc.request("GET", f"/ipxe/{dep}/{mac}", headers=headers)[0] == 200
    nodes = svc.json("GET", f"/api/deployments/{dep}/nodes", token=admin)[1]
    node = next(n for n in nodes if n["mac"] == mac)
    status, data = svc.json("PUT", f"/api/deployments/{dep}/nodes/{node['id']}/roles",
                            token=admin, json_body={"roles": roles, "answers": wanted})  # fmt: skip
    assert status == 200, data
    script = svc.request("GET", f"/ipxe/{dep}/{mac}", headers=headers)[2].decode()
    kernel = next(ln for ln in script.splitlines() if ln.startswith("kernel "))
    preseed_path = re.search(r"url=http://[^/ ]+(/nb/\d+/[^/ ]+/preseed)", kernel)
    assert preseed_path, kernel
    status, _, body = svc.request("GET", preseed_path[1], headers=headers)
    assert status == 200
    return node["id"], kernel, body.decode()


def _late_command(seed: str) -> str:
    """The seed's late_command: one line, the entry's own command and the network report."""
    lines = [ln for ln in seed.splitlines() if ln.startswith("d-i preseed/late_command ")]
    (line,) = lines
    return line.removeprefix("d-i preseed/late_command string ")


def test_network_installed_node_links_up_with_its_agent(
    served, tmp_path: Path, agent_deb: Path
) -> None:
    require_tool_or_skip("busybox")
    require_tool_or_skip("wget")
    svc, admin = served
    mac = "52:54:00:11:22:01"
    node_id, kernel, seed = _boot(svc, admin, "lab", mac, ["compute"])
    # late.sh reads installer_url from the kernel line (cmdline_value) into the answers file
    assert f"stackops/installer_url={svc.url} " in kernel
    late = _late_command(seed)
    first, sep, report = late.partition(" && ")
    assert first == "sh /stackops/late.sh" and sep, late

    node = Node.create(tmp_path)
    assert "Setting up stackops-agent (0.1.0)" in node.install_deb(agent_deb)
    target = str(node.path("/"))
    # The installer's report, verbatim but for where /target is, under busybox ash and wget.
    bb = tmp_path / "bb"
    bb.mkdir()
    for applet in ("sh", "wget", "mkdir", "mv"):
        (bb / applet).symlink_to(shutil.which("busybox"))
    done = subprocess.run(
        [str(bb / "sh"), "-c", report.replace("/target/", target.rstrip("/") + "/")],
        env={"PATH": str(bb)}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    state_dir = node.path("/var/lib/stackops/installer")
    node_file = state_dir / "node"
    assert stat.S_IMODE(state_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(node_file.stat().st_mode) == 0o600
    reg = parse_pairs(node_file.read_bytes())
    assert reg["node_id"] == str(node_id) and len(reg["node_token"]) >= 32
    view = svc.json("GET", f"/api/deployments/lab/nodes/{node_id}", token=admin)[1]
    assert view["state"] == "installed" and view["inventory"]["disks"] == []

    # What late.sh writes for this node: its roles and the service's URL, no enrolment token.
    node.write_answers({"roles": "compute", "installer_url": svc.url})
    healthy_cloud(node)
    fake_machine(node, mac)
    run = node.run_agent("dash", "--non-interactive", env=BOUNDS, timeout=180)
    out = run.output
    assert run.returncode == 0, out
    assert f"STACKOPS-INSTALLER inventory sent node={node_id}" in out
    assert "STACKOPS-INSTALLER registered" not in out
    assert f"STACKOPS-INSTALLER answers node={node_id} roles=compute" in out
    expected = plan("compute")
    assert step_lines(run) == [(i, len(expected), r, s, "ok")
                               for i, (r, s) in enumerate(expected, 1)]  # fmt: skip
    conf = node.path("/etc/nova/nova.conf").read_text().splitlines()
    assert f"--rabbit_host={NETBOOT_PARAMS['controller_address']}" in conf

    view = svc.json("GET", f"/api/deployments/lab/nodes/{node_id}", token=admin)[1]
    assert view["state"] == "done", view
    assert [d["name"] for d in view["inventory"]["disks"]] == ["sda", "sdb"]
    assert view["inventory"]["pxe"] is not None  # what iPXE told is kept
    # One node, no second registration; the boot token and node token never logged.
    assert len(svc.json("GET", "/api/deployments/lab/nodes", token=admin)[1]) == 1
    log = svc.log.read_text()
    assert reg["node_token"] not in log and reg["node_token"] not in out
    assert "Traceback" not in log


def test_network_booted_volume_node_is_checked_when_it_reports_its_disks(served) -> None:
    svc, admin = served
    headers = {**IPXE, "Host": _hostport(svc)}
    mac = "52:54:00:11:22:02"
    assert svc.request("GET", f"/ipxe/multi/{mac}", headers=headers)[0] == 200
    node = next(n for n in svc.json("GET", "/api/deployments/multi/nodes", token=admin)[1]
                if n["mac"] == mac)  # fmt: skip
    path = f"/api/deployments/multi/nodes/{node['id']}/roles"
    # No disks known and no device named: the group stays on the system disk (finding 8).
    status, data = svc.json("PUT", path, token=admin, json_body={"roles": ["volume"]})
    assert status == 200 and "volume_device" not in data["answers"], data
    assert any("system disk only" in n for n in data["notes"]), data
    node_id, _, seed = _boot(svc, admin, "multi", mac, ["volume"], volume_device="/dev/sdc")
    assert "stackops-volume" in seed
    view = svc.json("GET", f"/api/deployments/multi/nodes/{node_id}", token=admin)[1]
    assert any("checked when the node reports its disks" in n for n in view["notes"]), view
    installed = re.search(r"(/nb/\d+/[^/ ]+/installed)", _late_command(seed))
    assert installed
    status, _, body = svc.request("GET", installed[1], headers=headers)
    reg = parse_pairs(body)
    assert status == 200 and reg["node_id"] == str(node_id)
    token = reg["node_token"]

    def agent(method: str, sub: str, body: str | None = None) -> tuple[int, dict[str, str]]:
        status, _, raw = svc.request(
            method, f"/agent/v1/nodes/{node_id}/{sub}",
            headers={"Authorization": f"Bearer {token}", "Content-Type": "text/plain"},
            body=body.encode() if body is not None else None,
        )  # fmt: skip
        return status, parse_pairs(raw)

    inventory = (
        "hostname='vol1'\ncpus='2'\nvirt='none'\nmem_kb='2048000'\n"
        f"nic='eth0 {mac} up'\ndisk='sda 20971520 used'\ndisk='sdb 10485760 free'\n"
    )
    # Before the inventory the device cannot be checked: ready.
    assert agent("GET", "assignment")[1]["state"] == "ready"
    assert agent("POST", "inventory", inventory) == (200, {"inventory": "stored"})
    status, poll = agent("GET", "assignment")
    assert status == 200 and poll["state"] == "waiting", poll
    assert "volume_device /dev/sdc is not a free disk of this node: ['sdb']" in poll["reason"]
    view = svc.json("GET", f"/api/deployments/multi/nodes/{node_id}", token=admin)[1]
    assert any("does not fit" in e["line"] for e in view["events"])
    # Another node's token, a malformed inventory: refused, nothing stored.
    assert agent("POST", "inventory", "disk='sdb'\n")[0] == 400
    assert svc.request("POST", f"/agent/v1/nodes/{node_id}/inventory",
                       body=inventory.encode())[0] == 401  # fmt: skip
    # The admin gives the disk the node has: ready.
    assert svc.json("PUT", path, token=admin,
                    json_body={"roles": ["volume"],
                               "answers": {"volume_device": "/dev/sdb"}})[0] == 200  # fmt: skip
    assert agent("GET", "assignment")[1]["state"] == "ready"
    assert "Traceback" not in svc.log.read_text()


def test_network_booted_node_is_refitted_on_its_reported_hardware(served) -> None:
    """Assigned on iPXE's empty inventory (0 CPU, no vmx/svm, one NIC), a compute node got
    libvirt_type=qemu and flat_interface=eth0; when its first boot reports 16 CPUs with vmx and
    two NICs, its auto answers are computed again, the notes replaced, and an event says what
    changed. A value the admin gave stays."""
    svc, admin = served
    headers = {**IPXE, "Host": _hostport(svc)}
    mac = "52:54:00:11:22:03"
    node_id, _, seed = _boot(svc, admin, "multi", mac, ["compute"], hostname="cmp-refit")
    view = svc.json("GET", f"/api/deployments/multi/nodes/{node_id}", token=admin)[1]
    assert view["answers"]["libvirt_type"] == "qemu"
    assert view["answers"]["flat_interface"] == "eth0"
    assert any("falls back to qemu" in n for n in view["notes"])
    installed = re.search(r"(/nb/\d+/[^/ ]+/installed)", _late_command(seed))
    assert installed
    status, _, body = svc.request("GET", installed[1], headers=headers)
    token = parse_pairs(body)["node_token"]
    inventory = (
        "hostname='cmp-refit'\ncpus='16'\nvirt='vmx'\nmem_kb='33554432'\n"
        f"nic='eth0 {mac} up'\nnic='eth1 52:54:00:11:22:04 up'\ndisk='sda 20971520 used'\n"
    )
    status, _, _ = svc.request(
        "POST", f"/agent/v1/nodes/{node_id}/inventory", body=inventory.encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "text/plain"},
    )  # fmt: skip
    assert status == 200
    view = svc.json("GET", f"/api/deployments/multi/nodes/{node_id}", token=admin)[1]
    assert view["answers"]["libvirt_type"] == "auto", view["answers"]
    assert view["answers"]["flat_interface"] == "eth1"
    assert view["answers"]["hostname"] == "cmp-refit"
    assert not any("qemu" in n or "one NIC" in n for n in view["notes"]), view["notes"]
    lines = [e["line"] for e in view["events"]]
    assert any(
        "re-fitted on the reported hardware" in ln
        and "libvirt_type qemu -> auto" in ln
        and "flat_interface eth0 -> eth1" in ln
        for ln in lines
    ), lines
    status, _, answers = svc.request(
        "GET", f"/agent/v1/nodes/{node_id}/answers", headers={"Authorization": f"Bearer {token}"}
    )
    assert status == 200
    got = parse_pairs(answers)
    assert got["libvirt_type"] == "auto" and got["flat_interface"] == "eth1"
