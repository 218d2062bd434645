"""A real Debian root file system for running the node agent: debootstrap once, copy per test.

`cached_rootfs()` makes a Debian 12 (bookworm) minbase tree with debootstrap the first time
(about a minute; needs root and deb.debian.org) and keeps it under
~/.cache/distro-builder/rootfs/ (or $DISTRO_BUILDER_CACHE/rootfs). `Node` is one test's copy of
it, set up like an installed lucid node whose Nova/MySQL/RabbitMQ packages are installed:

The boundary. No init system runs in a chroot and bookworm has no Nova, MySQL 5.1 or
RabbitMQ 1.7, so exactly these commands are replaced by a recorder (tests/integration/
agent_recorder.sh, first on PATH): service control (initctl, start, stop, restart, service,
invoke-rc.d, update-rc.d, systemctl), the Cactus tools (nova-manage, glance-manage), the
database and broker clients (mysql, mysqladmin, rabbitmqctl), what reaches another node (socat),
the cloud's health check (stackops-check: Python 2
and Nova, tests/integration/test_real_nova.py runs it for real),
and what changes the host's kernel or disks (sysctl, modprobe, ifup, ip, ietadm, pvcreate,
vgcreate, vgs). The role metapackages (stackops-<role>) are installed as empty packages, and
nova's CA script as a stand-in that makes cacert.pem. The recorder appends
each argv to /stackops-test/actions and each stdin to /stackops-test/stdin, and exits as the
rules in /stackops-test/rules say (failure injection). Everything else the agent runs is the
real Debian tool: sh (dash or bash), awk, sed, grep, cp, mv, chmod, dpkg.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import IN_CI, require_tool_or_skip

SUITE = "bookworm"
MIRROR = os.environ.get("DISTRO_BUILDER_DEBIAN_MIRROR", "http://deb.debian.org/debian")
INCLUDE = ("whiptail", "systemd", "wget")  # wget: the agent Depends on it (Smart Installer)
CACHE_NAME = f"{SUITE}-minbase-{'-'.join(INCLUDE)}-v1"
RECORDER = Path(__file__).with_name("agent_recorder.sh")
RECORDED = (
    "initctl start stop restart service invoke-rc.d update-rc.d systemctl "
    "nova-manage glance-manage mysql mysqladmin rabbitmqctl "
    "sysctl modprobe ifup ip ietadm pvcreate vgcreate vgs socat hostname stackops-check python"
).split()
TEST_DIR = "stackops-test"
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def require_root_or_skip() -> None:
    if os.geteuid() == 0:
        return
    msg = "the agent tests chroot into a debootstrap tree: run them as root"
    if IN_CI:
        pytest.fail(msg)
    pytest.skip(msg)


def cache_dir() -> Path:
    base = os.environ.get("DISTRO_BUILDER_CACHE")
    root = Path(base) if base else Path.home() / ".cache" / "distro-builder"
    return root / "rootfs"


def cached_rootfs() -> Path:
    """The pristine bookworm minbase tree, made with debootstrap on first use."""
    require_root_or_skip()
    require_tool_or_skip("debootstrap", "chroot")
    cache = cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    tree = cache / CACHE_NAME
    stamp = cache / f"{CACHE_NAME}.complete"
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # several pytest processes may start at once
        if stamp.exists() and tree.is_dir():
            return tree
        partial = cache / f"{CACHE_NAME}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        argv = [
            "debootstrap",
            "--variant=minbase",
            f"--include={','.join(INCLUDE)}",
            SUITE,
            str(partial),
            MIRROR,
        ]
        proc = subprocess.run(argv, capture_output=True, text=True)
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-15:])
            pytest.fail(f"debootstrap failed ({' '.join(argv)}):\n{tail}")
        shutil.rmtree(partial / "var/cache/apt/archives", ignore_errors=True)
        shutil.rmtree(tree, ignore_errors=True)
        partial.rename(tree)
        stamp.touch()
    return tree


@dataclass
class Run:
    """One run of the agent in the chroot."""

    returncode: int
    output: str


class Node:
    """A per-test copy of the rootfs, set up as an installed lucid node (see the module doc)."""

    def __init__(self, root: Path, *, init: str = "upstart") -> None:
        self.root = root
        self.init = init
        self.test = root / TEST_DIR

    # -- set-up -----------------------------------------------------------------------------

    @classmethod
    def create(cls, where: Path, *, init: str = "upstart") -> Node:
        src = cached_rootfs()
        root = where / "root"
        subprocess.run(["cp", "-a", str(src), str(root)], check=True)
        node = cls(root, init=init)
        node._install_recorder()
        node._install_lucid_packages()
        return node

    def path(self, p: str) -> Path:
        return self.root / p.lstrip("/")

    def write(self, p: str, text: str, mode: int = 0o644) -> None:
        dst = self.path(p)
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_text(text)
        dst.chmod(mode)

    def _install_recorder(self) -> None:
        self.test.mkdir()
        (self.test / "out").mkdir()
        (self.test / "rules").write_text("")
        script = RECORDER.read_text()
        for name in RECORDED:
            if name == "initctl" and self.init != "upstart":
                continue  # a systemd base has no initctl
            self.write(f"/usr/local/sbin/{name}", script, 0o755)

    def _install_lucid_packages(self) -> None:
        """What the lucid packages the agent configures leave on disk (only what it reads)."""
        for group in ("nova", "glance", "rabbitmq"):
            self.chroot(["groupadd", "--system", group])
        # lucid's glance package runs glance-api as the system user glance
        self.chroot(["useradd", "--system", "-g", "glance", "-d", "/var/lib/glance", "glance"])
        self.write(
            "/etc/mysql/my.cnf",
            "[client]\nport\t\t= 3306\n\n[mysqld]\nuser\t\t= mysql\nport\t\t= 3306\n"
            "# Instead of skip-networking the default is now to listen only on\n"
            "# localhost which is more compatible and is not less secure.\n"
            "bind-address\t\t= 127.0.0.1\n\n!includedir /etc/mysql/conf.d/\n",
        )
        self.write("/etc/default/iscsitarget", "ISCSITARGET_ENABLE=false\n")
        self.write(
            "/etc/sysctl.conf",
            "# Uncomment the next line to enable packet forwarding for IPv4\n"
            "#net.ipv4.ip_forward=1\n",
        )
        self.write(
            "/etc/network/interfaces",
            "# The loopback network interface\nauto lo\niface lo inet loopback\n\n"
            "# The primary network interface\nauto eth0\niface eth0 inet dhcp\n",
        )
        upstart_jobs = (
            "mysql libvirt-bin nova-api nova-scheduler nova-objectstore nova-network "
            "nova-volume nova-compute glance-api glance-registry"
        ).split()
        for job in upstart_jobs:
            if self.init == "upstart":
                self.write(f"/etc/init/{job}.conf", f'description "{job}"\nexec /bin/true\n')
            else:
                self.write(
                    f"/lib/systemd/system/{job}.service",
                    "[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n",
                )
        for script in ("rabbitmq-server", "iscsitarget"):
            self.write(f"/etc/init.d/{script}", "#!/bin/sh\nexit 0\n", 0o755)
        self.path("/var/lib/rabbitmq/mnesia").mkdir(parents=True)
        # python-nova's CA script (nova/CA/genrootca.sh): makes cacert.pem in the current folder
        self.write(
            "/usr/share/pyshared/nova/CA/genrootca.sh",
            "#!/bin/sh\necho recorded >>/stackops-test/actions.ca\n: >cacert.pem\n",
            0o755,
        )
        self._install_role_metapackages()
        self.path("/etc/nova").mkdir(exist_ok=True)
        self.write("/proc/cpuinfo", "processor\t: 0\nflags\t\t: fpu vme de pse tsc msr\n")

    def _install_role_metapackages(self, roles: tuple[str, ...] | None = None) -> None:
        """stackops-<role> for every role (of this checkout's roles/ when `roles` is None),
        empty: what the installer installed."""
        from distro_builder.archive.debs import build_deb
        from distro_builder.config.roles import load_roles

        debs = []
        for role in roles or load_roles(Path(__file__).resolve().parents[2]).names:
            control = {
                "Package": f"stackops-{role}", "Version": "0.1.0", "Architecture": "all",
                "Maintainer": "test <t@example.invalid>", "Description": "test stand-in",
            }  # fmt: skip
            deb = self.path(f"/tmp/stackops-{role}.deb")
            deb.write_bytes(build_deb(control, {}, mtime=0))
            debs.append(f"/tmp/stackops-{role}.deb")
        self.chroot(["dpkg", "-i", *debs])

    def install_role_metapackages(self, roles: tuple[str, ...]) -> None:
        self._install_role_metapackages(roles)

    def remove_package(self, name: str) -> None:
        self.chroot(["dpkg", "--purge", name])

    def set_cpu_flags(self, flags: str) -> None:
        self.write("/proc/cpuinfo", f"processor\t: 0\nflags\t\t: {flags}\n")

    def install_deb(self, deb: Path) -> str:
        shutil.copy(deb, self.path("/tmp") / deb.name)
        proc = self.chroot(["dpkg", "-i", f"/tmp/{deb.name}"])
        return proc.stdout + proc.stderr

    def write_answers(self, answers: dict[str, str]) -> None:
        lines = ["# /etc/stackops/answers written by the installer (test)"]
        for key, value in answers.items():
            quoted = value.replace("'", "'\\''")
            lines.append(f"{key}='{quoted}'")
        self.write("/etc/stackops/answers", "\n".join(lines) + "\n", 0o600)

    def rule(self, code: str, pattern: str, output: str | None = None) -> None:
        """Recorder rule: a command whose argv matches the sh glob exits with `code`
        (a number, `kill` = power cut of the whole agent, `pass` = run the real tool)."""
        out = ""
        if output is not None:
            # one file per rule (two rules for one pattern keep their own outputs)
            rules = self.test / "rules"
            n = len(rules.read_text().splitlines()) if rules.exists() else 0
            name = f"{n:03d}-" + hashlib.sha1(pattern.encode()).hexdigest()[:12]
            (self.test / "out" / name).write_text(output)
            out = f"/{TEST_DIR}/out/{name}"
        with open(self.test / "rules", "a") as f:
            f.write(f"{code}\t{pattern}\t{out}\n")

    def clear_rules(self) -> None:
        (self.test / "rules").write_text("")

    # -- running ----------------------------------------------------------------------------

    def chroot(self, argv: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {"PATH": PATH, "LC_ALL": "C", "HOME": "/root", "TERM": "dumb"}
        proc = subprocess.run(
            ["chroot", str(self.root), *argv], capture_output=True, text=True, env=env
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"{argv} failed: {proc.stdout}{proc.stderr}")
        return proc

    def run_agent(
        self,
        shell: str,
        *args: str,
        stdin: str = "",
        timeout: float = 120,
        env: dict[str, str] | None = None,
    ) -> Run:
        """Run /usr/sbin/stackops-agent under `shell` (its own process group, so a `kill`
        rule can cut the power of the whole agent and nothing else); `env` is added to the
        agent's environment."""
        # STACKOPS_SETTLE=0: the services' "still running?" look comes at once (recorded anyway)
        env = {"PATH": PATH, "LC_ALL": "C", "HOME": "/root", "TERM": "dumb",
               "STACKOPS_SETTLE": "0", **(env or {})}  # fmt: skip
        proc = subprocess.Popen(
            ["chroot", str(self.root), shell, "/usr/sbin/stackops-agent", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            start_new_session=True,
        )
        try:
            out, _ = proc.communicate(stdin, timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
            raise AssertionError(f"the agent did not finish within {timeout} s:\n{out}") from None
        return Run(proc.returncode, out)

    # -- reading back -----------------------------------------------------------------------

    def actions(self) -> list[str]:
        path = self.test / "actions"
        return path.read_text().splitlines() if path.exists() else []

    def reset_actions(self) -> None:
        for name in ("actions", "stdin"):
            (self.test / name).unlink(missing_ok=True)

    def recorded_stdin(self) -> str:
        path = self.test / "stdin"
        return path.read_text() if path.exists() else ""

    def logs(self) -> dict[str, str]:
        """Every file under /var/log/stackops, by path."""
        base = self.path("/var/log/stackops")
        return {
            str(p.relative_to(self.root)): p.read_text(errors="replace")
            for p in sorted(base.rglob("*"))
            if p.is_file()
        }

    def snapshot(self) -> dict[str, tuple[int, int, str]]:
        """(mode, mtime_ns, sha1) of every file and link outside logs and scratch space."""
        skip = ("var/log/stackops", "run", "tmp", "proc", "dev", TEST_DIR, "var/cache")
        result: dict[str, tuple[int, int, str]] = {}
        for dirpath, dirnames, filenames in os.walk(self.root):
            rel_dir = os.path.relpath(dirpath, self.root)
            dirnames[:] = [
                d for d in dirnames if os.path.normpath(os.path.join(rel_dir, d)) not in skip
            ]
            for name in filenames:
                p = Path(dirpath) / name
                st = p.lstat()
                if p.is_symlink():
                    digest = os.readlink(p)
                else:
                    digest = hashlib.sha1(p.read_bytes()).hexdigest()
                result[str(p.relative_to(self.root))] = (st.st_mode, st.st_mtime_ns, digest)
        return result
