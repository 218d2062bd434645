"""The first-boot agent's side of the Smart Installer's operations (issue 21), for real: the
stackops-agent .deb in the debootstrap'd root (tests/integration/rootfs.py: service control and
the Nova tools recorded, as in test_agent_installer.py), run under dash against the LIVE service.

- a failing step: the failure report carries the tail of the step's log (64 lines, 8 KiB at
  most, secrets *****); the agent then waits in the background, polls, and when the admin asks
  for a retry runs again from the failed step;
- the controller: after its admin step it uploads nova.zip over its node token (once), and its
  stackops-check lines reach the service, which makes them the cloud's verdict.
"""

from __future__ import annotations

import io
import threading
import time
import zipfile
from pathlib import Path

import pytest

from tests.helpers import require_tool_or_skip
from tests.integration import test_agent_installer as _live
from tests.integration.installer_live import Service, create_deployment
from tests.integration.rootfs import TEST_DIR, Node
from tests.integration.test_agent_firstboot import assert_no_secret, healthy_cloud, plan
from tests.integration.test_agent_installer import BOUNDS, PARAMS, fake_machine

service = _live.service  # the module's live service (a fixture)

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _admin_assigns(svc: Service, dep: str, roles: list[str], then=None) -> threading.Thread:
    """In a thread: wait for the node to register, assign `roles`, then call then(admin, id)."""
    admin = svc.login()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                _, nodes = svc.json("GET", f"/api/deployments/{dep}/nodes", token=admin)
                if nodes:
                    nid = nodes[0]["id"]
                    status, data = svc.json(
                        "PUT",
                        f"/api/deployments/{dep}/nodes/{nid}/roles",
                        token=admin,
                        json_body={"roles": roles},
                    )
                    assert status == 200, data
                    if then:
                        then(admin, nid)
                    return
                time.sleep(0.2)
            raise AssertionError("the node never registered")
        except BaseException as e:  # re-raised in the test
            errors.append(e)

    t = threading.Thread(target=run)
    t.errors = errors  # type: ignore[attr-defined]
    t.start()
    return t


def test_failure_sends_the_log_tail_and_a_retry_resumes(
    service: Service, tmp_path: Path, agent_deb: Path
) -> None:
    require_tool_or_skip("wget")
    svc = service
    dep = "agent-retry"
    enrol = create_deployment(svc, dep, PARAMS)
    node = Node.create(tmp_path)
    node.install_deb(agent_deb)
    node.write_answers({"roles": "", "installer_url": svc.url, "installer_token": enrol})
    # nova-compute's start fails, printing 200 long lines (one with a secret) into its log.
    noise = "".join(f"nova-compute line {i:03d} " + "x" * 300 + "\n" for i in range(200))
    node.clear_rules()
    node.rule("1", "initctl start nova-compute", noise + f"pw={PARAMS['rabbit_password']}\n")
    healthy_cloud(node)
    fake_machine(node, "52:54:00:be:ef:21")
    seen: dict = {}

    def on_failure(admin: str, nid: int) -> None:
        api = f"/api/deployments/{dep}/nodes/{nid}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            _, n = svc.json("GET", api, token=admin)
            if n["state"] == "failed" and n["step"].startswith("failed at"):
                break  # the failure report (after the step's own failed line)
            time.sleep(0.3)
        seen["failed"] = n
        time.sleep(1)  # the agent is polling now
        node.clear_rules()  # the admin fixes the cause ...
        healthy_cloud(node)
        status, data = svc.json("POST", api + "/retry", token=admin, json_body={})  # ... retries
        assert status == 200, data
        seen["retry_at"] = time.monotonic()

    t = _admin_assigns(svc, dep, ["compute"], on_failure)
    env = {**BOUNDS, "STACKOPS_RETRY_WAIT": "90"}
    run = node.run_agent("dash", "--non-interactive", env=env, timeout=300)
    done_at = time.monotonic()
    t.join()
    assert not t.errors, t.errors
    out = run.output
    assert run.returncode == 1, out  # the first run failed; its background wait ran the retry
    assert "STACKOPS-FIRSTBOOT failed step=nova-compute" in out
    assert "STACKOPS-INSTALLER waiting up to 90s for a retry from the Smart Installer" in out
    assert out.rstrip().endswith("STACKOPS-FIRSTBOOT done roles=compute"), out[-2000:]
    assert done_at - seen["retry_at"] < 60  # seen on a poll (every 5 s), then the last steps

    # The failure report: the log's tail, bounded, the secret *****.
    failed = seen["failed"]
    assert failed["failed_step"].endswith("compute nova-compute failed"), failed
    tail = failed["failure_log"]
    assert 0 < len(tail.encode()) <= 8192 and len(tail.splitlines()) <= 64
    assert tail.splitlines()[-1] == "=== exit 1" and "pw=*****" in tail
    assert "nova-compute line 199 " in tail and "nova-compute line 100 " not in tail
    assert all(len(ln) <= 387 for ln in tail.splitlines())
    assert PARAMS["rabbit_password"] not in tail

    # The retry ran from the failed step: the steps before it ran once, it twice.
    names = [s for _, s in plan("compute")]
    k = names.index("nova-compute")
    for i, name in enumerate(names):
        runs = node.path(f"/var/log/stackops/steps/{name}.log").read_text().count("=== exit")
        assert runs == (2 if i == k else 1), (name, runs)
    log = node.path("/var/log/stackops/agent.log").read_text()
    assert "the Smart Installer asked for a retry: running again" in log
    admin = svc.login()
    _, nodes = svc.json("GET", f"/api/deployments/{dep}/nodes", token=admin)
    _, n = svc.json("GET", f"/api/deployments/{dep}/nodes/{nodes[0]['id']}", token=admin)
    assert n["state"] == "done" and n["failure_log"] == ""
    lines = [e["line"] for e in n["events"]]
    assert any(ln.startswith("retry requested") for ln in lines), lines
    assert any(ln.startswith("retrying from the failed step") for ln in lines), lines
    assert not node.path("/etc/init/stackops-agent.conf").exists()
    assert_no_secret(node, run)
    assert not node.path("/run/stackops-agent.pid").exists()


def test_controller_uploads_nova_zip_and_its_check_verdict(
    service: Service, tmp_path: Path, agent_deb: Path
) -> None:
    require_tool_or_skip("wget")
    svc = service
    dep = "agent-cloud"
    # network_address given: the controller does not wait for a network node (none here)
    params = {**PARAMS, "network_address": "10.0.0.20"}
    enrol = create_deployment(svc, dep, params, architecture="multi-node")
    node = Node.create(tmp_path)
    node.install_deb(agent_deb)
    node.write_answers({"roles": "", "installer_url": svc.url, "installer_token": enrol})
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("novarc", f'export EC2_SECRET_KEY="{PARAMS["admin_password"]}"\n')
        z.writestr("cacert.pem", "-----BEGIN CERTIFICATE-----\n")
    data = buf.getvalue()
    # `nova-manage project zipfile` writes this zip (first matching rule wins); stackops-check
    # passes and says so as the real one does (agent/stackops-check main()).
    node.clear_rules()
    (node.test / "out" / "nova.zip").write_bytes(data)
    with open(node.test / "rules", "a") as f:
        f.write(
            f"create=/root/creds/nova.zip\tnova-manage * project zipfile *\t/{TEST_DIR}/out/"
            "nova.zip\n"
        )
    node.rule(
        "0",
        "stackops-check *",
        "ok   services: 1 services up: fresh-node:nova-scheduler\n"
        "ok   ec2: 1 zone\nok   glance: 0 images\nok   network: 1 network\n"
        "stackops-check: passed 4 checks\n",
    )
    healthy_cloud(node, "controller")
    fake_machine(node, "52:54:00:be:ef:22")
    t = _admin_assigns(svc, dep, ["controller"])
    run = node.run_agent("dash", "--non-interactive", env=BOUNDS, timeout=240)
    t.join()
    assert not t.errors, t.errors
    out = run.output
    assert run.returncode == 0, out
    assert "STACKOPS-INSTALLER credentials sent (/root/creds/nova.zip)" in out
    # sent once, right after the admin step (before network-create)
    assert out.count("credentials sent") == 1
    assert out.index("name=admin status=ok") < out.index("credentials sent")
    assert out.index("credentials sent") < out.index("name=network-create")
    admin = svc.login()
    status, _, body = svc.request("GET", f"/api/deployments/{dep}/credentials", token=admin)
    assert status == 200 and body == data
    _, cloud = svc.json("GET", f"/api/deployments/{dep}/cloud", token=admin)
    assert cloud["ready"] and cloud["check"]["verdict"] == "passed", cloud
    assert cloud["check"]["summary"] == "stackops-check: passed 4 checks"
    assert [c["name"] for c in cloud["check"]["checks"]] == ["services", "ec2", "glance", "network"]
    places = {"console": out, **node.logs(), "service log": svc.log.read_text()}
    for where, text in places.items():
        assert PARAMS["admin_password"] not in text, f"the secret key leaked into {where}"
    assert node.path("/var/lib/stackops/credentials.sent").exists()

    # The next boot's run changes nothing and sends nothing again.
    again = node.run_agent("dash", "--non-interactive", env=BOUNDS)
    assert again.returncode == 0 and "credentials sent" not in again.output
