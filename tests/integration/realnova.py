"""Real Nova 2011.2 and Glance 2011.2 on a node the agent configures: the test harness.

A node is a Debian 11 (bullseye) chroot run inside its own network namespace and UTS namespace
(its own host name), so nothing it binds, routes or names reaches the host. It is configured by
the agent exactly as on a lucid node: the agent .deb and the role metapackages the build makes
(firstboot.inputs_from_tree) installed with dpkg, the answers file written by the disc's own
late.sh under busybox with real cdebconf (firstboot.write_answers), then
`/usr/sbin/stackops-agent --non-interactive` runs every step of the node's roles.

The boundary (what is real and what is not):

- REAL: Nova 2011.2 and Glance 2011.2 from the release trees in ../shared/upstream/ (nova-manage,
  nova-api, -scheduler, -objectstore, -network with dnsmasq, bridges and iptables, -compute,
  -volume, glance-api, -registry), MariaDB 10.5, RabbitMQ 3.8, the agent's sh under dash,
  ifupdown, sysctl, the Python 2 libraries of tools/pip-requires (pins where PyPI still has
  them; substitutes in realnova/requirements.txt) in a virtualenv from a cached wheelhouse.
- NAMED BOUNDARY (not lucid): Python 2.7 stands in for lucid's 2.6, MariaDB 10.5 for MySQL 5.1,
  RabbitMQ 3.8 for 1.7, bullseye's dash for lucid's.
- STAND-IN: the init system (realnova/initctl: `initctl start JOB` runs realnova/jobs/JOB in
  the background); nova-compute runs with --connection_type=fake (except on a libvirt node,
  below) and nova-volume with nova.volume.driver.FakeISCSIDriver (their job files add the flag:
  LVM and the iSCSI target are the host kernel's); libvirt-bin (elsewhere than on a libvirt
  node) and iscsitarget jobs idle; modprobe, vgs,
  pvcreate, vgcreate record (realnova/sbin/). Two shims make 2011's code run on bullseye's
  Python 2.7 (carrot's uuid import, SQLAlchemy 0.6's utf8mb4 charset name) and two wrappers
  give `ip` and `brctl` lucid's error wording that Nova 2011.2 compares exactly.
- A LIBVIRT NODE (RealNode.create(libvirt=True)): real libvirtd 7.0 and QEMU 5.2 (TCG) from
  bullseye for lucid's libvirt and qemu-kvm, nova-compute on the libvirt driver through
  libvirt-python 5.10.0; realnova/libxml2-standin for python-libxml2 (none for Python 2 in
  bullseye); realnova/libvirt-qemu.conf runs QEMU as root, unconfined, as lucid did.

Cached under $DISTRO_BUILDER_CACHE/realnova (default ~/.cache/distro-builder/realnova): the
debootstrap'd root as a zstd tarball keyed by suite, mirror and packages, and the wheelhouse keyed
by requirements.txt; a fresh machine builds both once (debootstrap 282 s and wheels 78 s on 2
busy cores), then a node is ready in about 45 s and the agent configures it in about 45 s.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from tests.helpers import IN_CI, require_tool_or_skip

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).with_name("realnova")
# The release trees (../shared/upstream beside the checkout; a worktree one level deeper), or
# $DISTRO_BUILDER_UPSTREAM.
UPSTREAM = next(
    (
        p
        for p in (ROOT.parent / "shared/upstream", ROOT.parents[1] / "shared/upstream")
        if p.is_dir()
    ),
    Path(os.environ.get("DISTRO_BUILDER_UPSTREAM", ROOT.parent / "shared/upstream")),
)
if os.environ.get("DISTRO_BUILDER_UPSTREAM"):
    UPSTREAM = Path(os.environ["DISTRO_BUILDER_UPSTREAM"])
SUITE = "bullseye"
MIRROR = os.environ.get("DISTRO_BUILDER_DEBIAN_MIRROR", "http://deb.debian.org/debian")
PACKAGES = (
    "python2.7 python2.7-dev python-setuptools python-six python-is-python2 build-essential "
    "mariadb-server mariadb-client rabbitmq-server openssl dnsmasq-base libssl-dev swig "
    "ca-certificates procps iproute2 python3-venv python3-pip libmariadb-dev "
    "libmariadb-dev-compat pkg-config iptables bridge-utils ebtables sudo socat "
    "openssh-client net-tools ifupdown wget unzip curl"
).split()
ROOTFS_VERSION = 1  # bump when _build_rootfs changes in a way the key does not see
# A compute node on the libvirt driver: bullseye's libvirtd 7.0 and QEMU 5.2 (TCG) in its root
# (a second cached root tarball, made from the first), and libvirt-python 5.10.0, the last release
# for Python 2, built against libvirt 7.0 for the node's python2.7 (bullseye ships no Python 2
# binding). Its generator cannot wrap two functions libvirt 6.10 added (char ** arguments): they
# are left out (LIBVIRT_SKIP); Nova 2011.2 calls neither. libvirt-daemon-config-nwfilter: the
# stock filters (no-mac-spoofing, ...) that lucid's libvirt-bin shipped in /etc/libvirt/nwfilter
# and Nova 2011.2's instance filters reference (without them: "referenced filter
# 'no-mac-spoofing' is missing", measured).
LIBVIRT_PACKAGES = (
    "libvirt-daemon libvirt-daemon-config-nwfilter libvirt-clients libvirt-dev qemu-system-x86 "
    "qemu-utils"
).split()
LIBVIRT_PYTHON = "libvirt-python==5.10.0"
LIBVIRT_SKIP = ("virDomainAuthorizedSSHKeysGet", "virDomainAuthorizedSSHKeysSet")
LIBVIRT_VERSION = 1  # bump when _libvirt_tarball changes in a way the key does not see
CHROOT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SHIMS = {
    # carrot 0.10.5 imports uuid._uuid_generate_random, gone from Python 2.7.13+
    "carrot/utils.py": (
        "from uuid import UUID, uuid4, _uuid_generate_random\n",
        "from uuid import UUID, uuid4\n_uuid_generate_random = None\n",
    ),
}
# SQLAlchemy 0.6 decodes with the connection's charset name; MariaDB 10.5 reports utf8mb4
CODEC_SHIM = "import encodings.aliases as _a; _a.aliases.setdefault('utf8mb4', 'utf_8')\n"


def require_realnova_or_skip() -> None:
    """Root, debootstrap, ip, unshare, zstd and the upstream trees; skip locally, fail in CI."""
    why = None
    if os.geteuid() != 0:
        why = "real Nova runs in a chroot in a network namespace: run as root"
    elif not (UPSTREAM / "nova-2011.2.tar.gz").is_file():
        why = f"no {UPSTREAM}/nova-2011.2.tar.gz (the shared upstream trees)"
    if why:
        if IN_CI:
            pytest.fail(why)
        pytest.skip(why)
    require_tool_or_skip("debootstrap", "chroot", "ip", "unshare", "zstd", "busybox")


def cache_dir() -> Path:
    base = os.environ.get("DISTRO_BUILDER_CACHE")
    root = Path(base) if base else Path.home() / ".cache" / "distro-builder"
    return root / "realnova"


def _key(inputs: object) -> str:
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:16]


def rootfs_key() -> str:
    return _key({"v": ROOTFS_VERSION, "suite": SUITE, "mirror": MIRROR, "packages": PACKAGES})


def libvirt_key() -> str:
    return _key(
        {
            "v": LIBVIRT_VERSION, "base": rootfs_key(), "packages": LIBVIRT_PACKAGES,
            "python": LIBVIRT_PYTHON, "skip": LIBVIRT_SKIP,
            "conf": (DATA / "libvirt-qemu.conf").read_text(),
        }
    )  # fmt: skip


def wheelhouse_key() -> str:
    return _key({"suite": SUITE, "requirements": (DATA / "requirements.txt").read_text()})


def _run(argv: Sequence[str], *, timeout: float = 900, **kw: object) -> str:
    proc = subprocess.run(
        list(argv),
        capture_output=True,
        text=True,
        timeout=timeout,
        **kw,  # type: ignore[call-overload]
    )
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-25:])
        raise AssertionError(f"{' '.join(argv)[:200]} failed (rc {proc.returncode}):\n{tail}")
    return str(proc.stdout)


def _in_root(root: Path, script: str, *, timeout: float = 900) -> str:
    """A shell script in the chroot, on the host's network (building: Debian and PyPI)."""
    env = {
        "PATH": CHROOT_PATH, "HOME": "/root", "LANG": "C.UTF-8",
        "PIP_CERT": "/etc/ssl/certs/ca-certificates.crt", "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "DEBIAN_FRONTEND": "noninteractive",
    }  # fmt: skip
    return _run(["chroot", str(root), "/bin/sh", "-ec", script], env=env, timeout=timeout)


def _rootfs_tarball(timings: dict[str, float]) -> Path:
    """The bullseye root as a tarball, debootstrap'd on first use."""
    cache = cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    tarball = cache / f"rootfs-{SUITE}-{rootfs_key()}.tar.zst"
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if tarball.is_file():
            return tarball
        t0 = time.monotonic()
        tree = cache / "rootfs.partial"
        shutil.rmtree(tree, ignore_errors=True)
        _run(
            ["nice", "-n", "10", "debootstrap", "--variant=minbase",
             f"--include={','.join(PACKAGES)}", SUITE, str(tree), MIRROR],
            env={"PATH": os.environ["PATH"], "LC_ALL": "C.UTF-8"}, timeout=1800,
        )  # fmt: skip
        (tree / "usr/sbin/policy-rc.d").write_text("#!/bin/sh\nexit 101\n")
        (tree / "usr/sbin/policy-rc.d").chmod(0o755)
        # this host may reach PyPI through a TLS proxy: its CAs into the chroot's store
        for crt in Path("/usr/local/share/ca-certificates").glob("*.crt"):
            shutil.copy(crt, tree / "usr/local/share/ca-certificates" / crt.name)
        _in_root(tree, "update-ca-certificates >/dev/null")
        shutil.rmtree(tree / "var/cache/apt/archives", ignore_errors=True)
        (tree / "var/cache/apt/archives/partial").mkdir(parents=True)
        partial = tarball.with_suffix(".partial")
        _run(["tar", "-C", str(tree), "--zstd", "-cpf", str(partial), "."])
        partial.rename(tarball)
        shutil.rmtree(tree)
        for old in cache.glob("rootfs-*.tar.zst"):
            if old != tarball:
                old.unlink()
        timings["debootstrap"] = time.monotonic() - t0
    return tarball


def _libvirt_tarball(timings: dict[str, float]) -> Path:
    """The bullseye root with libvirtd, QEMU and a libvirt-python wheel for python2.7 (in
    /opt/libvirt-wheel), made from the base root on first use."""
    base = _rootfs_tarball(timings)
    cache = cache_dir()
    tarball = cache / f"rootfs-libvirt-{SUITE}-{libvirt_key()}.tar.zst"
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if tarball.is_file():
            return tarball
        t0 = time.monotonic()
        tree = cache / "rootfs-libvirt.partial"
        shutil.rmtree(tree, ignore_errors=True)
        tree.mkdir()
        _run(["tar", "-C", str(tree), "--zstd", "-xpf", str(base)])
        shutil.copy("/etc/resolv.conf", tree / "etc/resolv.conf")
        skip = "".join(f"\\n    '{f}'," for f in LIBVIRT_SKIP)
        _in_root(
            tree,
            "apt-get update -q >/dev/null\n"
            "apt-get install -y -q --no-install-recommends "
            f"{' '.join(LIBVIRT_PACKAGES)} >/dev/null\n"
            "apt-get clean\nrm -rf /var/lib/apt/lists/*\n"
            # the users and groups Debian's libvirt-daemon-system would make (libvirtd parses
            # its compiled-in qemu user before it reads qemu.conf)
            "groupadd -r kvm && groupadd -r libvirt && groupadd -r libvirt-qemu\n"
            "useradd -r -g kvm -d /var/lib/libvirt -s /usr/sbin/nologin libvirt-qemu\n"
            # the binding, built with a throw-away python2.7 virtualenv
            'python3 -m venv /opt/vtb && /opt/vtb/bin/pip install -q "virtualenv<20.22"\n'
            "/opt/vtb/bin/virtualenv -q -p /usr/bin/python2.7 /opt/py2b\n"
            "cd /tmp && /opt/py2b/bin/pip download -q --no-deps --no-binary :all: -d /tmp/sd "
            f"{LIBVIRT_PYTHON} 2>/dev/null\n"
            "tar -C /tmp -xzf /tmp/sd/libvirt-python-*.tar.gz && cd /tmp/libvirt-python-*/\n"
            f'sed -i "s/^skip_function = (/&{skip}/" generator.py\n'
            + "".join(f"grep -q \"'{f}',\" generator.py\n" for f in LIBVIRT_SKIP)
            + "/opt/py2b/bin/pip wheel -q --no-deps -w /opt/libvirt-wheel . 2>/dev/null\n"
            "ls /opt/libvirt-wheel/libvirt_python-*.whl\n"
            "rm -rf /opt/vtb /opt/py2b /tmp/sd /tmp/libvirt-python-* /root/.cache\n",
            timeout=1800,
        )
        shutil.copy(DATA / "libvirt-qemu.conf", tree / "etc/libvirt/qemu.conf")
        partial = tarball.with_suffix(".partial")
        _run(["tar", "-C", str(tree), "--zstd", "-cpf", str(partial), "."])
        partial.rename(tarball)
        shutil.rmtree(tree)
        for old in cache.glob("rootfs-libvirt-*.tar.zst"):
            if old != tarball:
                old.unlink()
        timings["libvirt-root"] = time.monotonic() - t0
    return tarball


def _python_env(root: Path, timings: dict[str, float]) -> None:
    """/opt/nova (run in place) and Glance in a python2.7 virtualenv, from the wheelhouse."""
    t0 = time.monotonic()
    build = root / "opt/build"
    build.mkdir(parents=True)
    _run(["tar", "-C", str(root / "opt"), "-xzf", str(UPSTREAM / "nova-2011.2.tar.gz")])
    (root / "opt/nova-2011.2").rename(root / "opt/nova")
    _run(["tar", "-C", str(build), "-xzf", str(UPSTREAM / "glance-2011.2.tar.gz")])
    shutil.copy(DATA / "requirements.txt", build / "reqs.txt")
    _in_root(
        root,
        'python3 -m venv /opt/vt && /opt/vt/bin/pip install -q "virtualenv<20.22"\n'
        "/opt/vt/bin/virtualenv -q -p /usr/bin/python2.7 /opt/nova-env",
    )
    cache = cache_dir()
    wheels = cache / f"wheelhouse-{wheelhouse_key()}"
    install = (
        "/opt/nova-env/bin/pip install -q --no-index -f /opt/build/wheelhouse "
        "-r /opt/build/reqs.txt"
    )
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if wheels.is_dir():
            shutil.copytree(wheels, build / "wheelhouse")
            _in_root(root, install)
        else:
            t1 = time.monotonic()
            _in_root(
                root,
                "cd /opt/build && /opt/nova-env/bin/pip wheel -q -w wheelhouse -r reqs.txt "
                f"-c reqs.txt\n{install}",
                timeout=1800,
            )
            partial = wheels.with_name(wheels.name + ".partial")
            shutil.rmtree(partial, ignore_errors=True)
            shutil.copytree(build / "wheelhouse", partial)
            partial.rename(wheels)
            for old in cache.glob("wheelhouse-*"):
                if old != wheels and old.is_dir():
                    shutil.rmtree(old, ignore_errors=True)
            timings["wheels"] = time.monotonic() - t1
    _in_root(
        root,
        "cd /opt/build/glance-2011.2 && /opt/nova-env/bin/pip install -q --no-deps --no-index .",
    )
    site = root / "opt/nova-env/lib/python2.7/site-packages"
    (site / "nova-src.pth").write_text("/opt/nova\n")  # setup.py needs DistUtilsExtra: in place
    for rel, (old, new) in SHIMS.items():
        text = (site / rel).read_text()
        assert old in text, f"shim for {rel} no longer applies"
        (site / rel).write_text(text.replace(old, new))
    (site / "nova-shims.pth").write_text(CODEC_SHIM)
    _in_root(
        root,
        "/opt/nova-env/bin/python -c 'import nova.crypto, nova.auth.manager, nova.rpc, "
        "glance.client, MySQLdb, M2Crypto, boto'",
    )
    timings["python-env"] = time.monotonic() - t0


class RealNode:
    """One node: a bullseye chroot with real Nova, in network namespace `ns` (eth0 = address/24,
    eth1 the flat interface), host name `hostname` in its own UTS namespace."""

    def __init__(self, root: Path, ns: str, hostname: str) -> None:
        self.root = root
        self.ns = ns
        self.hostname = hostname
        self.timings: dict[str, float] = {}

    # -- set-up -----------------------------------------------------------------------------

    @classmethod
    def create(cls, where: Path, *, ns: str, hostname: str, libvirt: bool = False) -> RealNode:
        """A node; with `libvirt`, its nova-compute runs on the libvirt driver against a real
        libvirtd (QEMU under TCG) instead of the fake driver."""
        require_realnova_or_skip()
        node = cls(where / "root", ns, hostname)
        timings = node.timings
        tarball = _libvirt_tarball(timings) if libvirt else _rootfs_tarball(timings)
        t0 = time.monotonic()
        node.root.mkdir(parents=True)
        _run(["tar", "-C", str(node.root), "--zstd", "-xpf", str(tarball)])
        timings["rootfs-extract"] = time.monotonic() - t0
        _python_env(node.root, timings)
        if libvirt:
            node._libvirt()
        node._layout()
        return node

    def _libvirt(self) -> None:
        """The binding into the node's python, the libxml2 stand-in beside it, and the mark
        the libvirt-bin and nova-compute jobs read (realnova/jobs)."""
        _in_root(
            self.root,
            "/opt/nova-env/bin/pip install -q --no-index /opt/libvirt-wheel/libvirt_python-*.whl"
            " 2>/dev/null\n/opt/nova-env/bin/python -c 'import libvirt'",
        )
        site = self.path("/opt/nova-env/lib/python2.7/site-packages")
        shutil.copy(DATA / "libxml2-standin", site / "libxml2.py")
        self.path("/opt/realnova").mkdir(parents=True, exist_ok=True)
        self.path("/opt/realnova/libvirt").write_text("libvirtd and nova-compute on libvirt\n")

    def path(self, p: str) -> Path:
        return self.root / p.lstrip("/")

    def _layout(self) -> None:
        for src, dst in ((DATA / "initctl", "/sbin/initctl"),):
            shutil.copy(src, self.path(dst))
        jobs = self.path("/opt/realnova/jobs")
        shutil.copytree(DATA / "jobs", jobs)
        for f in (DATA / "sbin").iterdir():
            shutil.copy(f, self.path(f"/usr/local/sbin/{f.name}"))
        shutil.copy(DATA / "layout.sh", self.path("/opt/realnova/layout.sh"))
        _in_root(self.root, "/opt/realnova/layout.sh")
        hosts = self.path("/etc/hosts")
        hosts.write_text(f"127.0.0.1\tlocalhost\n127.0.1.1\t{self.hostname}\n")
        self.path("/etc/hostname").write_text(f"{self.hostname}\n")
        for m, argv in (
            ("proc", ["mount", "-t", "proc", "proc"]),
            ("dev", ["mount", "--bind", "/dev"]),
            ("dev/pts", ["mount", "--bind", "/dev/pts"]),
        ):
            _run([*argv, str(self.path(m))])

    def install(self, debs: Mapping[str, bytes], answers: bytes) -> str:
        """dpkg -i the agent and the role metapackages (their lucid Depends are not in
        bullseye: --force-depends), then the answers file as late.sh wrote it (0600)."""
        names = []
        for name, data in debs.items():
            self.path(f"/tmp/{name}").write_bytes(data)
            names.append(f"/tmp/{name}")
        out = self.chroot(["dpkg", "--force-depends", "-i", *names])
        dst = self.path("/etc/stackops/answers")
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(answers)
        dst.chmod(0o600)
        return out

    def network(self, address: str, *, lan: str | None = None) -> None:
        """The namespace: lo, eth0 = address/24 (a veth whose peer stays on the host side, or
        is a port of bridge `lan` in namespace `lan`: make_lan), eth1 the flat interface (a
        veth, no address)."""
        _run(["ip", "netns", "add", self.ns])
        ip = ["ip", "-n", self.ns]
        _run([*ip, "link", "set", "lo", "up"])
        for dev in ("eth0", "eth1"):
            peer = f"{self.ns[:12]}p{dev[-1]}"
            _run([*ip, "link", "add", dev, "type", "veth", "peer", "name", peer, "netns", "1"])
            if dev == "eth0" and lan:
                _run(["ip", "link", "set", peer, "netns", lan])
                _run(["ip", "-n", lan, "link", "set", peer, "master", "br0", "up"])
            else:
                _run(["ip", "link", "set", peer, "up"])
        _run([*ip, "addr", "add", f"{address}/24", "dev", "eth0"])
        for dev in ("eth0", "eth1"):
            _run([*ip, "link", "set", dev, "up"])

    # -- running ----------------------------------------------------------------------------

    def _argv(self, argv: Sequence[str]) -> list[str]:
        # in the namespace, with its own host name and sysfs (the namespace's devices), chrooted
        inner = (
            'hostname "$1" && mount --rbind /sys "$2/sys" && root=$2 && shift 2 && '
            'exec chroot "$root" env -i PATH=' + CHROOT_PATH + " HOME=/root LANG=C.UTF-8 "
            'LC_ALL=C "$@"'
        )
        return [
            "ip", "netns", "exec", self.ns, "unshare", "--uts", "--mount", "--propagation",
            "private", "sh", "-c", inner, "sh", self.hostname, str(self.root), *argv,
        ]  # fmt: skip

    def run(self, argv: Sequence[str], *, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """argv in the node (namespace + chroot); never raises on a non-zero exit."""
        try:
            return subprocess.run(
                self._argv(argv), capture_output=True, text=True, timeout=timeout,
                start_new_session=True,
            )  # fmt: skip
        except subprocess.TimeoutExpired as e:
            raise AssertionError(f"{argv} did not finish within {timeout} s: {e.stdout}") from None

    def sh(self, script: str, *, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return self.run(["/bin/sh", "-c", script], timeout=timeout)

    def chroot(self, argv: Sequence[str]) -> str:
        """argv in the chroot, on the host's network (set-up only)."""
        env = {"PATH": CHROOT_PATH, "HOME": "/root", "LC_ALL": "C"}
        return _run(["chroot", str(self.root), *argv], env=env)

    def agent(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        t0 = time.monotonic()
        proc = self.run(["/bin/dash", "/usr/sbin/stackops-agent", *args], timeout=timeout)
        self.timings["agent"] = time.monotonic() - t0
        return proc

    def nova_manage(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.run(["nova-manage", "--flagfile=/etc/nova/nova.conf", *args], timeout=120)

    def log(self, name: str) -> str:
        p = self.path(name)
        return p.read_text(errors="replace") if p.is_file() else ""

    def job_logs(self) -> str:
        """The tail of every job's and step's log, for an assertion message."""
        out = []
        for d in ("/opt/realnova/log", "/var/log/nova", "/var/log/stackops/steps"):
            for p in sorted(self.path(d).glob("*.log")):
                tail = "\n".join(p.read_text(errors="replace").splitlines()[-15:])
                out.append(f"--- {d}/{p.name}\n{tail}")
        return "\n".join(out)

    # -- tear-down --------------------------------------------------------------------------

    def stop(self) -> None:
        """End every process of the node with SIGKILL and free its mounts. Only before
        remove(): the root is thrown away, so stopping its 12 jobs one by one first (rabbitmqctl
        and mysqladmin under TCG; 25-27 s of each module's teardown in `make test`) bought
        nothing."""
        if _run(["ip", "netns", "list"]).split().count(self.ns):
            for _ in range(20):  # again while a dying parent's child still shows
                pids = subprocess.run(
                    ["ip", "netns", "pids", self.ns], capture_output=True, text=True
                ).stdout.split()
                if not pids:
                    break
                for pid in pids:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(int(pid), signal.SIGKILL)
                time.sleep(0.25)
            subprocess.run(["ip", "netns", "del", self.ns], check=False)
        for m in ("dev/pts", "dev", "proc"):
            p = self.path(m)
            if os.path.ismount(p):
                subprocess.run(["umount", "-l", str(p)], check=False)

    def remove(self) -> None:
        """Delete the root (about 1.3 GB), only when nothing is mounted below it any more (a
        bind of the host's /dev must never be walked)."""
        prefix = os.fspath(self.root) + "/"
        with open("/proc/self/mounts") as f:
            mounted = [ln.split()[1] for ln in f if ln.split()[1].startswith(prefix)]
        if mounted:
            raise AssertionError(f"still mounted, not removing {self.root}: {mounted}")
        shutil.rmtree(self.root, ignore_errors=True)


def make_lan(name: str) -> None:
    """A namespace `name` holding bridge br0: the nodes' LAN (RealNode.network(lan=name))."""
    _run(["ip", "netns", "add", name])
    _run(["ip", "-n", name, "link", "add", "br0", "type", "bridge"])
    _run(["ip", "-n", name, "link", "set", "br0", "up"])


def remove_lan(name: str) -> None:
    subprocess.run(["ip", "netns", "del", name], check=False)
