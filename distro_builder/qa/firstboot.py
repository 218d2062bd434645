"""Stage 5 (firstboot) on a stand-in installed node (qa/standin.py): the disc's own agent and
installer script, a real booted Debian 12 node, the agent's console lines followed to the end.

What comes from the disc (or the build's inputs): the stackops-agent .deb, the entry's kernel
command line and preseed file, and the installer's question script (install/initrd.gz:
/stackops/late.sh with its questions table, templates and validators). late.sh runs here under
busybox against real cdebconf (the d-i boundary: /proc/cmdline, /target and /dev/console come
through STACKOPS_CMDLINE/STACKOPS_TARGET/STACKOPS_CONSOLE; cdebconf's database is bind-mounted in
a private mount namespace), with the stand-in's answers on the command line
(`stackops/<key>=value`, as typed at the boot prompt) and the entry's own preseed (`file=`).

A run of a node: an install boot (the provision script: dpkg -i the agent, the answers file),
then boots that follow the `STACKOPS step=i/n ...` lines to `STACKOPS-FIRSTBOOT done|failed`,
then the stand-in's report (`STANDIN ...` lines: agent unit, status file, markers, logs,
recorded actions, the MySQL/RabbitMQ checks), then the node powers off.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from distro_builder.errors import SmokeTestError
from distro_builder.qa import standin
from distro_builder.qa.console import TAIL_LINES, SerialConsole
from distro_builder.run import run

INSTALLER_DIR = "stackops"
LATE_FILES = ("late.sh", "validate.sh", "questions", "stackops.templates")
CDEBCONF = Path("/usr/lib/cdebconf")
BUSYBOX = "/usr/bin/busybox"

# Answers the stand-in gives on late.sh's command line. The passwords carry characters that
# need quoting in sh, SQL, URLs and Erlang terms (no spaces: a kernel command line word).
SECRETS = {
    "mysql_root_password": "r00t'Secret#1",
    "nova_db_password": "n@va/Secret:2%",
    "rabbit_password": 'rabbit"Secret\\3',
    "admin_password": "adm1n$Secret&4",
}
NODE_ANSWERS = {
    "hostname": standin.HOSTNAME,
    "controller_address": standin.NODE_ADDRESS,
    "public_interface": "eth0",
    "flat_interface": "eth1",
    "volume_device": "/dev/vdb",
    "floating_range": "10.0.3.0/28",
    **SECRETS,
}

# Seconds, measured under TCG on 2 shared cores (see README "QA: smoke"), with margin.
PROVISION_TIMEOUT = 180.0
BOOT_TO_FIRST_STEP = 300.0  # power-on to the agent's first line
STEP_TIMEOUT = 300.0  # one step (MariaDB/RabbitMQ restarts are the slow ones)
REPORT_TIMEOUT = 300.0  # done to the end of the report and power-off
QUIET_BOOT_TIMEOUT = 420.0  # a boot with nothing to do, to the end of the report

PROGRESS_RE = re.compile(
    r"STACKOPS step=(\d+)/(\d+) role=(\S+) name=(\S+) status=(ok|failed) t=([0-9.]+)s"
)
# whole lines: serial output arrives in pieces, so a value is only complete at the line's end
DONE_RE = re.compile(r"STACKOPS-FIRSTBOOT done roles=(\S*)[ \t\r]*\n")
FAILED_RE = re.compile(r"STACKOPS-FIRSTBOOT failed step=(\S+) log=(\S+)[ \t\r]*\n")
REPORT_END_RE = re.compile(r"STANDIN end boot=(\w+)[ \t\r]*\n")
PROVISION_RE = re.compile(r"STANDIN-PROVISION (ok|failed rc=\d+)")

# Faults a test can inject on the node (and fix again): a service that will not start.
FAULTS = {
    "mariadb-will-not-start": (
        "printf '[mysqld]\\nstackops-standin-no-such-option = 1\\n' "
        ">/etc/mysql/conf.d/zz-standin-fault.cnf",
        "rm -f /etc/mysql/conf.d/zz-standin-fault.cnf",
    ),
}


@dataclass(frozen=True, slots=True)
class NodeInputs:
    """What a stand-in node takes from the disc for one boot entry."""

    roles: str
    debs: Mapping[str, bytes]  # stackops-agent and the roles' metapackages, by file name
    late_files: Mapping[str, bytes]  # LATE_FILES by name
    append: str  # the entry's kernel command line
    preseed: bytes | None  # the entry's preseed file (file=...)


def inputs_from_disc(iso: Path, append: str, initrd: str, roles: str) -> NodeInputs:
    """The agent .deb, late.sh and its files, and the entry's preseed, read from the disc."""
    from distro_builder.media.initrd import read_initrd_file
    from distro_builder.media.iso import IsoImage

    with IsoImage(iso) as image:
        debs = sorted(
            f.path
            for f in image.walk("/")
            if f.path.rsplit("/", 1)[-1].startswith("stackops-agent_") and f.path.endswith(".deb")
        )
        if not debs:
            raise SmokeTestError(
                f"{iso}: no stackops-agent_*.deb on the disc",
                hint="a disc built with --no-packages cannot configure a node",
            )
        wanted = {"agent", *roles.split(",")}
        found = {}
        for f in image.walk("/"):
            base = f.path.rsplit("/", 1)[-1]
            pkg = base.split("_", 1)[0]
            if base.endswith(".deb") and pkg.removeprefix("stackops-") in wanted:
                found[base] = image.read(f.path)
        lacking = wanted - {b.split("_", 1)[0].removeprefix("stackops-") for b in found}
        if lacking:
            raise SmokeTestError(
                f"{iso}: no package(s) {', '.join(f'stackops-{r}' for r in sorted(lacking))} "
                "on the disc"
            )
        initrd_data = image.read(initrd)
        files: dict[str, bytes] = {}
        for name in LATE_FILES:
            data = read_initrd_file(initrd_data, f"{INSTALLER_DIR}/{name}")
            if data is None:
                raise SmokeTestError(f"{iso}: {initrd} has no /{INSTALLER_DIR}/{name}")
            files[name] = data
        preseed = None
        for word in append.split():
            if word.startswith("file=/cdrom/"):
                preseed = image.read(word[len("file=/cdrom") :])
    return NodeInputs(roles, found, files, append, preseed)


def node_entries(data_dir: Path) -> dict[str, str]:
    """Every reference-architecture node's boot entry -> its roles ("a,b"), from roles/."""
    from distro_builder.config.roles import load_roles

    return {
        n.name: ",".join(n.roles) for arch in load_roles(data_dir).architectures for n in arch.nodes
    }


def inputs_from_tree(data_dir: Path, roles: str, *, version: str = "0.0.0") -> NodeInputs:
    """The same parts built from the working tree (the agent .deb, the initrd's scripts)."""
    from distro_builder.agent import build_agent_deb
    from distro_builder.archive.publish import build_metapackage
    from distro_builder.config.roles import load_roles
    from distro_builder.model import SystemSettings
    from distro_builder.packageset import AGENT_PACKAGE as AGENT
    from distro_builder.packageset import MAINTAINER, role_roots
    from distro_builder.seed.preseed import initrd_files

    mtime = 1302652800
    name, deb = build_agent_deb(data_dir, version=version, mtime=mtime)
    debs = {name: deb}
    roots = role_roots(data_dir, roles.split(","), "amd64", [AGENT])
    for r in roots:
        n, d = build_metapackage(r, roots[r], version=version, mtime=mtime, maintainer=MAINTAINER)
        debs[n] = d
    files: dict[str, bytes] = {}
    for path, spec in initrd_files(data_dir, load_roles(data_dir), SystemSettings()).items():
        data = spec[0] if isinstance(spec, tuple) else spec
        if path.startswith(f"{INSTALLER_DIR}/"):
            files[path.split("/", 1)[1]] = data
    append = f"stackops/roles={roles} --"  # lucid's separator
    return NodeInputs(roles, debs, files, append, None)


def waits_for(inputs: NodeInputs) -> tuple[str, ...]:
    """The roles a node of `inputs.roles` waits for on another node: a question its roles ask
    that a role it lacks would answer itself (controller_address: skip_with controller). Read
    from the questions table the disc's installer carries (the disc's own truth)."""
    roles = set(inputs.roles.split(",")) - {""}
    table = inputs.late_files.get("questions", b"").decode(errors="replace")
    wanted: set[str] = set()
    for line in table.splitlines():
        if line.startswith("#") or line.count("|") < 12:
            continue
        fields = line.split("|")
        _key, _type, asked_by, skip_with, optional = (*fields[:4], fields[8])
        skip = set(filter(None, skip_with.split(",")))
        if optional == "yes":  # nothing to wait for (the controller's network_address)
            continue
        if skip and roles & set(asked_by.split(",")) and not roles & skip:
            wanted |= skip
    return tuple(sorted(wanted))


# --- the answers file, written by late.sh --------------------------------------------------------


def cannot_write_answers() -> str | None:
    if shutil.which("busybox") is None:
        return "busybox is missing (late.sh runs under it)"
    if not (CDEBCONF / "debconf").exists():
        return "cdebconf is missing (late.sh talks to the installer's debconf)"
    if shutil.which("unshare") is None:
        return "unshare is missing"
    return None


def write_answers(inputs: NodeInputs, answers: Mapping[str, str], work: Path) -> tuple[bytes, str]:
    """Run the disc's late.sh as d-i's late_command would; return (the answers file, its log).

    `answers` go on its command line as stackops/<key>=<value> after the entry's own words.
    """
    why = cannot_write_answers()
    if why:
        raise SmokeTestError(why, hint="apt-get install busybox cdebconf util-linux")
    work.mkdir(parents=True, exist_ok=True)
    scripts = work / "initrd" / INSTALLER_DIR
    scripts.mkdir(parents=True)
    for name, data in inputs.late_files.items():
        (scripts / name).write_bytes(data)
        (scripts / name).chmod(0o755 if name.endswith(".sh") else 0o644)
    db = work / "cdebconf"
    target = work / "target"
    bindir = work / "bin"
    for d in (db, target, bindir):
        d.mkdir()
    applets = run([BUSYBOX, "--list"], capture=True)
    for applet in applets.stdout.split():
        (bindir / applet).symlink_to(BUSYBOX)
    words = [w for w in inputs.append.split() if not w.startswith("file=")]
    if inputs.preseed is not None:
        (work / "entry.seed").write_bytes(inputs.preseed)
        words.insert(0, f"file={work / 'entry.seed'}")
    extra = [f"stackops/{k}={v}" for k, v in answers.items()]
    if any(c.isspace() for w in extra for c in w):
        raise ValueError("an answer on the kernel command line cannot hold white space")
    seps = [i for i, w in enumerate(words) if w in ("--", "---")]  # the base's separator
    dash = seps[0] if seps else len(words)
    words[dash:dash] = extra
    (work / "cmdline").write_text(" ".join(words) + "\n")
    wrapper = work / "late-under-busybox"
    wrapper.write_text(f"#!{BUSYBOX} sh\nexec {BUSYBOX} sh {scripts}/late.sh\n")
    wrapper.chmod(0o755)
    env = {
        "PATH": f"{bindir}:{CDEBCONF}",
        "DEBCONF_USE_CDEBCONF": "1",
        "DEBIAN_FRONTEND": "text",
        "STACKOPS_DIR": os.fspath(scripts),
        "STACKOPS_TARGET": os.fspath(target),
        "STACKOPS_CMDLINE": os.fspath(work / "cmdline"),
        "STACKOPS_CONSOLE": "/nonexistent",
        "TERM": "dumb",
    }
    steps = f"mount --bind {shlex.quote(os.fspath(db))} /var/lib/cdebconf && exec {CDEBCONF}/debconf {shlex.quote(os.fspath(wrapper))}"  # noqa: E501
    proc = run(
        ["unshare", "--mount", "--map-root-user", "/bin/sh", "-c", steps],
        input="\n" * 64,  # anything still asked takes its default
        capture=True,
        env=env,
        unset=[k for k in os.environ if k.startswith("DEBCONF_") or k == "DEBIAN_FRONTEND"],
        timeout=120,
        check=False,
    )
    answers_file = target / "etc" / "stackops" / "answers"
    if proc.returncode != 0 or not answers_file.exists() or "STACKOPS-LATE done" not in proc.stderr:
        tail = "\n".join((proc.stderr + proc.stdout).splitlines()[-15:])
        raise SmokeTestError(
            f"late.sh did not write the answers file (exit {proc.returncode}):\n{tail}"
        )
    return answers_file.read_bytes(), proc.stderr


# --- one node ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Step:
    index: int
    total: int
    role: str
    name: str
    status: str
    seconds: float


@dataclass
class Report:
    """The STANDIN lines of one boot."""

    boot: str = ""
    enabled: str = ""
    result: str = ""
    ran: str = ""  # the agent unit's ExecMainStartTimestampMonotonic (0: it did not run)
    status: dict[str, str] = field(default_factory=dict)
    done: list[str] = field(default_factory=list)
    agentlog: list[str] = field(default_factory=list)
    steplogs: dict[str, tuple[int, str]] = field(default_factory=dict)  # runs, exit codes
    actions: list[str] = field(default_factory=list)
    starts: list[str] = field(default_factory=list)
    checks: dict[str, str] = field(default_factory=dict)  # name -> "ok" or "FAIL: ..."
    lines: list[str] = field(default_factory=list)


@dataclass
class Boot:
    """What one boot showed: the agent's progress, how it ended, the report, timings."""

    log: Path
    steps: list[Step] = field(default_factory=list)
    end: str = ""  # the STACKOPS-FIRSTBOOT line, or "" (none)
    report: Report | None = None
    seconds_to_end: float | None = None  # power-on to the STACKOPS-FIRSTBOOT line
    seconds: float = 0.0  # power-on to power-off (or the cut)


def parse_report(text: str) -> Report:
    r = Report()
    for raw in text.splitlines():
        i = raw.find("STANDIN ")
        if i < 0:
            continue
        line = raw[i + len("STANDIN ") :].rstrip()
        r.lines.append(line)
        kind, _, rest = line.partition(" ")
        if kind == "begin":
            r.boot = rest.removeprefix("boot=")
        elif kind == "agent":
            fields = dict(p.split("=", 1) for p in rest.split() if "=" in p)
            r.enabled, r.result, r.ran = (fields.get(k, "") for k in ("enabled", "result", "ran"))
        elif kind == "status":
            key, _, value = rest.partition("=")
            r.status[key] = value.strip("'")
        elif kind == "done-files":
            r.done = rest.split()
        elif kind == "agentlog":
            r.agentlog.append(rest)
        elif kind == "steplog":
            m = re.match(r"(\S+) runs=(\d+) exits=(\S*)", rest)
            if m:
                r.steplogs[m.group(1)] = (int(m.group(2)), m.group(3))
        elif kind == "action":
            r.actions.append(rest)
        elif kind == "start":
            r.starts.append(rest)
        elif kind == "check":
            name, _, verdict = rest.partition(" ")
            r.checks[name] = verdict
    return r


class StandinNode:
    """One node: an overlay on the cached image, a volume disk, its boots."""

    def __init__(
        self,
        image: standin.NodeImage,
        work: Path,
        log_dir: Path,
        name: str,
        *,
        accel: str = "tcg",
        scale: float = 1.0,
    ) -> None:
        self.image = image
        self.work = work
        self.log_dir = log_dir
        self.name = name
        self.accel = accel
        self.scale = scale
        work.mkdir(parents=True, exist_ok=True)
        self.disk = standin.overlay(image, work / "node.qcow2")
        self.volume = standin.volume_disk(work / "volume.qcow2")
        self.boots: list[Boot] = []
        self.logs: list[str] = []

    def _log(self, what: str) -> Path:
        path = self.log_dir / f"{self.name}-{len(self.logs) + 1}-{what}.log"
        self.logs.append(os.fspath(path))
        return path

    def provision(self, script: str, files: Mapping[str, bytes] | None = None) -> None:
        """An install boot: run `script` (sh, in the seed disk's folder) with no init system."""
        seed = standin.seed_disk(self.work / "seed.img", dict(files or {}), script)
        argv = standin.node_argv(
            self.image, self.disk, accel=self.accel, volume=self.volume, seed=seed
        )
        with SerialConsole(argv, self._log("install")) as console:
            console.expect(
                PROVISION_RE,
                timeout=PROVISION_TIMEOUT * self.scale,
                what="the stand-in's install boot to finish (STANDIN-PROVISION)",
            )
            assert console.match is not None
            if console.match.group(1) != "ok":
                raise _fail(console, f"the install boot failed: {console.match.group(0)}")
            _wait_exit(console, 30)
        seed.unlink()

    def install(self, inputs: NodeInputs, answers_file: bytes) -> None:
        """What the installer leaves on the disk: the agent and the roles' metapackages (their
        Depends on lucid's Nova packages cannot be met on Debian 12: the stand-in boundary), then
        the answers file."""
        self.provision(
            "dpkg --force-depends -i ./*.deb\n"
            "install -d -m 0700 /etc/stackops\n"
            "cp ./answers /etc/stackops/answers\n"
            "chmod 0600 /etc/stackops/answers\n",
            {**inputs.debs, "answers": answers_file},
        )

    def boot(
        self,
        *,
        cut_after: int | None = None,
        on_step: Callable[[Step], None] | None = None,
        expect_agent: bool = True,
    ) -> Boot:
        """Power on and follow the agent. cut_after=k: kill QEMU (SIGKILL, a power cut) right
        after step k's ok line. Otherwise wait for the report and the power-off."""
        argv = standin.node_argv(self.image, self.disk, accel=self.accel, volume=self.volume)
        b = Boot(self._log(f"boot{len(self.boots) + 1}"))
        self.boots.append(b)
        with SerialConsole(argv, b.log) as console:
            if expect_agent:
                self._follow(console, b, cut_after, on_step)
                if cut_after is not None and b.end == "":
                    os.kill(console.pid, signal.SIGKILL)
                    b.seconds = console.elapsed()
                    return b
            timeout = (REPORT_TIMEOUT if expect_agent else QUIET_BOOT_TIMEOUT) * self.scale
            console.expect(REPORT_END_RE, timeout=timeout, what="the stand-in's report to end")
            full = console.text()
            text = full[full.rfind("STANDIN begin") :]
            b.report = parse_report(text)
            if not expect_agent:  # the agent's own lines, not the report's copy of agent.log
                own = "\n".join(ln for ln in full.splitlines() if "STANDIN" not in ln)
                b.steps = [_step(m) for m in PROGRESS_RE.finditer(own)]
            _wait_exit(console, 120 * self.scale)
            b.seconds = console.elapsed()
        return b

    def _follow(
        self,
        console: SerialConsole,
        b: Boot,
        cut_after: int | None,
        on_step: Callable[[Step], None] | None,
    ) -> None:
        timeout = BOOT_TO_FIRST_STEP
        while True:
            i = console.expect(
                [PROGRESS_RE, DONE_RE, FAILED_RE],
                timeout=timeout * self.scale,
                what="the agent's next STACKOPS line"
                + (f" (after step {b.steps[-1].index})" if b.steps else " (its first step)"),
            )
            assert console.match is not None
            if i == 0:
                step = _step(console.match)
                b.steps.append(step)
                if on_step is not None:
                    on_step(step)
                if step.status == "ok" and step.index == cut_after:
                    return
                timeout = STEP_TIMEOUT
                continue
            b.end = console.match.group(0).strip()
            b.seconds_to_end = console.elapsed()
            return


def _step(m: re.Match[str]) -> Step:
    return Step(
        int(m.group(1)), int(m.group(2)), m.group(3), m.group(4), m.group(5), float(m.group(6))
    )  # noqa: E501


def _wait_exit(console: SerialConsole, timeout: float) -> None:
    try:
        console.expect(re.compile(r"(?!)"), timeout=timeout, what="the node to power off")
    except SmokeTestError as e:
        if "QEMU exited" not in str(e):
            raise


def _fail(console: SerialConsole, message: str) -> SmokeTestError:
    lines = "\n".join(f"  | {line}" for line in console.tail()) or "  | (no console output)"
    return SmokeTestError(
        f"{message} ({console.elapsed():.1f} s since QEMU start)\n"
        f"Last {TAIL_LINES} console lines:\n{lines}\nFull console log: {console.log_path}"
    )


# --- what a finished node must show --------------------------------------------------------------


def check_done(roles: str, b: Boot, *, resumed_from: int = 1) -> list[str]:
    """Problems with a boot that should have configured `roles` (empty: none). Steps before
    `resumed_from` were finished in an earlier boot and must not run again."""
    problems = []
    if not b.end.startswith("STACKOPS-FIRSTBOOT done"):
        problems.append(f"the agent ended with {b.end or 'no STACKOPS-FIRSTBOOT line'!r}")
        return problems
    got = b.end.split("roles=", 1)[1]
    if set(got.split(",")) != set(roles.split(",")):
        problems.append(f"the agent configured roles={got!r}, the node has {roles!r}")
    if not b.steps:
        problems.append("no STACKOPS step lines before done")
        return problems
    n = b.steps[0].total
    if [s.index for s in b.steps] != list(range(1, n + 1)):
        problems.append(f"step lines out of order: {[s.index for s in b.steps]} of {n}")
    bad = [s.name for s in b.steps if s.status != "ok"]
    if bad:
        problems.append(f"steps not ok: {bad}")
    r = b.report
    if r is None:
        return [*problems, "no stand-in report after done"]
    if r.status.get("state") != "done":
        problems.append(f"status file: state={r.status.get('state')!r}, not 'done'")
    pending = [k for k, v in r.status.items() if k.startswith("step_") and v != "done"]
    if pending:
        problems.append(f"status file: steps not done: {pending}")
    names = [s.name for s in b.steps]
    if sorted(r.done) != sorted(names):
        problems.append(f".done markers {sorted(r.done)} != the steps {sorted(names)}")
    if r.enabled != "disabled":
        problems.append(f"after done the agent's unit is {r.enabled!r}, not disabled")
    earlier = {
        m.group(1)
        for line in _this_run(r.agentlog)
        if (m := re.search(r"step \d+/\d+ \S+/(\S+): done in an earlier run", line))
    }
    want_earlier = {s.name for s in b.steps if s.index < resumed_from}
    if earlier != want_earlier:
        rerun = sorted(want_earlier - earlier)
        skipped = sorted(earlier - want_earlier)
        if rerun:
            problems.append(f"finished in an earlier boot but run again: {rerun}")
        if skipped:
            problems.append(f"not run in this boot, said done earlier: {skipped}")
    for name in names:
        runs, exits = r.steplogs.get(name, (0, ""))
        if runs < 1:
            problems.append(f"step {name}: its log has no run")
        elif not exits.rstrip(",").endswith("0"):
            problems.append(f"step {name}: its log's last exit is {exits!r}")
    return problems


def _this_run(agentlog: list[str]) -> list[str]:
    """agent.log from the last 'agent started' on."""
    starts = [i for i, line in enumerate(agentlog) if "agent started" in line]
    return agentlog[starts[-1] :] if starts else agentlog


def check_quiet(first: Report, again: Boot) -> list[str]:
    """Problems with a boot after done: the agent must not run, nothing may run twice."""
    problems = []
    r = again.report
    if r is None:
        return ["no stand-in report"]
    if again.steps:
        problems.append(f"the agent printed {len(again.steps)} step lines on a boot after done")
    if r.enabled != "disabled":
        problems.append(f"the agent's unit is {r.enabled!r} on the boot after done")
    if r.ran not in ("", "0"):
        problems.append("the agent's unit ran on the boot after done")
    if r.agentlog != first.agentlog:
        new = r.agentlog[len(first.agentlog) :]
        problems.append(f"agent.log grew on the boot after done: {new[:3]}")
    if r.actions != first.actions:
        problems.append(f"recorded Nova actions changed: {r.actions[len(first.actions) :][:3]}")
    if r.status != first.status:
        problems.append("the status file changed on the boot after done")
    if r.steplogs != first.steplogs:
        problems.append("the step logs changed on the boot after done")
    twice = sorted({a.split(" ", 1)[1] for a in r.actions if _count(r.actions, a) > 1})
    if twice:
        problems.append(f"Nova actions recorded twice: {twice}")
    return problems


def _count(actions: list[str], action: str) -> int:
    tail = action.split(" ", 1)[1]
    return sum(1 for a in actions if a.split(" ", 1)[1] == tail)


def check_servers(r: Report | None) -> list[str]:
    """Issue 14: the controller's real MySQL and RabbitMQ hold what the answers say."""
    if r is None:
        return ["no stand-in report"]
    want = (
        "mysql-root-password",
        "mysql-root-empty-password-refused",
        "mysql-nova-over-tcp",
        "mysql-nova-wrong-password-refused",
        "mysql-listens-on-every-address",
        "rabbitmq-nova-password",
        "rabbitmq-nova-wrong-password-refused",
    )
    return [f"check {n}: {r.checks.get(n, 'not run')}" for n in want if r.checks.get(n) != "ok"]


# --- stage 5 -------------------------------------------------------------------------------------


@dataclass
class FirstbootResult:
    roles: str
    boots: list[Boot]
    problems: list[str]
    logs: list[str]
    answers_log: str = ""

    @property
    def seconds_to_done(self) -> float | None:
        return self.boots[0].seconds_to_end if self.boots else None


def run_firstboot(
    inputs: NodeInputs,
    *,
    log_dir: Path,
    name: str,
    accel: str = "tcg",
    scale: float = 1.0,
    again: bool = True,
    keep: bool = False,
    on_step: Callable[[Step], None] | None = None,
) -> FirstbootResult:
    """Stage 5 on a stand-in node: install, first boot to done, and (again=True) a second boot
    that must change nothing. Raises SmokeTestError when the node cannot be made."""
    image = standin.node_image()
    work = Path(tempfile.mkdtemp(prefix="distro-builder-standin-"))
    try:
        answers, late_log = write_answers(inputs, NODE_ANSWERS, work / "late")
        node = StandinNode(image, work / "node", log_dir, name, accel=accel, scale=scale)
        node.install(inputs, answers)
        first = node.boot(on_step=on_step)
        problems = check_done(inputs.roles, first)
        if b"mysql_root_password=" in answers:  # a node that runs the cloud's MySQL
            problems += check_servers(first.report)
        if again and not problems and first.report is not None:
            second = node.boot(expect_agent=False)
            problems += check_quiet(first.report, second)
        return FirstbootResult(inputs.roles, node.boots, problems, node.logs, late_log)
    finally:
        if keep:
            print(f"kept the stand-in node's disks: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def wall(t0: float) -> float:
    return time.monotonic() - t0
