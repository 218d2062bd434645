"""Network install (issue 13): nodes boot iPXE from the network and the Smart Installer serves
the rest: a boot script per machine, the netboot kernel and initrd, the node's own preseed and
the disc's package archive.

    GET /ipxe/<dep>                       the DHCP bootfile: chains to the machine's own script
                                          with the MAC and what SMBIOS says (vendor, product,
                                          serial)
    GET /ipxe/<dep>/<mac>                 the machine's script: assigned -> straight into its
                                          roles' unattended install; unknown -> registered as
                                          discovered, then a menu of the role entries (or a
                                          wait until the admin assigns it: the deployment's
                                          `unknown` policy); installed -> boot the local disk
    GET /ipxe/<dep>/<mac>?entry=<name>    a menu choice: only a request for the entry's roles
                                          (inventory `requested`); the admin approves it by
                                          assigning roles, until then the wait loop
    GET /netboot/<arch>/linux|initrd.gz   the disc's netboot kernel; its initrd + build's layer
    GET /disc/<path>                      the disc's archive (dists/, pool/): the apt mirror
    GET /nb/<node>/<boot token>/preseed   the node's preseed (answers from the deployment)
    GET /nb/<node>/<boot token>/installed d-i's late_command: the install finished; answers
                                          the node's registration for the first-boot agent
    GET|PUT /api/deployments/<d>/netboot  {unknown: menu|wait} (admin), and the bootfile URL

Trust model (README "Reliability"): a machine the admin has not assigned is discovered (within
MAX_UNDECIDED per deployment and MAX_UNDECIDED_PER_SOURCE per address; multicast, broadcast and
zero MACs refused) and gets a menu or a wait loop, never a secret. A boot token is made each
time an assigned machine's install script is handed out (only its SHA-256 is kept) and goes on
the kernel command line: the preseed, which holds the deployment's secrets, is given only for
it. Progress: discovered -> booting (script) -> installing (preseed) ->
installed (late_command) -> then the agent's own (configuring ... done) on first boot.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from distro_builder.model import BootEntry, Deployment, NetworkInstall, SystemSettings
from distro_builder.seed.preseed import boot_entries, render_preseed
from distro_builder.smart_installer import auth
from distro_builder.smart_installer.agentapi import registration
from distro_builder.smart_installer.db import Row, Tx, now_ms
from distro_builder.smart_installer.disc import ServedDisc
from distro_builder.smart_installer.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    InstallerError,
    NotFound,
)
from distro_builder.smart_installer.http import Request, Response, Route, route
from distro_builder.smart_installer.store import Store

log = logging.getLogger(__name__)

UNKNOWN_POLICIES = ("menu", "wait")
POLL_SECONDS = 10  # an unknown machine asks again this often (menu timeout, wait loop)
REFUSAL_SECONDS = 30  # a refused menu choice stays on the console this long
CONSOLE = "console=tty0 console=ttyS0,115200n8"
_MAC_RE = re.compile(r"[0-9a-f]{2}([:-]?)[0-9a-f]{2}(\1[0-9a-f]{2}){4}")
_HOST_RE = re.compile(r"[A-Za-z0-9.-]{1,253}(:\d{1,5})?|\[[0-9A-Fa-f:.]{2,45}\](:\d{1,5})?")
_ENTRY_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
# States in which the machine's disk holds its install: PXE hands it to the local disk.
INSTALLED = ("installed", "configuring", "done", "failed")
# Discovery's bounds (the trust model, README "Reliability"): machines discovered by a network
# boot that the admin has not decided on yet (state discovered, no roles), per deployment and
# per source address. Beyond them a new MAC gets the wait loop and is not stored; the refusals
# are a count on the deployment (GET /api/deployments/<d>: discovery, problems) written at most
# every REFUSAL_FLUSH_S seconds, and one log warning a minute.
MAX_UNDECIDED = 64
MAX_UNDECIDED_PER_SOURCE = 16
REFUSAL_FLUSH_S = 5.0
REFUSAL_WARN_S = 60.0


def parse_mac(text: str) -> str:
    """aa:bb:cc:dd:ee:ff from what iPXE reports (colons, hyphens or none); BadRequest else."""
    mac = text.strip().lower()
    if not _MAC_RE.fullmatch(mac):
        raise BadRequest(f"{text[:40]!r} is not a MAC address", hint="like 52:54:00:12:34:56")
    digits = re.sub(r"[:-]", "", mac)
    if int(digits[:2], 16) & 1 or digits in ("000000000000", "ffffffffffff"):
        # A NIC's own address is unicast (IEEE 802: the first octet's lowest bit is 0) and
        # not all zeros: these are group, broadcast or blank addresses no machine boots with.
        raise BadRequest(
            f"{text[:40]!r} is not a machine's MAC address (multicast, broadcast or zero)",
            hint="a NIC's unicast address, like 52:54:00:12:34:56",
        )
    return ":".join(digits[i : i + 2] for i in range(0, 12, 2))


def _smbios(value: str | None) -> str:
    """An SMBIOS string as iPXE sends it: printable, at most 64 characters."""
    text = "".join(c for c in (value or "") if c.isprintable())
    return " ".join(text.split())[:64]


def _ipxe(*lines: str) -> Response:
    return Response.text("#!ipxe\n" + "\n".join(lines) + "\n")


def _say(text: str) -> str:
    """An iPXE `echo` of text that cannot run a command or expand a setting."""
    return "echo " + re.sub(r"[^A-Za-z0-9 .,:;()/+=_@-]", "_", text)


class Netboot:
    def __init__(self, store: Store, disc: ServedDisc, data_dir: Path) -> None:
        self.store = store
        self.disc = disc
        self.data_dir = data_dir
        self.arch = "amd64" if "amd64" in disc.arches else disc.arches[0]
        # refusals not yet written, per deployment id: [count, last source, flushed at, warned at]
        self._refused: dict[int, list[Any]] = {}
        self._refused_lock = threading.Lock()

    # --- where the node reaches us ------------------------------------------------------------

    def base(self, req: Request) -> str:
        """http://HOST:PORT as the machine addressed us (its Host header, checked)."""
        host = req.headers.get("host", "")
        if not _HOST_RE.fullmatch(host):
            raise BadRequest("a Host header (ADDR:PORT) is needed to boot from the network")
        return f"http://{host}"

    # --- the machine's boot script ------------------------------------------------------------

    def boot_script(self, req: Request, dep_ref: str, mac_text: str) -> Response:
        mac = parse_mac(mac_text)
        base = self.base(req)
        facts = {k: _smbios(req.query.get(k)) for k in ("vendor", "product", "serial")}
        entry_name = req.query.get("entry")
        with self.store.db.transaction() as tx:
            dep = self.store._deployment_row(dep_ref, tx)
            row = tx.one(
                "SELECT * FROM nodes WHERE deployment_id = ? AND mac = ?", (dep["id"], mac)
            )
            if row is None:
                full = self._over_bounds(tx, dep, req.client)
                if not full:
                    row = self._discover(tx, dep, mac, facts, req.client)
            else:
                full = ""
                tx.execute("UPDATE nodes SET last_seen = ? WHERE id = ?", (now_ms(), row["id"]))
        if row is None:
            self._refuse(dep, req.client, mac, full)
            return self._wait(base, dep, mac, f"not discovered: {full}; ask the admin", 6)
        if row["state"] in INSTALLED:
            log.info("node %s (%s) is %s: local disk", row["id"], mac, row["state"])
            return _ipxe(
                _say(f"StackOps: node {row['id']} ({mac}) is {row['state']}: local disk"),
                "exit",
            )
        if not row["roles"] and entry_name and dep["netboot_unknown"] == "menu":
            # A menu choice is a request, never an assignment: the admin approves it by giving
            # the roles. Until then the machine holds no token, no slot and no secret.
            try:
                roles = self._request(dep, row, entry_name)
            except InstallerError as e:
                # iPXE shows an HTTP error as nothing and goes back to the menu: the reason
                # goes on the node's console instead, until a key or the timeout.
                return self._choice_refused(base, dep, mac, str(e))
            return self._wait(
                base, dep, mac, f"asked for {roles}: waiting for the admin to approve"
            )
        if not row["roles"]:
            return self._unassigned(base, dep, row, mac)
        missing = self.store._missing(dep, tuple(row["roles"].split(",")), self._own(row))
        if missing:
            return self._wait(base, dep, mac, f"parameters still missing: {','.join(missing)}")
        return self._install(base, dep, row, mac)

    def _over_bounds(self, tx: Tx, dep: Row, source: str) -> str:
        """Why a new machine may not be discovered now ("" when it may)."""
        undecided = tx.all(
            "SELECT inventory FROM nodes WHERE deployment_id = ? AND state = 'discovered'"
            " AND roles IS NULL",
            (dep["id"],),
        )
        if len(undecided) >= MAX_UNDECIDED:
            return f"the deployment's limit of {MAX_UNDECIDED} undecided machines is reached"
        same = sum(1 for r in undecided if json.loads(r["inventory"]).get("source") == source)
        if same >= MAX_UNDECIDED_PER_SOURCE:
            return (
                f"the limit of {MAX_UNDECIDED_PER_SOURCE} undecided machines per address is reached"
            )
        return ""

    def _refuse(self, dep: Row, source: str, mac: str, why: str) -> None:
        """Count a refused discovery; write the count at most every REFUSAL_FLUSH_S seconds
        and warn in the log at most once a minute (a flood is one line, not a table)."""
        now = time.monotonic()
        with self._refused_lock:
            entry = self._refused.setdefault(dep["id"], [0, "", 0.0, 0.0])
            entry[0] += 1
            entry[1] = source
            flush = now - entry[2] >= REFUSAL_FLUSH_S
            warn = now - entry[3] >= REFUSAL_WARN_S
            count = entry[0]
            if flush:
                entry[0], entry[2] = 0, now
            if warn:
                entry[3] = now
        if warn:
            log.warning(
                "deployment %s: network boot discovery refused (%s from %s, %s): %s",
                dep["name"], mac, source, "more follow in the deployment's count", why,
            )  # fmt: skip
        if flush:
            with self.store.db.transaction() as tx:
                tx.execute(
                    "UPDATE deployments SET discovery_refused = discovery_refused + ?,"
                    " discovery_refused_at = ?, discovery_refused_source = ? WHERE id = ?",
                    (count, now_ms(), source[:64], dep["id"]),
                )

    def _discover(self, tx: Tx, dep: Row, mac: str, facts: dict[str, str], source: str) -> Row:
        now = now_ms()
        hostname = "node-" + mac.replace(":", "")[-6:]
        inventory = {
            "hostname": hostname, "cpus": 0, "virt": "none", "mem_mb": 0,
            "nics": [{"name": "eth0", "mac": mac, "state": "up"}], "disks": [], "pxe": facts,
            "source": source[:64],  # the address it booted from: discovery's bound per source
            "reported": False,  # the node's own inventory comes on first boot (fitness.py)
        }  # fmt: skip
        node_id = int(
            tx.value(
                "INSERT INTO nodes (deployment_id, token_hash, mac, hostname, inventory, roles,"
                " answers, notes, state, step, registered_at, last_seen)"
                " VALUES (?, ?, ?, ?, ?, NULL, '{}', '', 'discovered', '', ?, ?) RETURNING id",
                (
                    dep["id"],
                    auth.token_hash(auth.new_token()),
                    mac,
                    hostname,
                    json.dumps(inventory),
                    now,
                    now,
                ),
            )  # fmt: skip
        )
        shown = ", ".join(f"{k} {v!r}" for k, v in facts.items() if v) or "no SMBIOS facts"
        tx.execute(
            "INSERT INTO events (node_id, at, kind, line) VALUES (?, ?, ?, ?)",
            (node_id, now, "netboot", f"discovered by a network boot ({shown})"),
        )
        log.info("node %s discovered by a network boot: %s (%s)", node_id, mac, shown)
        row = tx.one("SELECT * FROM nodes WHERE id = ?", (node_id,))
        assert row is not None
        return row

    def _entries(self, dep: Row) -> list[BootEntry]:
        """The boot entries whose roles are a node shape of the deployment's architecture (a
        dual-node deployment offers cloud-controller and compute, not all-in-one)."""
        arch = self.store.architectures[dep["architecture"]]
        shapes = {frozenset(n.roles) for n in arch.nodes}
        return [e for e in boot_entries(self.store.roleset) if frozenset(e.roles) in shapes]

    def _request(self, dep: Row, row: Row, name: str) -> str:
        """Record the roles an unknown machine asked for in the boot menu (inventory
        `requested`, shown to the admin); the roles, comma-separated."""
        if not _ENTRY_RE.fullmatch(name):
            raise BadRequest("entry: a boot entry name")
        entry = next((e for e in self._entries(dep) if e.name == name), None)
        if entry is None:
            raise NotFound(f"{name} is not an entry of this deployment ({dep['architecture']})")
        roles = ",".join(entry.roles)
        with self.store.db.transaction() as tx:
            now = self.store._node_row(dep, row["id"], tx)
            inventory = json.loads(now["inventory"])
            if now["roles"] or inventory.get("requested") == list(entry.roles):
                return roles
            inventory["requested"] = list(entry.roles)
            tx.execute(
                "UPDATE nodes SET inventory = ? WHERE id = ?", (json.dumps(inventory), row["id"])
            )
        self._event(
            row["id"], f"asked for roles {roles} in the boot menu: waiting for the admin to approve"
        )
        return roles

    def _unassigned(self, base: str, dep: Row, row: Row, mac: str) -> Response:
        again = f"{base}/ipxe/{quote(dep['name'])}/{mac.replace(':', '-')}"
        if dep["netboot_unknown"] == "wait":
            return self._wait(base, dep, mac, "waiting for the admin to assign roles")
        lines = [
            f"menu StackOps: node {row['id']} ({mac}) has no roles: choose, or wait for the admin",
        ]
        for e in self._entries(dep):
            lines.append(f"item {e.name} {_say(e.label)[5:]}")
        lines += [
            "item --gap",
            f"item wait Wait for the admin (asks again every {POLL_SECONDS} s)",
            f"choose --default wait --timeout {POLL_SECONDS * 1000} target || goto wait",
            "iseq ${target} wait && goto wait ||",
            f"chain {again}?entry=${{target}} || goto wait",
            ":wait",
            f"chain {again}",
        ]
        return _ipxe(*lines)

    def _choice_refused(self, base: str, dep: Row, mac: str, reason: str) -> Response:
        """A menu choice the service refused: its reason on the console, then the menu again."""
        return _ipxe(
            _say(f"StackOps: {mac}: choice refused: {reason}"),
            f"prompt --timeout {REFUSAL_SECONDS * 1000} Press a key for the menu ||",
            f"chain {base}/ipxe/{quote(dep['name'])}/{mac.replace(':', '-')}",
        )

    def _wait(self, base: str, dep: Row, mac: str, reason: str, slower: int = 1) -> Response:
        seconds = POLL_SECONDS * slower
        return _ipxe(
            _say(f"StackOps: {mac}: {reason}; asking again in {seconds} s"),
            f"sleep {seconds}",
            f"chain {base}/ipxe/{quote(dep['name'])}/{mac.replace(':', '-')}",
        )

    def _install(self, base: str, dep: Row, row: Row, mac: str) -> Response:
        token = auth.new_token()
        with self.store.db.transaction() as tx:
            tx.execute(
                "UPDATE nodes SET boot_token_hash = ?, state = 'booting', last_seen = ?"
                " WHERE id = ?",
                (auth.token_hash(token), now_ms(), row["id"]),
            )
        self._event(row["id"], "boot script fetched: installing over the network")
        own = self._own(row)
        system = SystemSettings()
        args = [
            "auto=true", "priority=critical",
            f"url={base}/nb/{row['id']}/{token}/preseed",
            f"stackops/roles={row['roles']}",
            # late.sh hands it to the first-boot agent (answers file): no debconf needed.
            f"stackops/installer_url={base}",
            f"netcfg/get_hostname={own.get('hostname', row['hostname'])}",
            "netcfg/get_domain=", f"locale={system.locale}",
            "console-setup/ask_detect=false", f"console-setup/layoutcode={system.keyboard}",
            f"keyboard-configuration/xkb-keymap={system.keyboard}",
            "interface=auto", "hw-detect/load_firmware=false", CONSOLE, "---", CONSOLE,
        ]  # fmt: skip
        nb = f"{base}/netboot/{self.arch}"
        log.info("node %s (%s): install script for roles %s", row["id"], mac, row["roles"])
        return _ipxe(
            _say(f"StackOps: node {row['id']} ({mac}): installing roles {row['roles']}"),
            f"kernel {nb}/linux {' '.join(args)}",
            f"initrd {nb}/initrd.gz",
            "boot",
        )

    # --- the node's preseed and its report ----------------------------------------------------

    def _boot_node(self, tx: Tx, node_id: str, token: str) -> tuple[Row, Row]:
        row = None
        if node_id.isdigit() and len(node_id) < 18:
            row = tx.one("SELECT * FROM nodes WHERE id = ?", (int(node_id),))
        if row is None or not row["boot_token_hash"]:
            raise NotFound("no network install under way for this node")
        if not hmac.compare_digest(row["boot_token_hash"], auth.token_hash(token)):
            log.warning("node %s: preseed asked with a wrong boot token (refused)", row["id"])
            raise Forbidden("this boot token is not this node's (or is from an older boot)")
        dep = tx.one("SELECT * FROM deployments WHERE id = ?", (row["deployment_id"],))
        assert dep is not None
        return row, dep

    def preseed(self, req: Request, node_id: str, token: str) -> Response:
        base = self.base(req)
        with self.store.db.transaction() as tx:
            row, dep = self._boot_node(tx, node_id, token)
            if not row["roles"]:
                raise Conflict("the node's roles were removed since it booted")
            tx.execute(
                "UPDATE nodes SET state = 'installing', last_seen = ? WHERE id = ?",
                (now_ms(), row["id"]),
            )
        own = self._own(row)
        roles = tuple(row["roles"].split(","))
        host = own.get("hostname", row["hostname"])
        entry = BootEntry(f"node-{host}".lower(), f"Install StackOps node {host}", roles,
                          tuple(sorted(own.items())))  # fmt: skip
        deployment = Deployment(
            path=f"smart-installer:{dep['name']}", architecture=dep["architecture"],
            answers=tuple(sorted(self.store._params(dep).items())), nodes=(),
            system=SystemSettings(), plaintext_on_disc=(),
        )  # fmt: skip
        seed = render_preseed(
            self.data_dir, entry, roleset=self.store.roleset, deployment=deployment,
            codename=self.disc.codename, flavor_version=self.disc.version, arch=self.arch,
            allow_unauthenticated=not self.disc.signed,
            network=NetworkInstall(
                mirror=base.removeprefix("http://"), suite=self.disc.codename,
                report_url=f"{base}/nb/{row['id']}/{token}/installed",
            ),
        )  # fmt: skip
        self._event(row["id"], "fetched its preseed: installing")
        log.info("node %s (%s): preseed fetched, installing", row["id"], row["mac"])
        return Response.text(seed.text)

    def installed(self, req: Request, node_id: str, token: str) -> Response:
        """The install finished. The answer is the node's registration (a new node token, as
        POST /agent/v1/register answers), which the late command leaves in the installed
        system: the first-boot agent talks to the service as this node without ever holding
        the deployment's enrolment token."""
        node_token = auth.new_token()
        with self.store.db.transaction() as tx:
            row, _dep = self._boot_node(tx, node_id, token)
            tx.execute(
                "UPDATE nodes SET state = 'installed', boot_token_hash = NULL, token_hash = ?,"
                " last_seen = ? WHERE id = ?",
                (auth.token_hash(node_token), now_ms(), row["id"]),
            )
        self._event(row["id"], "installed (late command reported); next: first boot")
        return Response.text(registration(row["id"], node_token))

    def _own(self, row: Row) -> dict[str, str]:
        return dict(json.loads(row["answers"]))

    def _event(self, node_id: int, line: str) -> None:
        with self.store.db.transaction() as tx:
            tx.execute(
                "INSERT INTO events (node_id, at, kind, line) VALUES (?, ?, ?, ?)",
                (node_id, now_ms(), "netboot", line),
            )

    # --- the admin's setting ------------------------------------------------------------------

    def setting(self, req: Request, dep_ref: str, value: Any = None) -> dict[str, Any]:
        with self.store.db.transaction() as tx:
            dep = self.store._deployment_row(dep_ref, tx)
            if value is not None:
                if value not in UNKNOWN_POLICIES:
                    raise BadRequest(f"unknown: one of {', '.join(UNKNOWN_POLICIES)}")
                tx.execute(
                    "UPDATE deployments SET netboot_unknown = ?, updated_at = ? WHERE id = ?",
                    (value, now_ms(), dep["id"]),
                )
                dep = self.store._deployment_row(dep["id"], tx)
        return {
            "deployment": dep["name"],
            "unknown": dep["netboot_unknown"],
            "bootfile": f"{self.base(req)}/ipxe/{quote(dep['name'])}",
            "disc": {"codename": self.disc.codename, "arches": list(self.disc.arches)},
        }

    # --- routes -------------------------------------------------------------------------------

    def routes(self) -> list[Route]:
        disc = self.disc

        def chain(req: Request) -> Response:
            if _not_ipxe(req):
                return Response.text(DI_REDIRECT)
            dep = self.store._deployment_row(req.params["dep"])
            again = f"{self.base(req)}/ipxe/{quote(dep['name'])}"
            smbios = (("vendor", "manufacturer"), ("product", "product"), ("serial", "serial"))
            facts = "&".join(f"{k}=${{smbios/{s}:uristring}}" for k, s in smbios)
            return _ipxe(f"chain {again}/${{net0/mac:hexhyp}}?{facts}")

        def script(req: Request) -> Response:
            if _not_ipxe(req):
                return Response.text(DI_REDIRECT)
            return self.boot_script(req, req.params["dep"], req.params["mac"])

        def kernel(req: Request) -> Response:
            ext = disc.kernel(req.params["arch"])
            return Response.stream(
                str(disc.iso), ext.offset, ext.length, "application/octet-stream"
            )

        def initrd(req: Request) -> Response:
            ext = disc.initrd(req.params["arch"])
            return Response.stream(
                str(disc.iso), ext.offset, ext.length, "application/octet-stream",
                disc.initrd_layer,
            )  # fmt: skip

        def mirror(req: Request) -> Response:
            try:
                _path, ext = disc.resolve(req.params["rest"])
            except (Forbidden, NotFound) as e:
                log.warning("mirror: refused %s: %s", _shown(req.path), e)
                raise
            return Response.stream(
                str(disc.iso), ext.offset, ext.length, "application/octet-stream"
            )

        def preseed(req: Request) -> Response:
            return self.preseed(req, req.params["node"], req.params["token"])

        def installed(req: Request) -> Response:
            return self.installed(req, req.params["node"], req.params["token"])

        def admin(req: Request) -> None:
            from distro_builder.smart_installer.http import SESSION_COOKIE

            self.store.session_admin(req.bearer() or req.cookie(SESSION_COOKIE))

        def get_setting(req: Request) -> Response:
            admin(req)
            return Response.json(self.setting(req, req.params["dep"]))

        def put_setting(req: Request) -> Response:
            admin(req)
            data = req.json()
            return Response.json(self.setting(req, req.params["dep"], data.get("unknown")))

        return [
            route("GET", "/ipxe/<dep>", chain),
            Route(
                "GET",
                re.compile(r"/ipxe/(?P<dep>[a-z0-9-]{1,63})/(?P<mac>[A-Za-z0-9:.-]{1,64})/?"),
                script,
            ),  # fmt: skip
            route("GET", "/netboot/<arch>/linux", kernel),
            route("GET", "/netboot/<arch>/initrd.gz", initrd),
            Route("GET", re.compile(r"/disc/(?P<rest>.{1,1024})"), mirror),
            # HEAD where the answer is a file and asking changes nothing (wsgi.py sends no body)
            route("HEAD", "/netboot/<arch>/linux", kernel),
            route("HEAD", "/netboot/<arch>/initrd.gz", initrd),
            Route("HEAD", re.compile(r"/disc/(?P<rest>.{1,1024})"), mirror),
            route("GET", "/nb/<node>/<token>/preseed", preseed),
            route("GET", "/nb/<node>/<token>/installed", installed),
            route("GET", "/api/deployments/<dep>/netboot", get_setting),
            route("PUT", "/api/deployments/<dep>/netboot", put_setting),
        ]


# A DHCP server that hands the iPXE bootfile URL to every client (QEMU's user network does)
# makes d-i fetch it as its preseed, in place of the url= of the kernel command line. Such a
# fetch (no iPXE User-Agent) gets a preseed that loads the one the command line names: the
# node's own, with its boot token, which only that machine's kernel line holds.
DI_REDIRECT = (
    "# The Smart Installer's iPXE boot script URL, fetched by the installer as its DHCP preseed:\n"
    "# load the node's own preseed, the url= of the kernel command line, instead.\n"
    "d-i preseed/include_command string for w in $(cat /proc/cmdline); do"
    " case $w in url=*) echo ${w#url=} ;; esac; done\n"
)


def _not_ipxe(req: Request) -> bool:
    return "ipxe" not in req.headers.get("user-agent", "").lower()


def _shown(path: str) -> str:
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in path[:200])
