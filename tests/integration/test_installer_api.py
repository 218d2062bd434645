"""The Smart Installer's API against the real service on loopback, on a real SQLite file and (when
DISTRO_BUILDER_TEST_PG_URL is set; required in CI) on PostgreSQL: the admin's and the agent's
flows, auth failures, malformed and oversized requests, restart with nothing lost.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import socket
import ssl
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from distro_builder.config.installer import check_deployment
from distro_builder.config.roles import load_roles
from tests.helpers import IN_CI, require_tool_or_skip
from tests.integration.installer_live import (
    ADMIN,
    ADMIN_PASSWORD,
    PG_ENV,
    Service,
    cli,
    create_deployment,
    inventory,
    parse_pairs,
    reset_postgres,
    self_signed_cert,
)

pytestmark = pytest.mark.integration

SECRETS = {
    "nova_db_password": "nova'db pass",  # a quote: the sh quoting must hold
    "rabbit_password": "rabbit-secret-1",
    "mysql_root_password": "mysql-root-secret",
    "admin_password": "admin-secret-key",
}
PARAMS = {
    "controller_address": "10.0.0.10",
    "fixed_range": "192.168.100.0/24",
    "floating_range": "172.24.4.0/24",
    **SECRETS,
}


def db_url(kind: str, tmp_path: Path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'installer.sqlite'}"
    url = os.environ.get(PG_ENV)
    if not url:
        if IN_CI:
            pytest.fail(f"{PG_ENV} is not set: .ci/run must start PostgreSQL")
        pytest.skip(f"{PG_ENV} not set (PostgreSQL tests)")
    reset_postgres(url)
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def service(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Service]:
    url = db_url(request.param, tmp_path)
    cli("installer", "admin", "create", ADMIN, "--password-stdin", db=url, stdin=ADMIN_PASSWORD)
    svc = Service(url, tmp_path / "serve.log")
    yield svc
    assert svc.stop() == 0


def make_deployment(svc: Service, admin: str, name: str, arch: str) -> str:
    status, data = svc.json(
        "POST", "/api/deployments", token=admin, json_body={"name": name, "architecture": arch}
    )
    assert status == 201, data
    assert len(data["enrolment_token"]) >= 40
    return str(data["enrolment_token"])


def register(svc: Service, enrol: str, inv: str) -> tuple[int, str]:
    status, _, body = svc.request("POST", "/agent/v1/register", body=inv, token=enrol)
    assert status == 201, body
    pairs = parse_pairs(body)
    return int(pairs["node_id"]), pairs["node_token"]


def test_admin_and_agent_flow(service: Service) -> None:
    svc = service
    admin = svc.login()
    enrol = make_deployment(svc, admin, "lab", "dual-node")

    # Global parameters: the deployment file's rules, with its messages.
    status, err = svc.json(
        "PUT", "/api/deployments/lab/params", token=admin,
        json_body={"controller_address": "10.0.0.300"},
    )  # fmt: skip
    assert status == 400 and "controller_address" in err["error"], err
    assert "IPv4" in err["error"]
    assert (
        list(err["fields"]) == ["controller_address"]
        and "IPv4" in err["fields"]["controller_address"]
    )
    status, err = svc.json(
        "PUT", "/api/deployments/lab/params", token=admin,
        json_body={"fixed_range": "10.0.0.0/8", "floating_range": "10.1.0.0/16"},
    )  # fmt: skip
    assert status == 400 and "overlaps" in err["error"], err
    status, err = svc.json(
        "PUT", "/api/deployments/lab/params", token=admin, json_body={"hostname": "x"}
    )
    assert status == 400 and "per-node" in err["error"]
    status, dep = svc.json("PUT", "/api/deployments/lab/params", token=admin, json_body=PARAMS)
    assert status == 200, dep
    # Secrets are never listed back in full.
    status, _, raw = svc.request("GET", "/api/deployments/lab", token=admin)
    for secret in SECRETS.values():
        assert secret.encode() not in raw
        assert json.dumps(secret)[1:-1].encode() not in raw
    dep = json.loads(raw)
    assert dep["params"]["nova_db_password"] == {**dep["params"]["nova_db_password"],
                                                 "value": "********", "set": True}  # fmt: skip
    assert dep["params"]["controller_address"]["value"] == "10.0.0.10"

    # Two nodes register their inventory: one with vmx and a free disk, one with neither.
    a_id, a_tok = register(svc, enrol, inventory("ctl", ["52:54:00:00:00:0a", "52:54:00:00:01:0a"]))
    b_id, b_tok = register(
        svc, enrol,
        inventory("cmp", ["52:54:00:00:00:0b", "52:54:00:00:01:0b"], virt="none",
                  disks=("sda 20971520 used",)),
    )  # fmt: skip
    status, nodes = svc.json("GET", "/api/deployments/lab/nodes", token=admin)
    assert [n["hostname"] for n in nodes] == ["ctl", "cmp"]
    assert nodes[0]["inventory"]["virt"] == "vmx" and nodes[1]["inventory"]["virt"] == "none"
    assert nodes[0]["inventory"]["nics"][1] == {
        "name": "eth1", "mac": "52:54:00:00:01:0a", "state": "up",
    }  # fmt: skip
    assert nodes[0]["inventory"]["disks"][1] == {"name": "sdb", "size_mb": 10240, "free": True}
    assert nodes[0]["inventory"]["mem_mb"] == 8192

    # Before roles: the node waits.
    status, _, body = svc.request("GET", f"/agent/v1/nodes/{b_id}/assignment", token=b_tok)
    assert status == 200 and parse_pairs(body)["state"] == "unassigned"
    status, _, body = svc.request("GET", f"/agent/v1/nodes/{b_id}/answers", token=b_tok)
    assert status == 409 and b"error=" in body

    # Fitness: a volume device must be a free disk; the architecture's node counts hold.
    cnv = ["controller", "network", "volume"]
    path_b = f"/api/deployments/lab/nodes/{b_id}/roles"
    on_sda = {"roles": cnv, "answers": {"volume_device": "/dev/sda"}}
    status, err = svc.json("PUT", path_b, token=admin, json_body=on_sda)
    assert status == 409 and "not a free disk" in err["error"], err
    status, err = svc.json("PUT", path_b, token=admin, json_body={"roles": ["controller"]})
    assert status == 409 and "dual-node nodes are" in err["error"], err
    status, node_a = svc.json(
        "PUT", f"/api/deployments/lab/nodes/{a_id}/roles", token=admin, json_body={"roles": cnv}
    )
    assert status == 200, node_a
    assert node_a["answers"]["volume_device"] == "/dev/sdb"
    assert node_a["answers"]["flat_interface"] == "eth1"
    status, err = svc.json("PUT", path_b, token=admin, json_body={"roles": cnv})
    assert status == 409 and "already" in err["error"], err
    # Compute without vmx/svm falls back to qemu and says so; kvm is refused.
    status, err = svc.json(
        "PUT", path_b, token=admin,
        json_body={"roles": ["compute"], "answers": {"libvirt_type": "kvm"}},
    )  # fmt: skip
    assert status == 409 and "vmx" in err["error"], err
    status, node_b = svc.json("PUT", path_b, token=admin, json_body={"roles": ["compute"]})
    assert status == 200, node_b
    assert node_b["answers"]["libvirt_type"] == "qemu"
    assert any("qemu" in n and "vmx/svm" in n for n in node_b["notes"]), node_b["notes"]

    # The node's answers: global parameters injected, its own filled in, in sh quoting.
    status, _, body = svc.request("GET", f"/agent/v1/nodes/{b_id}/assignment", token=b_tok)
    assert parse_pairs(body) == {"state": "ready", "roles": "compute"}
    status, headers, body = svc.request("GET", f"/agent/v1/nodes/{b_id}/answers", token=b_tok)
    assert status == 200 and headers["content-type"].startswith("text/plain")
    answers = parse_pairs(body)
    assert answers["roles"] == "compute"
    assert answers["hostname"] == "cmp" and answers["libvirt_type"] == "qemu"
    assert answers["nova_db_password"] == SECRETS["nova_db_password"]
    assert answers["controller_address"] == "10.0.0.10"
    assert "mysql_root_password" not in answers  # a compute node does not get the DB root
    require_tool_or_skip("dash")
    sourced = subprocess.run(
        ["dash", "-c", '. /dev/stdin; printf "%s|%s" "$nova_db_password" "$roles"'],
        input=body.decode(), capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert sourced.stdout == SECRETS["nova_db_password"] + "|compute"

    # Progress: the agent's structured lines move the node's state.
    lines = (
        "STACKOPS step=1/2 role=compute name=packages status=ok t=3.1s\n"
        "STACKOPS step=2/2 role=compute name=nova-conf status=ok t=0.4s\n"
    )
    status, _, body = svc.request(
        "POST", f"/agent/v1/nodes/{b_id}/progress", body=lines, token=b_tok
    )
    assert status == 200 and parse_pairs(body) == {"lines": "2"}
    status, node = svc.json("GET", f"/api/deployments/lab/nodes/{b_id}", token=admin)
    assert node["state"] == "configuring" and node["step"] == "2/2 compute nova-conf ok"
    svc.request(
        "POST", f"/agent/v1/nodes/{b_id}/progress", token=b_tok,
        body="STACKOPS-FIRSTBOOT done roles=compute\n",
    )  # fmt: skip
    status, node = svc.json("GET", f"/api/deployments/lab/nodes/{b_id}", token=admin)
    assert node["state"] == "done"
    assert [e["line"] for e in node["events"] if e["kind"] in ("step", "done")] == [
        *lines.splitlines(), "STACKOPS-FIRSTBOOT done roles=compute",
    ]  # fmt: skip
    # A node that is done keeps its roles.
    status, err = svc.json("PUT", path_b, token=admin, json_body={"roles": []})
    assert status == 409

    # Export: a deployment.yaml that the build's loader accepts, without the secrets.
    status, headers, body = svc.request("GET", "/api/deployments/lab/export", token=admin)
    assert status == 200, body
    text = body.decode()
    for secret in SECRETS.values():
        assert secret not in text
    roleset = load_roles(Path(__file__).resolve().parents[2])
    loaded = check_deployment(text, roleset)
    assert loaded.architecture == "dual-node"
    assert [(n.name, n.roles) for n in loaded.nodes] == [
        ("ctl", ("controller", "network", "volume")), ("cmp", ("compute",)),
    ]  # fmt: skip
    assert dict(loaded.nodes[1].answers)["libvirt_type"] == "qemu"
    assert dict(loaded.answers)["controller_address"] == "10.0.0.10"
    # The CLI export with secrets: the same loader, passwords included, file 0600.
    out = Path(svc.log).with_name("deployment.yaml")
    cli("installer", "deployment", "export", "lab", "--with-secrets", "-o", str(out), db=svc.db)
    assert out.stat().st_mode & 0o777 == 0o600
    full = check_deployment(out.read_text(), roleset)
    assert dict(full.answers)["nova_db_password"] == SECRETS["nova_db_password"]


def test_auth_failures(service: Service) -> None:
    svc = service
    # No session: 401 on every admin route; a wrong password too.
    for method, path in [("GET", "/api/deployments"), ("GET", "/api/whoami"),
                         ("GET", "/api/deployments/x/export")]:  # fmt: skip
        status, err = svc.json(method, path)
        assert status == 401 and err["error"], (path, err)
    status, err = svc.json("GET", "/api/deployments", token="forged-session-token")
    assert status == 401
    status, err = svc.json(
        "POST", "/api/login", json_body={"username": ADMIN, "password": "wrong password"}
    )
    assert status == 401 and err["error"] == "wrong user name or password"
    status, err = svc.json("POST", "/api/login", json_body={"username": "nobody", "password": "x"})
    assert status == 401 and err["error"] == "wrong user name or password"

    admin = svc.login()
    enrol_a = make_deployment(svc, admin, "alpha", "multi-node")
    enrol_b = make_deployment(svc, admin, "beta", "multi-node")
    inv1 = inventory("n1", ["52:54:00:00:00:01"])
    # Registration needs a deployment's enrolment token.
    status, _, body = svc.request("POST", "/agent/v1/register", body=inv1)
    assert status == 401 and body.startswith(b"error='no enrolment token")
    status, _, body = svc.request("POST", "/agent/v1/register", body=inv1, token="guessed")
    assert status == 401 and b"not any deployment" in body
    n1, t1 = register(svc, enrol_a, inv1)
    n2, t2 = register(svc, enrol_a, inventory("n2", ["52:54:00:00:00:02"]))
    n3, t3 = register(svc, enrol_b, inventory("n3", ["52:54:00:00:00:03"]))
    # network_address given: the controller does not wait for a network node (not this test's)
    alpha = {**PARAMS, "network_address": "10.0.0.20"}
    svc.json("PUT", "/api/deployments/alpha/params", token=admin, json_body=alpha)
    for node, roles in ((n1, "controller"), (n2, "compute")):
        status, data = svc.json(
            "PUT", f"/api/deployments/alpha/nodes/{node}/roles", token=admin,
            json_body={"roles": [roles]},
        )  # fmt: skip
        assert status == 200, data

    # A node reads only its own answers.
    status, _, body = svc.request("GET", f"/agent/v1/nodes/{n2}/answers", token=t2)
    assert status == 200 and b"nova_db_password=" in body
    status, _, body = svc.request("GET", f"/agent/v1/nodes/{n2}/answers", token=t1)
    assert status == 403 and b"another node" in body and b"nova_db_password" not in body
    status, _, body = svc.request("GET", f"/agent/v1/nodes/{n2}/answers", token=t3)
    assert status == 403  # a node of the other deployment
    status, _, body = svc.request("GET", f"/agent/v1/nodes/{n2}/answers")
    assert status == 401 and b"no node token" in body
    status, _, body = svc.request("GET", f"/agent/v1/nodes/{n2}/answers", token=enrol_a)
    assert status == 401  # the enrolment token is not a node token
    status, _, body = svc.request(
        "POST", f"/agent/v1/nodes/{n1}/progress", token=t2,
        body="STACKOPS-FIRSTBOOT done roles=controller\n",
    )  # fmt: skip
    assert status == 403
    # The admin sees a deployment's nodes only under that deployment.
    status, err = svc.json("GET", f"/api/deployments/beta/nodes/{n1}", token=admin)
    assert status == 404 and "beta" in err["error"]
    status, err = svc.json(
        "PUT", f"/api/deployments/beta/nodes/{n2}/roles", token=admin,
        json_body={"roles": ["compute"]},
    )  # fmt: skip
    assert status == 404
    # Registering again (same MAC) without the node's token is a reinstall or someone replaying
    # the disc's enrolment token with a MAC seen on the network: nothing changes until the admin
    # approves it (the node keeps its token, roles and name; the new token only polls).
    status, _, body = svc.request("GET", f"/agent/v1/nodes/{n1}/answers", token=t1)
    assert status == 200 and b"roles='controller'" in body
    n1b, t1b = register(svc, enrol_a, inv1.replace("n1", "evil"))
    assert n1b == n1 and t1b != t1
    status, _, body = svc.request("GET", f"/agent/v1/nodes/{n1}/answers", token=t1)
    assert status == 200 and b"roles='controller'" in body  # still the node's
    status, _, body = svc.request("GET", f"/agent/v1/nodes/{n1}/assignment", token=t1b)
    assert status == 200 and b"state='unassigned'" in body and b"approval" in body
    status, _, body = svc.request("GET", f"/agent/v1/nodes/{n1}/answers", token=t1b)
    assert status == 401 and b"password" not in body
    status, _, body = svc.request("GET", f"/agent/v1/nodes/{n2}/assignment", token=t1b)
    assert status == 401  # the waiting token is no other node's either
    status, view = svc.json("GET", f"/api/deployments/alpha/nodes/{n1}", token=admin)
    assert (view["roles"], view["hostname"]) == (["controller"], "n1")
    assert view["pending"]["inventory"]["hostname"] == "evil"
    # Rejected: the request is gone, the node as it was.
    status, view = svc.json("POST", f"/api/deployments/alpha/nodes/{n1}/reject", token=admin)
    assert status == 200 and view["pending"] is None and view["roles"] == ["controller"]
    status, _, _ = svc.request("GET", f"/agent/v1/nodes/{n1}/assignment", token=t1b)
    assert status == 401
    # The reinstall flow: the node registers again, the admin approves, the old token dies and
    # the roles (and with them the answers' secrets) wait for the admin to assign them again.
    n1b, t1b = register(svc, enrol_a, inv1)
    status, view = svc.json("POST", f"/api/deployments/alpha/nodes/{n1}/approve", token=admin)
    assert status == 200 and view["pending"] is None
    assert (view["roles"], view["state"], view["fetched_at"]) == ([], "registered", None)
    status, err = svc.json("POST", f"/api/deployments/alpha/nodes/{n1}/approve", token=admin)
    assert status == 409 and "no registration waiting" in err["error"]
    status, _, _ = svc.request("GET", f"/agent/v1/nodes/{n1}/assignment", token=t1)
    assert status == 401
    status, _, body = svc.request("GET", f"/agent/v1/nodes/{n1}/assignment", token=t1b)
    assert status == 200 and b"state='unassigned'" in body and b"approval" not in body
    status, _, body = svc.request("GET", f"/agent/v1/nodes/{n1}/answers", token=t1b)
    assert status == 409 and b"password" not in body
    status, view = svc.json("GET", f"/api/deployments/alpha/nodes/{n1}", token=admin)
    last_event = view["events"][-1]["line"]
    assert "roles controller cleared until the admin assigns them again" in last_event
    status, view = svc.json(
        "PUT", f"/api/deployments/alpha/nodes/{n1}/roles", token=admin,
        json_body={"roles": ["controller"]},
    )  # fmt: skip
    assert status == 200 and view["state"] == "assigned"
    status, _, body = svc.request("GET", f"/agent/v1/nodes/{n1}/answers", token=t1b)
    assert status == 200 and b"roles='controller'" in body
    # A node that still holds its token registers again at once (token= in the inventory).
    n1c, t1c = register(svc, enrol_a, inv1 + f"token={t1b}\n")
    assert n1c == n1
    status, _, body = svc.request("GET", f"/agent/v1/nodes/{n1}/answers", token=t1c)
    assert status == 200 and b"roles='controller'" in body
    # A rotated enrolment token locks out discs with the old one.
    status, data = svc.json("POST", "/api/deployments/alpha/token", token=admin)
    status, _, _ = svc.request("POST", "/agent/v1/register", body=inv1, token=enrol_a)
    assert status == 401
    register(svc, data["enrolment_token"], inv1)
    # Logging out ends the session.
    status, _ = svc.json("POST", "/api/logout", token=admin)
    assert status == 200
    status, _ = svc.json("GET", "/api/deployments", token=admin)
    assert status == 401


def _raw(svc: Service, data: bytes) -> int:
    """Send raw bytes; the status code of the answer (0: connection closed without one)."""
    with socket.create_connection(("127.0.0.1", svc.port), timeout=30) as s:
        s.sendall(data)
        reply = b""
        while chunk := s.recv(65536):
            reply += chunk
    if not reply.startswith(b"HTTP/"):
        return 0
    return int(reply.split(b" ", 2)[1])


def test_malformed_and_oversized_requests(service: Service) -> None:
    svc = service
    admin = svc.login()
    enrol = make_deployment(svc, admin, "lab", "single-node")
    node, ntok = register(svc, enrol, inventory("n1", ["52:54:00:00:00:01"]))
    cases = [
        # (method, path, body, headers, token, expected status, words in the error)
        ("POST", "/api/login", "{not json", {"Content-Type": "application/json"}, None, 400,
         "malformed JSON"),
        ("POST", "/api/login", "[1, 2]", {"Content-Type": "application/json"}, None, 400,
         "object"),
        ("POST", "/api/login", '{"username": 1}', {"Content-Type": "application/json"}, None,
         400, "username"),
        ("POST", "/api/login", '{"username": "a", "password": "b"}',
         {"Content-Type": "text/plain"}, None, 400, "application/json"),
        ("POST", "/api/deployments", b"\xff\xfe", {"Content-Type": "application/json"}, admin,
         400, "UTF-8"),
        ("POST", "/api/deployments", '{"name": "Bad Name!", "architecture": "single-node"}',
         {"Content-Type": "application/json"}, admin, 400, "name"),
        ("POST", "/api/deployments", '{"name": "ok", "architecture": "twelve-node"}',
         {"Content-Type": "application/json"}, admin, 400, "architecture"),
        ("POST", "/api/deployments", '{"name": "lab", "architecture": "single-node"}',
         {"Content-Type": "application/json"}, admin, 409, "exists"),
        ("PUT", "/api/deployments/lab/params", '{"network_size": "many"}',
         {"Content-Type": "application/json"}, admin, 400, "network_size"),
        ("PUT", "/api/deployments/lab/params", '{"nope": "1"}',
         {"Content-Type": "application/json"}, admin, 400, "unknown parameter"),
        ("PUT", "/api/deployments/lab/params", '{"project": ["a"]}',
         {"Content-Type": "application/json"}, admin, 400, "string"),
        ("PUT", f"/api/deployments/lab/nodes/{node}/roles", '{"roles": "compute"}',
         {"Content-Type": "application/json"}, admin, 400, "list"),
        ("PUT", f"/api/deployments/lab/nodes/{node}/roles", '{"roles": ["web"]}',
         {"Content-Type": "application/json"}, admin, 400, "unknown role"),
        ("PUT", f"/api/deployments/lab/nodes/{node}/roles",
         '{"roles": ["compute", "compute"]}', {"Content-Type": "application/json"}, admin, 400,
         "twice"),
        ("PUT", f"/api/deployments/lab/nodes/{node}/roles",
         '{"roles": [], "answers": {"mysql_root_password": "x"}}',
         {"Content-Type": "application/json"}, admin, 400, "per-node"),
        ("GET", "/api/deployments/nope", None, {}, admin, 404, "no deployment"),
        ("GET", "/api/deployments/lab/nodes/99999", None, {}, admin, 404, "no node"),
        ("GET", "/api/nothing-here", None, {}, admin, 404, "no such path"),
        ("DELETE", "/api/deployments/lab", None, {}, admin, 405, "not allowed"),
        ("POST", "/api/login", "x" * 70000, {"Content-Type": "application/json"}, None, 413,
         "at most"),
        ("POST", "/agent/v1/register", "hostname=a\n" * 2000, {}, enrol, 413, "at most"),
        ("POST", "/agent/v1/register", "no equals sign\n", {}, enrol, 400, "key=value"),
        ("POST", "/agent/v1/register", "hostname='unterminated\n", {}, enrol, 400, "quoting"),
        ("POST", "/agent/v1/register", "hostname=a\ncpus=2\n", {}, enrol, 400,
         "no network interface"),
        ("POST", "/agent/v1/register", "nic=eth0 zz:zz:zz:zz:zz:zz up\n", {}, enrol, 400,
         "nic"),
        ("POST", "/agent/v1/register", "nic=eth0 52:54:00:00:00:09 up\nshell=rm -rf /\n", {},
         enrol, 400, "unknown key"),
        ("POST", "/agent/v1/register", "hostname=bad_host!\nnic=eth0 52:54:00:00:00:09 up\n",
         {}, enrol, 400, "hostname"),
        ("POST", "/agent/v1/register", "cpus=-1\nnic=eth0 52:54:00:00:00:09 up\n", {}, enrol,
         400, "cpus"),
        ("POST", "/agent/v1/register", "hostname=a\x01b\n", {}, enrol, 400, "control"),
        ("POST", f"/agent/v1/nodes/{node}/progress", "rm -rf /\n", {}, ntok, 400,
         "not an agent progress line"),
        ("POST", f"/agent/v1/nodes/{node}/progress", "", {}, ntok, 400, "no progress"),
        ("POST", f"/agent/v1/nodes/{node}/progress", "STACKOPS x\n" * 300, {}, ntok, 400,
         "lines"),
        ("GET", "/agent/v1/nodes/../../etc/passwd/answers", None, {}, ntok, 404, "no such"),
    ]  # fmt: skip
    for method, path, body, headers, token, want, words in cases:
        status, h, raw = svc.request(method, path, body=body, headers=headers, token=token)
        text = raw.decode(errors="replace")
        assert status == want, (method, path, status, text)
        assert "error" in text and words in text, (method, path, text)
    # No Content-Length / chunked: 411 / 400; a broken request line: 400; never a 500.
    head = b"POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    assert _raw(svc, head + b"\r\n") == 411
    assert _raw(svc, head + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n") == 400
    assert _raw(svc, head + b"Content-Length: 9999999999999999999999\r\n\r\n") == 413
    assert _raw(svc, b"GET /api/whoami HTTP/x.y\r\n\r\n") == 400
    assert _raw(svc, b"GARBAGE\r\n\r\n") == 400
    assert _raw(svc, b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n") in (400, 414)
    # Random bytes at every endpoint: a 4xx every time.
    rng = random.Random(7)
    paths = ["/api/login", "/api/deployments", "/api/deployments/lab/params",
             "/agent/v1/register", f"/agent/v1/nodes/{node}/progress"]  # fmt: skip
    for i in range(60):
        blob = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 400)))
        path = paths[i % len(paths)]
        method = "PUT" if path.endswith("params") else "POST"
        tok = admin if path.startswith("/api/") else (enrol if "register" in path else ntok)
        ctype = rng.choice(["application/json", "text/plain"])
        status, _, _ = svc.request(
            method, path, body=blob, token=tok, headers={"Content-Type": ctype}
        )
        assert 400 <= status < 500, (path, blob, status)
    assert "Traceback" not in svc.log.read_text()


def test_protocol_edges_are_4xx(service: Service) -> None:
    """Valid-looking JSON that is no text or too deep, and methods no route takes: never a 500
    (or the stdlib's 501)."""
    svc = service
    admin = svc.login()
    json_ctype = {"Content-Type": "application/json"}
    for path, token, body, words in [
        ("/api/login", None, '{"username": "\\ud800", "password": "x"}', "lone UTF-16 surrogate"),
        ("/api/deployments", admin, '{"name": "a", "architecture": "\\udfff"}', "surrogate"),
        ("/api/login", None, "[" * 30000, "nested too deeply"),
        ("/api/deployments", admin, '{"a":' * 13000, "nested too deeply"),
    ]:
        status, _, raw = svc.request("POST", path, body=body, headers=json_ctype, token=token)
        assert status == 400 and words in raw.decode(), (path, body[:40], status, raw)
    for method in ("OPTIONS", "TRACE", "PATCH"):
        status, headers, raw = svc.request(method, "/api/deployments", token=admin)
        assert status == 405, (method, status, raw)
        assert headers["allow"] == "GET, POST" and b"not allowed" in raw
        status, headers, _ = svc.request(method, "/agent/v1/register")
        assert status == 405 and headers["allow"] == "POST"
    status, headers, _ = svc.request("DELETE", "/api/deployments", token=admin)
    assert status == 405 and headers["allow"] == "GET, POST"
    assert "Traceback" not in svc.log.read_text()


def test_disconnects_are_quiet_and_log_lines_escaped(tmp_path: Path) -> None:
    """A client that hangs up leaves no traceback; with -v the request line is logged with its
    control characters escaped (a raw ESC would drive the terminal, a CR forge a log line)."""
    url = f"sqlite:///{tmp_path / 'installer.sqlite'}"
    svc = Service(url, tmp_path / "serve.log", verbose=True)
    try:
        for _ in range(30):  # ask for the UI's page, then reset the connection unread
            s = socket.create_connection(("127.0.0.1", svc.port), timeout=30)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.sendall(b"GET /api/roles HTTP/1.0\r\n\r\n")
            s.close()
        # Control characters are no part of a request target (RFC 9112 3.2, RFC 3986 2): the
        # parser refuses the line (400) before any route sees it.
        assert _raw(svc, b"GET /\x1b[2J\x1b]0;owned\x07x\x00z HTTP/1.0\r\n\r\n") == 400
        assert _raw(svc, b"GET /a\rINFO forged HTTP/1.0\r\n\r\n") == 400  # CR splits the line
        assert svc.request("GET", "/api/whoami")[0] == 401  # still serving
    finally:
        assert svc.stop() == 0
    log_text = (tmp_path / "serve.log").read_bytes()
    assert b"Traceback" not in log_text and b"BrokenPipe" not in log_text, log_text[-3000:]
    assert b"GET /\\x1b[2J\\x1b]0;owned\\x07x\\x00z HTTP/1.0" in log_text, log_text[-2000:]
    assert b"GET /a\\x0dINFO forged HTTP/1.0" in log_text, log_text[-2000:]
    assert not any(c in log_text for c in (b"\x1b", b"\x00", b"\x07", b"\r"))


def test_session_cookie_is_secure_over_tls(tmp_path: Path) -> None:
    require_tool_or_skip("openssl")
    cert, key = self_signed_cert(tmp_path)
    url = f"sqlite:///{tmp_path / 'installer.sqlite'}"
    cli("installer", "admin", "create", ADMIN, "--password-stdin", db=url, stdin=ADMIN_PASSWORD)
    svc = Service(
        url, tmp_path / "serve.log", extra=("--tls-cert", str(cert), "--tls-key", str(key))
    )
    try:
        ctx = ssl.create_default_context(cafile=str(cert))
        ctx.check_hostname = False
        cookies = []
        for path, body in [("/api/login", {"username": ADMIN, "password": ADMIN_PASSWORD}),
                           ("/api/logout", {})]:  # fmt: skip
            conn = http.client.HTTPSConnection("127.0.0.1", svc.port, context=ctx, timeout=30)
            headers = {"Content-Type": "application/json"}
            if cookies:
                headers["Cookie"] = cookies[0].split(";")[0]
            conn.request("POST", path, body=json.dumps(body), headers=headers)
            resp = conn.getresponse()
            assert resp.status == 200, resp.read()
            cookies.append(resp.getheader("Set-Cookie") or "")
            conn.close()
        for cookie in cookies:  # the session, and its removal at logout
            assert "secure" in [a.strip().lower() for a in cookie.split(";")[1:]], cookie
    finally:
        assert svc.stop() == 0
    # and over plain http the login still works, without Secure (the browser would drop it)
    plain = Service(url, tmp_path / "plain.log")
    try:
        status, headers, _ = plain.request(
            "POST", "/api/login", body=json.dumps({"username": ADMIN, "password": ADMIN_PASSWORD}),
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        assert status == 200 and "secure" not in headers["set-cookie"].lower()
    finally:
        assert plain.stop() == 0


def test_restart_loses_nothing(service: Service) -> None:
    svc = service
    admin = svc.login()
    enrol = make_deployment(svc, admin, "lab", "single-node")
    svc.json("PUT", "/api/deployments/lab/params", token=admin, json_body=PARAMS)
    node, ntok = register(svc, enrol, inventory("aio", ["52:54:00:00:00:01", "52:54:00:00:00:02"]))
    status, _ = svc.json(
        "PUT", f"/api/deployments/lab/nodes/{node}/roles", token=admin,
        json_body={"roles": ["controller", "network", "volume", "compute"]},
    )  # fmt: skip
    assert status == 200
    svc.request(
        "POST", f"/agent/v1/nodes/{node}/progress", token=ntok,
        body="STACKOPS step=1/9 role=controller name=mysql status=ok t=2.0s\n",
    )  # fmt: skip
    status, before = svc.json("GET", "/api/deployments/lab", token=admin)
    _, _, answers_before = svc.request("GET", f"/agent/v1/nodes/{node}/answers", token=ntok)

    svc.restart()
    # The same session, node token and enrolment token still work; every record is there.
    status, after = svc.json("GET", "/api/deployments/lab", token=admin)
    assert status == 200
    for n in before["nodes"] + after["nodes"]:
        n.pop("last_seen")
        n.pop("fetched_at")
        n["state"] = "*"
    assert after["nodes"] == before["nodes"]
    assert after["params"] == before["params"]
    _, _, answers_after = svc.request("GET", f"/agent/v1/nodes/{node}/answers", token=ntok)
    assert answers_after == answers_before
    status, n = svc.json("GET", f"/api/deployments/lab/nodes/{node}", token=admin)
    assert [e["line"] for e in n["events"] if e["kind"] == "step"] == [
        "STACKOPS step=1/9 role=controller name=mysql status=ok t=2.0s"
    ]
    assert register(svc, enrol, inventory("aio", ["52:54:00:00:00:01"]))[0] == node
    # The migrations ran once.
    assert "applied migration 1" not in Path(svc.log).read_text().split("listening")[-1]


def test_cli_operations(service: Service) -> None:
    """The CLI's subcommands over the same database as the running service."""
    svc = service
    out = cli("installer", "deployment", "create", "cli-lab", "-a", "dual-node", "--json",
              db=svc.db).stdout  # fmt: skip
    enrol = json.loads(out)["enrolment_token"]
    listing = cli("installer", "deployment", "list", db=svc.db).stdout
    assert "cli-lab" in listing and "dual-node" in listing
    bad = cli("installer", "deployment", "set", "cli-lab", "floating_range=10.0.0.0",
              db=svc.db, check=False)  # fmt: skip
    assert bad.returncode == 1 and bad.stderr.startswith("error: floating_range")
    cli("installer", "deployment", "set", "cli-lab",
        *(f"{k}={v}" for k, v in PARAMS.items()), db=svc.db)  # fmt: skip
    shown = cli("installer", "deployment", "show", "cli-lab", db=svc.db).stdout
    assert "********" in shown and SECRETS["rabbit_password"] not in shown
    node, _ = register(svc, enrol, inventory("cmp1", ["52:54:00:00:00:0c"], virt="svm"))
    res = cli("installer", "node", "assign", "cli-lab", "cmp1", "--roles", "compute",
              "--set", "flat_interface=eth0", db=svc.db)  # fmt: skip
    assert "flat_interface = eth0" in res.stdout and "shares eth0" in res.stdout
    listed = json.loads(cli("installer", "node", "list", "cli-lab", "--json", db=svc.db).stdout)
    assert listed[0]["roles"] == ["compute"] and listed[0]["inventory"]["virt"] == "svm"
    # ...and the service sees what the CLI did.
    admin = svc.login()
    status, n = svc.json("GET", f"/api/deployments/cli-lab/nodes/{node}", token=admin)
    assert n["roles"] == ["compute"]
    missing = cli("installer", "node", "show", "cli-lab", "nope", db=svc.db, check=False)
    assert missing.returncode == 1 and "no node 'nope'" in missing.stderr
    dup = cli("installer", "admin", "create", ADMIN, "--password-stdin", db=svc.db,
              stdin="another password", check=False)  # fmt: skip
    assert dup.returncode == 1 and "exists" in dup.stderr


def test_cli_node_header_events_and_actions(service: Service) -> None:
    """CLI parity with the UI: `node list` has a header, `node show` events carry timestamps,
    approve/reject a registration again, forget a node, delete a deployment."""
    import re

    svc = service
    enrol = create_deployment(svc, "cli-acts", PARAMS)
    macs = ["52:54:00:00:0a:01"]
    status, _, body = svc.request(
        "POST", "/agent/v1/register", token=enrol, body=inventory("c1", macs)
    )
    assert status == 201
    nid = parse_pairs(body)["node_id"]
    listing = cli("installer", "node", "list", "cli-acts", db=svc.db).stdout.splitlines()
    assert listing[0].split() == ["ID", "HOST", "MAC", "HARDWARE", "ROLES", "STATE", "PROGRESS"]
    assert listing[1].split()[:2] == [nid, "c1"]
    shown = cli("installer", "node", "show", "cli-acts", nid, db=svc.db).stdout
    assert re.search(r"^\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d  agent\s+registered$", shown, re.M), shown
    # The same MAC registers again without its token: reject, then again and approve.
    for verb, done in (("reject", "rejected"), ("approve", "approved")):
        again = inventory("c1b", macs)
        assert svc.request("POST", "/agent/v1/register", token=enrol, body=again)[0] == 201
        out = cli("installer", "node", verb, "cli-acts", nid, db=svc.db).stdout
        assert f"registration {done}" in out, out
    assert "c1b" in cli("installer", "node", "list", "cli-acts", db=svc.db).stdout
    bad = cli("installer", "node", "approve", "cli-acts", nid, db=svc.db, check=False)
    assert bad.returncode == 1 and "no registration waiting" in bad.stderr
    out = cli("installer", "deployment", "netboot", "cli-acts", db=svc.db).stdout
    assert out.strip().endswith("unknown machines get: menu"), out
    cli("installer", "deployment", "netboot", "cli-acts", "--unknown", "wait", db=svc.db)
    out = cli("installer", "deployment", "netboot", "cli-acts", db=svc.db).stdout
    assert out.strip().endswith("unknown machines get: wait"), out
    cli("installer", "node", "forget", "cli-acts", nid, "--yes", db=svc.db)
    assert cli("installer", "node", "list", "cli-acts", db=svc.db).stdout == ""
    asked = cli("installer", "deployment", "delete", "cli-acts", db=svc.db, stdin="n\n",
                check=False)  # fmt: skip
    assert asked.returncode == 1
    cli("installer", "deployment", "delete", "cli-acts", "--yes", db=svc.db)
    gone = cli("installer", "deployment", "show", "cli-acts", db=svc.db, check=False)
    assert gone.returncode == 1 and "cli-acts" in gone.stderr


def test_password_minimum_length_everywhere(service: Service, tmp_path: Path) -> None:
    """Issue 21: `admin_password: x` and a one-character RabbitMQ password were accepted. Every
    password question has a fewest-characters rule (role.yaml `min: 8`), applied by the one
    validator the API, the CLI and deployment files share; the API names every short one by
    field and the view carries the minimum for the form."""
    svc = service
    admin = svc.login()
    make_deployment(svc, admin, "pw", "dual-node")
    short = {"admin_password": "x", "rabbit_password": "r", "nova_db_password": "seven77"}
    status, err = svc.json("PUT", "/api/deployments/pw/params", token=admin, json_body=short)
    assert status == 400, err
    assert sorted(err["fields"]) == sorted(short)
    for key in short:
        assert "shorter than 8 characters" in err["fields"][key], err["fields"]
    ok = {"admin_password": "eight888", "rabbit_password": "r" * 8, "nova_db_password": "n" * 20}
    status, data = svc.json("PUT", "/api/deployments/pw/params", token=admin, json_body=ok)
    assert status == 200, data
    assert data["params"]["mysql_root_password"]["min_length"] == 8
    assert data["params"]["controller_address"]["min_length"] is None
    # The CLI refuses the same value with the same words...
    bad = cli("installer", "deployment", "set", "pw", "mysql_root_password=r00t", db=svc.db,
              check=False)  # fmt: skip
    assert bad.returncode == 1 and "shorter than 8 characters" in bad.stderr, bad.stderr
    # ...and so does a deployment file (the build's loader).
    dep = tmp_path / "d.yaml"
    dep.write_text("answers: {rabbit_password: r4bbit}\n")
    out = subprocess.run(
        [sys.executable, "-m", "distro_builder", "entries", "--deployment", str(dep)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 1 and "rabbit_password" in out.stderr
    assert "shorter than 8 characters" in out.stderr, out.stderr
