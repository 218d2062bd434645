"""The `distro-builder` command: click options -> library calls; formats errors and reports.

The cli package is the only importer of click. This module holds the group and its error
handling; each submodule registers the commands of one concern. Library errors
(DistroBuilderError) become one line plus a hint and exit code 1 (2 for usage errors, 130 for
Ctrl-C); --debug shows the traceback instead.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

import click

from distro_builder import __version__
from distro_builder.errors import DistroBuilderError, printable
from distro_builder.log import setup_logging

log = logging.getLogger(__name__)


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP: unwinds like Ctrl-C, so every `finally` and context manager removes
    its temporary files and staging folders (a killed build left 450 MB .part files)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _terminate(signum: int, _frame: object) -> None:
    signal.signal(signum, signal.SIG_DFL)  # a second signal ends the process at once
    raise Terminated(signum)


def install_signal_handlers() -> None:
    """SIGTERM/SIGHUP raise Terminated in the main thread (`serve` installs its own)."""
    for signum in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(signum) in (signal.SIG_DFL, None):
            signal.signal(signum, _terminate)


class _Group(click.Group):
    """Turns library errors into one clear line and a hint."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DistroBuilderError as e:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.echo(f"error: {printable(str(e), keep_newlines=True)}", err=True)
            if e.hint:
                click.echo(f"hint: {printable(e.hint, keep_newlines=True)}", err=True)
            ctx.exit(1)
        except Terminated as e:
            click.echo(f"terminated ({signal.Signals(e.signum).name})", err=True)
            ctx.exit(128 + e.signum)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(130)
        except BrokenPipeError:
            # stdout's reader is gone (`distro-builder entries | head`): end quietly, as a
            # shell tool does; point stdout at /dev/null so the interpreter's flush at exit
            # does not fail again
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            ctx.exit(141)  # 128 + SIGPIPE
        except OSError as e:
            # The machine's faults (a full disk, a read-only or vanished folder) reached us
            # unwrapped: the files of the step were cleaned up on the way out; say what it was.
            if ctx.obj and ctx.obj.get("debug"):
                raise
            where = f"{e.filename}: " if e.filename else f"{ctx.invoked_subcommand}: "
            click.echo(f"error: {printable(where)}{e.strerror or e}", err=True)
            click.echo(f"hint: {_OS_HINTS.get(e.errno or 0, _OS_HINT)}", err=True)
            ctx.exit(1)


_OS_HINT = "check the paths named on the command line (run with --debug for the traceback)"
_OS_HINTS = {
    errno.ENOSPC: "the disk is full: free space (df -h) or write the output to another file "
    "system; nothing half-written was kept",
    errno.EDQUOT: "the disk quota is used up: free space or write the output elsewhere",
    errno.EROFS: "the file system is read-only: choose an output on a writable one",
    errno.EACCES: "permission denied: choose a path you can write to (or fix its permissions)",
    errno.EPERM: "not permitted: choose a path you can write to (or fix its permissions)",
    errno.EISDIR: "a folder is in the way of a file: remove it or choose another output",
    errno.ENOTDIR: "a file is in the way of a folder: check the path",
    errno.ENOENT: "a file or folder vanished or was never there: check the path",
    errno.EFBIG: "the file is too large for this file system: write it to another one",
    errno.EIO: "an I/O error: the disk may be failing; check dmesg",
}


def emit_json(data: Any) -> None:
    """Machine-readable output on stdout (--json)."""
    click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="distro-builder")
@click.option("-v", "--verbose", is_flag=True, help="Show every command run and more detail.")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors on stderr.")
@click.option("--debug", is_flag=True, help="Show a traceback instead of a one-line error.")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="DISTRO_BUILDER_DATA",
    help="The folder holding demo/, roles/, preseed/, d-i/, agent/... (default: the checkout, "
    "then the installed copy).",
)
@click.pass_context
def main(
    ctx: click.Context, verbose: bool, quiet: bool, debug: bool, data_dir: Path | None
) -> None:
    """Turn a stock Ubuntu 10.04 LTS server ISO into an OpenStack Nova distro.

    \b
    Build (release engineer):
      build --base ubuntu-10.04.4-server-amd64.iso -o stackops.iso --sources FILE
      demo-base, demo-repo     a lucid-faithful base disc and repositories to try it with
      resolve, fetch, extras   the package step alone: plan, download, stage
      entries, preseed         the boot entries and the preseed each one gets
      inspect, verify          what is on a disc; whether its archive holds together
      remaster                 the engine: overlay directories on any install ISO
    \b
    Test (QA):
      smoke ISO                boot the disc in QEMU and drive its serial console
    \b
    Deploy (admin):
      serve, installer         the Smart Installer service and its operations
    """
    setup_logging(verbose=verbose or debug, quiet=quiet)
    install_signal_handlers()
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    ctx.obj["data_dir"] = data_dir


def data_dir(ctx: click.Context) -> Path:
    """The data folder chosen by --data-dir / $DISTRO_BUILDER_DATA / the defaults."""
    from distro_builder.config import find_data_dir

    return find_data_dir(ctx.obj.get("data_dir"))


# Command modules register themselves on `main` when imported.
from distro_builder.cli import media  # noqa: E402,F401,I001
from distro_builder.cli import packages  # noqa: E402,F401
from distro_builder.cli import qa  # noqa: E402,F401
from distro_builder.cli import build  # noqa: E402,F401
from distro_builder.cli import installer  # noqa: E402,F401
