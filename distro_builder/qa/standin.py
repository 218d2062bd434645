"""A stand-in installed node: a Debian 12 disk image that boots in QEMU and runs the node agent.

A full unattended install cannot run on these machines (no lucid archive; Debian's registry
serves no `.udeb` files), so the first boot of an installed node is proven on a stand-in: a
Debian 12 (bookworm) disk image made with debootstrap from the package registry and
`mkfs.ext4 -d` (no loop mount), with its own kernel and initramfs, booted by QEMU with
`-kernel/-initrd`, `root=/dev/vda`, console on ttyS0.

The boundary (what is real and what is not):

- REAL: the kernel, systemd (it starts the agent's unit and every service the agent enables or
  restarts), MariaDB (`mysql` is its alias unit), RabbitMQ, ifupdown/ifconfig, sysctl, LVM on a
  second disk (/dev/vdb), the agent .deb installed with dpkg, the answers file written by the
  disc's own late.sh under busybox with real cdebconf (qa/answers.py).
- STAND-IN (Nova 2011.2, Glance, libvirt-bin and lucid's iscsitarget do not exist for Debian 12):
  `nova-manage`, `glance-manage` and the controller's health check `stackops-check` (Python 2
  and a running Nova) are recorders (/usr/local/sbin) that append their argv to
  /var/lib/stackops-standin/actions; `nova-manage db sync` and `user admin` also do to the nova
  database what Cactus does to the tables the agent reads afterwards (a `users` table, one row),
  logging in as nova over TCP with nova.conf's --sql_connection. The services nova-api,
  -scheduler, -objectstore, -network, -volume, -compute, glance-api, -registry, libvirt-bin and
  iscsitarget are systemd units whose process records its start and sleeps.
- ADAPTED (Debian 12 is not lucid): /etc/mysql/my.cnf is a regular file ending in lucid's
  `[mysqld] bind-address = 127.0.0.1` (Debian 12 keeps that line in mariadb.conf.d/50-server.cnf,
  where it is removed); system users nova and glance exist (lucid's packages made them);
  /etc/default/iscsitarget says ISCSITARGET_ENABLE=false; the NICs are eth0 (static 10.0.2.15,
  QEMU user networking) and eth1 (net.ifnames=0).

Two more units belong to the stand-in, not the product: `stackops-standin-report.service` runs
after the agent on every boot, prints `STANDIN ...` lines on the console (the agent's unit state,
the status file, the .done markers, agent.log, the recorded actions, and on a controller the
checks of MySQL and RabbitMQ against the answers, issue 14) and powers the node off; and
`init=/usr/local/sbin/stackops-standin-provision` is the installer's part: with the seed disk
(/dev/vdc) it runs the seed's script (dpkg -i the agent, the answers file; or a fault to inject or
fix) with no init system running, as d-i does in /target, and powers off.

The image is cached under ~/.cache/distro-builder/standin/<key>/ (or $DISTRO_BUILDER_CACHE),
keyed by everything that goes into it (suite, mirror, packages, the files and commands below);
each run boots a qcow2 overlay so the cached image stays pristine.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from distro_builder.errors import SmokeTestError
from distro_builder.run import require_tool, run

log = logging.getLogger(__name__)

SUITE = "bookworm"
MIRROR = os.environ.get("DISTRO_BUILDER_DEBIAN_MIRROR", "http://deb.debian.org/debian")
PACKAGES = (
    "linux-image-amd64",
    "systemd-sysv",
    "udev",
    "mariadb-server",
    "rabbitmq-server",
    "whiptail",
    "wget",
    "ifupdown",
    "net-tools",
    "iproute2",
    "procps",
    "kmod",
    "lvm2",
    "util-linux",
)
IMAGE_VERSION = 1  # bump when the build steps below change in a way the key does not see
NODE_ADDRESS = "10.0.2.15"  # QEMU user networking's guest address (eth0)
GATEWAY = "10.0.2.2"
HOSTNAME = "standin"
FREE_MB = 1536  # room on / beyond the tree (MariaDB, RabbitMQ's mnesia, logs)
STATE = "/var/lib/stackops-standin"
REPORT = "STANDIN"
FAKE_SERVICES = (
    "nova-api nova-scheduler nova-objectstore nova-network nova-volume nova-compute "
    "glance-api glance-registry libvirt-bin iscsitarget"
).split()
RECORDED = ("nova-manage", "glance-manage", "stackops-check", "python")  # Python 2 + Nova
KERNEL_ARGS = f"root=/dev/vda rw console=ttyS0,115200n8 net.ifnames=0 hostname={HOSTNAME}"

_RECORDER = f"""#!/bin/sh
# Stand-in for a Nova 2011.2 tool (Debian 12 has none): record the argv, then do to the nova
# database what Cactus does to the tables the agent reads later.
mkdir -p {STATE}
printf '%s %s\\n' "$(cut -c1-8 /proc/sys/kernel/random/boot_id)" "${{0##*/}} $*" >>{STATE}/actions
[ "${{0##*/}}" = nova-manage ] || exit 0
conf=
for a in "$@"; do case $a in --flagfile=*) conf=${{a#--flagfile=}} ;; esac; done
[ "${{1#--flagfile=}}" != "$1" ] && shift
url=$(sed -n 's/^--sql_connection=//p' "${{conf:-/etc/nova/nova.conf}}" | tail -n 1)
sql() {{
    # mysql://nova:<url-encoded password>@host/db, as nova-manage's SQLAlchemy reads it
    MYSQL_PWD=$(printf '%s' "$url" | sed 's|^mysql://[^:]*:||; s|@[^@]*$||' |
        perl -pe 's/%([0-9A-Fa-f]{{2}})/chr hex $1/ge') \\
        mysql --protocol=TCP -h "$(printf '%s' "$url" | sed 's|.*@||; s|/.*||')" \\
        -u "$(printf '%s' "$url" | sed 's|^mysql://||; s|:.*||')" "${{url##*/}}"
}}
case "$1 $2" in
"db sync")
    echo "CREATE TABLE IF NOT EXISTS users (id VARCHAR(255) PRIMARY KEY, name VARCHAR(255),
      access_key VARCHAR(255), secret_key VARCHAR(255), is_admin TINYINT(1));" | sql ;;
"user admin")
    echo "INSERT IGNORE INTO users VALUES ('$3', '$3', 'access-$3', 'secret-$3', 1);" | sql ;;
"project zipfile")
    # an empty zip archive (its end record only), where Cactus writes the credentials
    printf 'PK\\005\\006\\0\\0\\0\\0\\0\\0\\0\\0\\0\\0\\0\\0\\0\\0\\0\\0\\0\\0' >"$5" ;;
esac
"""

_GENROOTCA = f"""#!/bin/sh
# Stand-in for python-nova's nova/CA/genrootca.sh (run in the CA folder): record, write a
# placeholder cacert.pem where Cactus writes the root CA.
mkdir -p {STATE}
boot=$(cut -c1-8 /proc/sys/kernel/random/boot_id)
printf '%s genrootca.sh %s\\n' "$boot" "$PWD" >>{STATE}/actions
[ -f cacert.pem ] ||
    printf -- '-----BEGIN CERTIFICATE-----\\nstand-in\\n-----END CERTIFICATE-----\\n' >cacert.pem
"""

_FAKE_SERVICE = f"""#!/bin/sh
# Stand-in for a lucid service Debian 12 does not have: record the start, then idle.
mkdir -p {STATE}
printf '%s start %s\\n' "$(cut -c1-8 /proc/sys/kernel/random/boot_id)" "$1" >>{STATE}/starts
exec sleep infinity
"""

_PROVISION = f"""#!/bin/sh
# init= for the stand-in's install boots: run the seed disk's script with no init system running
# (as d-i runs dpkg in /target), then power off. Output: {REPORT}-PROVISION lines.
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH
mount -t proc proc /proc 2>/dev/null
mount -t sysfs sys /sys 2>/dev/null
mount -t devtmpfs dev /dev 2>/dev/null
mount -o remount,rw /
mkdir -p /run/seed
rc=0
if mount -t ext4 -o ro /dev/vdc /run/seed; then
    (cd /run/seed && sh ./provision.sh) 2>&1 | sed 's/^/  /'
    rc=$(cat /run/provision.rc 2>/dev/null || echo 1)
    umount /run/seed
else
    echo "no seed disk on /dev/vdc"; rc=1
fi
sync
[ "$rc" = 0 ] && echo "{REPORT}-PROVISION ok" || echo "{REPORT}-PROVISION failed rc=$rc"
sync
echo o >/proc/sysrq-trigger
sleep 60
"""

# Everything the harness reads on the console after the agent. Secrets never reach it: the
# checks print ok/FAIL with what was tried.
_REPORT = f"""#!/bin/sh
say() {{ printf '{REPORT} %s\\n' "$*"; }}
boot=$(cut -c1-8 /proc/sys/kernel/random/boot_id)
say "begin boot=$boot"
say "agent enabled=$(systemctl is-enabled stackops-agent.service 2>&1)" \\
    "result=$(systemctl show -p Result --value stackops-agent.service)" \\
    "ran=$(systemctl show -p ExecMainStartTimestampMonotonic --value stackops-agent.service)"
[ -f /var/lib/stackops/status ] && sed 's/^/{REPORT} status /' /var/lib/stackops/status
say "done-files $(cd /var/lib/stackops/steps 2>/dev/null && ls -1 -- *.done 2>/dev/null |
    sed 's/\\.done$//' | tr '\\n' ' ')"
[ -f /var/log/stackops/agent.log ] && sed 's/^/{REPORT} agentlog /' /var/log/stackops/agent.log
for f in /var/log/stackops/steps/*.log; do
    [ -f "$f" ] || continue
    n=${{f##*/}}
    say "steplog ${{n%.log}} runs=$(grep -c '^=== .* step ' "$f") exits=$(grep '^=== exit' "$f" |
        sed 's/=== exit //' | tr '\\n' ',')"
done
# the failed step's log (the agent already replaced the secrets with *****)
failed=$(sed -n "s/^failed_step='\\(.*\\)'$/\\1/p" /var/lib/stackops/status 2>/dev/null)
[ -n "$failed" ] && [ -f "/var/log/stackops/steps/$failed.log" ] &&
    tail -n 30 "/var/log/stackops/steps/$failed.log" | sed 's/^/{REPORT} failedlog /'
[ -f {STATE}/actions ] && sed 's/^/{REPORT} action /' {STATE}/actions
[ -f {STATE}/starts ] && sed 's/^/{REPORT} start /' {STATE}/starts
if [ -f /etc/stackops/answers ] && grep -q "^mysql_root_password=" /etc/stackops/answers &&
    grep -q "^state='done'" /var/lib/stackops/status 2>/dev/null; then
    . /etc/stackops/answers
    check() {{ # check NAME COMMAND...: ok when COMMAND succeeds
        _n=$1; shift
        if "$@" >/tmp/check.out 2>&1; then say "check $_n ok"; else
            say "check $_n FAIL: $(tr '\\n' ' ' </tmp/check.out | cut -c1-200)"; fi
    }}
    nocheck() {{ # nocheck NAME COMMAND...: ok when COMMAND fails
        _n=$1; shift
        if "$@" >/tmp/check.out 2>&1; then say "check $_n FAIL: it succeeded"; else
            say "check $_n ok"; fi
    }}
    # password login as MySQL root: through the socket as an OS user that is not root, so
    # MariaDB's unix_socket authentication cannot let it in without the password
    asnobody() {{ runuser -u nobody -- env MYSQL_PWD="$1" mysql -u root -e 'SELECT 1'; }}
    check mysql-root-password asnobody "$mysql_root_password"
    nocheck mysql-root-empty-password-refused asnobody ""
    nova_sees_db() {{
        MYSQL_PWD="$nova_db_password" mysql --protocol=TCP -h "$controller_address" -u nova \\
            -N -e 'SHOW DATABASES' | grep -qx nova
    }}
    check mysql-nova-over-tcp nova_sees_db
    nova_wrong() {{
        MYSQL_PWD="x$nova_db_password" mysql --protocol=TCP -h "$controller_address" -u nova \\
            -e 'SELECT 1'
    }}
    nocheck mysql-nova-wrong-password-refused nova_wrong
    # the running server's own bind address (MariaDB's bind_address variable): every address,
    # as StackOps bound it (a lease renewed to another address must not stop MySQL; issue 22
    # finding 6), so the nodes reach it on controller_address (mysql-nova-over-tcp above)
    bound() {{
        [ "$(MYSQL_PWD="$mysql_root_password" mysql -u root -N -B -e 'SELECT @@bind_address')" \\
            = 0.0.0.0 ]
    }}
    check mysql-listens-on-every-address bound
    check rabbitmq-nova-password rabbitmqctl -q authenticate_user nova "$rabbit_password"
    nocheck rabbitmq-nova-wrong-password-refused rabbitmqctl -q authenticate_user nova \\
        "x$rabbit_password"
fi
say "end boot=$boot"
systemctl poweroff --no-block
"""

_FILES: dict[str, tuple[str, int]] = {
    "/etc/fstab": ("/dev/vda / ext4 defaults,errors=remount-ro 0 1\n", 0o644),
    "/etc/hostname": (f"{HOSTNAME}\n", 0o644),
    "/etc/hosts": (f"127.0.0.1\tlocalhost\n127.0.1.1\t{HOSTNAME}\n", 0o644),
    "/etc/network/interfaces": (
        "# The loopback network interface\nauto lo\niface lo inet loopback\n\n"
        "# The primary network interface\nauto eth0\niface eth0 inet static\n"
        f"\taddress {NODE_ADDRESS}/24\n\tgateway {GATEWAY}\n",
        0o644,
    ),
    "/etc/default/iscsitarget": ("ISCSITARGET_ENABLE=false\n", 0o644),
    "/usr/local/lib/stackops-standin/fake-service": (_FAKE_SERVICE, 0o755),
    "/usr/local/sbin/stackops-standin-provision": (_PROVISION, 0o755),
    "/usr/local/sbin/stackops-standin-report": (_REPORT, 0o755),
    "/etc/systemd/system/stackops-standin-report.service": (
        "[Unit]\nDescription=Stand-in node: report the agent's work on the console\n"
        "After=stackops-agent.service mariadb.service rabbitmq-server.service networking.service\n"
        "[Service]\nType=oneshot\nExecStart=/usr/local/sbin/stackops-standin-report\n"
        "StandardOutput=tty\nStandardError=tty\nTTYPath=/dev/console\nTimeoutSec=600\n"
        "[Install]\nWantedBy=multi-user.target\n",
        0o644,
    ),
    **{f"/usr/local/sbin/{name}": (_RECORDER, 0o755) for name in RECORDED},
    "/usr/lib/python2.6/dist-packages/nova/CA/genrootca.sh": (_GENROOTCA, 0o755),
    **{
        f"/lib/systemd/system/{name}.service": (
            f"[Unit]\nDescription=Stand-in for lucid's {name} (not on Debian 12)\n"
            f"[Service]\nExecStart=/usr/local/lib/stackops-standin/fake-service {name}\n"
            "[Install]\nWantedBy=multi-user.target\n",
            0o644,
        )
        for name in FAKE_SERVICES
    },
}

_SHELL_STEPS = f"""set -e
useradd --system --no-create-home --home-dir /var/lib/nova --shell /usr/sbin/nologin nova
useradd --system --no-create-home --home-dir /var/lib/glance --shell /usr/sbin/nologin glance
mkdir -p /etc/nova /var/lib/nova /var/lib/glance {STATE}
# lucid's my.cnf: a regular file whose [mysqld] section has the bind-address line
cnf=$(readlink -f /etc/mysql/my.cnf)
cat "$cnf" >/etc/mysql/my.cnf.new
printf '\\n[mysqld]\\nbind-address\\t\\t= 127.0.0.1\\n' >>/etc/mysql/my.cnf.new
rm -f /etc/mysql/my.cnf
mv /etc/mysql/my.cnf.new /etc/mysql/my.cnf
sed -i 's/^bind-address/#bind-address (stand-in: in my.cnf, as on lucid)/' \\
    /etc/mysql/mariadb.conf.d/50-server.cnf
systemctl enable stackops-standin-report.service networking.service
systemctl mask getty@tty2.service getty@tty3.service getty@tty4.service getty@tty5.service \\
    getty@tty6.service
systemctl mask apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer \\
    man-db.timer logrotate.timer 2>/dev/null || true
rm -f /etc/machine-id /var/lib/dbus/machine-id
: >/etc/machine-id
rm -rf /var/cache/apt/archives/*.deb /var/lib/apt/lists/* /usr/share/doc/* /usr/share/man/* \\
    /usr/share/info/*
find /usr/share/locale -mindepth 1 -maxdepth 1 ! -name 'en*' -exec rm -rf {{}} +
"""


@dataclass(frozen=True, slots=True)
class NodeImage:
    """A built stand-in image: the disk (qcow2), its kernel and initramfs, how it was built."""

    disk: Path
    kernel: Path
    initrd: Path
    key: str
    build_seconds: float  # how long building it took (when it was built, maybe another run)
    cached: bool  # True: this call found it in the cache


def image_key() -> str:
    """Hash of every input of the image: a change to any of them builds a new one."""
    inputs = {
        "version": IMAGE_VERSION,
        "suite": SUITE,
        "mirror": MIRROR,
        "packages": PACKAGES,
        "files": _FILES,
        "steps": _SHELL_STEPS,
    }
    blob = json.dumps(inputs, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def cache_root() -> Path:
    base = os.environ.get("DISTRO_BUILDER_CACHE")
    root = Path(base) if base else Path.home() / ".cache" / "distro-builder"
    return root / "standin"


def missing_tools() -> list[str]:
    """The host tools building and booting the image needs that are not installed."""
    tools = ("debootstrap", "chroot", "mkfs.ext4", "qemu-img", "qemu-system-x86_64")
    return [t for t in tools if shutil.which(t) is None]


def cannot_build() -> str | None:
    """Why this host cannot build or boot the stand-in (None: it can)."""
    if os.geteuid() != 0:
        return "building the stand-in node image needs root (debootstrap, chroot)"
    missing = missing_tools()
    if missing:
        return f"missing tool(s) for the stand-in node: {', '.join(missing)}"
    return None


def node_image(*, rebuild: bool = False) -> NodeImage:
    """The cached stand-in image, built on first use (several minutes: debootstrap + mkfs).

    Raises SmokeTestError when it cannot be built (not root, a tool missing, debootstrap failed).
    """
    why = cannot_build()
    if why:
        raise SmokeTestError(why, hint="run as root with debootstrap, e2fsprogs, qemu-utils")
    key = image_key()
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    final = root / key
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # several runs may start at once: one builds
        if rebuild:
            shutil.rmtree(final, ignore_errors=True)
        meta = final / "image.json"
        if meta.exists():
            info = json.loads(meta.read_text())
            return NodeImage(
                final / "node.qcow2",
                final / "vmlinuz",
                final / "initrd.img",
                key,
                float(info["build_seconds"]),
                True,
            )
        started = time.monotonic()
        work = root / f"{key}.partial"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        try:
            _build(work)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        seconds = time.monotonic() - started
        (work / "image.json").write_text(
            json.dumps(
                {"key": key, "suite": SUITE, "packages": PACKAGES, "build_seconds": seconds},
                indent=1,
            )
            + "\n"
        )
        shutil.rmtree(final, ignore_errors=True)
        work.rename(final)
        # older keys are stale: keep the cache to one image
        for other in root.iterdir():
            if other.is_dir() and other.name != key:
                shutil.rmtree(other, ignore_errors=True)
        log.info("Built the stand-in node image in %.0f s: %s", seconds, final)
        return NodeImage(
            final / "node.qcow2", final / "vmlinuz", final / "initrd.img", key, seconds, False
        )


def _build(work: Path) -> None:
    tree = work / "tree"
    log.info("debootstrap %s with %s (the stand-in node image)", SUITE, ", ".join(PACKAGES))
    proc = run(
        [
            require_tool("debootstrap", reason="build the stand-in node image"),
            "--variant=minbase",
            f"--include={','.join(PACKAGES)}",
            SUITE,
            os.fspath(tree),
            MIRROR,
        ],
        capture=True,
        check=False,
        env={"LC_ALL": "C.UTF-8", "DEBIAN_FRONTEND": "noninteractive"},
    )
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-20:])
        raise SmokeTestError(f"debootstrap of the stand-in node failed:\n{tail}")
    for path, (text, mode) in _FILES.items():
        dst = tree / path.lstrip("/")
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_text(text)
        dst.chmod(mode)
    chroot_env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C", "HOME": "/root"}
    proc = run(
        ["chroot", os.fspath(tree), "/bin/sh", "-c", _SHELL_STEPS],
        capture=True,
        check=False,
        env=chroot_env,
    )
    if proc.returncode != 0:
        raise SmokeTestError(f"setting up the stand-in node failed:\n{proc.stdout}{proc.stderr}")
    kernels = sorted((tree / "boot").glob("vmlinuz-*"))
    initrds = sorted((tree / "boot").glob("initrd.img-*"))
    if not kernels or not initrds:
        raise SmokeTestError(f"the stand-in node has no kernel or initramfs in {tree / 'boot'}")
    shutil.copy(kernels[-1], work / "vmlinuz")
    shutil.copy(initrds[-1], work / "initrd.img")
    used_kb = int(run(["du", "-sk", tree], capture=True).stdout.split()[0])
    size_mb = used_kb // 1024 * 12 // 10 + FREE_MB
    raw = work / "node.raw"
    run(["mkfs.ext4", "-q", "-L", "standin-root", "-d", tree, raw, f"{size_mb}M"])
    run(["qemu-img", "convert", "-O", "qcow2", raw, work / "node.qcow2"])
    raw.unlink()
    shutil.rmtree(tree)


def overlay(image: NodeImage, path: Path) -> Path:
    """A qcow2 overlay on the cached image: what one run's node writes goes there."""
    run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", image.disk, path])
    return path


def node_argv(
    image: NodeImage,
    disk: Path,
    *,
    accel: str,
    volume: Path | None = None,
    seed: Path | None = None,
    memory_mb: int = 2048,
    cpus: int = 2,
) -> list[str]:
    """QEMU booting the stand-in from `disk` (an overlay): serial console on stdio, two NICs
    (eth0 with the node address, eth1 the flat interface), vdb the volume disk; with `seed`,
    vdc is the seed disk and the boot is an install boot (init= the provision script)."""
    args = KERNEL_ARGS
    if seed is not None:
        args += " init=/usr/local/sbin/stackops-standin-provision"
    argv = [
        "qemu-system-x86_64",
        "-nographic",
        "-no-reboot",
        "-vga", "none",
        "-accel", accel,
        "-m", str(memory_mb),
        "-smp", str(cpus),
        "-kernel", os.fspath(image.kernel),
        "-initrd", os.fspath(image.initrd),
        "-append", args,
        "-drive", f"file={_q(disk)},format=qcow2,if=virtio",
        "-nic", "user,model=virtio-net-pci",
        "-nic", "user,model=virtio-net-pci,restrict=on",
    ]  # fmt: skip
    if volume is not None:
        argv += ["-drive", f"file={_q(volume)},format=qcow2,if=virtio"]
    if seed is not None:
        if volume is None:
            raise ValueError("the seed disk is /dev/vdc: give a volume disk too")
        argv += ["-drive", f"file={_q(seed)},format=raw,if=virtio"]
    return argv


def _q(path: Path) -> str:
    return os.fspath(path).replace(",", ",,")


def seed_disk(path: Path, files: dict[str, bytes], script: str) -> Path:
    """An ext4 image (mkfs.ext4 -d) with `files` and provision.sh (`script` under `set -e`,
    its exit status written to /run/provision.rc)."""
    folder = path.with_suffix(".d")
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    wrapped = "rc=0\n(\nset -ex\n" + script + '\n) || rc=$?\necho "$rc" >/run/provision.rc\n'
    (folder / "provision.sh").write_text(wrapped)
    size_mb = sum(len(d) for d in files.values()) // (1 << 20) + 16
    path.unlink(missing_ok=True)
    run(["mkfs.ext4", "-q", "-L", "standin-seed", "-d", folder, path, f"{size_mb}M"])
    shutil.rmtree(folder)
    return path


def volume_disk(path: Path, size: str = "256M") -> Path:
    run(["qemu-img", "create", "-q", "-f", "qcow2", path, size])
    return path


def required(names: Sequence[str]) -> None:
    for name in names:
        require_tool(name, reason="the stand-in node")
