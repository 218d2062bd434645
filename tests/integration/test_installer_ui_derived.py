"""The controller's derived network_address (issue 22 finding 7) on the admin page, in headless
Chromium against the live service: the parameter's field says it waits for the network node,
then shows the address the network node reported (marked derived), live; the controller's row
and its node detail show it too. The nodes' side is played over the agent API. Screenshot:
/tmp/ui22-derived.png.
"""

from __future__ import annotations

import pytest

from tests.integration import test_installer_ui as _ui
from tests.integration.installer_live import Service, inventory, parse_pairs
from tests.integration.test_installer_ui import _login_and_open
from tests.integration.test_installer_ui_actions import PARAMS

# The browser and live-service fixtures of the UI tests.
browser, service = _ui.browser, _ui.service

pytestmark = pytest.mark.integration


def _register(svc: Service, token: str, host: str, nic: str) -> dict[str, str]:
    status, _, body = svc.request(
        "POST", "/agent/v1/register", token=token,
        body=inventory(host, ["52:54:00:00:00:00"]).replace("nic=eth0 52:54:00:00:00:00 up", nic),
    )  # fmt: skip
    assert status == 201, body
    return parse_pairs(body)


def test_derived_network_address_shown(browser, service: Service) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    d, svc = browser, service
    wait = WebDriverWait(d, 30)

    def text_in(css: str, text: str) -> None:
        wait.until(ec.text_to_be_present_in_element((By.CSS_SELECTOR, css), text))

    token = _login_and_open(d, svc, "derived", "multi-node")
    admin = svc.login()
    assert (
        svc.json("PUT", "/api/deployments/derived/params", token=admin, json_body=PARAMS)[0] == 200
    )
    ctl = _register(svc, token, "ctl-1", "nic=eth0 52:54:00:22:00:01 up 10.0.0.10")
    net = _register(svc, token, "net-1", "nic=eth0 52:54:00:22:00:02 up")
    for n, role in ((ctl, "controller"), (net, "network")):
        path = f"/api/deployments/derived/nodes/{n['node_id']}/roles"
        assert svc.json("PUT", path, token=admin, json_body={"roles": [role]})[0] == 200

    # The network node has reported no address yet: the field and the controller's row say so.
    d.execute_script("document.getElementById('params-box').open = true")
    text_in("#param-derived-network_address", "derived: none yet")
    text_in("#param-derived-network_address", f"network node {net['node_id']} (net-1)")
    row = f"tr[data-node='{ctl['node_id']}'] .extra"
    text_in(row, "network_address derived: none yet")

    # Its first boot reports eth0's address: the page shows the derived value, live.
    status, _, _ = svc.request(
        "POST", f"/agent/v1/nodes/{net['node_id']}/inventory", token=net["node_token"],
        body=inventory("net-1", ["52:54:00:22:00:02"]).replace("up\n", "up 10.0.0.20\n", 1),
    )  # fmt: skip
    assert status == 200
    text_in(
        "#param-derived-network_address",
        f"derived: 10.0.0.20 (node {net['node_id']} net-1's address on eth0)",
    )
    field = d.find_element(By.ID, "param-network_address")
    assert field.get_attribute("value") == "" and "10.0.0.20" in field.get_attribute("placeholder")
    text_in(row, "network_address derived: 10.0.0.20")
    text_in(f"tr[data-node='{net['node_id']}'] td.nics", "eth0 52:54:00:22:00:02 up 10.0.0.20")

    # The controller's node detail: its derived answers.
    d.find_element(By.CSS_SELECTOR, f"tr[data-node='{ctl['node_id']}'] button.details").click()
    text_in("#node-inventory", "Derived answers")
    text_in("#node-inventory", "network_address derived: 10.0.0.20")
    d.save_screenshot("/tmp/ui22-derived.png")

    # An admin's value wins: the derived line goes.
    field.send_keys("10.0.0.99")
    d.find_element(By.ID, "params-save").click()
    text_in("#params-msg", "saved")
    wait.until(
        ec.invisibility_of_element_located((By.CSS_SELECTOR, "#param-derived-network_address"))
    )
