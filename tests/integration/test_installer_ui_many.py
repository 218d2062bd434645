"""The Smart Installer's page for a deployment with many nodes, in headless Chromium (issue 21):
the topology picture drawn from the data and kept live, sortable columns, bulk assignment with
a confirmation before roles are taken away, the password rules beside their fields. The harness
(browser, service, log-in) is test_installer_ui.py's. Screenshots go to /tmp, never the repo.
"""

from __future__ import annotations

import random
import time

import pytest

from tests.integration.installer_live import Service, inventory, parse_pairs
from tests.integration.test_installer_ui import _login_and_open, browser, service  # noqa: F401

pytestmark = pytest.mark.integration

PARAMS = {
    "controller_address": "10.0.0.10", "floating_range": "172.24.4.0/24",
    "nova_db_password": "many-nova-secret", "rabbit_password": "many-rabbit-secret",
    "mysql_root_password": "many-mysql-secret", "admin_password": "many-admin-secret",
}  # fmt: skip


def _register(svc: Service, token: str, host: str, macs: list[str]) -> str:
    status, _, body = svc.request("POST", "/agent/v1/register", token=token,
                                  body=inventory(host, macs))  # fmt: skip
    assert status == 201, body
    return parse_pairs(body)["node_id"]


def _assign(svc: Service, admin: str, dep: str, node: str, roles: str) -> None:
    path = f"/api/deployments/{dep}/nodes/{node}/roles"
    status, data = svc.json("PUT", path, token=admin, json_body={"roles": roles.split(",")})
    assert status == 200, data


def _topology_text(d) -> str:
    """The topology's <desc>, read in one step (the picture may be redrawn at any refresh)."""
    return d.execute_script("return document.getElementById('topology-desc').textContent")


def _unnamed_controls(d) -> list[str]:
    from selenium.webdriver.common.by import By

    controls = d.find_elements(By.CSS_SELECTOR, "input, select, button, progress, textarea")
    return [
        c.get_attribute("outerHTML")[:80]
        for c in controls
        if c.is_displayed() and not (c.accessible_name or "").strip()
    ]


def test_topology_drawn_from_the_data_and_live(browser, service: Service) -> None:  # noqa: F811
    """An SVG of the architecture's nodes with their roles, the public / floating / flat networks,
    the NIC of each node on each, the controller's address; told in words (title, desc), lines
    told apart by pattern; redrawn when a node gets roles, without taking the focus."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    d, svc = browser, service
    d.set_window_size(1280, 1000)
    wait = WebDriverWait(d, 30)
    token = _login_and_open(d, svc, "topo", "dual-node")
    admin = svc.login()
    status, data = svc.json("PUT", "/api/deployments/topo/params", token=admin, json_body=PARAMS)
    assert status == 200, data
    svg = d.find_element(By.ID, "topology-svg")
    assert svg.get_attribute("role") == "img"
    assert svg.get_attribute("aria-labelledby") == "topology-title topology-desc"

    def desc() -> str:
        return _topology_text(d)

    # Before any node: the architecture's cloud controller is a placeholder ("no node yet").
    wait.until(lambda _: "controller address 10.0.0.10" in desc())  # the next refresh
    assert "No node yet for controller, network, volume." in desc()
    assert d.find_elements(By.CSS_SELECTOR, "#topology-svg g.node.missing")

    cc = _register(svc, token, "cc-1", ["52:54:00:00:0d:01", "52:54:00:00:0d:02"])
    cn = _register(svc, token, "cn-1", ["52:54:00:00:0d:11", "52:54:00:00:0d:12"])
    one = _register(svc, token, "cn-2", ["52:54:00:00:0d:21"])  # one NIC only
    _assign(svc, admin, "topo", cc, "controller,network,volume")
    _assign(svc, admin, "topo", cn, "compute")
    wait.until(lambda _: f"Node {cn} cn-1" in desc())
    text = desc()
    assert (
        f"Node {cc} cc-1 (controller, network, volume, assigned): eth0 on the public network "
        "with the floating addresses, eth1 on the flat network; controller address 10.0.0.10."
    ) in text, text
    assert f"Node {cn} cn-1 (compute, assigned): eth0 on the public network, eth1 on the flat" in (
        text
    )
    assert "Floating addresses 172.24.4.0/24. Flat network 192.168.100.0/24." in text
    assert "1 node(s) without roles, not drawn." in text
    assert "No node yet" not in text
    # Each network by its pattern and its name, not colour alone.
    dashes = {
        net: d.find_element(By.CSS_SELECTOR, f"#topology-svg line.net.{net}").get_attribute(
            "stroke-dasharray"
        )
        for net in ("public", "floating", "flat")
    }
    assert dashes["public"] is None and dashes["floating"] and dashes["flat"]
    assert dashes["floating"] != dashes["flat"]
    labels = [t.text for t in d.find_elements(By.CSS_SELECTOR, "#topology-svg text.net-label")]
    assert any("public network (controller 10.0.0.10)" in t for t in labels), labels
    assert any("dashed" in t and "172.24.4.0/24" in t for t in labels), labels
    box = d.find_element(By.CSS_SELECTOR, f"#topology-svg g.node[data-node='{cc}']")
    assert "controller, network, volume" in box.text and "cc-1" in box.text
    assert "address 10.0.0.10" in box.text
    nics = [t.text for t in d.find_elements(By.CSS_SELECTOR, "#topology-svg text.nic")]
    assert nics.count("eth0") == 3 and nics.count("eth1") == 2, nics  # cc: public + floating
    d.save_screenshot("/tmp/ui-topology-1280.png")

    # Live: the admin types in the filter; a node gets roles; the picture follows, the focus stays.
    box = d.find_element(By.ID, "node-filter")
    box.click()
    box.send_keys("cn")
    _assign(svc, admin, "topo", one, "compute")
    wait.until(lambda _: f"Node {one} cn-2 (compute, assigned): eth0 on the public network, eth0"
               in desc())  # fmt: skip
    assert d.switch_to.active_element == box
    assert box.get_attribute("value") == "cn"
    nics = [t.text for t in d.find_elements(By.CSS_SELECTOR, "#topology-svg text.nic")]
    assert "eth0 (shared)" in nics, nics  # one NIC for both networks
    d.set_window_size(768, 1000)
    width = d.execute_script("return document.documentElement.clientWidth")
    rect = d.find_element(By.ID, "topology-svg").rect
    assert rect["x"] + rect["width"] <= width, (rect, width)
    d.save_screenshot("/tmp/ui-topology-768.png")
    d.find_element(By.ID, "topology").screenshot("/tmp/ui-topology-768-figure.png")


def test_topology_of_a_multi_node_deployment(browser, service: Service) -> None:  # noqa: F811
    """multi-node: the floating addresses are on the network node's public NIC, not the
    controller's; the controller has no flat NIC; the volume shape nobody fills is shown."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    d, svc = browser, service
    d.set_window_size(1280, 1000)
    wait = WebDriverWait(d, 30)
    token = _login_and_open(d, svc, "multi", "multi-node")
    admin = svc.login()
    status, data = svc.json("PUT", "/api/deployments/multi/params", token=admin, json_body=PARAMS)
    assert status == 200, data
    nodes = {}
    for i, roles in enumerate(["controller", "network", "compute"]):
        nodes[roles] = _register(svc, token, f"m-{roles}", [f"52:54:00:00:0f:{i}1",
                                                           f"52:54:00:00:0f:{i}2"])  # fmt: skip
        _assign(svc, admin, "multi", nodes[roles], roles)

    def desc() -> str:
        return _topology_text(d)

    wait.until(lambda _: f"Node {nodes['compute']} m-compute" in desc())
    text = desc()
    assert text.startswith("multi-node deployment.")
    assert (
        f"Node {nodes['controller']} m-controller (controller, assigned): eth0 on the public "
        "network; controller address 10.0.0.10."
    ) in text, text
    assert (
        f"Node {nodes['network']} m-network (network, assigned): eth0 on the public network "
        "with the floating addresses, eth1 on the flat network."
    ) in text, text
    assert "No node yet for volume." in text
    floating = d.find_elements(By.CSS_SELECTOR, "#topology-svg line.link.floating")
    assert len(floating) == 1
    d.find_element(By.ID, "topology").screenshot("/tmp/ui-topology-multi.png")


def test_thirty_nodes_sort_select_and_bulk_assign(browser, service: Service) -> None:  # noqa: F811
    """30 nodes: columns sort (aria-sort), the filter and "select every node shown" pick 11 of
    them, one role choice goes to all 11 with progress in a live region; taking roles away asks
    first; the row order changes around a focused select without taking its focus."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.select import Select
    from selenium.webdriver.support.ui import WebDriverWait

    d, svc = browser, service
    d.set_window_size(1280, 1000)
    wait = WebDriverWait(d, 60)
    token = _login_and_open(d, svc, "thirty", "dual-node")
    admin = svc.login()
    status, data = svc.json("PUT", "/api/deployments/thirty/params", token=admin, json_body=PARAMS)
    assert status == 200, data
    hosts = [f"cmp-{i}" for i in range(30)]
    random.Random(21).shuffle(hosts)
    ids = {h: _register(svc, token, h, [f"52:54:00:00:1e:{i:02x}"]) for i, h in enumerate(hosts)}
    rows = (By.CSS_SELECTOR, "#nodes tbody tr")
    wait.until(lambda _: len(d.find_elements(*rows)) == 30)

    def shown_hosts() -> list[str]:
        return [
            r.find_element(By.CSS_SELECTOR, "td.host").text
            for r in d.find_elements(*rows)
            if r.is_displayed()
        ]

    host_th = d.find_element(By.CSS_SELECTOR, "#nodes th[data-sort='host']")
    assert host_th.get_attribute("aria-sort") == "none"
    host_th.find_element(By.TAG_NAME, "button").click()
    assert host_th.get_attribute("aria-sort") == "ascending"
    assert shown_hosts() == sorted(hosts)
    host_th.find_element(By.TAG_NAME, "button").click()
    assert host_th.get_attribute("aria-sort") == "descending"
    assert shown_hosts() == sorted(hosts, reverse=True)
    time.sleep(2.5)  # a refresh keeps the order
    assert shown_hosts() == sorted(hosts, reverse=True)

    # Filter to cmp-1, cmp-10..19 and select every node shown: 11; bulk-assign compute.
    d.find_element(By.ID, "node-filter").send_keys("cmp-1")
    wait.until(lambda _: len(shown_hosts()) == 11)
    d.find_element(By.ID, "pick-all").click()
    assert d.find_element(By.ID, "bulk-count").text == "11 selected"
    assert d.find_element(By.ID, "bulk-msg").get_attribute("aria-live") == "polite"
    Select(d.find_element(By.ID, "bulk-roles")).select_by_value("compute")
    d.find_element(By.ID, "bulk-assign").click()
    wait.until(ec.text_to_be_present_in_element((By.ID, "bulk-msg"), "compute: 11 of 11 assigned"))
    status, nodes = svc.json("GET", "/api/deployments/thirty/nodes", token=admin)
    got = {n["hostname"]: n["roles"] for n in nodes}
    for h in hosts:
        assert got[h] == (["compute"] if h == "cmp-1" or h.startswith("cmp-1") else []), h
    d.save_screenshot("/tmp/ui-bulk-1280.png")
    # The topology draws 6 of the 11 computes and counts the rest, not 30 boxes.
    wait.until(lambda _: "5 more compute nodes, not drawn." in _topology_text(d))
    assert len(d.find_elements(By.CSS_SELECTOR, "#topology-svg g.node[data-node]")) == 6
    assert "19 node(s) without roles" in _topology_text(d)
    d.find_element(By.ID, "topology").screenshot("/tmp/ui-topology-30.png")

    # Unassigning several asks first: dismissed, nothing changes; accepted, their roles go.
    d.find_element(By.ID, "node-filter").clear()
    d.find_element(By.ID, "node-filter").send_keys("cmp-11")
    wait.until(lambda _: shown_hosts() == ["cmp-11"])
    pick = d.find_element(By.CSS_SELECTOR, f"tr[data-node='{ids['cmp-11']}'] input.pick")
    if not pick.is_selected():
        pick.click()
    assert pick.accessible_name == f"Select node {ids['cmp-11']} (cmp-11)"
    Select(d.find_element(By.ID, "bulk-roles")).select_by_value("")
    d.find_element(By.ID, "bulk-assign").click()
    alert = wait.until(ec.alert_is_present())
    assert alert.text.startswith("Unassign 1 node(s)")
    alert.dismiss()
    wait.until(ec.text_to_be_present_in_element((By.ID, "bulk-msg"), "nothing changed"))
    status, n11 = svc.json("GET", f"/api/deployments/thirty/nodes/{ids['cmp-11']}", token=admin)
    assert n11["roles"] == ["compute"]
    d.find_element(By.ID, "bulk-assign").click()
    wait.until(ec.alert_is_present()).accept()
    wait.until(ec.text_to_be_present_in_element((By.ID, "bulk-msg"), "no roles: 1 of 1 assigned"))
    status, n11 = svc.json("GET", f"/api/deployments/thirty/nodes/{ids['cmp-11']}", token=admin)
    assert n11["roles"] == []

    # Sorted by state, a row moves while the admin holds a select: the select keeps its focus
    # and its choice.
    d.find_element(By.ID, "node-filter").clear()
    wait.until(lambda _: len(shown_hosts()) == 30)
    d.find_element(By.CSS_SELECTOR, "#nodes th[data-sort='state'] button").click()
    target = f"tr[data-node='{ids['cmp-25']}']"
    sel = d.find_element(By.CSS_SELECTOR, f"{target} select.roles")
    Select(sel).select_by_value("compute")  # picked, not assigned: focus on the select
    before = [r.get_attribute("data-node") for r in d.find_elements(*rows)]
    _assign(svc, admin, "thirty", ids["cmp-3"], "compute")  # cmp-3 moves to the end
    _assign(svc, admin, "thirty", ids["cmp-4"], "compute")
    wait.until(lambda _: [r.get_attribute("data-node") for r in d.find_elements(*rows)] != before)
    order = [r.get_attribute("data-node") for r in d.find_elements(*rows)]
    assert order.index(ids["cmp-3"]) > order.index(ids["cmp-25"])
    sel = d.find_element(By.CSS_SELECTOR, f"{target} select.roles")
    assert d.switch_to.active_element == sel, "the sort took the select's focus"
    assert Select(sel).first_selected_option.get_attribute("value") == "compute"
    assert (
        d.find_element(By.CSS_SELECTOR, "#nodes th[data-sort='state']").get_attribute("aria-sort")
        == "ascending"
    )
    assert not _unnamed_controls(d), _unnamed_controls(d)

    # A 768 px tablet: the bulk bar, the roles, state and progress stay on screen.
    d.set_window_size(768, 1000)
    width = d.execute_script("return document.documentElement.clientWidth")
    for css in ("#bulk-assign", "#bulk-roles", f"{target} td.state", f"{target} td.progress",
                f"{target} input.pick", "#node-filter"):  # fmt: skip
        rect = d.find_element(By.CSS_SELECTOR, css).rect
        assert rect["x"] + rect["width"] <= width, (css, rect, width)
    d.save_screenshot("/tmp/ui-bulk-768.png")
    d.find_element(By.ID, "nodes").screenshot("/tmp/ui-bulk-768-table.png")


def test_password_rules_beside_fields_and_generate(browser, service: Service) -> None:  # noqa: F811
    """Every password field says its minimum (the API's rule) before anything is refused; a
    short one is refused beside its field; Generate fills a long one with no `$` and no quote."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    d, svc = browser, service
    d.set_window_size(1280, 1000)
    wait = WebDriverWait(d, 30)
    _login_and_open(d, svc, "pwrules", "dual-node")
    for key in ("admin_password", "rabbit_password", "nova_db_password", "mysql_root_password"):
        hint = d.find_element(By.ID, f"param-{key}-min")
        assert hint.text == "at least 8 characters"
        described = d.find_element(By.ID, f"param-{key}").get_attribute("aria-describedby")
        assert f"param-{key}-min" in described.split()
    assert not d.find_elements(By.ID, "param-controller_address-min")
    d.find_element(By.ID, "param-admin_password").send_keys("x")
    d.find_element(By.ID, "param-rabbit_password").send_keys("r4bbit")
    d.find_element(By.ID, "params-save").click()
    wait.until(ec.text_to_be_present_in_element((By.ID, "params-msg"), "2 values refused"))
    for key in ("admin_password", "rabbit_password"):
        assert "shorter than 8 characters" in d.find_element(By.ID, f"param-err-{key}").text
    d.save_screenshot("/tmp/ui-params-minlen.png")
    gen = d.find_element(By.CSS_SELECTOR, ".param[data-key='rabbit_password'] button.generate")
    values = set()
    for _ in range(5):
        gen.click()
        value = d.find_element(By.ID, "param-rabbit_password").get_attribute("value")
        assert len(value) == 20 and value.isalnum() and value.isascii(), value
        values.add(value)
    assert len(values) == 5
    # The onboarding's build command makes a disc with this architecture's entries only.
    d.find_element(By.CSS_SELECTOR, "#onboarding summary").click()
    build = wait.until(ec.visibility_of_element_located((By.ID, "build-cmd"))).text
    assert "  --architecture dual-node \\\n" in build, build


def test_parameters_fold_once_set_so_the_nodes_are_in_view(browser, service: Service) -> None:  # noqa: F811
    """A new deployment opens with its parameters unfolded and says how many required values
    are missing; once every one is set the deployment opens with them folded, so at 30 nodes
    the nodes table starts within a 1280x800 window (it was below two screens of fields)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    d, svc = browser, service
    d.set_window_size(1280, 800)
    wait = WebDriverWait(d, 60)
    token = _login_and_open(d, svc, "folded", "dual-node")
    box = d.find_element(By.ID, "params-box")
    assert box.get_attribute("open") is not None
    assert "required values missing" in d.find_element(By.ID, "params-state").text
    admin = svc.login()
    status, data = svc.json("PUT", "/api/deployments/folded/params", token=admin, json_body=PARAMS)
    assert status == 200, data
    for i in range(30):
        _register(svc, token, f"fold-{i}", [f"52:54:00:00:2f:{i:02x}"])
    d.get(svc.url + "/#")
    d.get(svc.url + "/#d/folded")
    rows = (By.CSS_SELECTOR, "#nodes tbody tr")
    wait.until(lambda _: len(d.find_elements(*rows)) == 30)
    wait.until(ec.text_to_be_present_in_element((By.ID, "params-state"), "all required"))
    assert d.find_element(By.ID, "params-box").get_attribute("open") is None
    assert not d.find_element(By.ID, "param-controller_address").is_displayed()
    top = d.execute_script(
        "return document.querySelector('#nodes tbody tr').getBoundingClientRect().top"
    )
    d.save_screenshot("/tmp/ui-params-folded.png")
    height = d.execute_script("return window.innerHeight")
    assert top < height, f"the first node row starts at {top}px, below the window ({height}px)"
    # The admin unfolds them; the 2 s refresh does not fold them again.
    d.find_element(By.CSS_SELECTOR, "#params-box > summary").click()
    time.sleep(2.5)
    assert d.find_element(By.ID, "param-controller_address").is_displayed()
