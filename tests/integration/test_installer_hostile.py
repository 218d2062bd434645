"""Hostile requests against a live `distro-builder serve`: no 5xx, a login storm bounded in memory
with /healthz answering under a second, lockouts per client address and per user (429 with
Retry-After), and values that would break a preseed or an answers file refused."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
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


SLOW_HEADERS, SLOW_BODIES, NEVER_READ = 60, 60, 80  # 200 slow connections (issue 20 item 3)
HEALTHZ_P99_S = 1.0


def _slow_socket(port: int, source: str, head: bytes) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a client that reads nothing
    s.sendall(head)
    return s


def test_slow_clients_do_not_starve_healthz(tmp_path: Path, demo_base: Path) -> None:
    """Issue 20 item 3: 200 slow connections from four addresses (headers a byte at a time,
    bodies a byte at a time, clients that never read the netboot initrd) while /healthz is
    asked 100 times: its p99 stays under a second (it was 27-30 s with 80)."""
    url = f"sqlite:///{tmp_path / 'installer.sqlite'}"
    cli("installer", "admin", "create", ADMIN, "--password-stdin", db=url, stdin=ADMIN_PASSWORD)
    svc = Service(url, tmp_path / "serve.log", extra=("--disc", str(demo_base)))
    socks: list[socket.socket] = []
    stop = threading.Event()
    try:
        sources = [f"127.0.8.{i}" for i in range(1, 5)]
        for i in range(SLOW_HEADERS):
            socks.append(_slow_socket(svc.port, sources[i % 4], b"GET /healthz HTTP/1.1\r\nX"))
        for i in range(SLOW_BODIES):
            head = (b"POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    b"Content-Length: 60000\r\n\r\n{")  # fmt: skip
            socks.append(_slow_socket(svc.port, sources[i % 4], head))
        readers = []
        for i in range(NEVER_READ):
            head = b"GET /netboot/amd64/initrd.gz HTTP/1.1\r\nHost: x\r\n\r\n"
            readers.append(_slow_socket(svc.port, sources[i % 4], head))

        def trickle() -> None:  # one more byte on every slow socket each 0.5 s
            while not stop.wait(0.5):
                for s in socks:
                    try:
                        s.send(b"x")
                    except OSError:
                        pass

        threading.Thread(target=trickle, daemon=True).start()
        time.sleep(2)  # the flood is in
        times = []
        for _ in range(100):
            t0 = time.monotonic()
            status, _, _ = svc.request("GET", "/healthz", timeout=60)
            times.append(time.monotonic() - t0)
            assert status == 200
        times.sort()
        p99 = times[98]
        print(f"healthz under 200 slow connections: p50 {times[49]:.3f} s, p99 {p99:.3f} s")
        assert p99 < HEALTHZ_P99_S, times[-5:]
        status, _, _ = svc.request("GET", "/", timeout=60)  # the admin UI answers too
        assert status == 200
    finally:
        stop.set()
        for s in socks + readers:
            s.close()
        svc.stop()


PER_ADDRESS = 100


def test_connections_per_address_are_capped(svc: Service) -> None:
    """Issue 20 item 3: one address holds at most PER_ADDRESS connections; the next is told
    so (503) and closed, while another address is served."""
    from distro_builder.smart_installer.server import MAX_CONNECTIONS_PER_ADDRESS

    assert MAX_CONNECTIONS_PER_ADDRESS == PER_ADDRESS
    where = ("127.0.0.1", svc.port)
    held = [
        socket.create_connection(where, timeout=10, source_address=("127.0.9.1", 0))
        for _ in range(PER_ADDRESS)
    ]
    try:
        time.sleep(0.5)
        extra = socket.create_connection(("127.0.0.1", svc.port), timeout=10,
                                         source_address=("127.0.9.1", 0))  # fmt: skip
        with extra:
            answer = extra.recv(4096)
        assert answer.startswith(b"HTTP/1.1 503") and b"too many connections" in answer, answer
        status, _, _ = svc.request("GET", "/healthz", source="127.0.9.2")
        assert status == 200
    finally:
        for s in held:
            s.close()
    time.sleep(0.5)
    assert svc.request("GET", "/healthz", source="127.0.9.1")[0] == 200
