"""The Smart Installer's operations (issue 21) in headless Chromium against the live service:
cloud ready with the nova.zip download, retry of a failed step with the log tail the agent
sent, reinstall on the next network boot, and a failed node's bar where it failed. The nodes'
side is played over the real agent API (the agent itself: test_agent_installer.py). Screenshots
go to /tmp/ui21a-*.png.
"""

from __future__ import annotations

import io
import time
import zipfile
from pathlib import Path

import pytest

from tests.integration import test_installer_ui as _ui
from tests.integration.installer_live import Service, inventory, parse_pairs
from tests.integration.test_installer_ui import _login_and_open

# The browser and live-service fixtures of the UI tests.
browser, service, served_service = _ui.browser, _ui.service, _ui.served_service

pytestmark = pytest.mark.integration

PARAMS = {
    "controller_address": "10.0.0.10",
    "floating_range": "172.24.4.0/24",
    "nova_db_password": "act-nova-secret",
    "rabbit_password": "act-rabbit-secret",
    "mysql_root_password": "act-mysql-secret",
    "admin_password": "act-admin-secret",
}
EC2_SECRET = "act-admin-secret"  # novarc's EC2_SECRET_KEY is the admin_password (roles/controller)


def nova_zip() -> bytes:
    """A credentials zip as `nova-manage project zipfile` makes it (novarc + PEM files)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(
            "novarc",
            'export EC2_ACCESS_KEY="admin:stackops"\n'
            f'export EC2_SECRET_KEY="{EC2_SECRET}"\n'
            'export EC2_URL="http://10.0.0.10:8773/services/Cloud"\n'
            'export S3_URL="http://10.0.0.10:3333"\n',
        )
        for name in ("pk.pem", "cert.pem", "cacert.pem"):
            z.writestr(name, f"-----BEGIN {name}-----\nAAAA\n-----END {name}-----\n")
    return buf.getvalue()


def _node(svc: Service, dep: str, token: str, host: str, mac: str, roles: list[str]) -> dict:
    """A node registers, the admin assigns `roles`, the node fetches its answers."""
    admin = svc.login()
    status, _, body = svc.request(
        "POST", "/agent/v1/register", token=token, body=inventory(host, [mac])
    )
    assert status == 201
    n = parse_pairs(body)
    path = f"/api/deployments/{dep}/nodes/{n['node_id']}/roles"
    status, data = svc.json("PUT", path, token=admin, json_body={"roles": roles})
    assert status == 200, data
    status, _, _ = svc.request(
        "GET", f"/agent/v1/nodes/{n['node_id']}/answers", token=n["node_token"]
    )
    assert status == 200
    return n


def _report(svc: Service, n: dict, *lines: str) -> None:
    body = "".join(ln + "\n" for ln in lines)
    status, _, resp = svc.request(
        "POST", f"/agent/v1/nodes/{n['node_id']}/progress", token=n["node_token"], body=body
    )
    assert status == 200, resp


def test_cloud_ready_endpoints_and_credentials_download(
    browser, service: Service, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    d, svc = browser, service
    wait = WebDriverWait(d, 30)
    token = _login_and_open(d, svc, "cloud", "dual-node")
    admin = svc.login()
    assert svc.json("PUT", "/api/deployments/cloud/params", token=admin, json_body=PARAMS)[0] == 200
    ctl = _node(
        svc, "cloud", token, "ctl-1", "52:54:00:00:21:01", ["controller", "network", "volume"]
    )
    cmp_ = _node(svc, "cloud", token, "cmp-1", "52:54:00:00:21:02", ["compute"])

    box = (By.ID, "cloud-title")
    wait.until(
        ec.text_to_be_present_in_element(box, "Cloud not ready yet (controller configuring)")
    )
    assert not d.find_element(By.ID, "cloud-download").is_displayed()
    assert "not uploaded yet" in d.find_element(By.ID, "cloud-no-credentials").text
    d.save_screenshot("/tmp/ui21a-cloud-not-ready.png")

    # The controller's agent uploads nova.zip over its node token (a compute node may not).
    data = nova_zip()
    zip_headers = {"Content-Type": "application/zip"}
    path = f"/agent/v1/nodes/{ctl['node_id']}/credentials"
    status, _, body = svc.request(
        "POST", path, token=ctl["node_token"], body=data, headers=zip_headers
    )
    assert status == 200 and parse_pairs(body)["credentials"] == str(len(data)), body
    status, _, _ = svc.request(
        "POST",
        f"/agent/v1/nodes/{cmp_['node_id']}/credentials",
        token=cmp_["node_token"],
        body=data,
        headers=zip_headers,
    )
    assert status == 403
    status, _, _ = svc.request(
        "POST", path, token=ctl["node_token"], body=b"PK not a zip", headers=zip_headers
    )
    assert status == 400
    # The check step's lines, then the end of the first boot: the verdict is the cloud's.
    _report(
        svc,
        ctl,
        "STACKOPS step=10/10 role=controller name=check status=ok t=20.0s",
        "STACKOPS-CHECK ok   services: 4 services up: ctl-1:nova-scheduler, ctl-1:nova-network",
        "STACKOPS-CHECK ok   ec2: DescribeAvailabilityZones answered (1 zone)",
        "STACKOPS-CHECK ok   glance: an image stored and listed",
        "STACKOPS-CHECK ok   network: 192.168.100.0/24 listed",
        "STACKOPS-CHECK stackops-check: passed 4 checks",
        "STACKOPS-FIRSTBOOT done roles=controller,network,volume",
    )
    wait.until(ec.text_to_be_present_in_element(box, "Cloud ready"))
    cloud = d.find_element(By.ID, "cloud")
    text = cloud.text
    assert "http://10.0.0.10:8773/services/Cloud" in text
    assert "http://10.0.0.10:3333" in text and "http://10.0.0.10:9292" in text
    assert "Admin user\nadmin" in text and "Project\nstackops" in text
    assert "stackops-check: passed 4 checks" in text
    assert "ok ec2: DescribeAvailabilityZones answered" in text
    assert "ready" in (cloud.get_attribute("class") or "")
    link = d.find_element(By.ID, "cloud-download")
    assert link.is_displayed() and link.accessible_name.startswith("Download nova.zip")
    d.save_screenshot("/tmp/ui21a-cloud-ready.png")

    # The download button gives the bytes the agent sent.
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    d.execute_cdp_cmd(
        "Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
    )
    link.click()
    target = downloads / "nova.zip"
    deadline = time.monotonic() + 20
    while not target.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert target.read_bytes() == data
    # Only the admin's session reads it; the secret key is in no page, event or log.
    status, _, _ = svc.request("GET", "/api/deployments/cloud/credentials")
    assert status == 401
    status, _, _ = svc.request("GET", "/api/deployments/cloud/credentials", token=ctl["node_token"])
    assert status == 401
    status, headers, body = svc.request("GET", "/api/deployments/cloud/credentials", token=admin)
    assert status == 200 and body == data and headers["cache-control"] == "no-store"
    assert headers["content-type"] == "application/zip"
    assert EC2_SECRET not in d.page_source
    _, shown = svc.json("GET", f"/api/deployments/cloud/nodes/{ctl['node_id']}", token=admin)
    assert any("credentials uploaded (nova.zip" in e["line"] for e in shown["events"])
    assert all(EC2_SECRET not in e["line"] for e in shown["events"])
    assert EC2_SECRET.encode() not in svc.log.read_bytes()


def test_a_failed_check_is_the_clouds_verdict(browser, service: Service) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    d, svc = browser, service
    wait = WebDriverWait(d, 30)
    token = _login_and_open(d, svc, "chk", "dual-node")
    admin = svc.login()
    assert svc.json("PUT", "/api/deployments/chk/params", token=admin, json_body=PARAMS)[0] == 200
    ctl = _node(
        svc, "chk", token, "ctl-2", "52:54:00:00:22:01", ["controller", "network", "volume"]
    )
    _report(
        svc,
        ctl,
        "STACKOPS-CHECK ok   services: 4 services up",
        "STACKOPS-CHECK FAIL ec2: DescribeAvailabilityZones: connection refused",
        "STACKOPS-CHECK stackops-check: FAILED 1 of 4 checks: ec2",
        "STACKOPS step=10/10 role=controller name=check status=failed t=95.0s",
        "STACKOPS-FIRSTBOOT failed step=check log=/var/log/stackops/steps/check.log",
    )
    box = (By.ID, "cloud-title")
    wait.until(ec.text_to_be_present_in_element(box, "Cloud not ready: stackops-check failed"))
    assert (
        "FAIL ec2: DescribeAvailabilityZones: connection refused"
        in d.find_element(By.ID, "cloud-checks").text
    )
    assert "failed" in (d.find_element(By.ID, "cloud").get_attribute("class") or "")
    d.save_screenshot("/tmp/ui21a-cloud-check-failed.png")


def test_failed_node_log_tail_retry_and_its_bar(browser, service: Service) -> None:
    """A node failed at step 2/4: after a reload its bar stays where it failed (55 %, not the
    40 % of 'installed'); its detail shows the log tail the agent sent; Retry asks the agent,
    which sees it on its next poll; the events say so."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    d, svc = browser, service
    wait = WebDriverWait(d, 30)
    token = _login_and_open(d, svc, "retry", "dual-node")
    admin = svc.login()
    assert svc.json("PUT", "/api/deployments/retry/params", token=admin, json_body=PARAMS)[0] == 200
    n = _node(svc, "retry", token, "cmp-9", "52:54:00:00:23:01", ["compute"])
    nid = n["node_id"]
    # The agent's failure report: its step line, then the log's tail with the failure line.
    _report(
        svc,
        n,
        "STACKOPS step=1/4 role=compute name=nova status=ok t=2.0s",
        "STACKOPS step=2/4 role=compute name=libvirt status=failed t=3.1s",
    )
    _report(
        svc,
        n,
        "STACKOPS-LOG === 2026-12-06 04:00:00 step 2/4 role=compute name=libvirt",
        "STACKOPS-LOG restart libvirt-bin (upstart)",
        "STACKOPS-LOG   libvirt-bin: injected failure (exit 1)",
        "STACKOPS-LOG connecting with rabbit password act-rabbit-secret",
        "STACKOPS-LOG === exit 1",
        "STACKOPS-FIRSTBOOT failed step=libvirt log=/var/log/stackops/steps/libvirt.log",
    )
    d.refresh()  # a fresh page: the bar is drawn from the service's data alone
    row = f"tr[data-node='{nid}']"
    wait.until(ec.text_to_be_present_in_element((By.CSS_SELECTOR, f"{row} td.state"), "failed"))
    bar = d.find_element(By.CSS_SELECTOR, f"{row} progress.node-progress")
    assert bar.get_attribute("value") == "55"  # 40 % installed + 60 % x 1/4 steps done
    assert "55 %" in d.find_element(By.CSS_SELECTOR, f"{row} td.progress").text

    d.find_element(By.CSS_SELECTOR, f"{row} button.details").click()
    tail = (By.ID, "node-log-tail")
    wait.until(ec.visibility_of_element_located(tail))
    text = d.find_element(*tail).text
    assert "restart libvirt-bin (upstart)" in text
    assert "  libvirt-bin: injected failure (exit 1)" in d.find_element(*tail).get_attribute(
        "textContent"
    )  # indentation kept
    assert "act-rabbit-secret" not in text and "*****" in text  # the service redacts too
    retry = d.find_element(By.ID, "node-retry")
    assert retry.is_displayed() and retry.is_enabled()
    assert "Retry" in retry.accessible_name
    d.save_screenshot("/tmp/ui21a-failed-log-tail.png")

    # Before the admin asks, the agent's poll says no.
    poll = f"/agent/v1/nodes/{nid}/retry"
    status, _, body = svc.request("GET", poll, token=n["node_token"])
    assert status == 200 and parse_pairs(body)["retry"] == "no"
    retry.click()
    wait.until(ec.text_to_be_present_in_element((By.ID, "node-action-msg"), "retry requested"))
    wait.until(lambda _: not d.find_element(By.ID, "node-retry").is_enabled())
    assert (
        "runs again from step 2/4 compute libvirt on its next poll"
        in d.find_element(By.ID, "node-action-msg").text
    )
    d.save_screenshot("/tmp/ui21a-retry-requested.png")
    status, _, body = svc.request("GET", poll, token=n["node_token"])
    assert status == 200 and parse_pairs(body)["retry"] == "yes"
    status, _, body = svc.request("GET", poll, token=n["node_token"])
    assert parse_pairs(body)["retry"] == "no"  # once
    wait.until(
        ec.text_to_be_present_in_element((By.CSS_SELECTOR, f"{row} td.state"), "configuring")
    )
    timeline = (By.ID, "node-timeline")
    wait.until(ec.text_to_be_present_in_element(timeline, "retrying from the failed step"))
    assert "retry requested" in d.find_element(*timeline).text
    assert not d.find_element(By.ID, "node-log-box").is_displayed()
    # Retrying, its bar stays where it failed and says what runs.
    assert (
        d.find_element(By.CSS_SELECTOR, f"{row} progress.node-progress").get_attribute("value")
        == "55"
    )
    assert "retrying step 2/4 (compute libvirt)" in d.find_element(By.CSS_SELECTOR, row).text
    d.save_screenshot("/tmp/ui21a-retrying.png")


def test_reinstall_on_next_network_boot(browser, served_service: Service) -> None:
    """A done node, reinstalled: asks first, its state says so, and its next iPXE boot gets the
    install script with a fresh boot token instead of the local disk."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    d, svc = browser, served_service
    wait = WebDriverWait(d, 30)
    token = _login_and_open(d, svc, "again", "dual-node")
    admin = svc.login()
    assert svc.json("PUT", "/api/deployments/again/params", token=admin, json_body=PARAMS)[0] == 200
    mac = "52:54:00:00:24:01"
    n = _node(svc, "again", token, "cmp-4", mac, ["compute"])
    _report(svc, n, "STACKOPS-FIRSTBOOT done roles=compute")
    ipxe = {"User-Agent": "iPXE/1.0.0+git-20190125.36a4c85", "Host": "10.0.2.2:8080"}
    boot = "/ipxe/again/" + mac.replace(":", "-")
    status, _, script = svc.request("GET", boot, headers=ipxe)
    assert status == 200 and b"local disk" in script

    row = f"tr[data-node='{n['node_id']}']"
    wait.until(ec.text_to_be_present_in_element((By.CSS_SELECTOR, f"{row} td.state"), "done"))
    d.find_element(By.CSS_SELECTOR, f"{row} button.details").click()
    button = (By.ID, "node-reinstall")
    wait.until(ec.visibility_of_element_located(button))
    assert not d.find_element(By.ID, "node-retry").is_displayed()  # not failed
    d.find_element(*button).click()
    alert = wait.until(ec.alert_is_present())
    assert "next network boot" in alert.text and "wiped" in alert.text
    alert.dismiss()
    time.sleep(0.5)
    assert d.find_element(By.CSS_SELECTOR, f"{row} td.state").text == "done"
    d.find_element(*button).click()
    wait.until(ec.alert_is_present()).accept()
    wait.until(ec.text_to_be_present_in_element((By.CSS_SELECTOR, f"{row} td.state"), "reinstall"))
    wait.until(
        ec.text_to_be_present_in_element(
            (By.ID, "node-state-note"), "Reinstall on its next network boot"
        )
    )
    assert "installs again on its next network boot" in d.find_element(By.CSS_SELECTOR, row).text
    assert d.find_element(By.ID, "dep-summary").text == "1 reinstall"
    assert not d.find_element(*button).is_enabled()
    d.save_screenshot("/tmp/ui21a-reinstall.png")

    status, _, script = svc.request("GET", boot, headers=ipxe)
    assert status == 200 and b"local disk" not in script, script
    text = script.decode()
    assert f"/nb/{n['node_id']}/" in text and "/preseed" in text and "roles=compute" in text
    wait.until(ec.text_to_be_present_in_element((By.CSS_SELECTOR, f"{row} td.state"), "booting"))
