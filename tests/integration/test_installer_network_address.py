"""The controller's network_address (issue 22 finding 7), filled in by the Smart Installer, against
the live service on SQLite and PostgreSQL: derived from the address the network node reported on
its public_interface (nic=<name> <mac> <state> <ipv4>), the controller held back (poll
state=waiting, answers 409) until it is known, an admin's value winning, nothing derived where
the controller runs nova-network itself; shown in the JSON API, the CLI and the export.
The client's side: test_installer_client.py; the page: test_installer_ui_derived.py.
"""

from __future__ import annotations

import pytest

from tests.integration import test_installer_api as _api
from tests.integration.installer_live import Service, cli, inventory, parse_pairs
from tests.integration.test_installer_api import PARAMS, make_deployment, register

pytestmark = pytest.mark.integration

service = _api.service  # the live service on SQLite and PostgreSQL (a fixture)
NET_MAC, CTL_MAC = "52:54:00:22:07:02", "52:54:00:22:07:01"


def _assign(svc: Service, admin: str, dep: str, node: int, roles: list[str]) -> None:
    path = f"/api/deployments/{dep}/nodes/{node}/roles"
    status, data = svc.json("PUT", path, token=admin, json_body={"roles": roles})
    assert status == 200, data


def _agent(svc: Service, node: Node, what: str) -> tuple[int, str]:
    status, _, body = svc.request("GET", f"/agent/v1/nodes/{node[0]}/{what}", token=node[1])
    return status, body.decode()


Node = tuple[int, str]  # (node id, node token)


def _multi_node(svc: Service, dep: str) -> tuple[str, str, Node, Node]:
    """A multi-node deployment with its controller and network node assigned, the network node
    registered with the old three-field NIC lines (no address yet); (admin session, enrolment
    token, controller, network node)."""
    admin = svc.login()
    enrol = make_deployment(svc, admin, dep, "multi-node")
    status, data = svc.json("PUT", f"/api/deployments/{dep}/params", token=admin, json_body=PARAMS)
    assert status == 200, data
    ctl = register(svc, enrol, inventory(f"{dep}-ctl", [CTL_MAC]))
    net = register(svc, enrol, inventory(f"{dep}-net", [NET_MAC, "52:54:00:22:07:03"]))
    _assign(svc, admin, dep, ctl[0], ["controller"])
    _assign(svc, admin, dep, net[0], ["network"])
    return admin, enrol, ctl, net


def _report_address(svc: Service, dep: str, net: Node, address: str) -> None:
    """The network node's first boot: its inventory, eth0 with its address, eth1 without."""
    body = inventory(f"{dep}-net", [NET_MAC, "52:54:00:22:07:03"]).replace(
        f"nic=eth0 {NET_MAC} up", f"nic=eth0 {NET_MAC} up {address}"
    )
    status, _, resp = svc.request(
        "POST", f"/agent/v1/nodes/{net[0]}/inventory", token=net[1], body=body
    )
    assert status == 200, resp


def test_controller_waits_then_gets_the_derived_address(service: Service) -> None:
    svc, dep = service, "nd"
    admin, enrol, ctl, net = _multi_node(svc, dep)

    # The network node has reported no address: the controller waits, with the reason.
    status, body = _agent(svc, ctl, "assignment")
    poll = parse_pairs(body.encode())
    assert status == 200 and poll["state"] == "waiting", body
    assert f"network node {net[0]} ({dep}-net)" in poll["reason"]
    assert "address on eth0 (network_address)" in poll["reason"]
    status, body = _agent(svc, ctl, "answers")
    held = parse_pairs(body.encode())
    assert status == 409 and held["state"] == "waiting", body
    assert held["reason"] == poll["reason"]
    # held back means nothing of the deployment's secrets reaches it yet
    for key in ("nova_db_password", "rabbit_password", "mysql_root_password", "admin_password"):
        assert PARAMS[key] not in body and key not in body, (key, body)
    _, d = svc.json("GET", f"/api/deployments/{dep}", token=admin)
    assert any("report its address on eth0" in p for p in d["problems"]), d["problems"]
    derived = d["params"]["network_address"]["derived"]
    assert derived["value"] is None and derived["node"] == net[0]
    # The network node itself is not held back (it asks no network_address); its poll asks for
    # the address (its client waits for one and sends the inventory again).
    status, body = _agent(svc, net, "assignment")
    poll = parse_pairs(body.encode())
    assert poll["state"] == "ready" and poll["address_wanted"] == "eth0", body
    assert _agent(svc, net, "answers")[0] == 200

    # A malformed address is refused; then the real report.
    bad = inventory(f"{dep}-net", [NET_MAC]).replace("up\n", "up 10.0.0.300\n", 1)
    status, _, resp = svc.request(
        "POST", f"/agent/v1/nodes/{net[0]}/inventory", token=net[1], body=bad
    )
    assert status == 400 and b"<ipv4>" in resp, resp
    _report_address(svc, dep, net, "10.0.0.20")

    # Now the controller is ready and its answers carry the derived address, marked so.
    status, body = _agent(svc, ctl, "assignment")
    assert parse_pairs(body.encode())["state"] == "ready", body
    status, body = _agent(svc, ctl, "answers")
    assert status == 200, body
    assert parse_pairs(body.encode())["network_address"] == "10.0.0.20"
    assert f"# network_address: derived (the address node {net[0]}, {dep}-net, reported on" in body
    status, body = _agent(svc, net, "answers")
    assert "network_address" not in body
    assert "address_wanted" not in _agent(svc, net, "assignment")[1]

    # The JSON API: the deployment's parameter and the controller's record.
    _, d = svc.json("GET", f"/api/deployments/{dep}", token=admin)
    p = d["params"]["network_address"]
    assert p["set"] is False and p["value"] is None
    assert p["derived"] == {
        "value": "10.0.0.20", "node": net[0], "hostname": f"{dep}-net", "interface": "eth0",
        "reason": None,
    }  # fmt: skip
    assert not any("network_address" in x for x in d["problems"]), d["problems"]
    _, n = svc.json("GET", f"/api/deployments/{dep}/nodes/{ctl[0]}", token=admin)
    assert n["derived"]["network_address"]["value"] == "10.0.0.20"
    _, n = svc.json("GET", f"/api/deployments/{dep}/nodes/{net[0]}", token=admin)
    assert n["derived"] == {}
    assert [c.get("ipv4") for c in n["inventory"]["nics"]] == ["10.0.0.20", None]

    # The CLI.
    out = cli("installer", "node", "show", dep, str(ctl[0]), db=svc.db).stdout
    assert f"network_address = 10.0.0.20 (derived: node {net[0]} {dep}-net's address on" in out
    out = cli("installer", "node", "show", dep, str(net[0]), db=svc.db).stdout
    assert f"nic  eth0     {NET_MAC} up 10.0.0.20" in out
    out = cli("installer", "deployment", "show", dep, db=svc.db).stdout
    assert "network_address        10.0.0.20 (derived: node" in out, out

    # The export: the derived value goes on the discs, the header says where it is from.
    for i, role in enumerate(("volume", "compute")):  # the architecture's other nodes
        extra = register(svc, enrol, inventory(f"{dep}-{role}", [f"52:54:00:22:07:1{i}"]))
        _assign(svc, admin, dep, extra[0], [role])
    status, _, text = svc.request("GET", f"/api/deployments/{dep}/export", token=admin)
    assert status == 200, text
    assert b"\n  network_address: 10.0.0.20\n" in text
    assert f"# network_address: derived (the address node {net[0]}".encode() in text


def test_an_admin_value_wins(service: Service) -> None:
    svc, dep = service, "nw"
    admin, _, ctl, net = _multi_node(svc, dep)
    body = {"network_address": "10.0.0.99"}
    status, d = svc.json("PUT", f"/api/deployments/{dep}/params", token=admin, json_body=body)
    assert status == 200, d
    # Not held back although the network node reported no address: the admin's value is used.
    status, body = _agent(svc, ctl, "answers")
    assert status == 200 and parse_pairs(body.encode())["network_address"] == "10.0.0.99", body
    assert "derived" not in body
    _report_address(svc, dep, net, "10.0.0.20")
    status, body = _agent(svc, ctl, "answers")
    assert parse_pairs(body.encode())["network_address"] == "10.0.0.99", body
    _, d = svc.json("GET", f"/api/deployments/{dep}", token=admin)
    p = d["params"]["network_address"]
    assert p["set"] and p["value"] == "10.0.0.99" and "derived" not in p
    _, n = svc.json("GET", f"/api/deployments/{dep}/nodes/{ctl[0]}", token=admin)
    assert n["derived"] == {}
    # Cleared again, the derived value takes over.
    status, d = svc.json(
        "PUT", f"/api/deployments/{dep}/params", token=admin, json_body={"network_address": None}
    )
    assert status == 200 and d["params"]["network_address"]["derived"]["value"] == "10.0.0.20"
    status, body = _agent(svc, ctl, "answers")
    assert parse_pairs(body.encode())["network_address"] == "10.0.0.20", body


@pytest.mark.parametrize(
    ("arch", "roles"),
    [("single-node", ["controller", "network", "volume", "compute"]),
     ("dual-node", ["controller", "network", "volume"])],
)  # fmt: skip
def test_nothing_derived_where_the_controller_has_the_network_role(
    service: Service, arch: str, roles: list[str]
) -> None:
    svc, dep = service, arch
    admin = svc.login()
    enrol = make_deployment(svc, admin, dep, arch)
    status, data = svc.json("PUT", f"/api/deployments/{dep}/params", token=admin, json_body=PARAMS)
    assert status == 200, data
    inv = inventory(f"{dep}-1", [CTL_MAC]).replace(f"{CTL_MAC} up", f"{CTL_MAC} up 10.0.0.30")
    node = register(svc, enrol, inv)
    _assign(svc, admin, dep, node[0], roles)
    status, body = _agent(svc, node, "answers")
    assert status == 200 and "network_address" not in body, body
    _, d = svc.json("GET", f"/api/deployments/{dep}", token=admin)
    assert "derived" not in d["params"]["network_address"]
    assert d["nodes"][0]["derived"] == {}


def test_controller_assigned_before_any_network_node_waits_for_one(service: Service) -> None:
    """Multi-node's architecture has a network node (min 1): a controller assigned before any
    node has the network role waits for one (before: it was served at once without
    network_address, so its instances got no metadata, and only a warning said so)."""
    svc, dep = service, "early"
    admin = svc.login()
    enrol = make_deployment(svc, admin, dep, "multi-node")
    status, data = svc.json("PUT", f"/api/deployments/{dep}/params", token=admin, json_body=PARAMS)
    assert status == 200, data
    ctl = register(svc, enrol, inventory(f"{dep}-ctl", [CTL_MAC]))
    _assign(svc, admin, dep, ctl[0], ["controller"])
    status, body = _agent(svc, ctl, "assignment")
    poll = parse_pairs(body.encode())
    assert poll["state"] == "waiting", body
    reason = (
        "this node waits for a network node to be assigned and report its address (network_address)"
    )
    assert poll["reason"] == reason, body
    assert _agent(svc, ctl, "answers")[0] == 409
    _, d = svc.json("GET", f"/api/deployments/{dep}", token=admin)
    assert d["params"]["network_address"]["derived"]["node"] is None
    out = cli("installer", "node", "show", dep, str(ctl[0]), db=svc.db).stdout
    assert "network_address = (derived: none yet; waits for a network node" in out, out

    net = register(svc, enrol, inventory(f"{dep}-net", [NET_MAC, "52:54:00:22:07:03"]))
    _assign(svc, admin, dep, net[0], ["network"])
    assert parse_pairs(_agent(svc, ctl, "assignment")[1].encode())["state"] == "waiting"
    _report_address(svc, dep, net, "10.0.0.21")
    status, body = _agent(svc, ctl, "answers")
    assert status == 200 and parse_pairs(body.encode())["network_address"] == "10.0.0.21", body
