"""Stage 5 (firstboot) on a stand-in installed node: a Debian 12 image booted in QEMU (TCG), the
agent .deb and role metapackages from the QA disc built from this working tree, the answers
file written by the disc's late.sh, real systemd, MariaDB and RabbitMQ.

The boundary is stated in distro_builder/qa/standin.py: Nova's tools (nova-manage,
glance-manage) are recorders, and the services nova-*, glance-*, libvirt-bin and iscsitarget are
units that record their start and idle. Stand-in differences from lucid: /etc/mysql/my.cnf is a
regular file with lucid's bind-address line (Debian 12 keeps it in mariadb.conf.d/50-server.cnf);
the role metapackages are installed with --force-depends (their lucid Depends do not exist).

`make test` runs the controller entry end to end through `smoke --full` (stages 1-3 on the disc,
4 skipped with its reason, 5 on the stand-in, JUnit). `make e2e` (DISTRO_BUILDER_E2E=1) runs
every node entry, the power cuts, the failing step and the checks that a broken agent fails.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from distro_builder.qa import firstboot, standin
from distro_builder.qa.smoke import junit_xml, smoke_test
from tests.helpers import IN_CI, require_tool_or_skip

pytestmark = [pytest.mark.qemu, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
# `make test` deselects these (pyproject.toml: -m "not e2e"); `make e2e` runs them.
e2e = pytest.mark.e2e
NODES = firstboot.node_entries(REPO)  # roles/architectures.yaml


def _need_standin() -> None:
    why = standin.cannot_build() or firstboot.cannot_write_answers()
    if why:
        pytest.fail(why) if IN_CI else pytest.skip(why)


def _cli(*args: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "distro_builder", *args],
        capture_output=True, text=True, cwd=REPO, timeout=900,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def qa_disc(tmp_path_factory: pytest.TempPathFactory, demo_base: Path) -> Path:
    """The QA disc of `make iso BUILD_ARGS=--serial-console`, from this working tree (agent,
    roles, late.sh as they are now)."""
    require_tool_or_skip("debconf-set-selections")
    _need_standin()
    work = tmp_path_factory.mktemp("firstboot-disc")
    _cli("demo-repo", "-o", str(work / "demo-repo"))
    out = work / "stackops-amd64.iso"
    _cli(
        "build", "--base", str(demo_base), "-o", str(out),
        "--sources", str(work / "demo-repo" / "sources.list"), "--cache", str(work / "cache"),
        "--serial-console",
    )  # fmt: skip
    return out


def _smoke_stage5(qa_disc: Path, label: str, tmp_path: Path) -> None:
    report = smoke_test(qa_disc, entries=[label], full=True, accel="tcg", log_dir=tmp_path)
    (entry,) = report.entries
    by = {s.name: s for s in entry.stages}
    assert [by[n].status for n in ("menu", "boot", "preseed")] == ["pass"] * 3, by
    assert by["install"].status == "skipped" and "netboot" in by["install"].message
    assert by["firstboot"].status == "pass", by["firstboot"].message
    assert "stand-in" in by["firstboot"].message  # the pass says where it ran
    xml = ET.fromstring(junit_xml(report))
    case = next(c for c in xml.iter("testcase") if c.get("name", "").startswith("5-firstboot"))
    assert case.find("failure") is None and case.find("skipped") is None
    assert float(case.get("time", "0")) > 30  # it really ran VMs
    assert report.summary == "4 of 5 stages ran, 4 passed, 1 skipped"


def test_controller_first_boot_to_done_on_the_stand_in(qa_disc: Path, tmp_path: Path) -> None:
    """smoke --full: the agent configures the controller, MySQL and RabbitMQ hold the answered
    passwords (issue 14), a second boot runs nothing."""
    _smoke_stage5(qa_disc, "controller", tmp_path)


ALONE = [n for n, roles in NODES.items() if "controller" in roles.split(",")]


@e2e
@pytest.mark.parametrize("label", [n for n in ALONE if n != "controller"])
def test_every_node_first_boot_to_done(qa_disc: Path, tmp_path: Path, label: str) -> None:
    _smoke_stage5(qa_disc, label, tmp_path)


@pytest.mark.parametrize("label", [n for n in NODES if n not in ALONE][:1])
def test_a_node_that_needs_its_controller_fails_stage5_at_once(
    qa_disc: Path, tmp_path: Path, label: str
) -> None:
    """The stand-in boots alone: a compute node would wait for its controller until the stage
    timed out (378 s, with a hint about an environment variable); it fails at once with what
    to do instead, before any VM starts."""
    report = smoke_test(qa_disc, entries=[label], full=True, accel="tcg", log_dir=tmp_path)
    (entry,) = report.entries
    by = {s.name: s for s in entry.stages}
    assert [by[n].status for n in ("menu", "boot", "preseed")] == ["pass"] * 3, by
    assert by["firstboot"].status == "fail" and by["firstboot"].seconds < 30, by["firstboot"]
    assert "waits for a node with the controller role" in by["firstboot"].message
    assert "hint: smoke --full an entry whose roles include controller" in by["firstboot"].message


# --- power cuts, a failing step, and a broken agent (make e2e) ---------------------------------


@pytest.fixture(scope="module")
def controller_inputs(qa_disc: Path) -> firstboot.NodeInputs:
    from distro_builder.media.iso import IsoImage
    from distro_builder.media.layout import read_boot_menu

    with IsoImage(qa_disc) as image:
        entry = next(e for e in read_boot_menu(image).entries if e.label == "controller")
    assert entry.initrd is not None
    return firstboot.inputs_from_disc(qa_disc, entry.append, entry.initrd, "controller")


def _node(inputs: firstboot.NodeInputs, tmp_path: Path, name: str) -> firstboot.StandinNode:
    image = standin.node_image()
    answers, _ = firstboot.write_answers(inputs, firstboot.NODE_ANSWERS, tmp_path / "late")
    node = firstboot.StandinNode(image, tmp_path / "node", tmp_path / "logs", name)
    node.install(inputs, answers)
    return node


@e2e
@pytest.mark.parametrize("k", [1, 3, 6])
def test_power_cut_after_step_k_resumes(
    controller_inputs: firstboot.NodeInputs, tmp_path: Path, k: int
) -> None:
    """QEMU is killed right after step k's ok line; the next boot resumes after step k (steps
    1..k are not run again) and finishes; the status file and logs agree."""
    node = _node(controller_inputs, tmp_path, f"cut{k}")
    cut = node.boot(cut_after=k)
    assert cut.end == "" and [s.index for s in cut.steps] == list(range(1, k + 1)), cut.steps
    resumed = node.boot()
    problems = firstboot.check_done("controller", resumed, resumed_from=k + 1)
    assert not problems, f"{problems}\nlogs: {node.logs}"
    r = resumed.report
    assert r is not None
    assert sum("agent started" in line for line in r.agentlog) == 2, r.agentlog
    for s in resumed.steps[:k]:
        assert r.steplogs[s.name][0] == 1, (s.name, r.steplogs[s.name])
    again = node.boot(expect_agent=False)
    assert not firstboot.check_quiet(r, again)


@e2e
def test_failing_step_stays_enabled_and_a_fixed_retry_succeeds(
    controller_inputs: firstboot.NodeInputs, tmp_path: Path
) -> None:
    """MariaDB will not start (a bad option in conf.d): the agent fails at the step that
    restarts it, says so on the console, stays enabled; fixed, the next boot finishes."""
    node = _node(controller_inputs, tmp_path, "fault")
    inject, fix = firstboot.FAULTS["mariadb-will-not-start"]
    node.provision(inject)
    failed = node.boot()
    assert failed.end.startswith("STACKOPS-FIRSTBOOT failed step="), failed.end
    step = failed.end.split("step=", 1)[1].split()[0]
    assert failed.steps[-1].status == "failed" and failed.steps[-1].name == step
    r = failed.report
    assert r is not None
    assert r.enabled == "enabled" and r.status["state"] == "failed", r.lines
    assert r.status["failed_step"] == step and step not in r.done
    node.provision(fix)
    retry = node.boot()
    assert not firstboot.check_done("controller", retry, resumed_from=failed.steps[-1].index)
    assert not firstboot.check_servers(retry.report)


def _patched_inputs(tmp_path: Path, roles: str, old: str, new: str) -> firstboot.NodeInputs:
    """The inputs built from a copy of the working tree whose agent has `old` replaced."""
    data = tmp_path / "tree"
    shutil.copytree(REPO, data, ignore=shutil.ignore_patterns(".git", ".venv", "build", "*.iso"))
    agent = data / "agent" / "stackops-agent"
    text = agent.read_text()
    assert old in text
    agent.write_text(text.replace(old, new))
    return firstboot.inputs_from_tree(data, roles)


@e2e
def test_stage5_fails_when_the_agent_never_prints_done(tmp_path: Path) -> None:
    _need_standin()
    inputs = _patched_inputs(
        tmp_path, "compute", 'so_progress "STACKOPS-FIRSTBOOT done', 'so_log "never said'
    )
    result = firstboot.run_firstboot(inputs, log_dir=tmp_path / "logs", name="nodone")
    assert any("the agent ended with" in p for p in result.problems), result.problems


@e2e
def test_stage5_fails_when_the_agent_fails(tmp_path: Path) -> None:
    _need_standin()
    inputs = _patched_inputs(tmp_path, "compute", "SO_RC=$(cat", "SO_RC=1 #$(cat")
    result = firstboot.run_firstboot(inputs, log_dir=tmp_path / "logs", name="fails")
    assert any("STACKOPS-FIRSTBOOT failed" in p for p in result.problems), result.problems


@e2e
def test_resume_check_catches_an_agent_that_reruns_finished_steps(tmp_path: Path) -> None:
    _need_standin()
    inputs = _patched_inputs(
        tmp_path, "compute", 'if [ -f "$SO_STEPS/$SO_CUR.done" ]; then', "if false; then"
    )
    node = _node(inputs, tmp_path, "rerun")
    node.boot(cut_after=2)
    resumed = node.boot()
    problems = firstboot.check_done("compute", resumed, resumed_from=3)
    assert any("run again" in p for p in problems), problems
