"""The Smart Installer's operations (issue 21) over the JSON API, the agent API and the CLI,
against the live service on SQLite and PostgreSQL: retry a failed step (the agent's poll), the
failing step's log tail, reinstall on the next network boot, the cloud's credentials and its
ready verdict. The browser's side: test_installer_ui_actions.py.
"""

from __future__ import annotations

import os
import stat

import pytest

from tests.integration import test_installer_api as _api
from tests.integration.installer_live import Service, cli, inventory, parse_pairs
from tests.integration.test_installer_api import PARAMS, make_deployment, register
from tests.integration.test_installer_ui_actions import nova_zip

pytestmark = pytest.mark.integration

ZIP = {"Content-Type": "application/zip"}
service = _api.service  # the live service on SQLite and PostgreSQL (a fixture)


def _setup(svc: Service, dep: str) -> tuple[str, dict[str, tuple[int, str]]]:
    """Deployment `dep` (dual-node) with a controller and a compute node that fetched their
    answers; (admin token, {"ctl"|"cmp": (node id, node token)})."""
    admin = svc.login()
    enrol = make_deployment(svc, admin, dep, "dual-node")
    assert (
        svc.json("PUT", f"/api/deployments/{dep}/params", token=admin, json_body=PARAMS)[0] == 200
    )
    nodes = {}
    for key, mac, roles in (
        ("ctl", "52:54:00:21:00:01", ["controller", "network", "volume"]),
        ("cmp", "52:54:00:21:00:02", ["compute"]),
    ):
        nid, nt = register(svc, enrol, inventory(f"{dep}-{key}", [mac]))
        status, data = svc.json(
            "PUT",
            f"/api/deployments/{dep}/nodes/{nid}/roles",
            token=admin,
            json_body={"roles": roles},
        )
        assert status == 200, data
        assert svc.request("GET", f"/agent/v1/nodes/{nid}/answers", token=nt)[0] == 200
        nodes[key] = (nid, nt)
    return admin, nodes


def _report(svc: Service, node: tuple[int, str], *lines: str) -> int:
    body = "".join(ln + "\n" for ln in lines)
    status, _, _ = svc.request(
        "POST", f"/agent/v1/nodes/{node[0]}/progress", token=node[1], body=body
    )
    return status


def test_retry_and_log_tail_over_the_apis(service: Service) -> None:
    svc = service
    admin, nodes = _setup(svc, "rt")
    nid, nt = nodes["cmp"]
    api = f"/api/deployments/rt/nodes/{nid}"
    # Not failed: nothing to retry.
    status, data = svc.json("POST", api + "/retry", token=admin, json_body={})
    assert status == 409 and "not failed" in data["error"], data
    # A cross-site form (not JSON) is refused as everywhere.
    status, _, _ = svc.request(
        "POST",
        api + "/retry",
        token=admin,
        body="a=1",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert status == 400
    tail = [f"STACKOPS-LOG line {i}: rabbit {PARAMS['rabbit_password']}" for i in range(64)]
    assert (
        _report(
            svc, nodes["cmp"], "STACKOPS step=3/7 role=compute name=libvirt status=failed t=1.0s"
        )
        == 200
    )
    assert (
        _report(
            svc,
            nodes["cmp"],
            *tail,
            "STACKOPS-FIRSTBOOT failed step=libvirt log=/var/log/stackops/steps/libvirt.log",
        )
        == 200
    )
    _, n = svc.json("GET", api, token=admin)
    assert n["state"] == "failed" and n["failed_step"] == "3/7 compute libvirt failed"
    log = n["failure_log"]
    assert log.splitlines()[0] == "line 0: rabbit *****" and log.endswith("line 63: rabbit *****")
    assert PARAMS["rabbit_password"] not in log
    assert not any(e["line"].startswith("STACKOPS-LOG") for e in n["events"])  # not events
    # The agent polls: no; the admin asks; yes once, then no; the events say so.
    poll = f"/agent/v1/nodes/{nid}/retry"
    assert parse_pairs(svc.request("GET", poll, token=nt)[2])["retry"] == "no"
    status, data = svc.json("POST", api + "/retry", token=admin, json_body={})
    assert status == 200 and data["retry_requested"], data
    status, _, _ = svc.request("GET", poll, token=nodes["ctl"][1])
    assert status == 403  # another node's token
    assert parse_pairs(svc.request("GET", poll, token=nt)[2])["retry"] == "yes"
    assert parse_pairs(svc.request("GET", poll, token=nt)[2])["retry"] == "no"
    _, n = svc.json("GET", api, token=admin)
    assert n["state"] == "configuring" and not n["retry_requested"] and not n["failure_log"]
    lines = [e["line"] for e in n["events"]]
    assert any(ln.startswith("retry requested (failed at libvirt") for ln in lines), lines
    assert any(ln.startswith("retrying from the failed step") for ln in lines), lines
    # The run goes on from the failed step and ends.
    assert (
        _report(
            svc,
            nodes["cmp"],
            "STACKOPS step=3/7 role=compute name=libvirt status=ok t=1.0s",
            "STACKOPS-FIRSTBOOT done roles=compute",
        )
        == 200
    )
    _, n = svc.json("GET", api, token=admin)
    assert n["state"] == "done" and n["failed_step"] == ""
    # A retry asked for while the agent reboots and runs by itself is void: its next failure
    # waits for the admin again.
    fail = (
        "STACKOPS step=5/7 role=compute name=nova-compute status=failed t=1.0s",
        "STACKOPS-FIRSTBOOT failed step=nova-compute log=/var/log/stackops/steps/x.log",
    )
    assert _report(svc, nodes["cmp"], *fail) == 200
    assert svc.json("POST", api + "/retry", token=admin, json_body={})[0] == 200
    assert (
        _report(
            svc,
            nodes["cmp"],
            "STACKOPS step=5/7 role=compute name=nova-compute status=ok t=1.0s",
            *fail,
        )
        == 200
    )
    assert parse_pairs(svc.request("GET", poll, token=nt)[2])["retry"] == "no"
    # A log line over the service's 400 characters is refused (the agent cuts them).
    assert _report(svc, nodes["cmp"], "STACKOPS-LOG " + "x" * 400) == 400


def test_reinstall_over_the_api(service: Service) -> None:
    svc = service
    admin, nodes = _setup(svc, "ri")
    nid = nodes["cmp"][0]
    _report(svc, nodes["cmp"], "STACKOPS-FIRSTBOOT done roles=compute")
    status, data = svc.json("POST", f"/api/deployments/ri/nodes/{nid}/reinstall", token=admin)
    assert status == 200 and data["state"] == "reinstall", data
    # Its roles may change now (a reinstall is how a done node gets other roles).
    status, data = svc.json(
        "PUT", f"/api/deployments/ri/nodes/{nid}/roles", token=admin, json_body={"roles": []}
    )
    assert status == 200
    status, data = svc.json("POST", f"/api/deployments/ri/nodes/{nid}/reinstall", token=admin)
    assert status == 409 and "no roles" in data["error"], data


def test_credentials_and_cloud_over_the_apis(service: Service) -> None:
    svc = service
    admin, nodes = _setup(svc, "cr")
    status, data = svc.json("GET", "/api/deployments/cr/credentials", token=admin)
    assert status == 404 and "no credentials yet" in data["error"], data
    _, cloud = svc.json("GET", "/api/deployments/cr/cloud", token=admin)
    assert not cloud["ready"] and cloud["credentials"] is None
    assert cloud["endpoints"] == {
        "ec2": "http://10.0.0.10:8773/services/Cloud",
        "s3": "http://10.0.0.10:3333",
        "glance": "http://10.0.0.10:9292",
    }
    assert cloud["admin_user"] == "admin" and cloud["project"] == "stackops"
    data = nova_zip()
    path = f"/agent/v1/nodes/{nodes['ctl'][0]}/credentials"
    status, _, body = svc.request("POST", path, token=nodes["ctl"][1], body=data, headers=ZIP)
    assert status == 200, body
    # Over the bound (256 KiB): 413 before the body is read.
    status, _, _ = svc.request(
        "POST", path, token=nodes["ctl"][1], body=b"PK" + b"\0" * 300_000, headers=ZIP
    )
    assert status == 413
    status, _, _ = svc.request("POST", path, token="not-a-token", body=data, headers=ZIP)
    assert status == 401
    _report(
        svc,
        nodes["ctl"],
        "STACKOPS-CHECK stackops-check: passed 4 checks",
        "STACKOPS-FIRSTBOOT done roles=controller,network,volume",
    )
    _, cloud = svc.json("GET", "/api/deployments/cr/cloud", token=admin)
    assert cloud["ready"] and cloud["check"]["verdict"] == "passed"
    assert cloud["credentials"]["size"] == len(data)
    assert cloud["credentials"]["node"] == nodes["ctl"][0]
    assert "credentials" not in svc.json("GET", "/api/deployments/cr", token=admin)[1]
    # nova.zip reaches only the admin's session: not a client with no session, not a node's
    # token (the compute node's, nor the controller's that uploaded it), not a made-up token.
    download = "/api/deployments/cr/credentials"
    for who in (None, nodes["cmp"][1], nodes["ctl"][1], "not-a-token"):
        status, _, body = svc.request("GET", download, token=who)
        assert status == 401 and data not in body, (who, status)


def test_cli_retry_reinstall_and_credentials(service: Service, tmp_path) -> None:
    svc = service
    admin, nodes = _setup(svc, "cli21")
    nid = str(nodes["cmp"][0])
    # Nothing uploaded yet: a clear error and hint, no file.
    out = tmp_path / "nova.zip"
    res = cli(
        "installer", "deployment", "credentials", "cli21", "-o", str(out), db=svc.db, check=False
    )
    assert res.returncode != 0 and not out.exists()
    assert "error: deployment 'cli21' has no credentials yet" in res.stderr
    assert "hint: the controller's agent uploads nova.zip" in res.stderr
    data = nova_zip()
    status, _, _ = svc.request(
        "POST",
        f"/agent/v1/nodes/{nodes['ctl'][0]}/credentials",
        token=nodes["ctl"][1],
        body=data,
        headers=ZIP,
    )
    assert status == 200
    _report(svc, nodes["ctl"], "STACKOPS-FIRSTBOOT done roles=controller,network,volume")
    out.write_text("old")  # replaced atomically, 0600
    os.chmod(out, 0o644)
    res = cli("installer", "deployment", "credentials", "cli21", "-o", str(out), db=svc.db)
    assert out.read_bytes() == data
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert not list(tmp_path.glob(".nova.zip.tmp"))
    assert "cloud ready (stackops-check: none)" in res.stdout
    assert "ec2     http://10.0.0.10:8773/services/Cloud" in res.stdout
    assert "admin, project stackops" in res.stdout
    assert "EC2_SECRET_KEY" not in res.stdout + res.stderr

    # retry: refused while not failed, then the agent's poll says yes.
    res = cli("installer", "node", "retry", "cli21", nid, db=svc.db, check=False)
    assert res.returncode != 0 and "not failed: nothing to retry" in res.stderr
    _report(
        svc,
        nodes["cmp"],
        "STACKOPS step=2/4 role=compute name=libvirt status=failed t=1.0s",
        "STACKOPS-LOG libvirtd: cannot start",
        "STACKOPS-FIRSTBOOT failed step=libvirt log=/var/log/stackops/steps/libvirt.log",
    )
    shown = cli("installer", "node", "show", "cli21", nid, db=svc.db).stdout
    assert "        | libvirtd: cannot start\n" in shown
    res = cli("installer", "node", "retry", "cli21", nid, db=svc.db)
    assert f"node {nid} (cli21-cmp): retry requested (failed at libvirt" in res.stdout
    poll = f"/agent/v1/nodes/{nid}/retry"
    assert parse_pairs(svc.request("GET", poll, token=nodes["cmp"][1])[2])["retry"] == "yes"
    shown = cli("installer", "node", "show", "cli21", nid, db=svc.db).stdout
    assert "retrying from the failed step" in shown

    # reinstall: asks first (no answer: nothing changes), --yes does it.
    res = cli("installer", "node", "reinstall", "cli21", nid, db=svc.db, stdin="n\n", check=False)
    assert res.returncode != 0 and "wiped" in res.stdout
    res = cli("installer", "node", "reinstall", "cli21", nid, "--yes", db=svc.db)
    assert f"node {nid} (cli21-cmp): reinstall on its next network boot" in res.stdout
    listed = cli("installer", "node", "list", "cli21", db=svc.db).stdout
    assert "reinstall" in listed
