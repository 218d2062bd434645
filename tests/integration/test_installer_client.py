"""The node's Smart Installer client (smart_installer/client/stackops-installer-client) under dash,
bash and busybox ash, with GNU wget, against the live service on loopback: registration with a
fake machine's inventory, waiting for roles, merging the answers, progress reports, and the
fallbacks (unreachable service, refused token, no roles in time) that keep a boot from blocking.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.helpers import require_tool_or_skip
from tests.integration.installer_live import (
    ADMIN,
    ADMIN_PASSWORD,
    ROOT,
    Service,
    cli,
    closed_port,
    create_deployment,
    parse_pairs,
    self_signed_cert,
)

pytestmark = pytest.mark.integration

CLIENT = ROOT / "smart_installer" / "client" / "stackops-installer-client"
SHELLS = {"dash": ["dash"], "bash": ["bash", "--posix"], "busybox-ash": ["busybox", "ash"]}
PARAMS = {
    "controller_address": "10.0.0.10",
    "floating_range": "172.24.4.0/24",
    "nova_db_password": "it's a secret",
    "rabbit_password": "rabbit-pass-1",
    "mysql_root_password": "mysql-root-pw",
    "admin_password": "admin-secret",
}


def fake_machine(root: Path, *, vmx: bool, disks: dict[str, list[str]], nics: dict[str, str]):
    """/proc and /sys of a machine: CPUs, memory, NICs (name -> mac), disks (-> partitions)."""
    (root / "proc/sys/kernel").mkdir(parents=True)
    (root / "proc/sys/kernel/hostname").write_text("node-a\n")
    flags = "fpu vme de pse tsc msr pae" + (" vmx" if vmx else "") + " sse sse2"
    cpu = "".join(f"processor\t: {i}\nflags\t\t: {flags}\n\n" for i in range(2))
    (root / "proc/cpuinfo").write_text(cpu)
    (root / "proc/meminfo").write_text("MemTotal:        2048000 kB\nMemFree: 1 kB\n")
    parts = "major minor  #blocks  name\n\n"
    for disk, partitions in disks.items():
        parts += f"   8        0   10485760 {disk}\n"
        for p in partitions:
            parts += f"   8        1    1048576 {p}\n"
    (root / "proc/partitions").write_text(parts)
    (root / "proc/mounts").write_text("/dev/sda1 / ext3 rw 0 0\n")
    (root / "proc/swaps").write_text("Filename Type Size Used Priority\n")
    for name, mac in {"lo": "00:00:00:00:00:00", **nics}.items():
        d = root / "sys/class/net" / name
        d.mkdir(parents=True)
        (d / "address").write_text(mac + "\n")
        (d / "operstate").write_text(("unknown" if name == "lo" else "up") + "\n")


def fake_ip(tmp: Path, addresses: dict[str, str]) -> None:
    """tmp/bin/ip answering `ip -o -4 addr show dev NAME` as iproute does, with the fake
    machine's addresses (name -> IPv4, in tmp/bin/addresses: call again to change them); an
    interface without one prints nothing."""
    (tmp / "bin").mkdir(exist_ok=True)
    table = tmp / "bin/addresses"
    table.write_text("".join(f"{name} {addr}\n" for name, addr in addresses.items()))
    script = (
        "#!/bin/sh\nfor dev; do :; done\n"
        f"a=$(awk -v d=\"$dev\" '$1 == d {{print $2}}' '{table}')\n"
        '[ -n "$a" ] || exit 0\n'
        "printf '2: %s    inet %s/24 brd 10.0.0.255 scope global %s\\\\       valid_lft forever"
        ' preferred_lft forever\\n\' "$dev" "$a" "$dev"\n'
    )
    (tmp / "bin/ip").write_text(script)
    (tmp / "bin/ip").chmod(0o755)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    require_tool_or_skip("dash", "wget", "busybox", "bash")
    tmp = tmp_path_factory.mktemp("installer")
    url = f"sqlite:///{tmp / 'installer.sqlite'}"
    cli("installer", "admin", "create", ADMIN, "--password-stdin", db=url, stdin=ADMIN_PASSWORD)
    svc = Service(url, tmp / "serve.log")
    yield svc
    svc.stop()


class Node:
    """One fake node: its root, answers file and state dir; runs the client in a shell."""

    def __init__(self, tmp: Path, shell: str, url: str, token: str) -> None:
        self.tmp, self.shell = tmp, SHELLS[shell]
        self.root = tmp / "root"
        self.answers = tmp / "etc/stackops/answers"
        self.answers.parent.mkdir(parents=True)
        self.answers.write_text(
            "# written by the installer\n"
            "roles=''\n"
            "public_interface='eth0'\n"
            f"installer_url='{url}'\n"
            f"installer_token='{token}'\n"
        )
        self.answers.chmod(0o600)
        fake_ip(tmp, {})  # no addresses, not this machine's (a test gives the ones it wants)

    def run(self, *args: str, timeout: float = 90, stdin: str | None = None):
        env = {
            "PATH": f"{self.tmp / 'bin'}:{os.environ['PATH']}",  # fake_ip's ip first
            "STACKOPS_ROOT": str(self.root),
            "STACKOPS_INSTALLER_STATE": str(self.tmp / "state"),
            "TMPDIR": str(self.tmp),
        }
        return subprocess.run(
            [*self.shell, str(CLIENT), "--answers", str(self.answers), *args],
            env=env, capture_output=True, text=True, timeout=timeout, input=stdin,
        )  # fmt: skip


def _deployment(svc: Service, name: str) -> str:
    return create_deployment(svc, name, PARAMS)


@pytest.mark.parametrize("shell", list(SHELLS))
def test_register_wait_fetch_report(service: Service, tmp_path: Path, shell: str) -> None:
    svc = service
    name = f"c-{shell}"
    enrol = _deployment(svc, name)
    node = Node(tmp_path, shell, svc.url, enrol)
    fake_machine(
        node.root, vmx=False, disks={"sda": ["sda1"], "sdb": []},
        nics={"eth0": "52:54:00:aa:00:01", "eth1": "52:54:00:aa:00:02"},
    )  # fmt: skip
    admin = svc.login()

    # The admin assigns roles while the client waits.
    def assign_when_registered() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            _, nodes = svc.json("GET", f"/api/deployments/{name}/nodes", token=admin)
            if nodes:
                time.sleep(1.5)  # let the client see "unassigned" first
                svc.json(
                    "PUT", f"/api/deployments/{name}/nodes/{nodes[0]['id']}/roles",
                    token=admin, json_body={"roles": ["controller", "network", "volume"]},
                )  # fmt: skip
                return
            time.sleep(0.2)

    t = threading.Thread(target=assign_when_registered)
    t.start()
    res = node.run("run")
    t.join()
    assert res.returncode == 0, res.stderr
    assert "STACKOPS-INSTALLER registered node=" in res.stdout
    assert "state=unassigned" in res.stdout
    assert res.stdout.rstrip().endswith("roles=controller,network,volume")

    # The service saw the fake machine's inventory.
    _, nodes = svc.json("GET", f"/api/deployments/{name}/nodes", token=admin)
    inv = nodes[0]["inventory"]
    assert inv["hostname"] == "node-a" and inv["cpus"] == 2 and inv["virt"] == "none"
    assert inv["mem_mb"] == 2000
    assert [(n["name"], n["mac"]) for n in inv["nics"]] == [
        ("eth0", "52:54:00:aa:00:01"), ("eth1", "52:54:00:aa:00:02"),
    ]  # fmt: skip
    assert [(d["name"], d["free"]) for d in inv["disks"]] == [("sda", False), ("sdb", True)]

    # The answers file: merged, 0600, the installer's lines kept, sourceable by sh.
    assert node.answers.stat().st_mode & 0o777 == 0o600
    text = node.answers.read_text()
    assert text.count("roles=") == 1 and "installer_url=" in text
    assert text.startswith("# written by the installer\n")
    out = subprocess.run(
        ["dash", "-c", '. "$1"; printf "%s|%s|%s|%s" "$roles" "$nova_db_password" '
         '"$volume_device" "$installer_token"', "sh", str(node.answers)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert out.stdout == f"controller,network,volume|it's a secret|/dev/sdb|{enrol}"

    # Progress lines, from arguments and from stdin (only STACKOPS lines are sent).
    res = node.run("report", "STACKOPS step=1/2 role=controller name=mysql status=ok t=1.0s")
    assert res.returncode == 0, res.stderr
    res = node.run(
        "report", "-",
        stdin="noise\nSTACKOPS step=2/2 role=volume name=vg status=ok t=0.5s\n"
        "STACKOPS-FIRSTBOOT done roles=controller,network,volume\n",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    _, n = svc.json("GET", f"/api/deployments/{name}/nodes/{nodes[0]['id']}", token=admin)
    assert n["state"] == "done"
    assert "noise" not in [e["line"] for e in n["events"]]

    # A second run reuses the node's token (no new registration) and changes nothing.
    res = node.run("run")
    assert res.returncode == 0, res.stderr
    assert "registered" not in res.stdout
    _, nodes = svc.json("GET", f"/api/deployments/{name}/nodes", token=admin)
    assert len(nodes) == 1


@pytest.mark.parametrize("shell", ["dash", "busybox-ash"])
def test_unreachable_service_falls_back(tmp_path: Path, shell: str) -> None:
    require_tool_or_skip("dash", "wget", "busybox")
    node = Node(tmp_path, shell, f"http://127.0.0.1:{closed_port()}", "some-token")
    fake_machine(node.root, vmx=True, disks={"sda": []}, nics={"eth0": "52:54:00:aa:00:09"})
    before = node.answers.read_text()
    t0 = time.monotonic()
    res = node.run("--connect-timeout", "4", "run", timeout=60)
    took = time.monotonic() - t0
    assert res.returncode == 3, (res.stdout, res.stderr)
    assert "unreachable" in res.stdout and "using the local answers" in res.stdout
    assert "cannot reach" in res.stderr
    assert 3 <= took < 20, took  # bounded (whole seconds of date +%s): the boot goes on
    assert node.answers.read_text() == before


def test_refused_token_and_no_roles_in_time(service: Service, tmp_path: Path) -> None:
    svc = service
    node = Node(tmp_path / "a", "dash", svc.url, "not-a-real-token")
    fake_machine(node.root, vmx=True, disks={"sda": []}, nics={"eth0": "52:54:00:aa:00:0a"})
    res = node.run("run")
    assert res.returncode == 4 and "refused" in res.stderr, res.stderr

    enrol = _deployment(svc, "c-timeout")
    node = Node(tmp_path / "b", "dash", svc.url, enrol)
    fake_machine(node.root, vmx=True, disks={"sda": []}, nics={"eth0": "52:54:00:aa:00:0b"})
    before = node.answers.read_text()
    t0 = time.monotonic()
    res = node.run("--wait-timeout", "3", "run")
    assert res.returncode == 5, (res.stdout, res.stderr)
    assert time.monotonic() - t0 < 30
    assert "timeout" in res.stdout and "no roles assigned within 3s" in res.stderr
    assert node.answers.read_text() == before

    # Without the option, the disc's installer_wait (build --installer-wait) bounds the wait.
    node.answers.write_text(before + "installer_wait='2'\n")
    res = node.run("run")
    assert res.returncode == 5 and "no roles assigned within 2s" in res.stderr, res.stderr
    node.answers.write_text(before + "installer_wait='soon'\n")
    res = node.run("run")
    assert res.returncode == 2 and "timeouts are whole seconds" in res.stderr
    node.answers.write_text(before)

    # Missing settings: a usage error, not a hang.
    node.answers.write_text("roles=''\n")
    res = node.run("run")
    assert res.returncode == 2 and "no installer_url" in res.stderr


def test_client_passes_shellcheck() -> None:
    require_tool_or_skip("shellcheck")
    for shell in ("sh", "dash", "bash"):
        res = subprocess.run(
            ["shellcheck", "-s", shell, str(CLIENT)], capture_output=True, text=True
        )
        assert res.returncode == 0, res.stdout


def test_tls_fingerprint_is_checked(tmp_path: Path) -> None:
    """An https service: the client talks to it only when its certificate has the fingerprint
    the disc carries (installer_fingerprint)."""
    require_tool_or_skip("dash", "wget", "openssl")
    cert, key = self_signed_cert(tmp_path)
    url = f"sqlite:///{tmp_path / 'installer.sqlite'}"
    created = cli("installer", "deployment", "create", "tls", "-a", "dual-node", db=url).stdout
    enrol = created.split("enrolment token: ")[1].split()[0]
    svc = Service(
        url, tmp_path / "serve.log", extra=("--tls-cert", str(cert), "--tls-key", str(key))
    )
    try:
        assert svc.scheme == "https"
        fp = subprocess.run(
            ["openssl", "x509", "-noout", "-fingerprint", "-sha256", "-in", str(cert)],
            capture_output=True, text=True, check=True,
        ).stdout.strip().split("=")[1]  # fmt: skip
        assert f"certificate SHA-256 fingerprint: {fp}" in (tmp_path / "serve.log").read_text()

        wrong = Node(tmp_path / "wrong", "dash", svc.url, enrol)
        fake_machine(wrong.root, vmx=True, disks={"sda": []}, nics={"eth0": "52:54:00:aa:01:01"})
        with wrong.answers.open("a") as f:
            f.write("installer_fingerprint='" + "AB:" * 31 + "AB'\n")
        res = wrong.run("run")
        assert res.returncode == 4 and "not the one this disc trusts" in res.stderr, res.stderr

        right = Node(tmp_path / "right", "dash", svc.url, enrol)
        fake_machine(right.root, vmx=True, disks={"sda": []}, nics={"eth0": "52:54:00:aa:01:02"})
        with right.answers.open("a") as f:
            f.write(f"installer_fingerprint='{fp.lower()}'\n")
        res = right.run("--wait-timeout", "2", "run")
        assert res.returncode == 5, (res.stdout, res.stderr)  # registered, then no roles in time
        assert "STACKOPS-INSTALLER registered node=1" in res.stdout
        listed = cli("installer", "node", "list", "tls", "--json", db=url).stdout
        assert "52:54:00:aa:01:02" in listed and "52:54:00:aa:01:01" not in listed
    finally:
        svc.stop()


@pytest.mark.parametrize("shell", list(SHELLS))
def test_nic_lines_carry_the_ipv4_address(service: Service, tmp_path: Path, shell: str) -> None:
    """`nic=<name> <mac> <state> <ipv4>` from `ip -o -4 addr` (issue 22 finding 7): the service
    derives the network node's address from it; an interface without one keeps three fields."""
    svc = service
    enrol = _deployment(svc, f"ip-{shell}")
    node = Node(tmp_path, shell, svc.url, enrol)
    fake_machine(
        node.root, vmx=True, disks={"sda": ["sda1"]},
        nics={"eth0": "52:54:00:ab:00:01", "eth1": "52:54:00:ab:00:02"},
    )  # fmt: skip
    fake_ip(tmp_path, {"eth0": "10.0.0.20"})
    res = node.run("--wait-timeout", "0", "run")  # register, one poll, no roles: exit 5
    assert res.returncode == 5 and "registered node=" in res.stdout, (res.stdout, res.stderr)
    _, nodes = svc.json("GET", f"/api/deployments/ip-{shell}/nodes", token=svc.login())
    assert [(n["name"], n.get("ipv4")) for n in nodes[0]["inventory"]["nics"]] == [
        ("eth0", "10.0.0.20"), ("eth1", None),
    ]  # fmt: skip


def _run_alongside(node: Node, action: Callable[[], None]) -> subprocess.CompletedProcess:
    """`run` on `node` while `action` (the admin's and the other nodes' side) runs in a thread."""
    t = threading.Thread(target=action)
    t.start()
    res = node.run("run", timeout=120)
    t.join()
    return res


def _api_node(svc: Service, enrol: str, dep: str, inv: str, role: str) -> tuple[dict, str]:
    """A node registered over the agent API (not by the client) with inventory `inv`, given
    `role`: its registration (node_id, node_token) and the response (a client's state file)."""
    status, _, body = svc.request("POST", "/agent/v1/register", token=enrol, body=inv)
    assert status == 201, body
    node = parse_pairs(body)
    path = f"/api/deployments/{dep}/nodes/{node['node_id']}/roles"
    status, data = svc.json("PUT", path, token=svc.login(), json_body={"roles": [role]})
    assert status == 200, data
    return node, body.decode()


def test_the_controller_waits_for_the_network_nodes_address(
    service: Service, tmp_path: Path
) -> None:
    """Multi-node: the controller's client polls (state=waiting, the reason said once) until the
    network node's first boot sends its inventory with its address; then it gets the answers
    with network_address derived from it."""
    svc, dep = service, "ip-multi"
    enrol = create_deployment(svc, dep, PARAMS, architecture="multi-node")
    admin = svc.login()
    # The network node was installed over the network: registered without an address (iPXE).
    inv = "hostname=net-1\nnic=eth0 52:54:00:ab:01:02 up\n"
    net_node, registration = _api_node(svc, enrol, dep, inv, "network")
    net_id = int(net_node["node_id"])
    net = Node(tmp_path / "net", "dash", svc.url, enrol)
    fake_machine(net.root, vmx=True, disks={"sda": ["sda1"]}, nics={"eth0": "52:54:00:ab:01:02"})
    fake_ip(tmp_path / "net", {"eth0": "10.0.0.20"})
    (tmp_path / "net/state").mkdir()
    (tmp_path / "net/state/node").write_text(registration)

    ctl = Node(tmp_path / "ctl", "dash", svc.url, enrol)
    fake_machine(ctl.root, vmx=True, disks={"sda": ["sda1"]}, nics={"eth0": "52:54:00:ab:01:01"})
    fake_ip(tmp_path / "ctl", {"eth0": "10.0.0.10"})
    net_run = {}

    def admin_then_network_node() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            _, nodes = svc.json("GET", f"/api/deployments/{dep}/nodes", token=admin)
            ctl_node = [n for n in nodes if n["id"] != net_id]
            if ctl_node and not ctl_node[0]["roles"]:
                path = f"/api/deployments/{dep}/nodes/{ctl_node[0]['id']}/roles"
                svc.json("PUT", path, token=admin, json_body={"roles": ["controller"]})
            if ctl_node and ctl_node[0]["roles"]:
                time.sleep(6)  # a poll of the controller's sees state=waiting first
                net_run["res"] = net.run("run")  # the network node's first boot
                return
            time.sleep(0.2)

    res = _run_alongside(ctl, admin_then_network_node)
    assert net_run["res"].returncode == 0, net_run["res"].stderr
    assert "inventory sent" in net_run["res"].stdout
    assert res.returncode == 0, (res.stdout, res.stderr)
    waiting = [ln for ln in res.stdout.splitlines() if "state=waiting" in ln]
    assert len(waiting) == 1 and "report its address on eth0 (network_address)" in waiting[0]
    assert res.stdout.rstrip().endswith("roles=controller")
    text = ctl.answers.read_text()
    assert "network_address='10.0.0.20'\n" in text


@pytest.mark.parametrize("shell", ["dash", "busybox-ash"])
def test_answers_held_back_with_409_are_polled_again(tmp_path: Path, shell: str) -> None:
    """A service that says ready but holds the answers back (409 state='waiting', as for a
    controller whose network node's address became unknown between the two requests): the
    client polls again within its bound and merges the answers once they come."""
    import http.server

    calls: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def _send(self, status: int, body: str) -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:  # register
            self.rfile.read(int(self.headers["Content-Length"]))
            calls.append(self.path)
            self._send(201, "node_id='1'\nnode_token='t'\npoll_seconds='1'\n")

        def do_GET(self) -> None:
            calls.append(self.path)
            if self.path.endswith("/assignment"):
                self._send(200, "state='ready'\nroles='controller'\n")
            elif calls.count(self.path) < 3:  # the answers: held back twice
                self._send(409, "state='waiting'\nreason='network node'\nerror='network node'\n")
            else:
                self._send(200, "roles='controller'\nnetwork_address='10.0.0.20'\n")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        node = Node(tmp_path, shell, f"http://127.0.0.1:{server.server_address[1]}", "enrol")
        fake_machine(node.root, vmx=True, disks={"sda": []}, nics={"eth0": "52:54:00:aa:00:0c"})
        res = node.run("--wait-timeout", "30", "run")
    finally:
        server.shutdown()
    assert res.returncode == 0, (res.stdout, res.stderr)
    assert calls.count("/agent/v1/nodes/1/answers") == 3, calls
    held = [ln for ln in res.stdout.splitlines() if "holds the answers back" in ln]
    assert len(held) == 1, res.stdout  # said once, not at every poll
    assert "network_address='10.0.0.20'\n" in node.answers.read_text()


def test_a_network_node_without_its_address_yet_sends_it_when_it_comes(
    service: Service, tmp_path: Path
) -> None:
    """The network node's inventory went out before DHCP gave eth0 its address: the service's
    poll asks for it (address_wanted=eth0, while the controller waits), the client waits for
    the address, sends the inventory again, and the controller gets network_address."""
    svc, dep = service, "ip-late"
    enrol = create_deployment(svc, dep, PARAMS, architecture="multi-node")
    admin = svc.login()
    inv = "hostname=ctl-1\nnic=eth0 52:54:00:ab:02:01 up 10.0.0.10\n"
    ctl, _ = _api_node(svc, enrol, dep, inv, "controller")

    net = Node(tmp_path, "dash", svc.url, enrol)
    fake_machine(net.root, vmx=True, disks={"sda": ["sda1"]}, nics={"eth0": "52:54:00:ab:02:02"})

    def assign_then_dhcp() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            _, nodes = svc.json("GET", f"/api/deployments/{dep}/nodes", token=admin)
            mine = [n for n in nodes if n["mac"] == "52:54:00:ab:02:02"]
            if mine:
                path = f"/api/deployments/{dep}/nodes/{mine[0]['id']}/roles"
                svc.json("PUT", path, token=admin, json_body={"roles": ["network"]})
                time.sleep(8)  # the client's next poll is ready + address_wanted: it waits
                fake_ip(tmp_path, {"eth0": "10.0.0.20"})  # DHCP done
                return
            time.sleep(0.2)

    res = _run_alongside(net, assign_then_dhcp)
    assert res.returncode == 0, (res.stdout, res.stderr)
    assert "STACKOPS-INSTALLER inventory sent" in res.stdout
    status, _, body = svc.request(
        "GET", f"/agent/v1/nodes/{ctl['node_id']}/answers", token=ctl["node_token"]
    )
    assert status == 200 and b"network_address='10.0.0.20'\n" in body, body
