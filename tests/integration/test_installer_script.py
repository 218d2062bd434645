"""The installer's question script (d-i/late.sh) under busybox sh against real cdebconf.

cdebconf is the installer's own debconf (Debian packages it as `cdebconf`). Its text frontend
reads answers from stdin, so the person installing is played by the test's stdin: answered
(preseeded with cdebconf's debconf-set-selections from the build's own rendered preseed, or on
the command line), unanswered (asked, typed), invalid (typed wrong, asked again). The only
boundary that cannot exist here is d-i itself: /proc/cmdline, /target and /dev/console are
redirected through STACKOPS_CMDLINE/STACKOPS_TARGET/STACKOPS_CONSOLE, and cdebconf's fixed
database folder (/var/lib/cdebconf) is bind-mounted from the test's tmp dir in a private mount
namespace (unshare), so the host's is never touched.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from distro_builder.build import load_inputs
from distro_builder.model import SystemSettings
from distro_builder.seed.preseed import boot_entries, initrd_files, render_preseed
from tests.helpers import IN_CI, require_tool_or_skip

pytestmark = pytest.mark.integration

CDEBCONF = Path("/usr/lib/cdebconf")
BUSYBOX = "/usr/bin/busybox"


def _can_unshare() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "--mount", "--map-root-user", "true"], capture_output=True, check=False
    )
    return probe.returncode == 0


@pytest.fixture(scope="module")
def env_ok() -> None:
    require_tool_or_skip("busybox", "unshare")
    if not (CDEBCONF / "debconf").exists():
        msg = "cdebconf is not installed (apt-get install cdebconf)"
        pytest.fail(msg) if IN_CI else pytest.skip(msg)
    if not _can_unshare():
        msg = "unshare --mount is not permitted here (needs root or user namespaces)"
        pytest.fail(msg) if IN_CI else pytest.skip(msg)


class Installer:
    """One fake installer environment: cdebconf db, /target, kernel command line, busybox PATH."""

    def __init__(self, root: Path, data_dir: Path) -> None:
        self.root = root
        self.db = root / "cdebconf"
        self.target = root / "target"
        self.scripts = root / "initrd"
        self.bin = root / "bin"
        for d in (self.db, self.target, self.bin):
            d.mkdir(parents=True)
        inputs = load_inputs(data_dir, None)
        self.roleset = inputs.roleset
        self.data_dir = data_dir
        for name, spec in initrd_files(data_dir, inputs.roleset, SystemSettings()).items():
            data, mode = spec if isinstance(spec, tuple) else (spec, 0o644)
            path = self.scripts / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            path.chmod(mode)
        # Every tool the script calls is a busybox applet, as in d-i.
        applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True, check=True)
        for applet in applets.stdout.split():
            (self.bin / applet).symlink_to(BUSYBOX)
        wrapper = root / "late-under-busybox"
        wrapper.write_text(f"#!{BUSYBOX} sh\nexec {BUSYBOX} sh {self.scripts}/stackops/late.sh\n")
        wrapper.chmod(0o755)
        self.wrapper = wrapper
        self.console = root / "console.log"

    def run(
        self, cmdline: str, typed: str = "", preseed: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        (self.root / "cmdline").write_text(cmdline + "\n")
        steps = [f"mount --bind {self.db} /var/lib/cdebconf"]
        if preseed is not None:
            seed = self.root / "preseed.cfg"
            seed.write_text(preseed)
            # d-i has loaded our templates by now in this case; see the file= test for the other.
            templates = self.scripts / "stackops" / "stackops.templates"
            steps.append(f"{CDEBCONF}/debconf-loadtemplate stackops {templates}")
            steps.append(f"{CDEBCONF}/debconf-set-selections {seed}")
        steps.append(f"exec {CDEBCONF}/debconf {self.wrapper}")
        env = {
            "PATH": f"{self.bin}:{CDEBCONF}",
            "DEBCONF_USE_CDEBCONF": "1",
            "DEBIAN_FRONTEND": "text",
            "STACKOPS_DIR": str(self.scripts / "stackops"),
            "STACKOPS_TARGET": str(self.target),
            "STACKOPS_CMDLINE": str(self.root / "cmdline"),
            "STACKOPS_CONSOLE": "/nonexistent",
            "TERM": "dumb",
        }
        return subprocess.run(
            ["unshare", "--mount", "--map-root-user", "/bin/sh", "-c", " && ".join(steps)],
            input=typed,
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )

    @property
    def answers_path(self) -> Path:
        return self.target / "etc" / "stackops" / "answers"

    def answers(self) -> dict[str, str]:
        """The answers file read the way the node reads it: `. /etc/stackops/answers` in sh."""
        keys = [q.key for q in self.roleset.questions] + ["roles"]
        script = f". {self.answers_path}\n" + "".join(
            f'printf "%s=%s\\0" {k} "${{{k}-__unset__}}"\n' for k in keys
        )
        out = subprocess.run(
            [BUSYBOX, "sh", "-c", script], capture_output=True, text=True, check=True
        ).stdout
        pairs = (item.split("=", 1) for item in out.split("\0") if item)
        return {k: v for k, v in pairs if v != "__unset__"}


@pytest.fixture
def installer(env_ok: None, tmp_path: Path, data_dir: Path) -> Installer:
    return Installer(tmp_path, data_dir)


@pytest.mark.parametrize("via_debconf", [True, False], ids=["debconf", "seed-file"])
def test_compute_all_answered_on_the_command_line_and_by_preseed(
    installer: Installer, via_debconf: bool
) -> None:
    entry = next(e for e in boot_entries(installer.roleset) if e.name == "compute")
    # The build's own preseed for this entry, as the deployment would bake it.
    from distro_builder.config.deployment import load_deployment

    dep_file = installer.root / "deployment.yaml"
    dep_file.write_text(
        "answers:\n"
        "  controller_address: 10.0.0.1\n"
        '  nova_db_password: "it\'s-n0va"\n'
        "  rabbit_password: r4bbit-secret\n"
    )
    dep = load_deployment(dep_file, installer.roleset, lambda p, s: "$6$x$y")
    seed = render_preseed(
        installer.data_dir, entry, roleset=installer.roleset, deployment=dep,
        codename="lucid", flavor_version="10.04", arch="amd64", allow_unauthenticated=True,
    )  # fmt: skip
    seed_file = installer.root / "stackops-compute.seed"
    seed_file.write_text(seed.text)
    cmdline = (
        f"BOOT_IMAGE=/install/vmlinuz file={seed_file} stackops/roles=compute "
        "stackops/hostname=cn7 stackops/flat_interface=eth2 ---"
    )
    if via_debconf:  # d-i put the preseed into its debconf database
        proc = installer.run(cmdline.replace(f"file={seed_file} ", ""), preseed=seed.text)
    else:  # d-i dropped the unknown questions: the script reads the file= preseed itself
        proc = installer.run(cmdline)
    assert proc.returncode == 0, proc.stderr
    assert "STACKOPS-LATE done" in proc.stderr
    assert "Prompt" not in proc.stdout  # nothing was asked
    answers = installer.answers()
    assert answers == {
        "roles": "compute",
        "hostname": "cn7",  # the command line wins over the preseed and d-i's hostname
        "controller_address": "10.0.0.1",
        "nova_db_password": "it's-n0va",  # a quote survives POSIX quoting
        "rabbit_password": "r4bbit-secret",
        "public_interface": "eth0",
        "flat_interface": "eth2",
        "libvirt_type": "auto",
        "fixed_range": "192.168.100.0/24",  # compute renders --fixed_range too
        "volume_address": "",  # optional, baked empty by the zero-touch deployment
        "volume_host": "",
    }
    mode = stat.S_IMODE(installer.answers_path.stat().st_mode)
    assert mode == 0o600
    assert "it's-n0va" not in proc.stderr and "r4bbit" not in proc.stderr  # no secrets logged
    assert "stackops-agent is not installed" in proc.stderr


def test_volume_unanswered_questions_are_asked(installer: Installer) -> None:
    # Typed: hostname, controller address, nova password twice, rabbit password twice,
    # public interface (default), another disk for nova-volumes (none: the installer's group).
    typed = "vol1\n10.1.2.3\nnovapw-secret\nnovapw-secret\nrabbitpw\nrabbitpw\n\n\n"
    proc = installer.run("stackops/roles=volume", typed=typed)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    for prompt in (
        "Host name of this node",
        "IPv4 address of the cloud controller",
        "Password of the nova MySQL user, again",
        "Password of the RabbitMQ user of nova, again",
        "Public network interface",
        "Another disk for nova-volumes",
    ):
        assert prompt in proc.stdout  # asked on the frontend
    assert installer.answers() == {
        "roles": "volume",
        "hostname": "vol1",
        "controller_address": "10.1.2.3",
        "nova_db_password": "novapw-secret",
        "rabbit_password": "rabbitpw",
        "public_interface": "eth0",
        "volume_device": "",
    }


def test_all_in_one_asks_only_the_admin_secret(installer: Installer) -> None:
    """ESXi-easy (issue 22): the all-in-one entry's own preseed (`stackops/ask required`, read
    from the file= seed as on the disc): asked are the host name (d-i's netcfg answers it on a
    real install) and the administrator's secret key twice; the service passwords and the
    interfaces are made on the node, the defaults taken there (not written here)."""
    entry = next(e for e in boot_entries(installer.roleset) if e.name == "all-in-one")
    seed = render_preseed(
        installer.data_dir, entry, roleset=installer.roleset, deployment=None,
        codename="lucid", flavor_version="10.04", arch="amd64", allow_unauthenticated=True,
    )  # fmt: skip
    assert [p for p in seed.unanswered if "/" not in p] == [
        "admin_password",
        "admin_password_again",
    ]
    seed_file = installer.root / "stackops-all-in-one.seed"
    seed_file.write_text(seed.text)
    cmdline = (
        f"BOOT_IMAGE=/install/vmlinuz file={seed_file} "
        "stackops/roles=controller,network,volume,compute ---"
    )
    proc = installer.run(cmdline, typed="aio1\nS3cret'$x\nS3cret'$x\n")
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "Secret key of the first cloud administrator" in proc.stdout
    for key in ("nova_db_password", "rabbit_password", "mysql_root_password", "public_interface",
                "flat_interface"):  # fmt: skip
        assert f"stackops: {key} is made on the node" in proc.stderr
    assert "Password of the nova MySQL user" not in proc.stdout
    assert "Public network interface" not in proc.stdout
    assert "Fixed (private) range" not in proc.stdout
    assert installer.answers() == {
        "roles": "controller,network,volume,compute",
        "hostname": "aio1",
        "admin_password": "S3cret'$x",
    }


def test_invalid_answers_are_asked_again(installer: Installer) -> None:
    typed = (
        "10.0.0.256\n\n"  # invalid IPv4: error note (Enter), asked again
        "10.0.0.9\n"
        "\n"  # public interface: default
        "192.168.100.7/24\n\n"  # host bits set: asked again
        "192.168.100.0/24\n"
        "12x\n\n"  # network size not a number
        "3\n\n"  # below the minimum 4
        "512\n"
        "\n"  # flat interface: default
        "172.16.0.0/33\n\n"  # prefix > 32
        "172.16.0.0/28\n"
    )
    cmdline = "stackops/roles=network stackops/hostname=n2 stackops/nova_db_password=pass-word-p "
    proc = installer.run(cmdline + "stackops/rabbit_password=pass-word-q", typed=typed)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    answers = installer.answers()
    assert answers["controller_address"] == "10.0.0.9"
    assert answers["fixed_range"] == "192.168.100.0/24"
    assert answers["network_size"] == "512"
    assert answers["flat_interface"] == "eth1"
    assert answers["floating_range"] == "172.16.0.0/28"
    log = proc.stderr
    assert "'10.0.0.256' is invalid" in log
    assert "host bits are set" in log
    assert "'12x' is invalid (it is not a whole number)" in log
    assert "'3' is invalid (it is below 4)" in log
    assert "'172.16.0.0/33' is invalid" in log


def test_password_pair_that_differs_is_asked_again(installer: Installer) -> None:
    # cdebconf's text frontend shows an error that follows password prompts without reading
    # a line, so no Enter after the mismatch.
    typed = "aaaaaaaa\nbbbbbbbb\npw1-secret\npw1-secret\n\n\n"
    cmdline = "stackops/roles=volume stackops/hostname=v stackops/controller_address=10.0.0.1 "
    proc = installer.run(cmdline + "stackops/rabbit_password=pass-word-x", typed=typed)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "nova_db_password: the two passwords differ, asking again" in proc.stderr
    assert installer.answers()["nova_db_password"] == "pw1-secret"
    assert "pw1-secret" not in proc.stderr


def test_short_password_on_the_command_line_is_asked(installer: Installer) -> None:
    """Issue 21: a password question's `min: 8` holds in the installer too (validate.sh under
    busybox ash); the refusal says why and never shows the password."""
    typed = "vol1\n10.1.2.3\nnova-secret\nnova-secret\nrabbit-secret\nrabbit-secret\n\n\n"
    cmdline = "stackops/roles=volume stackops/rabbit_password=r4bbit stackops/nova_db_password=n0va"
    proc = installer.run(cmdline, typed=typed)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert (
        "nova_db_password on the kernel command line is invalid (it is shorter than 8 "
        "characters), asking"
    ) in proc.stderr
    assert "rabbit_password on the kernel command line is invalid" in proc.stderr
    assert installer.answers()["nova_db_password"] == "nova-secret"
    assert "n0va" not in proc.stderr and "r4bbit" not in proc.stderr


def test_invalid_value_on_the_command_line_is_asked(installer: Installer) -> None:
    typed = "c1\n10.0.0.2\npass-word-p\npass-word-p\npass-word-q\npass-word-q\n\n\neth1\n\n"
    proc = installer.run("stackops/roles=compute stackops/public_interface=bad/if", typed=typed)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "public_interface on the kernel command line is invalid" in proc.stderr
    assert installer.answers()["public_interface"] == "eth0"


def test_not_a_stackops_entry_does_nothing(installer: Installer) -> None:
    proc = installer.run("file=/cdrom/preseed/ubuntu-server.seed quiet --")
    assert proc.returncode == 0, proc.stderr
    assert "not a StackOps boot entry" in proc.stderr
    assert not installer.answers_path.exists()


def test_first_boot_entry_asks_nothing_and_keeps_given_values(installer: Installer) -> None:
    proc = installer.run("stackops/roles= stackops/controller_address=10.9.9.9")
    assert proc.returncode == 0, proc.stderr
    assert "Prompt" not in proc.stdout
    assert installer.answers() == {"roles": "", "controller_address": "10.9.9.9"}


def test_early_script_prints_the_marker_only_on_stackops_entries(tmp_path: Path) -> None:
    require_tool_or_skip("busybox")
    script = Path(__file__).resolve().parents[2] / "d-i" / "early.sh"
    cmdline = tmp_path / "cmdline"
    env = {**os.environ, "STACKOPS_CMDLINE": str(cmdline)}
    cmdline.write_text("stackops/roles=controller,network quiet ---\n")
    out = subprocess.run([BUSYBOX, "sh", script], env=env, capture_output=True, text=True)
    assert out.stdout.splitlines()[0] == "STACKOPS-PRESEED roles=controller,network"
    cmdline.write_text("file=/cdrom/preseed/ubuntu-server.seed quiet --\n")
    out = subprocess.run([BUSYBOX, "sh", script], env=env, capture_output=True, text=True)
    assert out.stdout == "" and out.returncode == 0


def test_installer_scripts_pass_shellcheck() -> None:
    require_tool_or_skip("shellcheck")
    folder = Path(__file__).resolve().parents[2] / "d-i"
    proc = subprocess.run(
        ["shellcheck", "-s", "sh", folder / "late.sh", folder / "early.sh"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout


@pytest.mark.parametrize("via_debconf", [True, False], ids=["debconf", "seed-file"])
def test_smart_installer_settings_reach_the_answers_file(
    installer: Installer, via_debconf: bool
) -> None:
    """build --installer-url: the preseed's stackops/installer_* become answers (never asked,
    the token never printed), for a role entry and for the first-boot entry alike."""
    from distro_builder.seed.preseed import installer_settings

    settings = installer_settings("https://10.0.0.2:8443", "Enrol-T0ken_secret", "ab" * 32, 420)
    for entry in boot_entries(installer.roleset):
        if entry.roles and entry.name != "compute":  # compute and the first-boot entry
            continue
        seed = render_preseed(
            installer.data_dir, entry, roleset=installer.roleset, deployment=None,
            codename="lucid", flavor_version="10.04", arch="amd64",
            allow_unauthenticated=True, installer=settings,
        )  # fmt: skip
        seed_file = installer.root / f"{entry.name}.seed"
        seed_file.write_text(seed.text)
        roles = ",".join(entry.roles)
        cmdline = f"file={seed_file} stackops/roles={roles} stackops/controller_address=10.0.0.1"
        answers = ["cn1", "pw-secret", "pw-secret", "rb-secret", "rb-secret"]
        typed = "" if not entry.roles else "\n".join(answers) + "\n"
        if via_debconf:
            proc = installer.run(cmdline.replace(f"file={seed_file} ", ""), typed, seed.text)
        else:
            proc = installer.run(cmdline, typed)
        assert proc.returncode == 0, proc.stderr
        text = installer.answers_path.read_text()
        assert "installer_url='https://10.0.0.2:8443'\n" in text, entry.name
        assert "installer_token='Enrol-T0ken_secret'\n" in text
        assert f"installer_fingerprint='{settings.fingerprint}'\n" in text
        assert "installer_wait='420'\n" in text
        assert "stackops: Smart Installer https://10.0.0.2:8443" in proc.stderr
        assert "Enrol-T0ken_secret" not in proc.stderr + proc.stdout
        assert stat.S_IMODE(installer.answers_path.stat().st_mode) == 0o600
