"""The README's dnsmasq proxy-DHCP configurations, booted for real beside an existing DHCP server
(issue 13; README "Your own TFTP/DHCP").

The configurations are read from the README's fenced blocks, exactly what users copy; only
`tftp-root=` is changed (to the test's folder). Their addresses are this LAN's own: 10.0.0.0/24,
the proxy at 10.0.0.2, `serve --disc` on the port and deployment of B's URL.

What stands in for what, on a LAN in throwaway network namespaces (tests/qemu/netlab.py):

- the site's existing DHCP server: dnsmasq at 10.0.0.1 in a namespace of its own, handing out
  addresses with a router and a name server (itself), no boot options;
- the machine: a diskless QEMU (TCG) on a tap device on the LAN's bridge, booting from the
  network with its NIC's ROM, QEMU's default: iPXE from Debian's ipxe-qemu;
- A: the tree `distro-builder netboot` exports from the QA disc (default entry "network"):
  address from the site server, pxelinux.0 from the proxy's PXE menu and its TFTP server, then
  the kernel with the entry's roles and the STACKOPS-PRESEED marker (qa.pxe's TFTP stages, as in
  test_pxe.py). The pxe-prompt is not on the console (the serial line is pxelinux's there), so
  which server gave what is read from the two dnsmasq logs;
- B with the iPXE ROM as it is: the ROM already sends user class iPXE, so the proxy hands it the
  deployment's http:// URL at once and nothing is chainloaded (what a VM with an iPXE ROM does);
  the machine shows up "discovered" in the Smart Installer's inventory, its iPXE menu on the
  console;
- B with a plain PXE ROM: none is available to QEMU, so the iPXE ROM stands in: in its shell
  (Ctrl-B) its DHCP user class is set to something else, then it boots as it would. To dnsmasq it
  is then a plain PXE client (vendor class PXEClient:Arch:00000, no iPXE user class) that follows
  the proxy's PXE menu; it gets undionly.kpxe (Debian's ipxe package) over TFTP, and the
  chainloaded iPXE gets the http:// URL. One difference from a real PXE ROM: the chainloaded
  undionly.kpxe takes the ROM's cached DHCPACK, which the iPXE ROM builds from its own settings,
  stand-in user class included, so the first undionly.kpxe still asks as a plain ROM and
  chainloads undionly.kpxe once more; the second one asks as iPXE. A real ROM's cached DHCPACK is
  the site server's, with no user class, so its undionly.kpxe asks as iPXE at once. The unknown
  machine is discovered, assigned through the API, and installs (qa.pxe's stages, as pxe-smoke);
- negative control: A without the proxy. The guest gets its address from the site server and no
  boot file, and the boot-file stage fails, naming what it waited for.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import SplitResult, urlsplit

import pytest

from distro_builder.errors import SmokeTestError
from distro_builder.qa.console import SerialConsole, StageResult
from distro_builder.qa.pxe import (
    STAGES,
    TFTP_STAGES,
    Api,
    expect_pxe_stages,
    expect_tftp_stages,
    qemu_pxe_argv,
    qemu_tftp_argv,
    wait_for,
)
from tests.helpers import IN_CI, require_tool_or_skip
from tests.integration.installer_live import (
    ADMIN,
    ADMIN_PASSWORD,
    NETBOOT_PARAMS,
    ROOT,
    Service,
    cli,
    create_deployment,
)
from tests.qemu.netlab import PROXY_ADDRESS, Dnsmasq, Lab, NamespaceError, Offer

pytestmark = pytest.mark.qemu

log = logging.getLogger(__name__)

README = ROOT / "README.md"
ANCHOR = "dnsmasq beside an existing DHCP server"
IPXE_ROMS = Path("/usr/lib/ipxe/qemu")  # package ipxe-qemu: QEMU's NIC ROMs
UNDIONLY = Path("/usr/lib/ipxe/undionly.kpxe")  # package ipxe
# The site's existing DHCP server: an address, a router and a name server (itself, knowing no
# names), as a site's server hands out; no boot options. Without a name server d-i stops at
# "Name server addresses" before it fetches the preseed (seen in config B's install).
SITE_CONF = """\
no-resolv
no-hosts
dhcp-range=10.0.0.100,10.0.0.200,255.255.255.0,1h
"""
STANDIN_USER_CLASS = "plain-PXE-stand-in"
ADDRESS_STAGE = "address from the site DHCP server"


def _missing(msg: str) -> None:
    pytest.fail(msg) if IN_CI else pytest.skip(msg)


# --- the README's text -------------------------------------------------------------------------


def readme_config(name: str) -> str:
    """The README's dnsmasq configuration `name` ("A" or "B"): the fenced block after ANCHOR
    that starts with `# <name>:`."""
    text = README.read_text()
    assert ANCHOR in text, f"README.md has no paragraph {ANCHOR!r}"
    blocks = re.findall(r"^```[^\n]*\n(.*?)^```[ \t]*$", text[text.index(ANCHOR) :], re.M | re.S)
    for block in blocks[:2]:
        if block.startswith(f"# {name}:"):
            return str(block)
    raise AssertionError(f"README.md: no ```-block starting '# {name}:' after {ANCHOR!r}")


def adapt(conf: str, tftp_root: Path) -> str:
    """`conf` with its one tftp-root= line pointing at `tftp_root`; the addresses stay as the
    README has them, since the LAN is built to match (checked here)."""
    lines = conf.splitlines()
    roots = [i for i, line in enumerate(lines) if line.startswith("tftp-root=")]
    assert len(roots) == 1, f"expected one tftp-root= line:\n{conf}"
    lines[roots[0]] = f"tftp-root={tftp_root}"
    assert "dhcp-range=10.0.0.0,proxy" in lines, "the LAN is 10.0.0.0/24"
    return "\n".join(lines) + "\n"


def deployment_url(conf: str) -> SplitResult:
    """Config B's boot file for iPXE: `http://<proxy>:<port>/ipxe/<deployment>`."""
    m = re.search(r"^pxe-service=tag:ipxe,[^\n]*,(http://\S+)$", conf, re.M)
    assert m, f"no pxe-service for tag:ipxe with an http:// URL:\n{conf}"
    url = urlsplit(m[1])
    assert url.hostname == PROXY_ADDRESS and url.port, url
    assert re.fullmatch(r"/ipxe/[\w.-]+", url.path), url
    return url


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    require_tool_or_skip("ip", "dnsmasq", "qemu-system-x86_64")
    if not IPXE_ROMS.is_dir():
        _missing(f"{IPXE_ROMS} is missing (package ipxe-qemu)")
    the_lab = Lab(tmp_path / "lab")
    try:
        the_lab.open()
    except NamespaceError as e:
        _missing(f"cannot build the test LAN: {e}")
    try:
        yield the_lab
    finally:
        the_lab.close()


@pytest.fixture(scope="module")
def exported_tree(tmp_path_factory: pytest.TempPathFactory, qa_disc: Path) -> Path:
    """Config A's TFTP root: the QA disc exported as test_pxe.py does (default entry network)."""
    tree = tmp_path_factory.mktemp("dnsmasq-a") / "tftp"
    proc = subprocess.run(
        [sys.executable, "-m", "distro_builder", "netboot", str(qa_disc), "-o", str(tree),
         "--timeout", "1", "--default-entry", "network"],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return tree


@pytest.fixture
def config_b(
    lab: Lab, qa_disc: Path, tmp_path: Path
) -> Iterator[tuple[Dnsmasq, Dnsmasq, Api, str]]:
    """Config B running: the site server, the README's proxy with undionly.kpxe in its TFTP
    root, `serve --disc` beside it (the URL's port, deployment and global parameters)."""
    if not UNDIONLY.is_file():
        _missing(f"{UNDIONLY} is missing (package ipxe)")
    conf = readme_config("B")
    url = deployment_url(conf)
    deployment = url.path.rsplit("/", 1)[1]
    root = tmp_path / "tftp"
    root.mkdir()
    shutil.copy(UNDIONLY, root / "undionly.kpxe")
    db = f"sqlite:///{tmp_path / 'installer.sqlite'}"
    cli("installer", "admin", "create", ADMIN, "--password-stdin", db=db, stdin=ADMIN_PASSWORD)
    svc = Service(db, tmp_path / "serve.log", extra=("--disc", str(qa_disc)), verbose=True,
                  listen=f"0.0.0.0:{url.port}", host=lab.api_address,
                  wrap=tuple(lab.in_namespace(lab.proxy, [])))  # fmt: skip
    try:
        create_deployment(svc, deployment, NETBOOT_PARAMS)
        site = lab.dnsmasq(lab.site, "site", SITE_CONF)
        proxy = lab.dnsmasq(lab.proxy, "proxy", adapt(conf, root))
        yield site, proxy, Api(svc.url, ADMIN, ADMIN_PASSWORD), deployment
    finally:
        rc = svc.stop()
    assert rc == 0
    assert "Traceback" not in svc.log.read_text()


# --- stages ------------------------------------------------------------------------------------


def expect_address(con: SerialConsole, site: Dnsmasq, mac: str) -> str:
    """The first stage of every case: the site server's DHCPACK for `mac`; the address."""
    with con.stage(ADDRESS_STAGE, timeout=300):
        address = wait_for(f"the site DHCP server's DHCPACK for {mac}", 300,
                           lambda: site.ack(mac), con)  # fmt: skip
    return str(address)


def expect_tftp_file(con: SerialConsole, proxy: Dnsmasq | None, name: str, address: str) -> None:
    """The proxy's TFTP server sends `name` to the guest (proxy None: no proxy on the LAN)."""
    with con.stage(f"{name} from the proxy over TFTP", timeout=120):
        wait_for(f"the proxy's TFTP server to send {name} to {address}", 120,
                 lambda: proxy is not None and proxy.tftp_sent(name, address), con)  # fmt: skip


def _log_results(case: str, results: list[StageResult]) -> None:
    for r in results:
        log.info("%s: %s %s after %.1f s (%.1f s since QEMU start)%s", case, r.name,
                 "passed" if r.passed else "FAILED", r.seconds, r.finished_at,
                 f": {r.error}" if r.error else "")  # fmt: skip


# --- the cases ---------------------------------------------------------------------------------


def test_config_a_boots_the_exported_tree_beside_the_site_dhcp_server(
    lab: Lab, exported_tree: Path, tmp_path: Path
) -> None:
    mac = "52:54:00:51:01:01"
    site = lab.dnsmasq(lab.site, "site", SITE_CONF)
    proxy = lab.dnsmasq(lab.proxy, "proxy", adapt(readme_config("A"), exported_tree))
    argv = lab.guest_argv(qemu_tftp_argv(exported_tree, mac, accel="tcg"), mac)
    with SerialConsole(argv, tmp_path / "console.log") as con:
        address = expect_address(con, site, mac)
        expect_tftp_file(con, proxy, "pxelinux.0", address)
        expect_tftp_stages(con, "network")
    _log_results("A", con.results)
    assert [r.name for r in con.results if r.passed] == [
        ADDRESS_STAGE, "pxelinux.0 from the proxy over TFTP", *TFTP_STAGES
    ]  # fmt: skip
    assert site.offers() == []  # the site server: the address, no boot file
    assert proxy.ack(mac) is None  # the proxy: the boot file, no address
    assert {o.bootfile for o in proxy.offers()} == {"pxelinux.0"}  # ".0" added by dnsmasq
    for name in ("ldlinux.c32", "pxelinux.cfg/default", "ubuntu-installer/amd64/initrd.gz"):
        assert proxy.tftp_sent(name, address), name


def test_negative_control_without_the_proxy_no_boot_file(
    lab: Lab, exported_tree: Path, tmp_path: Path
) -> None:
    mac = "52:54:00:51:01:02"
    site = lab.dnsmasq(lab.site, "site", SITE_CONF)
    argv = lab.guest_argv(qemu_tftp_argv(exported_tree, mac, accel="tcg"), mac)
    with SerialConsole(argv, tmp_path / "console.log") as con:
        address = expect_address(con, site, mac)
        with pytest.raises(SmokeTestError) as failed:
            expect_tftp_file(con, None, "pxelinux.0", address)
    _log_results("A without the proxy", con.results)
    assert [(r.name, r.passed) for r in con.results] == [
        (ADDRESS_STAGE, True), ("pxelinux.0 from the proxy over TFTP", False)
    ]  # fmt: skip
    message = str(failed.value)
    assert f"the proxy's TFTP server to send pxelinux.0 to {address}" in message, message
    # the ROM found no boot file and gave up: SeaBIOS rebooted, -no-reboot ended QEMU
    assert "QEMU exited" in message, message
    assert site.offers() == []


def test_config_b_ipxe_rom_gets_the_deployment_url_at_once(
    lab: Lab, config_b: tuple[Dnsmasq, Dnsmasq, Api, str], tmp_path: Path
) -> None:
    site, proxy, api, deployment = config_b
    mac = "52:54:00:51:01:03"
    argv = lab.guest_argv(qemu_pxe_argv("unused", mac, accel="tcg"), mac)
    with SerialConsole(argv, tmp_path / "console.log") as con:
        expect_address(con, site, mac)
        with con.stage(STAGES[0], timeout=300):
            node = wait_for(f"{mac} in the inventory", 300,
                            lambda: api.node(deployment, mac), con)  # fmt: skip
            con.expect(f"node {node['id']} ({mac}) has no roles", what="the unknown's menu")
    _log_results("B, iPXE ROM", con.results)
    assert all(r.passed for r in con.results)
    assert node["state"] == "discovered" and node["inventory"]["pxe"]["vendor"]
    offers = proxy.offers()
    assert offers and all(o == Offer("iPXE", deployment_url(proxy.conf.read_text()).geturl())
                          for o in offers), offers  # fmt: skip
    assert not proxy.tftp_sent("undionly.kpxe")  # nothing chainloaded
    assert site.offers() == [] and proxy.ack(mac) is None


# make e2e only: keeps make test under 50 minutes on the 2-core TCG machine (README)
@pytest.mark.e2e
def test_config_b_plain_pxe_rom_chainloads_ipxe_then_installs(
    lab: Lab, config_b: tuple[Dnsmasq, Dnsmasq, Api, str], tmp_path: Path
) -> None:
    site, proxy, api, deployment = config_b
    mac = "52:54:00:51:01:04"
    url = deployment_url(proxy.conf.read_text()).geturl()
    argv = lab.guest_argv(qemu_pxe_argv("unused", mac, accel="tcg"), mac)
    with SerialConsole(argv, tmp_path / "console.log") as con:
        with con.stage("stand-in for a plain PXE ROM", timeout=300):
            con.expect("Press Ctrl-B for the iPXE command line", what="the ROM's prompt")
            con.send("\x02")
            con.expect("iPXE>", timeout=60, what="the ROM's shell")
            con.send(f"set user-class {STANDIN_USER_CLASS}\r", char_delay=0.05)
            con.expect("iPXE>", timeout=60, what="the ROM's shell")
            con.send("autoboot\r", char_delay=0.05)
        address = expect_address(con, site, mac)
        expect_tftp_file(con, proxy, "undionly.kpxe", address)
        expect_pxe_stages(con, api, deployment, mac, roles="compute")
    _log_results("B, plain PXE ROM (stand-in)", con.results)
    assert all(r.passed for r in con.results)
    assert [r.name for r in con.results][-len(STAGES) :] == list(STAGES)
    node = api.node(deployment, mac)
    assert node and node["state"] == "installing" and node["roles"] == ["compute"]
    offers = proxy.offers()
    assert Offer(STANDIN_USER_CLASS, "undionly.kpxe") in offers, offers
    assert Offer("iPXE", url) in offers, offers
    assert all(o.user_class == "iPXE" for o in offers if o.bootfile == url), offers
    assert site.offers() == [] and proxy.ack(mac) is None
