"""Hostile requests against a live `distro-builder serve`: no 5xx, a login storm bounded in memory
with /healthz answering under a second, lockouts per client address and per user (429 with
Retry-After), and values that would break a preseed or an answers file refused."""

from __future__ import annotations

import http.client
import json
from pathlib import Path

import pytest

from tests.integration.installer_live import (
    ADMIN,
    ADMIN_PASSWORD,
    Service,
    cli,
    create_deployment,
    inventory,
    login_storm,
    process_tree,
)

pytestmark = pytest.mark.integration

PARAMS = {
    "controller_address": "10.0.0.1", "mysql_root_password": "m-secret",
    "nova_db_password": "n-secret", "rabbit_password": "r-secret", "admin_password": "a-secret",
}  # fmt: skip
STORM_MAX_GROWTH_MIB = 100  # 2 hashing threads x 16 MiB and the rest; it was 650+ MiB


@pytest.fixture
def svc(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'installer.sqlite'}"
    cli("installer", "admin", "create", ADMIN, "--password-stdin", db=url, stdin=ADMIN_PASSWORD)
    service = Service(url, tmp_path / "serve.log")
    yield service
    service.stop()


def _login_from(svc: Service, source: str, user: str, password: str) -> tuple[int, dict, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", svc.port, timeout=30, source_address=(source, 0))
    try:
        body = json.dumps({"username": user, "password": password})
        conn.request("POST", "/api/login", body, {"Content-Type": "application/json"})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, json.loads(resp.read())
    finally:
        conn.close()


def test_login_storm_is_bounded(svc: Service) -> None:
    result = login_storm(svc, 64)
    assert set(result["statuses"]) <= {401, 429}, result
    growth = result["rss_peak_mib"] - result["rss_before_mib"]
    assert growth < STORM_MAX_GROWTH_MIB, result
    assert result["healthz_count"] > 0 and result["healthz_max_s"] < 1.0, result
    status, _, _ = svc.request("GET", "/healthz")
    assert status == 200


def test_lockout_per_user_and_per_client(svc: Service) -> None:
    for i in range(10):  # ten wrong passwords for admin, each from its own address
        status, _, _ = _login_from(svc, f"127.0.1.{i + 1}", ADMIN, f"guess {i}")
        assert status == 401
    status, headers, data = _login_from(svc, "127.0.1.99", ADMIN, ADMIN_PASSWORD)
    assert status == 429 and int(headers["retry-after"]) >= 1, data  # even the right one
    assert "too many failed logins for this user" in data["error"] and data["hint"]
    for i in range(10):  # ten wrong users from one address
        status, _, _ = _login_from(svc, "127.0.2.1", f"nobody{i}", "guess")
        assert status == 401
    status, headers, data = _login_from(svc, "127.0.2.1", "someone", "guess")
    assert status == 429 and "for this address" in data["error"] and headers["retry-after"]
    status, _, _ = _login_from(svc, "127.0.2.2", "someone", "guess")
    assert status == 401  # another address is not locked


def test_lockout_holds_across_worker_processes(tmp_path: Path) -> None:
    """serve --workers 3: the failures live in the database, so ten wrong passwords spread over
    three processes lock the user out in all of them (in memory each process counted its own
    three or four, and an attacker had three times the attempts)."""
    url = f"sqlite:///{tmp_path / 'installer.sqlite'}"
    cli("installer", "admin", "create", ADMIN, "--password-stdin", db=url, stdin=ADMIN_PASSWORD)
    service = Service(url, tmp_path / "serve.log", extra=("--workers", "3"))
    try:
        for i in range(10):
            status, _, _ = _login_from(service, f"127.0.3.{i + 1}", ADMIN, f"guess {i}")
            assert status == 401
        for i in range(6):  # every worker refuses the right password now
            status, headers, data = _login_from(service, f"127.0.4.{i + 1}", ADMIN, ADMIN_PASSWORD)
            assert status == 429 and "for this user" in data["error"], data
        assert service.proc is not None
        pids = {p for p in process_tree(service.proc.pid) if p != service.proc.pid}
        assert len(pids) >= 3, pids  # the master's three workers
    finally:
        service.stop()


def test_hostile_requests_get_4xx_never_5xx(svc: Service) -> None:
    enrol = create_deployment(svc, "lab", PARAMS)
    admin = svc.login()
    status, _, body = svc.request(
        "POST", "/agent/v1/register", token=enrol, body=inventory("cn1", ["52:54:00:00:00:01"])
    )
    assert status == 201, body
    bad = [
        ("PUT", "/api/deployments/lab/params", {"rabbit_password": "x\nd-i passwd/root-login"}),
        ("PUT", "/api/deployments/lab/params", {"controller_address": "0.0.0.0"}),
        ("PUT", "/api/deployments/lab/params", {"controller_address": "255.255.255.255"}),
        ("PUT", "/api/deployments/lab/params", {"floating_range": "10.0.0.0/24"}),  # holds .1
        ("PUT", "/api/deployments/lab/params", {"admin_password": "a\x00b"}),
        ("PUT", "/api/deployments/lab/params", {"nova_db_password": "x" * 5000}),
        ("PUT", "/api/deployments/lab/nodes/1/roles",
         {"roles": ["compute"], "answers": {"hostname": "cn1\nx"}}),
        ("PUT", "/api/deployments/lab/nodes/1/roles",
         {"roles": ["compute"], "answers": {"flat_interface": "eth0;reboot"}}),
        ("PUT", "/api/deployments/lab/nodes/1/roles", {"roles": "compute"}),
        ("POST", "/api/deployments", {"name": "x\ny", "architecture": "dual-node"}),
        ("POST", "/api/deployments", {"name": "ok", "architecture": ["dual-node"]}),
        ("POST", "/api/login", {"username": ADMIN, "password": ["x"]}),
        ("POST", "/api/login", {"username": "a" * 10_000, "password": "x"}),
    ]  # fmt: skip
    for method, path, payload in bad:
        status, _, body = svc.request(method, path, json_body=payload, token=admin)
        assert 400 <= status < 500, (path, payload, status, body)
    agent_bad = [
        "hostname=cn2\nnic=eth0 52:54:00:00:00:02 up\nbogus=1\n",
        "hostname=cn2\x1b[2J\nnic=eth0 52:54:00:00:00:02 up\n",
        "hostname='cn2\nnic=eth0 52:54:00:00:00:02 up\n",
        "nic=eth0 not-a-mac up\n",
        "x" * 20_000,
    ]
    for text in agent_bad:
        status, _, body = svc.request("POST", "/agent/v1/register", token=enrol, body=text)
        assert 400 <= status < 500, (text[:40], status, body)
    status, _, body = svc.request("GET", "/agent/v1/nodes/1/answers", token="not-a-token")
    assert status == 401, body
    status, _, _ = svc.request("GET", "/healthz")
    assert status == 200
