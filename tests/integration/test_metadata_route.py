"""Multi-node metadata reaches the instance (issue 22 finding 7), on real network namespaces.

Three namespaces stand for an instance (its fixed address), the network node and a controller
that does not run nova-network. The network node forwards with the nat rules Nova 2011.2's
nova-network writes (nova/network/linux_net.py:351-358 metadata DNAT to ec2_dmz_host:ec2_port,
365-372 the dmz ACCEPT before the SNAT; real iptables); the controller answers on 8773 with the
client address it sees, which is how nova-api finds the instance (metadatarequesthandler.py:71).
Without a route back to the fixed range the controller's answer goes to its default gateway
and the instance waits; the controller's metadata-route step (roles/controller/steps.sh, under
dash, with the real `ip`) adds it, and its if-up.d hook makes it again after a reboot. Needs
root (namespaces). 22 s (a server start and curl timeouts on the lost answers).
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import IN_CI, require_tool_or_skip

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
FIXED = "192.168.77.0/24"
CONTROLLER = "10.99.0.1"
NETWORK = "10.99.0.2"
INSTANCE = "192.168.77.5"
SERVER = r"""
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = ("client " + self.client_address[0] + "\n").encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body)))
        self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
http.server.HTTPServer((sys.argv[1], 8773), H).serve_forever()
"""


def _sh(script: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["sh", "-ec", script], capture_output=True, text=True, timeout=60)
    if check:
        assert proc.returncode == 0, script + "\n" + proc.stdout + proc.stderr
    return proc


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[dict[str, str]]:
    require_tool_or_skip("ip", "iptables", "dash", "curl")
    if os.geteuid() != 0:
        if IN_CI:
            pytest.fail("network namespaces need root")
        pytest.skip("network namespaces need root")
    tag = f"md{os.getpid() % 100000}"
    ns = {"ctl": f"{tag}c", "net": f"{tag}n", "inst": f"{tag}i"}
    server = None
    try:
        _sh(f"""
for n in {ns["ctl"]} {ns["net"]} {ns["inst"]}; do ip netns add $n; done
ip link add {tag}a type veth peer name {tag}b
ip link set {tag}a netns {ns["ctl"]}; ip link set {tag}b netns {ns["net"]}
ip link add {tag}x type veth peer name {tag}y
ip link set {tag}x netns {ns["net"]}; ip link set {tag}y netns {ns["inst"]}
ip -n {ns["ctl"]} addr add {CONTROLLER}/24 dev {tag}a
ip -n {ns["ctl"]} link set {tag}a up; ip -n {ns["ctl"]} link set lo up
# the controller's default route: the LAN's gateway, which knows nothing of the fixed range
ip -n {ns["ctl"]} route add default via 10.99.0.254
ip -n {ns["net"]} addr add {NETWORK}/24 dev {tag}b
ip -n {ns["net"]} addr add 192.168.77.1/24 dev {tag}x
ip -n {ns["net"]} link set {tag}b up; ip -n {ns["net"]} link set {tag}x up
ip netns exec {ns["net"]} sh -c 'echo 1 >/proc/sys/net/ipv4/ip_forward'
ip -n {ns["inst"]} addr add {INSTANCE}/24 dev {tag}y
ip -n {ns["inst"]} link set {tag}y up; ip -n {ns["inst"]} link set lo up
ip -n {ns["inst"]} route add default via 192.168.77.1
# nova-network's nat rules (linux_net.py:353-357, 365-372), in its order
ip netns exec {ns["net"]} iptables -t nat -A PREROUTING -s 0.0.0.0/0 -d 169.254.169.254/32 \
    -p tcp -m tcp --dport 80 -j DNAT --to-destination {CONTROLLER}:8773
ip netns exec {ns["net"]} iptables -t nat -A POSTROUTING -s {FIXED} -d {CONTROLLER}/32 -j ACCEPT
ip netns exec {ns["net"]} iptables -t nat -A POSTROUTING -s {FIXED} -d {FIXED} -j ACCEPT
ip netns exec {ns["net"]} iptables -t nat -A POSTROUTING -s {FIXED} -j SNAT --to-source {NETWORK}
""")
        server = subprocess.Popen(
            ["ip", "netns", "exec", ns["ctl"], "python3", "-c", SERVER, CONTROLLER],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        for _ in range(50):
            if _sh(f"ip netns exec {ns['ctl']} curl -s -m 1 http://{CONTROLLER}:8773/",
                   check=False).returncode == 0:  # fmt: skip
                break
            time.sleep(0.1)
        yield ns
    finally:
        if server is not None:
            server.kill()
            server.wait()
        for n in ns.values():
            subprocess.run(["ip", "netns", "del", n], capture_output=True)


def _metadata(ns: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return _sh(f"ip netns exec {ns['inst']} curl -s -m 3 http://169.254.169.254/", check=False)


def _step(ns: dict[str, str], tmp: Path, roles: str, network_address: str) -> str:
    script = (
        f"SO_LIB={ROOT}/agent; . {ROOT}/agent/lib/common.sh; . {ROOT}/roles/controller/steps.sh; "
        f"SO_ROLES='{roles}'; fixed_range={FIXED}; network_address='{network_address}'; "
        f"SO_IFUP_D={tmp}/if-up.d; so_step_metadata_route"
    )
    proc = _sh(f"mkdir -p {tmp}/if-up.d; ip netns exec {ns['ctl']} dash -c \"{script}\"",
               check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_the_instance_gets_the_controllers_answer(lab: dict[str, str], tmp_path: Path) -> None:
    assert _metadata(lab).returncode != 0, "without the route the answer must be lost"
    out = _step(lab, tmp_path, "controller", NETWORK)
    assert f"{FIXED} via {NETWORK}" in out
    got = _metadata(lab)
    assert got.returncode == 0 and got.stdout == f"client {INSTANCE}\n", got.stdout + got.stderr
    # after a reboot ifupdown runs the hook for the public interface (eth0 by default)
    _sh(f"ip -n {lab['ctl']} route del {FIXED}")
    assert _metadata(lab).returncode != 0
    hook = tmp_path / "if-up.d" / "stackops-metadata-route"
    _sh(f"ip netns exec {lab['ctl']} env IFACE=lo dash {hook}")  # another interface: nothing
    assert _metadata(lab).returncode != 0
    _sh(f"ip netns exec {lab['ctl']} env IFACE=eth0 dash {hook}")
    assert _metadata(lab).stdout == f"client {INSTANCE}\n"


def test_no_route_where_nova_network_runs(lab: dict[str, str], tmp_path: Path) -> None:
    out = _step(lab, tmp_path, "controller network", "")
    assert "nova-network runs on this node" in out
    assert not (tmp_path / "if-up.d" / "stackops-metadata-route").exists()
