"""The first-boot agent with the Smart Installer, for real: the stackops-agent .deb installed in
the debootstrap'd root file system (tests/integration/rootfs.py; the same boundary: service
control and the Nova tools are recorded), its answers naming the LIVE service
(tests/integration/installer_live.py, `distro-builder serve` on loopback over an SQLite file;
the chroot shares the host's loopback). The node's /proc and /sys are files written by the test
(the inventory of a fake machine), as /proc/cpuinfo already is for the agent tests.

- happy path: the agent's client registers the node, the admin assigns its role through the
  API while the agent waits, the agent merges the answers, configures the role, and the service
  shows its step lines and the final status `done`;
- fallbacks: an unreachable service (a closed port) and a refused token: the agent says so on
  the console and in its log and goes on with the local answers within the client's bound;
  no secret (passwords, enrolment token) in any log or on the console.
"""

from __future__ import annotations

import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import require_tool_or_skip
from tests.integration.installer_live import (
    ADMIN,
    ADMIN_PASSWORD,
    Service,
    cli,
    closed_port,
    create_deployment,
)
from tests.integration.rootfs import Node, Run
from tests.integration.test_agent_firstboot import (
    BASE_ANSWERS,
    SECRETS,
    assert_no_secret,
    healthy_cloud,
    plan,
    step_lines,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PARAMS = {
    "controller_address": "10.0.0.10",
    "nova_db_password": "svc'N0va/pw",
    "rabbit_password": "svc-rabbit-pw",
    "mysql_root_password": "svc-mysql-pw",
    "admin_password": "svc-admin-pw",
    "floating_range": "172.24.4.0/24",
}
# The client's bounds, small in tests (the defaults are 120 s and 3600 s).
BOUNDS = {"STACKOPS_INSTALLER_CONNECT_TIMEOUT": "4", "STACKOPS_INSTALLER_WAIT_TIMEOUT": "60"}


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    tmp = tmp_path_factory.mktemp("installer")
    url = f"sqlite:///{tmp / 'installer.sqlite'}"
    cli("installer", "admin", "create", ADMIN, "--password-stdin", db=url, stdin=ADMIN_PASSWORD)
    svc = Service(url, tmp / "serve.log")
    yield svc
    svc.stop()


def fake_machine(node: Node, mac: str) -> None:
    """The inventory the client reads: /proc and /sys of a one-CPU machine with two disks."""
    node.write("/proc/sys/kernel/hostname", "fresh-node\n")
    node.write("/proc/meminfo", "MemTotal:        4096000 kB\nMemFree:  1 kB\n")
    node.write(
        "/proc/partitions",
        "major minor  #blocks  name\n\n   8 0 20971520 sda\n   8 1 20970496 sda1\n"
        "   8 16 10485760 sdb\n",
    )
    node.write("/proc/mounts", "/dev/sda1 / ext3 rw 0 0\n")
    node.write("/proc/swaps", "Filename Type Size Used Priority\n")
    for name, addr in (("lo", "00:00:00:00:00:00"), ("eth0", mac)):
        node.write(f"/sys/class/net/{name}/address", addr + "\n")
        node.write(f"/sys/class/net/{name}/operstate", "up\n")


def deployment(svc: Service, name: str) -> str:
    return create_deployment(svc, name, PARAMS)


def no_secret_anywhere(node: Node, run: Run, token: str) -> None:
    assert_no_secret(node, run)
    places = {"console": run.output, **node.logs()}
    for where, text in places.items():
        assert token not in text, f"the enrolment token leaked into {where}"
        for key in ("nova_db_password", "rabbit_password", "mysql_root_password"):
            assert PARAMS[key] not in text, f"{key} (from the service) leaked into {where}"


@pytest.mark.parametrize("shell", ["dash", "bash"])
def test_agent_gets_its_role_from_the_live_service(
    service: Service, tmp_path: Path, agent_deb: Path, shell: str
) -> None:
    require_tool_or_skip("wget")
    svc = service
    name = f"agent-{shell}"
    enrol = deployment(svc, name)
    node = Node.create(tmp_path)
    assert "Setting up stackops-agent (0.1.0)" in node.install_deb(agent_deb)
    # What late.sh writes for a first-boot entry of a disc built with --installer-url.
    node.write_answers({"roles": "", "installer_url": svc.url, "installer_token": enrol})
    healthy_cloud(node)
    fake_machine(node, "52:54:00:be:ef:01")
    admin = svc.login()
    assigned: list[int] = []

    def admin_assigns_compute() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            _, nodes = svc.json("GET", f"/api/deployments/{name}/nodes", token=admin)
            if nodes:
                time.sleep(1)  # the agent waits "unassigned" first
                status, data = svc.json(
                    "PUT", f"/api/deployments/{name}/nodes/{nodes[0]['id']}/roles",
                    token=admin, json_body={"roles": ["compute"]},
                )  # fmt: skip
                assert status == 200, data
                assigned.append(int(nodes[0]["id"]))
                return
            time.sleep(0.2)

    t = threading.Thread(target=admin_assigns_compute)
    t.start()
    t0 = time.monotonic()
    run = node.run_agent(shell, "--non-interactive", env=BOUNDS, timeout=180)
    took = time.monotonic() - t0
    t.join()
    assert assigned, "the node never registered"
    assert run.returncode == 0, run.output
    out = run.output
    assert f"STACKOPS-INSTALLER contacting {svc.url}" in out
    assert "STACKOPS-INSTALLER registered node=" in out
    assert "STACKOPS-INSTALLER waiting node=" in out and "state=unassigned" in out
    assert "STACKOPS-INSTALLER answers node=" in out and "roles=compute" in out
    assert "ignoring unknown key" not in out
    expected = plan("compute")
    n = len(expected)
    assert step_lines(run) == [(i, n, r, s, "ok") for i, (r, s) in enumerate(expected, 1)]
    assert out.rstrip().endswith("STACKOPS-FIRSTBOOT done roles=compute")
    assert took < 90, took

    # The service's answers were applied: its passwords and controller address in nova.conf.
    conf = node.path("/etc/nova/nova.conf").read_text().splitlines()
    assert "--sql_connection=mysql://nova:svc%27N0va%2Fpw@10.0.0.10/nova" in conf
    assert "--rabbit_host=10.0.0.10" in conf
    answers = node.path("/etc/stackops/answers")
    assert stat.S_IMODE(answers.stat().st_mode) == 0o600
    text = answers.read_text()
    assert text.count("roles=") == 1 and "roles='compute'" in text
    assert f"installer_url='{svc.url}'" in text
    log = node.path("/var/log/stackops/agent.log").read_text()
    assert "answers merged (roles compute)" in log

    # The service shows the node's progress and final status.
    _, shown = svc.json("GET", f"/api/deployments/{name}/nodes/{assigned[0]}", token=admin)
    assert shown["state"] == "done", shown
    lines = [e["line"] for e in shown["events"]]
    sent = [ln for ln in out.splitlines() if ln.startswith("STACKOPS step=")]
    assert [ln for ln in lines if ln.startswith("STACKOPS step=")] == sent
    assert lines[-1] == "STACKOPS-FIRSTBOOT done roles=compute"
    no_secret_anywhere(node, run, enrol)
    assert enrol not in (svc.log.read_text())

    # A second run (the next boot) asks the service nothing and changes nothing.
    node.reset_actions()
    again = node.run_agent(shell, "--non-interactive", env=BOUNDS)
    assert again.returncode == 0, again.output
    assert "contacting" not in again.output and node.actions() == []
    _, nodes = svc.json("GET", f"/api/deployments/{name}/nodes", token=admin)
    assert len(nodes) == 1


@pytest.mark.parametrize("why", ["unreachable", "refused"])
def test_agent_falls_back_to_the_local_answers(
    service: Service, tmp_path: Path, agent_deb: Path, why: str
) -> None:
    require_tool_or_skip("wget")
    if why == "unreachable":
        url, token = f"http://127.0.0.1:{closed_port()}", "an-enrolment-token-1234"
        said = "Smart Installer unreachable: using the local answers"
    else:
        url, token = service.url, "not-the-deployments-token-5678"
        said = "Smart Installer refused this node: using the local answers"
    node = Node.create(tmp_path)
    node.install_deb(agent_deb)
    node.write_answers(
        {"roles": "compute", **BASE_ANSWERS, "installer_url": url, "installer_token": token}
    )
    healthy_cloud(node)
    fake_machine(node, "52:54:00:be:ef:02")
    t0 = time.monotonic()
    run = node.run_agent("dash", "--non-interactive", env=BOUNDS, timeout=120)
    took = time.monotonic() - t0
    assert run.returncode == 0, run.output
    assert said in run.output
    assert said in node.path("/var/log/stackops/agent.log").read_text()
    # bounded: the connect bound is 4 s (whole seconds of `date +%s`), plus the configuration
    assert took < 4 + 40, took
    assert run.output.rstrip().endswith("STACKOPS-FIRSTBOOT done roles=compute")
    conf = node.path("/etc/nova/nova.conf").read_text().splitlines()
    assert "--rabbit_host=10.0.0.1" in conf  # the local answers
    no_secret_anywhere(node, run, token)
    assert SECRETS["nova_db_password"] not in run.output


def test_unreachable_without_roles_goes_to_the_console_selector(
    tmp_path: Path, agent_deb: Path
) -> None:
    """No service and no roles: the console selector asks (here stdin, not a terminal)."""
    require_tool_or_skip("wget")
    node = Node.create(tmp_path)
    node.install_deb(agent_deb)
    url = f"http://127.0.0.1:{closed_port()}"
    node.write_answers(
        {"roles": "", **BASE_ANSWERS, "installer_url": url, "installer_token": "tok-12345678"}
    )
    healthy_cloud(node)
    fake_machine(node, "52:54:00:be:ef:03")
    run = node.run_agent("bash", stdin="4\n", env=BOUNDS)
    assert run.returncode == 0, run.output
    out = run.output
    assert "Smart Installer unreachable: using the local answers and the console selector" in out
    assert out.index("unreachable") < out.index("No role was chosen at install time")
    assert "STACKOPS-FIRSTBOOT done roles=compute" in out
