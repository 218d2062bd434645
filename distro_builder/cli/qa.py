"""QA commands: smoke (boot the disc in QEMU and drive its serial console through the stages)."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import click

from distro_builder.atomicfile import write_atomic
from distro_builder.cli import emit_json, main
from distro_builder.errors import OutputError

if TYPE_CHECKING:
    from distro_builder.qa.console import StageResult
    from distro_builder.qa.smoke import SmokeReport, SmokeStage


@main.command()
@click.argument("iso", type=click.Path(path_type=Path))
@click.option(
    "--entry", "entries", multiple=True, metavar="NAME",
    help="Boot this StackOps entry (its isolinux label; repeatable). Default: the menu's default.",
)  # fmt: skip
@click.option("--all-entries", is_flag=True, help="Boot every StackOps entry, one VM each.")
@click.option(
    "--full", is_flag=True,
    help="Also install to a temporary disk and check the first boot (stages 4-5; on the DEMO "
    "base stage 5 runs on a stand-in node).",
)  # fmt: skip
@click.option(
    "--accel", type=click.Choice(["auto", "kvm", "tcg"]), default="auto", show_default=True,
    help="QEMU accelerator; auto uses KVM only after a probe guest really runs under it.",
)  # fmt: skip
@click.option(
    "--timeout-scale", type=click.FloatRange(min=0.01), default=1.0, show_default=True,
    metavar="X", help="Multiply every stage timeout by X (slow machines: 2-3).",
)  # fmt: skip
@click.option(
    "--junit", type=click.Path(dir_okay=False, path_type=Path),
    help="Write JUnit XML here (one testsuite per entry, one testcase per stage).",
)  # fmt: skip
@click.option(
    "--log-dir", type=click.Path(file_okay=False, path_type=Path),
    help="Where the full console logs go (default: a new directory under $TMPDIR).",
)  # fmt: skip
@click.option(
    "--keep", is_flag=True, help="Keep the temporary install disk of --full (its path is shown)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")
def smoke(
    iso: Path,
    entries: tuple[str, ...],
    all_entries: bool,
    full: bool,
    accel: str,
    timeout_scale: float,
    junit: Path | None,
    log_dir: Path | None,
    keep: bool,
    as_json: bool,
) -> None:
    """Boot ISO in QEMU and check each StackOps boot entry, stage by stage.

    \b
    Stages (each with its own timeout; wall seconds are reported):
      1 menu       the boot menu lists every StackOps entry
      2 boot       the entry is selected over the serial line; the kernel
                   starts with its stackops/roles= on the command line
      3 preseed    the installer loaded our preseed (STACKOPS-PRESEED marker)
      4 install    --full: the install ends (STACKOPS-LATE) and reboots
      5 firstboot  --full: the first-boot agent reports its roles done

    Stage 4 needs a disc made from a real Ubuntu ISO (the DEMO base's netboot installer cannot
    install from a CD): there it is skipped and the reason is shown. Stage 5 then runs on a
    stand-in installed node: a Debian 12 image (debootstrap, cached) booted in QEMU with the disc's
    agent, metapackages and late.sh answers, real MariaDB and RabbitMQ, Nova's tools recorded; it
    needs root. An entry whose node waits for its controller (one without the controller role)
    fails stage 5 at once: the stand-in boots alone. A failure names the stage, shows the last
    40 console lines and the full log's path, and the exit status is 1. Ctrl-C stops QEMU and
    removes the temporary disk.
    """
    from distro_builder.qa.smoke import junit_xml, smoke_test

    if entries and all_entries:
        raise click.UsageError("--entry and --all-entries exclude each other")
    if junit is not None:
        _check_writable(junit)
    made_log_dir = log_dir is None
    if log_dir is None:
        log_dir = Path(tempfile.mkdtemp(prefix=f"distro-builder-smoke-{iso.stem}-"))
    live = not as_json

    def on_stage(label: str, stage: SmokeStage) -> None:
        if live:
            click.echo(
                f"  {label}: {stage.name:<10} {_status(stage.status):<7} {stage.seconds:6.1f} s"
                + (f"  {_clip(stage.summary, 73)}" if stage.status != "pass" else ""),
                err=True,
            )

    report = smoke_test(
        iso,
        entries=list(entries) or None,
        all_entries=all_entries,
        full=full,
        accel=accel,
        timeout_scale=timeout_scale,
        log_dir=log_dir,
        keep=keep,
        on_stage=on_stage,
    )
    if made_log_dir and not any(e.logs for e in report.entries):
        log_dir.rmdir()  # no VM ran: no empty directory left behind
    if junit is not None:
        write_atomic(junit, junit_xml(report).encode())
    if as_json:
        emit_json(report.to_json())
    else:
        _print_report(report, junit)
    if not report.passed:
        sys.exit(1)


def _status(status: str) -> str:
    return {"pass": "PASS", "fail": "FAIL", "skipped": "skipped"}.get(status, status)


def _print_report(report: SmokeReport, junit: Path | None) -> None:
    click.echo(f"ISO:   {report.iso}")
    click.echo(f"accel: {report.accel} ({report.accel_note})")
    click.echo("")
    w = max([5, *(len(e.label) for e in report.entries)])
    click.echo(f"{'entry':<{w}} {'stage':<10} {'status':<8} {'at':>7} {'seconds':>8}  note")
    for e in report.entries:
        for s in e.stages:
            at = "" if s.started_at is None else f"{s.started_at:.1f}"
            note = _clip(s.summary, 90) if s.status != "pass" else _clip(s.summary, 81)
            if s.status == "pass" and note:
                note = f"warning: {note}"
            click.echo(
                f"{e.label:<{w}} {s.name:<10} {_status(s.status):<8} {at:>7} {s.seconds:8.1f}  "
                f"{note}".rstrip()
            )
    reasons = sorted({s.message for e in report.entries for s in e.stages if s.status == "skipped"})
    for reason in reasons:
        click.echo(f"skipped: {reason}")
    for warning in report.warnings:
        click.echo(f"warning: {warning}")
    # one stage failing the same way for several entries (stage 1 on the menu files) shows once
    failed: dict[tuple[str, str], list[str]] = {}
    for e in report.entries:
        for s in e.stages:
            if s.status == "fail":
                failed.setdefault((s.name, s.message), []).append(e.label)
    for (name, message), labels in failed.items():
        click.echo("")
        click.echo(f"FAILED {', '.join(labels)} / stage {name}:")
        click.echo(message)
    click.echo("")
    if any(e.logs for e in report.entries):
        click.echo(f"console logs: {report.log_dir}")
    else:
        click.echo("console logs: none (no VM started)")
    if junit is not None:
        click.echo(f"JUnit XML:    {junit}")
    verdict = "PASSED" if report.passed else "FAILED"
    click.echo(f"smoke {verdict} in {report.seconds:.1f} s: {report.summary}")


def _check_writable(path: Path) -> None:
    from distro_builder.media.iso import check_output_path

    check_output_path(path)  # a device or FIFO would be replaced by the atomic rename
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise OutputError(
            f"{path}: the directory {parent} does not exist", hint="create it or choose another"
        )
    if not os.access(parent, os.W_OK):
        raise OutputError(f"{path}: {parent} is not writable", hint="choose another --junit path")


def _clip(text: str, width: int) -> str:
    """`text` cut to `width` characters, ending in "..." when it was longer."""
    return text if len(text) <= width else text[: width - 3] + "..."


@main.command("pxe-smoke")
@click.argument("url")
@click.option("--deployment", required=True, help="The deployment whose iPXE bootfile to boot.")
@click.option("--mac", default="52:54:00:51:00:01", show_default=True, help="The guest's MAC.")
@click.option("--roles", help="An unknown machine: assign these roles once it is discovered.")
@click.option("--user", default="admin", show_default=True, help="Admin of the Smart Installer.")
@click.option(
    "--accel", type=click.Choice(["auto", "kvm", "tcg"]), default="auto", show_default=True,
    help="QEMU accelerator; auto uses KVM only after a probe guest gets through a network boot "
    "under it (iPXE fails under KVM on some hosts).",
)  # fmt: skip
@click.option(
    "--log", "log_path", type=click.Path(path_type=Path), default=Path("pxe-smoke.log"),
    show_default=True, help="Where the guest's whole serial console is written.",
)  # fmt: skip
def pxe_smoke_command(
    url: str, deployment: str, mac: str, roles: str | None, user: str, accel: str, log_path: Path
) -> None:
    """Boot a diskless QEMU from the network against a running `serve --disc` at URL.

    \b
    Stages: boot script fetched -> kernel started with the node's roles -> preseed fetched and
    the installer's marker -> the node "installing" in the inventory with its MAC. The admin's
    password comes from $DISTRO_BUILDER_INSTALLER_PASSWORD (else it is asked).
    """
    from distro_builder.qa.pxe import pxe_smoke
    from distro_builder.qa.qemu import choose_accel

    password = os.environ.get("DISTRO_BUILDER_INSTALLER_PASSWORD") or click.prompt(
        "Password", hide_input=True
    )

    def passed(r: StageResult) -> None:  # each stage as it ends, not all at the end
        click.echo(f"  {'ok' if r.passed else 'FAILED':6} {r.name:42} {r.seconds:7.1f} s")

    results = pxe_smoke(
        url, deployment, mac, user=user, password=password, accel=choose_accel(accel, netboot=True),
        log_path=log_path, roles=roles, on_stage=passed,
    )  # fmt: skip
    click.echo(f"pxe-smoke: {len(results)} stages passed ({log_path})")
