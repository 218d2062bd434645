"""A throwaway LAN in network namespaces for the network-boot tests (test_dnsmasq_proxy.py).

The LAN is a bridge in a namespace of its own; every host on it sits in its own namespace, one end
of a veth pair on the bridge (README "Your own TFTP/DHCP" uses 10.0.0.0/24 and 10.0.0.2):

    <tag>-lan    br0, the LAN; tap0 for the QEMU guest (QEMU runs in this namespace)
    <tag>-site   10.0.0.1/24: the site's existing DHCP server
    <tag>-proxy  10.0.0.2/24: the README's proxy-DHCP dnsmasq (and `serve --disc`); also `api`,
                 a point-to-point link to the test process in 198.18.0.0/15 (RFC 2544's range
                 for test networks), so the tests reach the service without joining the LAN

The host namespace gets only that link's other end. Names and the link's /30 are unique per run;
`close()` kills every process started here and deletes the namespaces (their veths and the
link go with them), also after a failure.
"""

from __future__ import annotations

import ipaddress
import itertools
import os
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from distro_builder.run import run

SITE_ADDRESS = "10.0.0.1"
PROXY_ADDRESS = "10.0.0.2"
LAN_PREFIX = 24
TAP = "tap0"
_TEST_NET = ipaddress.ip_network("198.18.0.0/15")
_runs = itertools.count(1)


class NamespaceError(Exception):
    """`ip netns add` was refused (no CAP_SYS_ADMIN here): the test cannot build its LAN."""


@dataclass(frozen=True)
class Offer:
    """One DHCP reply of a dnsmasq that named a boot file, and the request's user class."""

    user_class: str
    bootfile: str


class Dnsmasq:
    """A dnsmasq started by a Lab; its --log-dhcp log read back."""

    def __init__(self, name: str, conf: Path, log: Path, proc: subprocess.Popen[bytes]) -> None:
        self.name, self.conf, self.log, self.proc = name, conf, log, proc

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def ack(self, mac: str) -> str | None:
        """The address this server acknowledged for `mac`, if any."""
        m = re.search(r"DHCPACK\([^)]*\) (\S+) " + re.escape(mac.lower()), self.text())
        return m[1] if m else None

    def offers(self) -> list[Offer]:
        """Every reply that carried a boot file, in order, with the request's user class."""
        user_class: dict[str, str] = {}
        out = []
        for m in re.finditer(r"dnsmasq-dhcp\[\d+\]: (\d+) (.*)", self.text()):
            xid, line = m[1], m[2].rstrip()
            if line.startswith("user class: "):
                user_class[xid] = line.removeprefix("user class: ")
            elif line.startswith("bootfile name: "):
                out.append(Offer(user_class.get(xid, ""), line.removeprefix("bootfile name: ")))
        return out

    def tftp_sent(self, name: str, to: str | None = None) -> bool:
        """Whether its TFTP server sent a file called `name` (to the address `to`)."""
        dest = re.escape(to) if to else r"\S+"
        pattern = r"dnsmasq-tftp\[\d+\]: sent \S*/" + re.escape(name) + " to " + dest + r"\s"
        return re.search(pattern, self.text()) is not None


class Lab:
    """The LAN and its namespaces: `with Lab(workdir) as lab:` (raises NamespaceError)."""

    def __init__(self, workdir: Path) -> None:
        n = next(_runs)
        self.tag = f"db{os.getpid()}n{n}"  # at most 13 characters: interface names stop at 15
        self.lan, self.site, self.proxy = (f"{self.tag}-{h}" for h in ("lan", "site", "proxy"))
        self.host_link = f"{self.tag}h"
        index = (os.getpid() * 16 + n) % (_TEST_NET.num_addresses // 4)  # a /30 of its own
        subnet = _TEST_NET.network_address + index * 4
        self.host_address, self.api_address = str(subnet + 1), str(subnet + 2)
        self.workdir = workdir
        self.procs: list[subprocess.Popen[bytes]] = []
        self._namespaces: list[str] = []

    def open(self) -> Lab:
        """Build the LAN; on a failure, whatever was built is removed again.

        Raises: NamespaceError when namespaces cannot be created here.
        """
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def __enter__(self) -> Lab:
        return self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _ip(self, *args: str) -> None:
        run(["ip", *args])

    def _add_namespace(self, name: str) -> None:
        proc = run(["ip", "netns", "add", name], check=False)
        if proc.returncode != 0:
            raise NamespaceError(f"ip netns add {name}: {proc.stderr.strip()}")
        self._namespaces.append(name)

    def _build(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        for ns in (self.lan, self.site, self.proxy):
            self._add_namespace(ns)
        lan = ("-n", self.lan)
        self._ip(*lan, "link", "set", "lo", "up")
        self._ip(*lan, "link", "add", "br0", "type", "bridge")
        self._ip(*lan, "link", "set", "br0", "up")
        # A persistent tap: QEMU opens it by name, so it is on the bridge before the guest starts.
        self._ip(*lan, "tuntap", "add", TAP, "mode", "tap")
        self._ip(*lan, "link", "set", TAP, "master", "br0", "up")
        for ns, address in ((self.site, SITE_ADDRESS), (self.proxy, PROXY_ADDRESS)):
            port = ns.rsplit("-", 1)[1]
            self._ip(*lan, "link", "add", port, "type", "veth", "peer", "name", "lan", "netns", ns)
            self._ip(*lan, "link", "set", port, "master", "br0", "up")
            self._ip("-n", ns, "link", "set", "lo", "up")
            self._ip("-n", ns, "addr", "add", f"{address}/{LAN_PREFIX}", "dev", "lan")
            self._ip("-n", ns, "link", "set", "lan", "up")
        self._ip("link", "add", self.host_link, "type", "veth", "peer", "name", "api",
                 "netns", self.proxy)  # fmt: skip
        self._ip("addr", "add", f"{self.host_address}/30", "dev", self.host_link)
        self._ip("link", "set", self.host_link, "up")
        self._ip("-n", self.proxy, "addr", "add", f"{self.api_address}/30", "dev", "api")
        self._ip("-n", self.proxy, "link", "set", "api", "up")

    def close(self) -> None:
        """Kill this lab's processes, then delete its namespaces and link. Safe to call twice."""
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)
        self.procs.clear()
        for ns in reversed(self._namespaces):
            run(["ip", "netns", "delete", ns], check=False)
        self._namespaces.clear()
        # Gone with the proxy's namespace; only a process that still holds it keeps it alive.
        if Path(f"/sys/class/net/{self.host_link}").exists():
            run(["ip", "link", "delete", self.host_link], check=False)

    # --- hosts on the LAN ----------------------------------------------------------------------

    def in_namespace(self, ns: str, argv: list[str]) -> list[str]:
        """argv run in namespace `ns` (`ip netns exec` execs it: its pid is the program's)."""
        return ["ip", "netns", "exec", ns, *argv]

    def spawn(self, ns: str, argv: list[str], output: Path) -> subprocess.Popen[bytes]:
        """Start argv in `ns`, stdout and stderr to `output`; killed by close()."""
        with open(output, "ab") as out:
            proc = subprocess.Popen(
                self.in_namespace(ns, argv), stdout=out, stderr=subprocess.STDOUT
            )
        self.procs.append(proc)
        return proc

    def dnsmasq(self, ns: str, name: str, conf: str) -> Dnsmasq:
        """Run dnsmasq with `conf` (a whole configuration file) in `ns`. The command line adds
        only the harness's own options: foreground, log and lease files in the workdir, and user
        root, since pytest's temporary folders are readable by root alone (dnsmasq reads its
        TFTP files as its --user)."""
        path = self.workdir / f"{name}.conf"
        path.write_text(conf)
        log = self.workdir / f"{name}.log"
        argv = [
            "dnsmasq", "--keep-in-foreground", f"--conf-file={path}",
            f"--log-facility={log}", "--log-dhcp",
            f"--dhcp-leasefile={self.workdir / name}.leases",
            f"--pid-file={self.workdir / name}.pid", "--user=root",
        ]  # fmt: skip
        out = self.workdir / f"{name}.out"
        proc = self.spawn(ns, argv, out)
        server = Dnsmasq(name, path, log, proc)
        deadline = time.monotonic() + 30
        while "started, version" not in server.text():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(
                    f"dnsmasq {name} did not start ({proc.poll()}):\n"
                    + out.read_text(errors="replace") + server.text()
                )  # fmt: skip
            time.sleep(0.1)
        return server

    def guest_argv(self, argv: list[str], mac: str) -> list[str]:
        """qa.pxe's QEMU command line (user network) with its NIC on the LAN's tap instead, run
        in the LAN's namespace. `-boot n,reboot-timeout=0`: a network boot that finds nothing
        returns to SeaBIOS, which reboots at once instead of after 60 s, and -no-reboot ends
        QEMU, so a failing case fails fast."""
        out = list(argv)
        nic = out.index("-nic") + 1
        boot = out.index("-boot") + 1
        assert out[nic].startswith("user,") and out[boot] == "n" and "-no-reboot" in out, out
        out[nic] = f"tap,ifname={TAP},script=no,downscript=no,model=e1000,mac={mac}"
        out[boot] = "n,reboot-timeout=0"
        return self.in_namespace(self.lan, out)
