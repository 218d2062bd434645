"""The network-install smoke test (issue 13): a diskless QEMU boots from the network against a
running `distro-builder serve --disc`, and the stages are checked on both sides, the guest's
serial console and the Smart Installer's inventory (its JSON API):

1. boot script fetched: the machine shows in the inventory with its MAC (booting; an unknown
   one: discovered, its iPXE menu on the console (deployment policy `menu`), then given `roles`
   through the API as an admin would)
2. kernel started with the node's roles: `Command line: ... stackops/roles=<roles>`
3. preseed fetched over HTTP, and the installer printed `STACKOPS-PRESEED roles=<roles>`
4. the node is "installing" in the inventory, with its MAC

QEMU's user network hands its DHCP clients the bootfile URL; the ipxe-qemu ROM fetches it over
HTTP from the host (10.0.2.2). Nothing is pressed on the console.
"""

from __future__ import annotations

import json
import logging
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from distro_builder.errors import SmokeTestError
from distro_builder.qa.console import SerialConsole, StageResult, scale_timeout
from distro_builder.qa.qemu import QEMU

log = logging.getLogger(__name__)

GUEST_HOST = "10.0.2.2"  # the host, as QEMU's user network shows it to the guest
STAGES = (
    "boot script fetched",
    "kernel started with the node's roles",
    "preseed fetched, marker printed",
    "installing in the inventory",
)


class Api:
    """The Smart Installer's JSON API, as an admin."""

    def __init__(self, url: str, user: str, password: str) -> None:
        self.url = url.rstrip("/")
        body = json.dumps({"username": user, "password": password}).encode()
        self.token = str(self.call("POST", "/api/login", body, auth=False)["token"])

    def call(self, method: str, path: str, body: bytes | None = None, *, auth: bool = True) -> Any:
        req = urllib.request.Request(self.url + path, data=body, method=method)
        req.add_header("Content-Type", "application/json")
        if auth:
            req.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as e:
            raise SmokeTestError(f"{method} {path}: {e.code} {e.read()[:200]!r}") from e
        except OSError as e:
            raise SmokeTestError(f"the Smart Installer at {self.url} is unreachable: {e}") from e

    def node(self, deployment: str, mac: str) -> dict[str, Any] | None:
        for n in self.call("GET", f"/api/deployments/{deployment}/nodes"):
            if n["mac"] == mac:
                return dict(n)
        return None


def qemu_pxe_argv(bootfile: str, mac: str, *, accel: str, memory_mb: int = 1024) -> list[str]:
    """A diskless guest booting the NIC's iPXE ROM; its DHCP bootfile is `bootfile`. No VGA
    card: SeaBIOS's serial console carries iPXE's text (its menu), the kernel has console=."""
    return [
        QEMU, "-nographic", "-no-reboot", "-m", str(memory_mb), "-accel", accel, "-vga", "none",
        "-nic", f"user,model=e1000,mac={mac},bootfile={bootfile.replace(',', ',,')}",
        "-boot", "n",
    ]  # fmt: skip


def guest_url(url: str) -> str:
    """The service's URL as the guest reaches it: loopback becomes 10.0.2.2."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if host in ("127.0.0.1", "localhost", "::1", "0.0.0.0"):
        host = GUEST_HOST
    return f"http://{host}:{parts.port or 80}"


def wait_for(what: str, timeout: float, probe: Callable[[], Any], con: SerialConsole) -> Any:
    """Poll `probe` every second while reading the console; its first true result. A QEMU that
    exits or prints a fatal message fails at once, and the guest never blocks on a full serial
    line.

    Raises: SmokeTestError naming `what` on the timeout (scaled) or when QEMU is gone.
    """
    deadline = time.monotonic() + scale_timeout(timeout)
    while True:
        got = probe()
        if got:
            return got
        if time.monotonic() > deadline:
            raise SmokeTestError(f"timed out waiting for {what}")
        try:
            con.drain(1)
        except SmokeTestError as e:
            raise SmokeTestError(f"waiting for {what}: {e}", hint=e.hint) from e


def pxe_smoke(
    url: str,
    deployment: str,
    mac: str,
    *,
    user: str,
    password: str,
    accel: str,
    log_path: Path,
    roles: str | None = None,
    bootfile: str | None = None,
    on_stage: Callable[[StageResult], None] | None = None,
) -> list[StageResult]:
    """Boot a diskless QEMU from `url`'s deployment; the stage results (raises on a failure).
    `roles`: for an unknown machine, assign these through the API once it is discovered;
    `on_stage`: called with each stage's result as it ends."""
    api = Api(url, user, password)
    mac = mac.lower()
    boot = bootfile or f"{guest_url(url)}/ipxe/{deployment}"
    argv = qemu_pxe_argv(boot, mac, accel=accel)
    with SerialConsole(argv, log_path, on_stage=on_stage) as con:
        return expect_pxe_stages(con, api, deployment, mac, roles=roles)


def expect_pxe_stages(
    con: SerialConsole, api: Api, deployment: str, mac: str, *, roles: str | None = None
) -> list[StageResult]:
    """The STAGES of a guest on `con` that boots `deployment`'s script (however it got the
    bootfile: QEMU's user network, or a DHCP server); the console's results so far.

    Raises: SmokeTestError for the first stage that fails.
    """
    mac = mac.lower()
    with con.stage(STAGES[0], timeout=300):
        node = wait_for(
            f"{mac} in the inventory",
            300,
            lambda: (n := api.node(deployment, mac)) and n["state"] != "installed" and n,
            con,
        )
        if not node["roles"]:
            if not roles:
                raise SmokeTestError(f"{mac} is {node['state']} without roles: give --roles")
            policy = api.call("GET", f"/api/deployments/{deployment}/netboot")["unknown"]
            if policy == "menu":  # the unknown machine's iPXE menu, shown before the admin acts
                con.expect(
                    f"node {node['id']} ({mac}) has no roles",
                    what="the iPXE menu of an unknown machine",
                )
                con.expect("Wait for the admin", what="the menu's wait item")
            body = json.dumps({"roles": roles.split(",")}).encode()
            api.call("PUT", f"/api/deployments/{deployment}/nodes/{node['id']}/roles", body)
            log.info("node %s discovered; assigned %s through the API", node["id"], roles)
        node = wait_for(
            f"{mac} booting",
            300,
            lambda: (n := api.node(deployment, mac)) and n["state"] in
            ("booting", "installing") and n, con,
        )  # fmt: skip
    want = ",".join(node["roles"])
    with con.stage(STAGES[1], timeout=600):
        con.expect(
            re.compile(r"Command line: .*stackops/roles=" + re.escape(want) + r"\s"),
            what=f"the kernel's command line with stackops/roles={want}",
        )
    with con.stage(STAGES[2], timeout=900):
        con.expect(f"STACKOPS-PRESEED roles={want}", what="the installer's preseed marker")
        wait_for(
            "the preseed to be fetched",
            600,
            lambda: (n := api.node(deployment, mac)) and n["state"] == "installing",
            con,
        )
    with con.stage(STAGES[3], timeout=60):
        n = api.node(deployment, mac)
        if not n or n["state"] != "installing" or n["mac"] != mac:
            raise SmokeTestError(f"the inventory shows {n!r}, not {mac} installing")
    return list(con.results)


TFTP_STAGES = (
    "pxelinux menu",
    "kernel started with the entry's roles",
    "initrd preseed read, marker printed",
)


def qemu_tftp_argv(tree: Path, mac: str, *, accel: str, memory_mb: int = 1024) -> list[str]:
    """A diskless guest PXE-booting pxelinux.0 from QEMU's built-in TFTP server on `tree`. The
    tree's pxelinux.cfg says `serial 0`: SeaBIOS must not mirror its text onto the line too."""
    root = str(Path(tree).absolute()).replace(",", ",,")
    return [
        QEMU, "-nographic", "-no-reboot", "-m", str(memory_mb), "-accel", accel,
        "-fw_cfg", "name=etc/sercon-port,string=0",
        "-nic", f"user,model=e1000,mac={mac},tftp={root},bootfile=pxelinux.0",
        "-boot", "n",
    ]  # fmt: skip


def tftp_boot(
    tree: Path, roles: str, *, accel: str, log_path: Path, mac: str = "52:54:00:51:00:10"
) -> list[StageResult]:
    """Boot an exported PXE tree (`distro-builder netboot`) whose menu's default entry is
    `roles`' (exported with --timeout): pxelinux's menu, the kernel with the roles on its command
    line, the STACKOPS-PRESEED marker of the initrd's preseed. Nothing is pressed."""
    with SerialConsole(qemu_tftp_argv(tree, mac, accel=accel), log_path) as con:
        return expect_tftp_stages(con, roles)


def expect_tftp_stages(con: SerialConsole, roles: str) -> list[StageResult]:
    """The TFTP_STAGES of a guest on `con` running an exported tree's pxelinux (however it got
    pxelinux.0); the console's results so far.

    Raises: SmokeTestError for the first stage that fails.
    """
    with con.stage(TFTP_STAGES[0], timeout=300):
        con.expect("StackOps network install", what="the pxelinux menu's title")
    with con.stage(TFTP_STAGES[1], timeout=900):
        con.expect(
            re.compile(r"Command line: .*stackops/roles=" + re.escape(roles) + r"\s"),
            what=f"the kernel's command line with stackops/roles={roles}",
        )
    with con.stage(TFTP_STAGES[2], timeout=900):
        con.expect(f"STACKOPS-PRESEED roles={roles}", what="the installer's preseed marker")
    return list(con.results)
