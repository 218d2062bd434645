"""Network install (issue 13): `serve --disc` serves the disc's archive, its netboot installer,
an iPXE script per machine and each node's preseed; bad input is refused, never a 5xx."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from distro_builder.media.initrd import read_initrd_file
from distro_builder.media.iso import IsoImage
from tests.integration.installer_live import NETBOOT_PARAMS, ROOT, Service, cli

pytestmark = pytest.mark.integration

IPXE = {"User-Agent": "iPXE/1.0.0+git-20190125.36a4c85"}
NB = "/install/netboot/ubuntu-installer/amd64"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, demo_base: Path):
    tmp = tmp_path_factory.mktemp("netboot")
    url = f"sqlite:///{tmp / 'installer.sqlite'}"
    cli("installer", "admin", "create", "admin", "--password-stdin", db=url,
        stdin="correct horse battery")  # fmt: skip
    svc = Service(url, tmp / "serve.log", extra=("--disc", str(demo_base)), verbose=True)
    admin = svc.login()
    status, _ = svc.json("POST", "/api/deployments", token=admin,
                         json_body={"name": "lab", "architecture": "dual-node"})  # fmt: skip
    assert status == 201
    status, data = svc.json(
        "PUT", "/api/deployments/lab/params", token=admin, json_body=NETBOOT_PARAMS
    )
    assert status == 200, data
    yield svc, admin, demo_base
    assert svc.stop() == 0


def _get(svc: Service, path: str, headers: dict[str, str] | None = None, **kw):
    h = {**IPXE, "Host": "10.0.2.2:8080", **(headers or {})}
    return svc.request("GET", path, headers=h, **kw)


def test_mirror_serves_the_archive_straight_from_the_iso(served) -> None:
    svc, _, iso = served
    with IsoImage(iso) as image:
        release = image.read("/dists/lucid/Release")
        pool = next(e.path for e in image.walk("/pool") if e.path.endswith(".deb"))
        deb = image.read(pool)
    for path in ("/disc/dists/lucid/Release", "/disc/ubuntu/dists/stable/Release",
                 "/disc/ubuntu/ubuntu/dists/lucid/Release"):  # fmt: skip
        status, _, body = _get(svc, path)
        assert status == 200 and body == release, path
    status, headers, body = _get(svc, "/disc" + pool)
    assert status == 200 and body == deb and headers["content-length"] == str(len(deb))
    for path, want in [
        ("/disc/%2e%2e/etc/passwd", 403), ("/disc/dists/%2E%2E/%2e%2e/x", 403),
        ("/disc/dists/%252e%252e/x", 403), ("/disc/dists/lucid/..%2fRelease", 403),
        ("/disc/dists/lucid/Release%00", 403), ("/disc/dists%5c..%5cisolinux", 403),
        ("/disc/isolinux/isolinux.cfg", 403), ("/disc/install/netboot/version.info", 403),
        ("/disc/dists/lucid", 404), ("/disc/dists/nope/Release", 404), ("/disc/%ff", 400),
        ("/disc/dists//lucid/Release", 403),
    ]:  # fmt: skip
        status, _, body = _get(svc, path)
        assert status == want, (path, status, body)
    assert "Traceback" not in svc.log.read_text()


def test_netboot_kernel_and_initrd_carry_builds_layer(served) -> None:
    svc, _, iso = served
    with IsoImage(iso) as image:
        kernel = image.read(f"{NB}/linux")
        initrd = image.read(f"{NB}/initrd.gz")
    status, _, body = _get(svc, "/netboot/amd64/linux")
    assert status == 200 and body == kernel
    status, _, body = _get(svc, "/netboot/amd64/initrd.gz")
    assert status == 200 and body.startswith(initrd) and len(body) > len(initrd)
    assert read_initrd_file(body, "stackops/early.sh") == (ROOT / "d-i/early.sh").read_bytes()
    assert b"preseed/early_command" in (read_initrd_file(body, "preseed.cfg") or b"")
    assert _get(svc, "/netboot/i386/linux")[0] == 404


def test_unknown_machine_menu_then_assigned_install(served) -> None:
    svc, admin, _ = served
    mac = "52:54:00:ab:cd:01"
    status, _, body = _get(svc, "/ipxe/lab")
    assert status == 200 and b"${net0/mac:hexhyp}" in body and b"smbios/serial" in body
    status, _, body = _get(svc, "/ipxe/lab/52-54-00-AB-CD-01?vendor=QEMU&product=PC&serial=S1")
    text = body.decode()
    assert status == 200 and text.startswith("#!ipxe\nmenu ") and "item compute " in text
    assert "choose --default wait --timeout" in text
    nodes = svc.json("GET", "/api/deployments/lab/nodes", token=admin)[1]
    node = next(n for n in nodes if n["mac"] == mac)
    assert node["state"] == "discovered" and node["roles"] == []
    assert node["inventory"]["pxe"] == {"vendor": "QEMU", "product": "PC", "serial": "S1"}
    # wait policy: no menu, a loop until the admin assigns it
    status, data = svc.json("PUT", "/api/deployments/lab/netboot", token=admin,
                            json_body={"unknown": "wait"})  # fmt: skip
    assert status == 200 and data["unknown"] == "wait" and data["bootfile"].endswith("/ipxe/lab")
    text = _get(svc, f"/ipxe/lab/{mac}")[2].decode()
    assert "menu" not in text and "sleep 10" in text and "chain " in text
    assert svc.json("PUT", "/api/deployments/lab/netboot", token=admin,
                    json_body={"unknown": "sometimes"})[0] == 400  # fmt: skip
    assert (
        svc.request("PUT", "/api/deployments/lab/netboot", json_body={"unknown": "menu"})[0] == 401
    )
    # assigned: straight into the install, roles on the kernel line, the preseed by token
    status, _ = svc.json("PUT", f"/api/deployments/lab/nodes/{node['id']}/roles", token=admin,
                         json_body={"roles": ["compute"]})  # fmt: skip
    assert status == 200
    text = _get(svc, f"/ipxe/lab/{mac}")[2].decode()
    assert "stackops/roles=compute" in text and "initrd http://10.0.2.2:8080/netboot/amd64/" in text
    url = re.search(r"url=http://10\.0\.2\.2:8080(/nb/\d+/([^/ ]+)/preseed)", text)
    assert url, text
    state = svc.json("GET", f"/api/deployments/lab/nodes/{node['id']}", token=admin)[1]["state"]
    assert state == "booting"
    # d-i fetching the DHCP bootfile (no iPXE agent) is sent to its command line's url=
    status, _, body = svc.request("GET", "/ipxe/lab", headers={"User-Agent": "Wget"})
    assert status == 200 and b"preseed/include_command" in body
    # another token, no token, another node: refused
    other = url[1].replace(url[2], "A" * 43)
    assert _get(svc, other)[0] == 403
    assert _get(svc, "/nb/99999/" + url[2] + "/preseed")[0] == 404
    status, _, body = _get(svc, url[1])
    seed = body.decode()
    assert status == 200 and "d-i mirror/http/hostname string 10.0.2.2:8080" in seed
    assert "d-i mirror/http/directory string /disc" in seed
    assert "rabbitsecret-2" in seed and "stackops-compute" in seed
    state = svc.json("GET", f"/api/deployments/lab/nodes/{node['id']}", token=admin)[1]["state"]
    assert state == "installing"
    assert _get(svc, url[1].replace("/preseed", "/installed"))[0] == 200
    view = svc.json("GET", f"/api/deployments/lab/nodes/{node['id']}", token=admin)[1]
    assert view["state"] == "installed"
    assert any("late command" in e["line"] for e in view["events"])
    # installed: PXE hands it to the local disk; the old token is dead
    assert "exit" in _get(svc, f"/ipxe/lab/{mac}")[2].decode()
    assert _get(svc, url[1])[0] == 404
    log = svc.log.read_text()
    assert url[2] not in log and "/nb/" in log and "rabbitsecret" not in log


def test_bad_machines_are_refused(served) -> None:
    svc, _, _ = served
    for path, want in [
        ("/ipxe/lab/zz-zz-zz-zz-zz-zz", 400), ("/ipxe/lab/52-54-00", 400),
        ("/ipxe/lab/52:54:00:12:34:567", 400), ("/ipxe/nope/52-54-00-12-34-56", 404),
        ("/ipxe/nope", 404), ("/nb/x/y/preseed", 404),
    ]:  # fmt: skip
        status, _, body = _get(svc, path)
        assert status == want, (path, status, body)
    status, _, _ = svc.request("GET", "/ipxe/lab/52-54-00-12-34-56", headers={**IPXE,
                               "Host": "evil/../x"})  # fmt: skip
    assert 400 <= status < 500
    assert "Traceback" not in svc.log.read_text()


def test_disc_without_netboot_tree_and_port_in_use(tmp_path: Path, served) -> None:
    svc, _, _ = served
    tree = tmp_path / "tree"
    (tree / "dists" / "lucid").mkdir(parents=True)
    (tree / "dists" / "lucid" / "Release").write_text("Codename: lucid\n")
    iso = tmp_path / "plain.iso"
    subprocess.run(["genisoimage", "-quiet", "-r", "-J", "-o", str(iso), str(tree)], check=True)
    db = f"sqlite:///{tmp_path / 'x.sqlite'}"
    proc = subprocess.run(
        [sys.executable, "-m", "distro_builder", "serve", "--db", db, "--listen",
         "127.0.0.1:0", "--disc", str(iso)],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 1 and "no netboot tree" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    proc = subprocess.run(
        [sys.executable, "-m", "distro_builder", "serve", "--db", db, "--listen",
         f"127.0.0.1:{svc.port}"],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 1 and "cannot listen" in proc.stderr, proc.stderr
    # TLS and a network install on one port: refused before anything listens
    pem = tmp_path / "x.pem"
    pem.write_text("not used\n")
    proc = subprocess.run(
        [sys.executable, "-m", "distro_builder", "serve", "--db", db, "--listen",
         "127.0.0.1:0", "--disc", str(iso), "--tls-cert", str(pem), "--tls-key", str(pem)],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2 and "plain HTTP" in proc.stderr and "--db" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_second_service_on_the_same_database_sees_the_network_install(
    tmp_path: Path, served
) -> None:
    """What the TLS refusal tells the admin to do: the network install served by one `serve
    --disc` and the API by another `serve` over the same SQLite file (WAL, busy timeout)."""
    svc, _, _ = served
    other = Service(svc.db, tmp_path / "other.log")
    try:
        admin = other.login()
        mac = "52:54:00:ab:cd:7e"
        assert _get(svc, f"/ipxe/lab/{mac}")[0] == 200
        nodes = other.json("GET", "/api/deployments/lab/nodes", token=admin)[1]
        node = next(n for n in nodes if n["mac"] == mac)
        assert node["state"] == "discovered"
        status, _ = other.json("PUT", f"/api/deployments/lab/nodes/{node['id']}/roles",
                               token=admin, json_body={"roles": ["compute"]})  # fmt: skip
        assert status == 200
        assert "stackops/roles=compute" in _get(svc, f"/ipxe/lab/{mac}")[2].decode()
    finally:
        assert other.stop() == 0


def test_menu_offers_only_the_architectures_entries_and_refusals_reach_the_console(
    served,
) -> None:
    """A dual-node deployment's iPXE menu offers its two shapes only (not all-in-one or the
    single-role entries); a choice the service refuses (an entry of another architecture) is an
    iPXE script that shows the reason on the node's console and waits before the menu comes
    back, not a JSON 404/409 that iPXE shows as nothing."""
    svc, admin, _ = served
    assert svc.json("POST", "/api/deployments", token=admin,
                    json_body={"name": "menus", "architecture": "dual-node"})[0] == 201  # fmt: skip
    assert svc.json("PUT", "/api/deployments/menus/params", token=admin,
                    json_body=NETBOOT_PARAMS)[0] == 200  # fmt: skip
    status, _, body = _get(svc, "/ipxe/menus/52-54-00-ee-00-01")
    items = re.findall(r"^item (\S+)", body.decode(), re.M)
    assert status == 200 and items == ["cloud-controller", "compute", "--gap", "wait"], items
    # The first machine asks for compute (a request: the admin approves it).
    status, _, body = _get(svc, "/ipxe/menus/52-54-00-ee-00-01?entry=compute")
    assert status == 200 and "asked for compute" in body.decode()
    # A second machine picks an entry of another architecture: refused, the reason on its
    # console.
    _get(svc, "/ipxe/menus/52-54-00-ee-00-02")
    for entry, why in (("all-in-one", "not an entry of this deployment"),):
        status, _, body = _get(svc, f"/ipxe/menus/52-54-00-ee-00-02?entry={entry}")
        text = body.decode()
        assert status == 200 and text.startswith("#!ipxe\n"), (status, text)
        echo = next(ln for ln in text.splitlines() if ln.startswith("echo "))
        assert "refused" in echo and why in echo, text
        assert "prompt --timeout" in text and "chain http://" in text
        assert "kernel " not in text
    nodes = svc.json("GET", "/api/deployments/menus/nodes", token=admin)[1]
    second = next(n for n in nodes if n["mac"] == "52:54:00:ee:00:02")
    assert second["roles"] == [] and second["state"] == "discovered"


def _new_deployment(svc: Service, admin: str, name: str) -> None:
    status, _ = svc.json("POST", "/api/deployments", token=admin,
                         json_body={"name": name, "architecture": "dual-node"})  # fmt: skip
    assert status == 201
    assert svc.json("PUT", f"/api/deployments/{name}/params", token=admin,
                    json_body=NETBOOT_PARAMS)[0] == 200  # fmt: skip


def test_a_menu_choice_gives_a_stranger_no_secret(served) -> None:
    """Issue 20 item 1: an unknown machine that picks an entry of the iPXE menu only asks for
    those roles. No kernel line with a preseed URL, no boot token, no node token, no slot: the
    secrets wait for the admin's approval (assigning the roles), as MAAS's commissioning does."""
    svc, admin, _ = served
    _new_deployment(svc, admin, "trust")
    mac = "52:54:00:ab:cd:20"
    assert _get(svc, f"/ipxe/trust/{mac}")[2].decode().startswith("#!ipxe\nmenu ")
    status, _, body = _get(svc, f"/ipxe/trust/{mac}?entry=compute")
    text = body.decode()
    assert status == 200 and "/nb/" not in text and "kernel " not in text, text
    assert "approv" in text and "sleep " in text and "chain " in text
    nodes = svc.json("GET", "/api/deployments/trust/nodes", token=admin)[1]
    node = next(n for n in nodes if n["mac"] == mac)
    assert node["state"] == "discovered" and node["roles"] == [], node
    assert node["inventory"]["requested"] == ["compute"]
    view = svc.json("GET", f"/api/deployments/trust/nodes/{node['id']}", token=admin)[1]
    assert any("boot menu" in e["line"] and "approv" in e["line"] for e in view["events"])
    # the menu choice again, and the plain script: still nothing but the wait loop
    for path in (f"/ipxe/trust/{mac}?entry=compute", f"/ipxe/trust/{mac}"):
        assert "/nb/" not in _get(svc, path)[2].decode()
    # another machine can take the compute slot: the stranger holds none
    other = "52:54:00:ab:cd:21"
    _get(svc, f"/ipxe/trust/{other}")
    nodes = svc.json("GET", "/api/deployments/trust/nodes", token=admin)[1]
    other_id = next(n["id"] for n in nodes if n["mac"] == other)
    assert svc.json("PUT", f"/api/deployments/trust/nodes/{other_id}/roles", token=admin,
                    json_body={"roles": ["compute"]})[0] == 200  # fmt: skip
    # the admin approves the stranger's request: now its install (and its secrets) start
    approve = {"roles": ["controller", "network", "volume"],
               "answers": {"volume_device": "/dev/sdb"}}  # fmt: skip
    status, data = svc.json("PUT", f"/api/deployments/trust/nodes/{node['id']}/roles",
                            token=admin, json_body=approve)  # fmt: skip
    assert status == 200, data
    text = _get(svc, f"/ipxe/trust/{mac}")[2].decode()
    assert "stackops/roles=controller,network,volume" in text and f"/nb/{node['id']}/" in text


BAD_MACS = ("00-00-00-00-00-00", "ff-ff-ff-ff-ff-ff", "01-00-5e-00-00-01", "33:33:00:00:00:01",
            "0180c2000000")  # fmt: skip


def test_discovery_is_bounded(served) -> None:
    """Issue 20 item 2: invalid MACs are refused; undecided discovered machines are capped per
    source address and per deployment; the flood beyond is one line the admin sees."""
    from distro_builder.smart_installer.netboot import MAX_UNDECIDED, MAX_UNDECIDED_PER_SOURCE

    svc, admin, _ = served
    _new_deployment(svc, admin, "flood")
    for mac in BAD_MACS:
        status, _, body = _get(svc, f"/ipxe/flood/{mac}")
        assert status == 400, (mac, status, body)
    statuses = set()
    for i in range(MAX_UNDECIDED_PER_SOURCE + 30):
        status, _, body = _get(svc, f"/ipxe/flood/52-54-00-77-00-{i:02x}", source="127.0.6.1")
        statuses.add(status)
    assert statuses == {200}
    assert "limit" in body.decode() and "sleep " in body.decode() and "menu" not in body.decode()
    nodes = svc.json("GET", "/api/deployments/flood/nodes", token=admin)[1]
    assert len(nodes) == MAX_UNDECIDED_PER_SOURCE
    for src in range(MAX_UNDECIDED // 4):
        for i in range(6):
            _get(svc, f"/ipxe/flood/52-54-00-78-{src:02x}-{i:02x}", source=f"127.0.7.{src + 1}")
    dep = svc.json("GET", "/api/deployments/flood", token=admin)[1]
    assert len(dep["nodes"]) == MAX_UNDECIDED, len(dep["nodes"])
    refused = dep["discovery"]
    assert refused["refused"] >= 1, refused  # written at most every few seconds
    assert refused["last_source"].startswith("127.0.") and refused["last_at"] > 0
    assert any("discovery" in p and "refused" in p for p in dep["problems"]), dep["problems"]
    # a machine the service knows still gets its script; the first source's nodes still boot
    assert "menu " in _get(svc, "/ipxe/flood/52-54-00-77-00-00", source="127.0.6.1")[2].decode()
    # one warning in the log per minute, not one per request
    assert svc.log.read_text().count("discovery refused") <= 2


def test_mirror_answers_head_and_single_ranges(served) -> None:
    """Issue 20 item 19: HEAD on the disc's files is 200 with the headers and no body; a single
    Range is a 206 with Content-Range (a resumed download goes on), past the end a 416."""
    svc, _, iso = served
    with IsoImage(iso) as image:
        release = image.read("/dists/lucid/Release")
        kernel_size = len(image.read(f"{NB}/linux"))
    n = len(release)
    path = "/disc/dists/lucid/Release"
    status, headers, body = svc.request("HEAD", path, headers={**IPXE, "Host": "10.0.2.2:8080"})
    assert status == 200 and body == b"" and headers["content-length"] == str(n), headers
    assert headers["accept-ranges"] == "bytes"
    status, headers, _ = svc.request("HEAD", "/netboot/amd64/linux")
    assert status == 200 and headers["content-length"] == str(kernel_size)
    ranges = [("bytes=10-19", (10, 19)), ("bytes=-5", (n - 5, n - 1)),
              (f"bytes={n - 3}-", (n - 3, n - 1)), (f"bytes=0-{n + 100}", (0, n - 1))]  # fmt: skip
    for spec, want in ranges:
        status, headers, body = _get(svc, path, headers={"Range": spec})
        first, last = want
        assert status == 206, (spec, status, body)
        assert body == release[first : last + 1], spec
        assert headers["content-range"] == f"bytes {first}-{last}/{n}", (spec, headers)
        assert headers["content-length"] == str(last - first + 1)
    for spec in (f"bytes={n}-", f"bytes={n + 5}-{n + 9}", "bytes=-0"):
        status, headers, _ = _get(svc, path, headers={"Range": spec})
        assert status == 416 and headers["content-range"] == f"bytes */{n}", (spec, status)
    for spec in ("bytes=0-1,5-6", "bytes=9-2", "lines=1-2", "bytes=x-"):  # ignored: the file
        status, _, body = _get(svc, path, headers={"Range": spec})
        assert status == 200 and body == release, (spec, status)
    assert svc.request("HEAD", "/ipxe/lab")[0] == 405  # HEAD only where nothing changes
