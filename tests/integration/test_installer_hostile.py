"""Hostile requests against a live `distro-builder serve`: no 5xx, a login storm bounded in memory
with /healthz answering under a second, lockouts per client address and per user (429 with
Retry-After), and values that would break a preseed or an answers file refused."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.helpers import IN_CI, require_tool_or_skip
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


def test_a_huge_json_number_is_a_400(svc: Service) -> None:
    """Issue 20 item 9: a number of 4,301 digits (past Python's integer-digits limit) in any
    JSON body is a 400 that says so, with or without a login (it was a 500)."""
    create_deployment(svc, "lab", PARAMS)
    admin = svc.login()
    huge = "1" * 4301
    for path, method, body, token in [
        ("/api/login", "POST", '{"username": ' + huge + ', "password": "x"}', None),
        ("/api/deployments/lab/params", "PUT", '{"network_size": ' + huge + "}", admin),
        ("/api/deployments", "POST", '{"name": "x", "n": -' + huge + "}", admin),
    ]:
        status, _, data = svc.request(
            method, path, body=body, token=token, headers={"Content-Type": "application/json"}
        )
        assert status == 400, (path, status, data)
        assert "number" in json.loads(data)["error"], data
    assert "Traceback" not in svc.log.read_text()


def test_logout_takes_json_only(svc: Service) -> None:
    """Issue 20 item 19: POST /api/logout with a form body (what a cross-site <form> sends)
    is refused like every other API call's; the UI's bodyless call and JSON still log out."""
    admin = svc.login()
    form = "application/x-www-form-urlencoded"
    for ctype, body in [(form, "a=b"), (form, ""), ("text/plain", "{}")]:
        status, _, data = svc.request(
            "POST", "/api/logout", body=body, token=admin, headers={"Content-Type": ctype}
        )
        assert status == 400 and b"application/json" in data, (ctype, status, data)
    assert svc.request("GET", "/api/whoami", token=admin)[0] == 200  # still logged in
    assert svc.json("POST", "/api/logout", token=admin, json_body={})[0] == 200
    assert svc.request("GET", "/api/whoami", token=admin)[0] == 401
    other = svc.login()
    assert svc.request("POST", "/api/logout", token=other)[0] == 200  # the UI's: no body


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True)


def test_a_full_disk_is_said(tmp_path: Path) -> None:
    """Issue 20 item 18: the database on a full disk (a 4 MiB tmpfs, filled): writes answer
    507 with the reason, /healthz says what is wrong (it said ok while every write was a
    500); once space is back, both recover."""
    require_tool_or_skip("mount", "umount")
    if os.geteuid() != 0:
        pytest.skip("mounts a tmpfs: needs root") if not IN_CI else pytest.fail("needs root")
    disk = tmp_path / "disk"
    disk.mkdir()
    _mount("-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk))
    svc = None
    try:
        url = f"sqlite:///{disk / 'installer.sqlite'}"
        cli("installer", "admin", "create", ADMIN, "--password-stdin", db=url,
            stdin=ADMIN_PASSWORD)  # fmt: skip
        svc = Service(url, tmp_path / "serve.log")
        create_deployment(svc, "lab", PARAMS)
        admin = svc.login()
        filler = disk / "filler"
        with open(filler, "wb") as f:
            try:
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
            except OSError:
                pass
        big = {"rabbit_password": "r" * 120}
        status, data = svc.json("PUT", "/api/deployments/lab/params", token=admin,
                                json_body=big)  # fmt: skip
        assert status == 507 and "full" in data["error"], (status, data)
        status, _, body = svc.request("GET", "/healthz")
        assert status == 503 and b"full" in body, (status, body)
        filler.unlink()
        assert svc.json("PUT", "/api/deployments/lab/params", token=admin,
                        json_body=big)[0] == 200  # fmt: skip
        assert svc.request("GET", "/healthz")[:1] == (200,)
        log = svc.log.read_text()
        assert "Traceback" not in log
    finally:
        if svc is not None:
            svc.stop()
        subprocess.run(["umount", "-l", str(disk)], check=False)


def test_a_read_only_disk_is_said(tmp_path: Path) -> None:
    """Issue 20 item 18, read-only: /healthz's check sees the ro mount under the SQLite file,
    and SQLite's SQLITE_READONLY is a 503 with the reason. (Linux refuses to remount a file
    system ro while the service holds the database open for writing, so the two halves are
    shown apart: the mount with the database closed, the error on a read-only connection.)"""
    import sqlite3

    from distro_builder.smart_installer.db import Database, _storage_errors
    from distro_builder.smart_installer.errors import DatabaseError

    require_tool_or_skip("mount", "umount")
    if os.geteuid() != 0:
        pytest.skip("mounts a tmpfs: needs root") if not IN_CI else pytest.fail("needs root")
    disk = tmp_path / "disk"
    disk.mkdir()
    _mount("-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk))
    try:
        db = Database(f"sqlite:///{disk / 'installer.sqlite'}")
        assert db.storage_problem() is None
        db.close()
        _mount("-o", "remount,ro", str(disk))
        problem = db.storage_problem()
        assert problem and "read-only" in problem, problem
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)
    path = tmp_path / "ro.sqlite"
    sqlite3.connect(path).execute("CREATE TABLE t (x)").connection.commit()
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    with pytest.raises(DatabaseError, match="read-only") as err, _storage_errors(path):
        conn.execute("INSERT INTO t VALUES (1)")
    assert err.value.status == 503 and err.value.hint
