"""The admin UI in headless Chromium (Debian's chromium + chromium-driver, driven by selenium)
against the live service: log in, create a deployment, enter parameters, see a node register,
assign its roles, watch its progress live.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import require_tool_or_skip
from tests.integration.installer_live import (
    ADMIN,
    ADMIN_PASSWORD,
    Service,
    cli,
    inventory,
    parse_pairs,
)

pytestmark = pytest.mark.integration

CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--window-size=1400,1000",
)  # fmt: skip


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    require_tool_or_skip("chromium", "chromedriver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service as DriverService

    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    profile = tempfile.mkdtemp(prefix="chromium-", dir=tmp_path)
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(
        options=opts,
        service=DriverService(executable_path=shutil.which("chromedriver") or "chromedriver"),
    )
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    url = f"sqlite:///{tmp_path / 'installer.sqlite'}"
    cli("installer", "admin", "create", ADMIN, "--password-stdin", db=url, stdin=ADMIN_PASSWORD)
    svc = Service(url, tmp_path / "serve.log")
    yield svc
    svc.stop()


@pytest.fixture
def served_service(tmp_path: Path, demo_base: Path) -> Iterator[Service]:
    """The service serving the demo disc: its network boot (iPXE) routes exist."""
    url = f"sqlite:///{tmp_path / 'installer.sqlite'}"
    cli("installer", "admin", "create", ADMIN, "--password-stdin", db=url, stdin=ADMIN_PASSWORD)
    svc = Service(url, tmp_path / "serve.log", extra=("--disc", str(demo_base)))
    yield svc
    svc.stop()


def test_create_assign_and_watch(browser, service: Service) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.select import Select
    from selenium.webdriver.support.ui import WebDriverWait

    d, svc = browser, service
    wait = WebDriverWait(d, 30)

    def visible(css: str):
        return wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, css)))

    def text_in(css: str, text: str) -> None:
        wait.until(ec.text_to_be_present_in_element((By.CSS_SELECTOR, css), text))

    d.get(svc.url + "/")
    # A wrong password is refused with the service's message.
    visible("#login-user").send_keys(ADMIN)
    d.find_element(By.ID, "login-password").send_keys("wrong password")
    d.find_element(By.ID, "login-submit").click()
    text_in("#error", "wrong user name or password")
    d.find_element(By.ID, "login-password").clear()
    d.find_element(By.ID, "login-password").send_keys(ADMIN_PASSWORD)
    d.find_element(By.ID, "login-submit").click()

    # Create a deployment from a reference architecture; the token is shown once.
    visible("#new-name").send_keys("webdemo")
    Select(d.find_element(By.ID, "new-arch")).select_by_value("dual-node")
    d.find_element(By.ID, "new-submit").click()
    visible("#token-box")
    token = d.find_element(By.ID, "token-value").text
    assert len(token) >= 40
    visible("a.dep-link[data-name='webdemo']").click()
    text_in("#dep-arch", "dual-node")

    # Parameters: a bad one is refused with the rule's message, good ones are saved (masked).
    field = visible("input[name='param-controller_address']")
    field.send_keys("10.0.0.999")
    d.find_element(By.ID, "params-save").click()
    text_in("#param-err-controller_address", "not an IPv4 address")
    field.clear()
    field.send_keys("10.0.0.10")
    values = {
        "floating_range": "172.24.4.0/24",
        "nova_db_password": "ui-nova-secret",
        "rabbit_password": "ui-rabbit-secret",
        "mysql_root_password": "ui-mysql-secret",
        "admin_password": "ui-admin-secret",
    }
    for key, value in values.items():
        d.find_element(By.CSS_SELECTOR, f"input[name='param-{key}']").send_keys(value)
    d.find_element(By.ID, "params-save").click()
    wait.until(lambda _: d.find_element(By.ID, "params-msg").text == "saved")
    secret = d.find_element(By.CSS_SELECTOR, "input[name='param-nova_db_password']")
    assert secret.get_attribute("value") == ""
    assert "set" in (secret.get_attribute("placeholder") or "")
    assert "ui-nova-secret" not in d.page_source

    # A node registers (as its client would); the page shows it without a reload.
    status, _, body = svc.request(
        "POST", "/agent/v1/register", token=token,
        body=inventory("cmp-7", ["52:54:00:00:07:01", "52:54:00:00:07:02"], virt="none"),
    )  # fmt: skip
    assert status == 201
    node = parse_pairs(body)
    row = f"tr[data-node='{node['node_id']}']"
    visible(row)
    text_in(row, "no vmx/svm")
    text_in(row, "52:54:00:00:07:02")

    # Assign: the architecture's shapes are the choices; compute without vmx falls back to qemu.
    Select(d.find_element(By.CSS_SELECTOR, f"{row} select.roles")).select_by_value("compute")
    d.find_element(By.CSS_SELECTOR, f"{row} button.assign").click()
    text_in("#assign-msg", "falls back to qemu")
    text_in(f"{row} td.state", "assigned")

    # The node fetches its answers and reports progress: the row follows, live.
    nt = node["node_token"]
    status, _, answers = svc.request("GET", f"/agent/v1/nodes/{node['node_id']}/answers", token=nt)
    assert status == 200 and parse_pairs(answers)["libvirt_type"] == "qemu"
    text_in(f"{row} td.state", "configuring")
    svc.request(
        "POST", f"/agent/v1/nodes/{node['node_id']}/progress", token=nt,
        body="STACKOPS step=3/7 role=compute name=libvirt status=ok t=4.2s\n",
    )  # fmt: skip
    text_in(f"{row} td.progress", "step 4/7 running (last: compute libvirt ok)")
    svc.request(
        "POST", f"/agent/v1/nodes/{node['node_id']}/progress", token=nt,
        body="STACKOPS-FIRSTBOOT done roles=compute\n",
    )  # fmt: skip
    text_in(f"{row} td.state", "done")

    # The export link serves a deployment.yaml (secrets left out).
    href = d.find_element(By.ID, "export-link").get_attribute("href")
    assert href.endswith("/api/deployments/webdemo/export")
    d.get(href)
    assert "architecture: dual-node" in d.page_source
    assert "ui-nova-secret" not in d.page_source

    # The same MAC registers again without the node's token (a reinstall, or a replayed MAC):
    # the row asks the admin; approving gives the node its new token.
    d.back()
    inv = inventory("cmp-7b", ["52:54:00:00:07:01", "52:54:00:00:07:02"], virt="none")
    status, _, body = svc.request("POST", "/agent/v1/register", token=token, body=inv)
    assert status == 201
    text_in(row, "registered again without its token as cmp-7b")
    d.find_element(By.CSS_SELECTOR, f"{row} button.approve").click()
    text_in(f"{row} td.state", "registered")
    new_token = parse_pairs(body)["node_token"]
    path = f"/agent/v1/nodes/{node['node_id']}/assignment"
    status, _, _ = svc.request("GET", path, token=new_token)
    assert status == 200


def _login_and_open(d, svc: Service, name: str, arch: str) -> str:
    """Log in, create deployment NAME, open it; returns its enrolment token."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.select import Select
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(d, 30)
    d.get(svc.url + "/")
    wait.until(ec.visibility_of_element_located((By.ID, "login-user"))).send_keys(ADMIN)
    d.find_element(By.ID, "login-password").send_keys(ADMIN_PASSWORD)
    d.find_element(By.ID, "login-submit").click()
    wait.until(ec.visibility_of_element_located((By.ID, "new-name"))).send_keys(name)
    Select(d.find_element(By.ID, "new-arch")).select_by_value(arch)
    d.find_element(By.ID, "new-submit").click()
    wait.until(ec.visibility_of_element_located((By.ID, "token-box")))
    token = d.find_element(By.ID, "token-value").text
    link = f"a.dep-link[data-name='{name}']"
    wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, link))).click()
    wait.until(ec.text_to_be_present_in_element((By.ID, "dep-arch"), arch))
    return token


def test_role_choice_survives_refresh(browser, service: Service) -> None:
    """The page refreshes every 2 s; a role picked in a select must survive it (it used to be
    rebuilt to "(none)", and Assign then sent an unassign), the select keeps its focus, Assign is
    disabled while the node configures, and unassigning asks first."""
    import time

    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.select import Select
    from selenium.webdriver.support.ui import WebDriverWait

    d, svc = browser, service
    wait = WebDriverWait(d, 30)
    token = _login_and_open(d, svc, "race", "dual-node")
    status, _, body = svc.request(
        "POST", "/agent/v1/register", token=token,
        body=inventory("cmp-1", ["52:54:00:00:01:01"], virt="vmx"),
    )  # fmt: skip
    assert status == 201
    node = parse_pairs(body)
    row = f"tr[data-node='{node['node_id']}']"
    wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, row)))
    sel = d.find_element(By.CSS_SELECTOR, f"{row} select.roles")
    Select(sel).select_by_value("compute")
    d.save_screenshot("/tmp/ui-race-picked.png")
    time.sleep(2.6)  # more than one refresh
    sel = d.find_element(By.CSS_SELECTOR, f"{row} select.roles")
    assert Select(sel).first_selected_option.get_attribute("value") == "compute"
    assert d.switch_to.active_element == sel, "the refresh took the select's focus"
    d.find_element(By.CSS_SELECTOR, f"{row} button.assign").click()
    wait.until(ec.text_to_be_present_in_element((By.ID, "assign-msg"), "compute"))
    assert "no roles" not in d.find_element(By.ID, "assign-msg").text
    wait.until(ec.text_to_be_present_in_element((By.CSS_SELECTOR, f"{row} td.state"), "assigned"))

    # Unassigning asks first; dismissing keeps the roles.
    Select(d.find_element(By.CSS_SELECTOR, f"{row} select.roles")).select_by_value("")
    d.find_element(By.CSS_SELECTOR, f"{row} button.assign").click()
    alert = wait.until(ec.alert_is_present())
    assert "unassign" in alert.text.lower()
    alert.dismiss()
    time.sleep(0.5)
    state = d.find_element(By.CSS_SELECTOR, f"{row} td.state").text
    assert state == "assigned"

    # Once the node fetches its answers it configures: its roles can no longer change in the UI.
    params = {
        "controller_address": "10.0.0.10", "floating_range": "172.24.4.0/24",
        "nova_db_password": "race-nova-secret", "rabbit_password": "race-rabbit-secret",
        "mysql_root_password": "race-mysql-secret", "admin_password": "race-admin-secret",
    }  # fmt: skip
    status, _ = svc.json("PUT", "/api/deployments/race/params", token=svc.login(), json_body=params)
    assert status == 200
    nt = node["node_token"]
    status, _, _ = svc.request("GET", f"/agent/v1/nodes/{node['node_id']}/answers", token=nt)
    assert status == 200
    state_cell = (By.CSS_SELECTOR, f"{row} td.state")
    wait.until(ec.text_to_be_present_in_element(state_cell, "configuring"))
    wait.until(lambda _: not d.find_element(By.CSS_SELECTOR, f"{row} button.assign").is_enabled())
    assert not d.find_element(By.CSS_SELECTOR, f"{row} select.roles").is_enabled()
    d.save_screenshot("/tmp/ui-race-configuring.png")


def test_progress_bars_summary_and_silent_node(browser, service: Service, tmp_path: Path) -> None:
    """Per-node bars across both phases, the deployment's bar and "2 done · 1 failed · 1
    configuring" in an aria-live region, elapsed times, a node silent too long flagged, and every
    control with an accessible name."""
    import sqlite3

    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    d, svc = browser, service
    wait = WebDriverWait(d, 30)
    token = _login_and_open(d, svc, "prog", "dual-node")
    admin = svc.login()
    params = {
        "controller_address": "10.0.0.10", "floating_range": "172.24.4.0/24",
        "nova_db_password": "prog-nova-secret", "rabbit_password": "prog-rabbit-secret",
        "mysql_root_password": "prog-mysql-secret", "admin_password": "prog-admin-secret",
    }  # fmt: skip
    status, _ = svc.json("PUT", "/api/deployments/prog/params", token=admin, json_body=params)
    assert status == 200
    nodes = {}
    for i, roles in enumerate(["controller,network,volume", "compute", "compute", "compute"]):
        macs = [f"52:54:00:00:0{i}:01", f"52:54:00:00:0{i}:02"]
        status, _, body = svc.request(
            "POST", "/agent/v1/register", token=token, body=inventory(f"n{i}", macs)
        )
        assert status == 201
        n = parse_pairs(body)
        nodes[f"n{i}"] = n
        path = f"/api/deployments/prog/nodes/{n['node_id']}/roles"
        status, data = svc.json("PUT", path, token=admin, json_body={"roles": roles.split(",")})
        assert status == 200, data

    def agent(name: str, *lines: str) -> None:
        n = nodes[name]
        base = f"/agent/v1/nodes/{n['node_id']}"
        if not lines:
            status, _, _ = svc.request("GET", base + "/answers", token=n["node_token"])
        else:
            body = "".join(ln + "\n" for ln in lines)
            status, _, _ = svc.request("POST", base + "/progress", token=n["node_token"], body=body)
        assert status in (200, 204), status

    for name in nodes:
        agent(name)
    agent(
        "n0",
        *(f"STACKOPS step={i}/10 role=controller name=s{i} status=ok t=1.0s" for i in range(1, 11)),
        "STACKOPS-FIRSTBOOT done roles=controller,network,volume",
    )
    agent("n1", "STACKOPS step=1/4 role=compute name=nova status=ok t=2.0s",
          "STACKOPS-FIRSTBOOT done roles=compute")  # fmt: skip
    failed = "STACKOPS-FIRSTBOOT failed step=libvirt log=/var/log/stackops/steps/libvirt.log"
    agent("n2", "STACKOPS step=1/4 role=compute name=nova status=ok t=2.0s",
          "STACKOPS step=2/4 role=compute name=libvirt status=failed t=3.0s", failed)  # fmt: skip
    agent("n3", "STACKOPS step=2/4 role=compute name=libvirt status=ok t=2.0s")

    summary = (By.ID, "dep-summary")
    wait.until(ec.text_to_be_present_in_element(summary, "2 done · 1 failed · 1 configuring"))
    live = d.find_element(By.ID, "dep-progress-box")
    assert live.get_attribute("aria-live") == "polite"
    row3 = f"tr[data-node='{nodes['n3']['node_id']}']"
    bar3 = d.find_element(By.CSS_SELECTOR, f"{row3} progress.node-progress")
    assert bar3.get_attribute("value") == "70"  # 40 % installed + 60 % x 2/4 steps
    assert "step 3/4 running" in d.find_element(By.CSS_SELECTOR, row3).text
    assert "elapsed" in d.find_element(By.CSS_SELECTOR, row3).text
    done = d.find_element(By.CSS_SELECTOR, f"tr[data-node='{nodes['n0']['node_id']}'] progress")
    assert done.get_attribute("value") == "100"
    dep_bar = int(d.find_element(By.ID, "dep-progress").get_attribute("value"))
    assert 60 < dep_bar < 100
    assert "silent" not in d.find_element(By.ID, "dep-summary").text
    d.save_screenshot("/tmp/ui-progress.png")

    # n3 has said nothing for 20 minutes (its last_seen moved back in the service's database).
    db = sqlite3.connect(tmp_path / "installer.sqlite")
    with db:
        db.execute(
            "UPDATE nodes SET last_seen = last_seen - 1200000 WHERE id = ?",
            (int(nodes["n3"]["node_id"]),),
        )
    db.close()
    wait.until(ec.text_to_be_present_in_element(summary, "1 silent"))
    wait.until(ec.text_to_be_present_in_element((By.CSS_SELECTOR, row3), "silent for 20 min"))
    assert "silent" in (d.find_element(By.CSS_SELECTOR, row3).get_attribute("class") or "")
    d.save_screenshot("/tmp/ui-progress-silent.png")
    d.set_window_size(1400, 1600)
    d.find_element(By.ID, "nodes").screenshot("/tmp/ui-progress-nodes.png")

    # Every control on the page has an accessible name (what a screen reader announces).
    controls = d.find_elements(By.CSS_SELECTOR, "input, select, button, progress, textarea")
    unnamed = [
        c.get_attribute("outerHTML")[:80]
        for c in controls
        if c.is_displayed() and not (c.accessible_name or "").strip()
    ]
    assert not unnamed, unnamed


def test_parameters_form_groups_help_and_errors_by_field(browser, service: Service) -> None:
    """The form in groups, required fields marked before anything is assigned, the role.yaml
    descriptions as help, every refusal beside its field (not the first only, in a banner), and
    a generate button for service passwords."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    d, svc = browser, service
    wait = WebDriverWait(d, 30)
    _login_and_open(d, svc, "form", "dual-node")
    groups = [e.get_attribute("id") for e in d.find_elements(By.CSS_SELECTOR, "fieldset")]
    assert groups == ["params-network", "params-passwords", "params-identity"]
    net = d.find_element(By.ID, "params-network").text
    assert "IPv4 address of the cloud controller" in net
    pw = d.find_element(By.ID, "params-passwords")
    assert pw.find_elements(By.CSS_SELECTOR, "input[name='param-rabbit_password']")
    ctl = d.find_element(By.CSS_SELECTOR, "label[for='param-controller_address']")
    assert ctl.find_elements(By.CSS_SELECTOR, ".req")  # required, marked from the start
    flt = d.find_element(By.CSS_SELECTOR, "label[for='param-floating_range']")
    assert not flt.find_elements(By.CSS_SELECTOR, ".req")
    help_text = d.find_element(By.ID, "param-mysql_root_password-help").text
    assert "MySQL" in help_text and len(help_text) > 20
    field = d.find_element(By.ID, "param-controller_address")
    assert "param-mysql_root_password-help" not in (field.get_attribute("aria-describedby") or "")
    assert "param-controller_address-help" in field.get_attribute("aria-describedby")

    # Two bad values: both refused, each beside its field; the banner stays empty.
    field.send_keys("10.0.0.999")
    d.find_element(By.ID, "param-fixed_range").send_keys("10.0.0.1/8")
    d.find_element(By.ID, "params-save").click()
    wait.until(ec.text_to_be_present_in_element((By.ID, "params-msg"), "2 values refused"))
    assert "IPv4" in d.find_element(By.ID, "param-err-controller_address").text
    assert "host bits" in d.find_element(By.ID, "param-err-fixed_range").text
    assert d.find_element(By.ID, "param-controller_address").get_attribute("aria-invalid")
    assert not d.find_element(By.ID, "error").is_displayed()
    assert d.switch_to.active_element == d.find_element(By.ID, "param-controller_address")
    d.save_screenshot("/tmp/ui-params-errors.png")

    # Generate fills a service password (shown once, 20 characters); none for the admin's own.
    assert not d.find_elements(
        By.CSS_SELECTOR, "#params-passwords .param[data-key='admin_password'] button"
    )
    d.find_element(By.CSS_SELECTOR, ".param[data-key='rabbit_password'] button.generate").click()
    rabbit = d.find_element(By.ID, "param-rabbit_password")
    generated = rabbit.get_attribute("value")
    assert len(generated) == 20 and generated.isalnum()
    d.find_element(By.ID, "param-controller_address").clear()
    d.find_element(By.ID, "param-controller_address").send_keys("10.0.0.10")
    d.find_element(By.ID, "param-fixed_range").clear()
    d.find_element(By.ID, "params-save").click()
    wait.until(lambda _: d.find_element(By.ID, "params-msg").text == "saved")
    assert not d.find_element(By.ID, "param-err-controller_address").is_displayed()
    assert generated not in d.page_source
    status, data = svc.json("GET", "/api/deployments/form", token=svc.login())
    assert status == 200 and data["params"]["rabbit_password"]["set"] is True
    d.save_screenshot("/tmp/ui-params-saved.png")


def test_parameters_changed_elsewhere_reach_the_form_not_the_typed_field(
    browser, service: Service
) -> None:
    """Values another admin (or the CLI, or the API) sets reach the open form in place within a
    refresh, and the "missing" count follows; a field the admin typed into keeps what was typed,
    and Save sends only that field: a value read before the other change is never written back
    (before: the form showed the values of page load for good, and Save sent every field that
    differed from the service, so it reverted controller_address to empty)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    d, svc = browser, service
    wait = WebDriverWait(d, 30)
    _login_and_open(d, svc, "both", "dual-node")
    state = d.find_element(By.ID, "params-state")
    missing_before = int(state.text.split()[0])
    typed = d.find_element(By.ID, "param-floating_range")
    typed.send_keys("172.24.9.0/24")
    d.find_element(By.ID, "dep-name").click()  # the typed field loses focus, stays edited
    elsewhere = {
        "controller_address": "10.0.0.10",
        "floating_range": "172.24.4.0/24",
        "rabbit_password": "both-rabbit-secret",
    }
    admin = svc.login()
    status, _ = svc.json("PUT", "/api/deployments/both/params", token=admin, json_body=elsewhere)
    assert status == 200
    ctl = d.find_element(By.ID, "param-controller_address")
    wait.until(lambda _: ctl.get_attribute("value") == "10.0.0.10")
    rabbit = d.find_element(By.ID, "param-rabbit_password")
    assert rabbit.get_attribute("placeholder") == "(set; type to change)"
    assert rabbit.get_attribute("value") == ""  # a secret never comes back to the page
    wait.until(lambda _: int(state.text.split()[0]) == missing_before - 2)
    assert typed.get_attribute("value") == "172.24.9.0/24"
    d.save_screenshot("/tmp/ui-params-elsewhere.png")

    d.find_element(By.ID, "params-save").click()
    wait.until(lambda _: d.find_element(By.ID, "params-msg").text == "saved")
    status, data = svc.json("GET", "/api/deployments/both", token=admin)
    assert status == 200
    params = data["params"]
    assert params["controller_address"]["value"] == "10.0.0.10"  # not reverted by the save
    assert params["floating_range"]["value"] == "172.24.9.0/24"  # the typed value won
    assert params["rabbit_password"]["set"] is True
    wait.until(ec.text_to_be_present_in_element((By.ID, "params-state"), "missing"))

    # A field the admin is in (focused, nothing typed) is not changed under the cursor; when a
    # change lands meanwhile, Save still does not send the field's older value back.
    ctl = d.find_element(By.ID, "param-controller_address")
    ctl.click()
    later = {"controller_address": "10.0.0.11"}
    status, _ = svc.json("PUT", "/api/deployments/both/params", token=admin, json_body=later)
    assert status == 200
    wait.until(
        lambda _: d.execute_script("return current.params.controller_address.value") == "10.0.0.11"
    )
    assert ctl.get_attribute("value") == "10.0.0.10"
    d.find_element(By.ID, "params-save").click()
    wait.until(lambda _: d.find_element(By.ID, "params-msg").text in ("saved", "nothing changed"))
    status, data = svc.json("GET", "/api/deployments/both", token=admin)
    assert data["params"]["controller_address"]["value"] == "10.0.0.11"


def test_node_detail_timeline_and_inventory(browser, served_service: Service) -> None:
    """A node's detail: SMBIOS facts of a network-booted machine, NICs one per line, disks in
    GB, and a timeline with timestamps and each step's duration; a failure says where."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    d, svc = browser, served_service
    wait = WebDriverWait(d, 30)
    token = _login_and_open(d, svc, "detail", "dual-node")
    admin = svc.login()
    status, data = svc.json(
        "PUT", "/api/deployments/detail/netboot", token=admin, json_body={"unknown": "wait"}
    )
    assert status == 200, data
    # A machine network-boots: iPXE sends its SMBIOS strings.
    ipxe = {"User-Agent": "iPXE/1.0.0+git-20190125.36a4c85", "Host": "10.0.2.2:8080"}
    status, _, _ = svc.request("GET", "/ipxe/detail/52-54-00-AB-CD-01?vendor=QEMU&product=Standard"
                               "%20PC&serial=SN-4711", headers=ipxe)  # fmt: skip
    assert status == 200
    # A disc-installed machine registers and runs its first boot, failing at libvirt.
    macs = ["52:54:00:00:05:01", "52:54:00:00:05:02"]
    status, _, body = svc.request(
        "POST", "/agent/v1/register", token=token, body=inventory("cmp-5", macs)
    )
    assert status == 201
    node = parse_pairs(body)
    nt, nid = node["node_token"], node["node_id"]
    params = {
        "controller_address": "10.0.0.10", "nova_db_password": "detail-nova-secret",
        "rabbit_password": "detail-rabbit-secret", "mysql_root_password": "detail-mysql-secret",
        "admin_password": "detail-admin-secret",
    }  # fmt: skip
    assert (
        svc.json("PUT", "/api/deployments/detail/params", token=admin, json_body=params)[0] == 200
    )
    path = f"/api/deployments/detail/nodes/{nid}/roles"
    assert svc.json("PUT", path, token=admin, json_body={"roles": ["compute"]})[0] == 200
    assert svc.request("GET", f"/agent/v1/nodes/{nid}/answers", token=nt)[0] == 200
    lines = (
        "STACKOPS step=1/4 role=compute name=nova status=ok t=12.5s\n"
        "STACKOPS step=2/4 role=compute name=libvirt status=failed t=3.1s\n"
        "STACKOPS-FIRSTBOOT failed step=libvirt log=/var/log/stackops/steps/libvirt.log\n"
    )
    assert svc.request("POST", f"/agent/v1/nodes/{nid}/progress", token=nt, body=lines)[0] == 200

    # The network-booted machine: its SMBIOS facts.
    rows = (By.CSS_SELECTOR, "#nodes tbody tr")
    wait.until(lambda _: len(d.find_elements(*rows)) == 2)
    first = d.find_elements(*rows)[0]
    assert first.find_element(By.CSS_SELECTOR, "button.details").accessible_name
    first.find_element(By.CSS_SELECTOR, "button.details").click()
    inv = (By.ID, "node-inventory")
    wait.until(ec.text_to_be_present_in_element(inv, "QEMU Standard PC"))
    assert "serial SN-4711" in d.find_element(*inv).text
    assert "not reported yet" in first.find_element(By.CSS_SELECTOR, "td.hw").text
    d.save_screenshot("/tmp/ui-detail-netboot.png")

    # The failed node: NICs one per line, disks in GB, the timeline with times and durations.
    row = f"tr[data-node='{nid}']"
    d.find_element(By.CSS_SELECTOR, f"{row} button.details").click()
    wait.until(ec.text_to_be_present_in_element((By.ID, "node-detail-title"), "cmp-5"))
    text = d.find_element(*inv).text
    assert "eth0 52:54:00:00:05:01 up\neth1 52:54:00:00:05:02 up" in text
    assert "sda 21.5 GB in use\nsdb 10.7 GB free" in text
    events = d.find_elements(By.CSS_SELECTOR, "#node-timeline li")
    lines_shown = [e.text for e in events]
    assert any("registered" in t for t in lines_shown), lines_shown
    assert any("nova ok (took 12.5 s)" in t for t in lines_shown), lines_shown
    times = d.find_elements(By.CSS_SELECTOR, "#node-timeline li time")
    assert len(times) == len(events)
    import re

    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", t.text) for t in times)
    failure = d.find_element(By.ID, "node-failure")
    assert failure.is_displayed() and "libvirt" in failure.text
    d.save_screenshot("/tmp/ui-detail-failed.png")


def test_actions_forget_rotate_delete(browser, service: Service) -> None:
    """Forget a node (asks first; its token stops working), make a new enrolment token (shown
    once; the old one stops registering), delete the deployment (typing its name)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    d, svc = browser, service
    wait = WebDriverWait(d, 30)
    token = _login_and_open(d, svc, "acts", "dual-node")
    status, _, body = svc.request(
        "POST", "/agent/v1/register", token=token, body=inventory("gone-1", ["52:54:00:00:09:01"])
    )
    assert status == 201
    node = parse_pairs(body)
    row = f"tr[data-node='{node['node_id']}']"
    wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, row)))
    d.find_element(By.CSS_SELECTOR, f"{row} button.details").click()
    wait.until(ec.text_to_be_present_in_element((By.ID, "node-detail-title"), "gone-1"))
    d.find_element(By.ID, "node-forget").click()
    wait.until(ec.alert_is_present()).dismiss()  # asked first; dismissed, nothing happens
    assert d.find_elements(By.CSS_SELECTOR, row)
    d.find_element(By.ID, "node-forget").click()
    alert = wait.until(ec.alert_is_present())
    assert "Forget node" in alert.text
    alert.accept()
    wait.until(lambda _: not d.find_elements(By.CSS_SELECTOR, row))
    assert "forgotten" in d.find_element(By.ID, "assign-msg").text
    path = f"/agent/v1/nodes/{node['node_id']}/assignment"
    assert svc.request("GET", path, token=node["node_token"])[0] in (401, 403, 404)

    d.find_element(By.ID, "rotate-token").click()
    wait.until(ec.alert_is_present()).accept()
    wait.until(ec.visibility_of_element_located((By.ID, "rotated-token")))
    new = d.find_element(By.ID, "rotated-token").text
    assert len(new) >= 40 and new != token
    inv = inventory("new-1", ["52:54:00:00:09:02"])
    assert svc.request("POST", "/agent/v1/register", token=token, body=inv)[0] in (401, 403)
    assert svc.request("POST", "/agent/v1/register", token=new, body=inv)[0] == 201
    wait.until(lambda _: len(d.find_elements(By.CSS_SELECTOR, "#nodes tbody tr")) == 1)
    d.save_screenshot("/tmp/ui-actions-token.png")

    # This service serves no disc: the onboarding says how to boot nodes over the network.
    d.find_element(By.CSS_SELECTOR, "#onboarding summary").click()
    wait.until(ec.visibility_of_element_located((By.ID, "netboot-off")))
    assert not d.find_element(By.ID, "netboot-on").is_displayed()
    d.find_element(By.ID, "delete-deployment").click()
    wait.until(ec.alert_is_present()).send_keys("wrong")
    d.switch_to.alert.accept()
    wait.until(ec.text_to_be_present_in_element((By.ID, "error"), "confirm the deletion"))
    d.find_element(By.ID, "delete-deployment").click()
    prompt = wait.until(ec.alert_is_present())
    assert "1 node(s)" in prompt.text
    prompt.send_keys("acts")
    prompt.accept()
    wait.until(ec.visibility_of_element_located((By.ID, "list-view")))
    wait.until(lambda _: not d.find_elements(By.CSS_SELECTOR, "a.dep-link[data-name='acts']"))
    assert svc.json("GET", "/api/deployments/acts", token=svc.login())[0] == 404


def test_onboarding_bootfile_dnsmasq_and_build_command(browser, served_service: Service) -> None:
    """The deployment page says how to get nodes here: the build command with this service's
    URL and the token just made, the iPXE boot file URL, the dnsmasq block filled in, and the
    unknown-machine policy."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.select import Select
    from selenium.webdriver.support.ui import WebDriverWait

    d, svc = browser, served_service
    wait = WebDriverWait(d, 30)
    token = _login_and_open(d, svc, "onb", "dual-node")
    d.find_element(By.CSS_SELECTOR, "#onboarding summary").click()
    build = wait.until(ec.visibility_of_element_located((By.ID, "build-cmd"))).text
    assert f"STACKOPS_INSTALLER_TOKEN={token}" in build
    assert f"--installer-url {svc.url}" in build
    wait.until(ec.visibility_of_element_located((By.ID, "bootfile")))
    bootfile = d.find_element(By.ID, "bootfile").text
    assert bootfile.endswith("/ipxe/onb")
    block = d.find_element(By.ID, "dnsmasq-block").text
    assert f'pxe-service=tag:ipxe,x86PC,"StackOps",{bootfile}' in block
    assert "dhcp-range=127.0.0.0,proxy" in block  # the service's /24, from the URL
    d.save_screenshot("/tmp/ui-onboarding.png")
    Select(d.find_element(By.ID, "netboot-unknown")).select_by_value("wait")
    wait.until(ec.text_to_be_present_in_element((By.ID, "netboot-msg"), "saved: wait"))
    status, data = svc.json("GET", "/api/deployments/onb/netboot", token=svc.login())
    assert status == 200 and data["unknown"] == "wait"
    # Reopened later, the token is not known any more: the command says where to get one.
    d.refresh()
    d.find_element(By.CSS_SELECTOR, "#onboarding summary").click()
    build = wait.until(ec.visibility_of_element_located((By.ID, "build-cmd"))).text
    assert token not in build and "<the enrolment token>" in build
    assert (
        Select(d.find_element(By.ID, "netboot-unknown")).first_selected_option.get_attribute(
            "value"
        )
        == "wait"
    )


def test_network_booted_node_refit_shown(browser, served_service: Service) -> None:
    """A machine found by iPXE is assigned on its empty inventory (qemu, one NIC); when its first
    boot reports the real hardware the row and its detail show the new answers' notes gone and
    the timeline says what changed."""
    import re

    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    d, svc = browser, served_service
    wait = WebDriverWait(d, 30)
    _login_and_open(d, svc, "refit", "dual-node")
    admin = svc.login()
    params = {
        "controller_address": "10.0.0.10", "nova_db_password": "refit-nova-secret",
        "rabbit_password": "refit-rabbit-secret", "mysql_root_password": "refit-mysql-secret",
        "admin_password": "refit-admin-secret",
    }  # fmt: skip
    assert svc.json("PUT", "/api/deployments/refit/params", token=admin, json_body=params)[0] == 200
    ipxe = {"User-Agent": "iPXE/1.0.0+git-20190125.36a4c85", "Host": svc.url[len("http://") :]}
    mac = "52:54:00:aa:00:01"
    assert svc.request("GET", f"/ipxe/refit/{mac}", headers=ipxe)[0] == 200
    nodes = svc.json("GET", "/api/deployments/refit/nodes", token=admin)[1]
    nid = next(n["id"] for n in nodes if n["mac"] == mac)
    path = f"/api/deployments/refit/nodes/{nid}/roles"
    assert svc.json("PUT", path, token=admin, json_body={"roles": ["compute"]})[0] == 200
    row = f"tr[data-node='{nid}']"
    wait.until(ec.text_to_be_present_in_element((By.CSS_SELECTOR, row), "falls back to qemu"))
    # The installer boots (its script, its preseed) and reports the install done: a node token.
    script = svc.request("GET", f"/ipxe/refit/{mac}", headers=ipxe)[2].decode()
    preseed = re.search(r"url=http://[^/ ]+(/nb/\d+/[^/ ]+/preseed)", script)
    assert preseed, script
    seed = svc.request("GET", preseed[1], headers=ipxe)[2].decode()
    installed = re.search(r"(/nb/\d+/[^/ ]+/installed)", seed)
    assert installed
    token = parse_pairs(svc.request("GET", installed[1], headers=ipxe)[2])["node_token"]
    inv = (
        "hostname='node-aa0001'\ncpus='16'\nvirt='vmx'\nmem_kb='33554432'\n"
        f"nic='eth0 {mac} up'\nnic='eth1 52:54:00:aa:00:02 up'\ndisk='sda 20971520 used'\n"
    )
    status, _, _ = svc.request(
        "POST", f"/agent/v1/nodes/{nid}/inventory", body=inv.encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "text/plain"},
    )  # fmt: skip
    assert status == 200
    wait.until(ec.text_to_be_present_in_element((By.CSS_SELECTOR, f"{row} td.hw"), "16 CPU"))
    wait.until(lambda _: "qemu" not in d.find_element(By.CSS_SELECTOR, f"{row} td.roles").text)
    d.find_element(By.CSS_SELECTOR, f"{row} button.details").click()
    timeline = (By.ID, "node-timeline")
    wait.until(ec.text_to_be_present_in_element(timeline, "re-fitted on the reported hardware"))
    text = d.find_element(*timeline).text
    assert "libvirt_type qemu -> auto" in text and "flat_interface eth0 -> eth1" in text
    d.save_screenshot("/tmp/ui-refit.png")


def test_tablet_width_keeps_state_and_progress_on_screen(browser, service: Service) -> None:
    """At 768 px the nodes table still shows roles, state and progress without scrolling (the
    inventory columns give way; the node detail has them)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    d, svc = browser, service
    wait = WebDriverWait(d, 30)
    token = _login_and_open(d, svc, "tablet", "dual-node")
    status, _, body = svc.request(
        "POST", "/agent/v1/register", token=token, body=inventory("tab-1", ["52:54:00:00:0b:01"])
    )
    assert status == 201
    row = f"tr[data-node='{parse_pairs(body)['node_id']}']"
    wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, row)))
    d.set_window_size(768, 1000)
    width = d.execute_script("return document.documentElement.clientWidth")
    assert width <= 768
    for cell in ("td.state", "td.progress", "select.roles"):
        rect = d.find_element(By.CSS_SELECTOR, f"{row} {cell}").rect
        assert rect["x"] + rect["width"] <= width, (cell, rect, width)
    assert not d.find_element(By.CSS_SELECTOR, f"{row} td.nics").is_displayed()
    d.find_element(By.CSS_SELECTOR, "#nodes").screenshot("/tmp/ui-tablet.png")


def test_filter_nodes(browser, service: Service) -> None:
    """Many nodes: the filter shows the rows that match (host, MAC, role, state) and keeps doing
    so through the refresh."""
    import time

    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    d, svc = browser, service
    wait = WebDriverWait(d, 30)
    token = _login_and_open(d, svc, "many", "dual-node")
    for i in range(6):
        inv = inventory(f"cmp-{i}", [f"52:54:00:00:0c:0{i}"])
        assert svc.request("POST", "/agent/v1/register", token=token, body=inv)[0] == 201
    rows = (By.CSS_SELECTOR, "#nodes tbody tr")
    wait.until(lambda _: len(d.find_elements(*rows)) == 6)
    box = d.find_element(By.ID, "node-filter")
    assert box.accessible_name.startswith("Filter nodes")
    box.send_keys("0c:03")
    shown = [r for r in d.find_elements(*rows) if r.is_displayed()]
    assert [r.find_element(By.CSS_SELECTOR, "td.host").text for r in shown] == ["cmp-3"]
    assert d.find_element(By.ID, "node-count").text == "showing 1 of 6"
    inv = inventory("cmp-30", ["52:54:00:00:0c:30"])
    assert svc.request("POST", "/agent/v1/register", token=token, body=inv)[0] == 201
    time.sleep(2.5)  # a refresh with a new node: the filter still holds, the box keeps focus
    wait.until(lambda _: d.find_element(By.ID, "node-count").text == "showing 1 of 7")
    assert d.switch_to.active_element == box
    box.clear()
    box.send_keys("registered")
    wait.until(lambda _: d.find_element(By.ID, "node-count").text == "showing 7 of 7")
