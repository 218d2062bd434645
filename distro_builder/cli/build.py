"""Commands of the distro build: build, preseed, entries."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from distro_builder.cli import data_dir, emit_json, main
from distro_builder.errors import ConfigError

if TYPE_CHECKING:
    from distro_builder.model import InstallerSettings

F = TypeVar("F", bound=Callable[..., Any])


def installer_options(func: F) -> F:
    """The Smart Installer options shared by `build` and `preseed`."""
    options = [
        click.option(
            "--installer-url", metavar="URL",
            help="The Smart Installer (`distro-builder serve`) the nodes ask for their roles and "
            "answers on first boot; unreachable in time, they use the local answers.",
        ),
        click.option(
            "--installer-token", metavar="TOKEN", envvar="STACKOPS_INSTALLER_TOKEN",
            help="The deployment's enrolment token (also $STACKOPS_INSTALLER_TOKEN). A secret: "
            "it is on the disc in plain text.",
        ),
        click.option(
            "--installer-fingerprint", metavar="SHA256",
            help="SHA-256 fingerprint of the service's TLS certificate (https URL), as `serve` "
            "prints it.",
        ),
        click.option(
            "--installer-wait", metavar="SECONDS", type=int,
            help="How long a node waits for the admin to assign its roles before it goes on "
            "with the local answers (or the console selector). Default 3600.",
        ),
    ]  # fmt: skip
    for option in reversed(options):
        func = option(func)
    return func


def installer_from_options(
    url: str | None, token: str | None, fingerprint: str | None, wait: int | None
) -> InstallerSettings | None:
    """The checked InstallerSettings, or None without --installer-url (then the others are errors;
    the token alone may come from the environment)."""
    from distro_builder.seed.preseed import installer_settings

    if url is not None:
        return installer_settings(url, token, fingerprint, wait)
    for name, value in (("--installer-fingerprint", fingerprint), ("--installer-wait", wait)):
        if value is not None:
            raise ConfigError(f"{name} needs --installer-url", hint="or leave it out")
    return None


@main.command()
@click.option(
    "--base", required=True, type=click.Path(dir_okay=False, path_type=Path),
    help="The base ISO (ubuntu-10.04.x-server-<arch>.iso, or the demo base).",
)  # fmt: skip
@click.option(
    "-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
    help="The StackOps ISO to write (SHA256SUMS and <output>.build.json go beside it).",
)  # fmt: skip
@click.option(
    "--deployment", type=click.Path(dir_okay=False, path_type=Path),
    help="deployment.yaml: answers baked into every entry so the installer asks nothing.",
)  # fmt: skip
@click.option(
    "--serial-console", is_flag=True,
    help="QA disc: isolinux on the serial port, no gfxboot, console=ttyS0 for the installer.",
)  # fmt: skip
@click.option("--default-entry", metavar="NAME", help="The menu's default entry (see `entries`).")
@click.option(
    "--architecture", metavar="NAME",
    help="Reference architecture (single-node, dual-node, multi-node): the menu offers only "
    "its nodes' entries (and 'choose roles later'). Default: the deployment file's, else all.",
)  # fmt: skip
@click.option(
    "--timeout", type=int, default=0, show_default=True,
    help="Seconds before the default entry boots; 0 waits for a key.",
)  # fmt: skip
@click.option("--hybrid", is_flag=True, help="Also bootable from a USB stick (isohybrid MBR).")
@click.option("--sign-key", metavar="KEYID", help="Sign the disc's Release with this key.")
@click.option(
    "--unsigned", is_flag=True,
    help="Leave the Release unsigned (the default); the preseeds allow unauthenticated packages.",
)  # fmt: skip
@click.option("--repo", "repos", multiple=True, metavar="SPEC", help="A package repository.")
@click.option(
    "--sources", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
    help="A sources.list-style file of repositories (repeatable).",
)  # fmt: skip
@click.option("--cache", type=click.Path(file_okay=False, path_type=Path), help="Package cache.")
@click.option("--offline", is_flag=True, help="Use the package cache only.")
@click.option(
    "--no-packages", is_flag=True,
    help="Skip the package step (menus and preseeds only; installs will lack stackops-*).",
)  # fmt: skip
@installer_options
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
@click.pass_context
def build(
    ctx: click.Context,
    base: Path,
    output: Path,
    deployment: Path | None,
    serial_console: bool,
    default_entry: str | None,
    architecture: str | None,
    timeout: int,
    hybrid: bool,
    sign_key: str | None,
    unsigned: bool,
    repos: tuple[str, ...],
    sources: tuple[Path, ...],
    cache: Path | None,
    offline: bool,
    no_packages: bool,
    installer_url: str | None,
    installer_token: str | None,
    installer_fingerprint: str | None,
    installer_wait: int | None,
    as_json: bool,
) -> None:
    """Build the StackOps distro ISO from a base Ubuntu 10.04 server ISO.

    The boot menu gets one entry per role and per reference-architecture node (only one
    architecture's with --architecture or a deployment file naming one), each with its
    preseed; the installer's initrd gets preseed.cfg and the question scripts; the extras
    component gets the role metapackages and the node agent. With SOURCE_DATE_EPOCH set the
    ISO is byte-identical from run to run.
    """
    from distro_builder.basedigest import settled_on_error, start_base_sha256

    if sign_key and unsigned:
        raise ConfigError("--sign-key and --unsigned contradict each other", hint="pick one")
    # The manifest needs the base's SHA-256 (0.5-1 s for 774 MB): begun before the imports
    base_sha256 = start_base_sha256(base, cache) if base.is_file() else None

    with settled_on_error(base_sha256):
        from distro_builder.build import BuildOptions, build_iso
        from distro_builder.media.iso import check_output_path
        from distro_builder.remaster import source_date_epoch_from_env

        check_output_path(output, base)  # before any slow work: a device, FIFO, unwritable dir
        installer = installer_from_options(
            installer_url, installer_token, installer_fingerprint, installer_wait
        )
        specs: tuple[Any, ...] = ()
        if not no_packages and (repos or sources):
            from distro_builder.packageset import collect_specs

            specs = tuple(collect_specs(repos, sources))
        opts = BuildOptions(
            base=base,
            output=output,
            deployment=deployment,
            serial_console=serial_console,
            default_entry=default_entry,
            architecture=architecture,
            timeout=timeout,
            hybrid=hybrid,
            sign_key=sign_key,
            packages=not no_packages,
            specs=specs,
            cache=cache,
            offline=offline,
            source_date_epoch=source_date_epoch_from_env(),
            installer=installer,
        )
        result = build_iso(data_dir(ctx), opts, base_sha256)
    if as_json:
        emit_json(
            {
                "output": result.output,
                "size": result.size,
                "sha256": result.sha256,
                "sha256sums": result.sha256sums,
                "manifest": result.manifest,
                "default_entry": result.default_entry,
                "serial_console": result.serial_console,
                "entries": [
                    {
                        "name": s.entry.name,
                        "label": s.entry.label,
                        "roles": list(s.entry.roles),
                        "preseed": s.entry.seed_path,
                        "asks": list(s.unanswered),
                    }
                    for s in result.seeds
                ],
                "installer_url": installer.url if installer else None,
                "installer_wait": installer.wait if installer else None,
                "plaintext_secrets": list(result.plaintext_secrets),
                "warnings": list(result.warnings),
            }
        )
        return
    click.echo(f"{result.output}: {result.size:,} bytes, sha256 {result.sha256}")
    click.echo(f"  {result.sha256sums}, {result.manifest}")
    for s in result.seeds:
        mark = "*" if s.entry.name == result.default_entry else " "
        roles = ",".join(s.entry.roles) or "(first boot)"
        asks = f"asks {len(s.unanswered)}" if s.unanswered else "asks nothing"
        click.echo(f"  {mark} {s.entry.name:<18} {roles:<34} {asks}")
    if result.plaintext_secrets:
        click.echo(
            "  WARNING: plaintext secrets on the disc: " + ", ".join(result.plaintext_secrets)
        )


@main.command()
@click.option("--entry", required=True, metavar="NAME", help="The boot entry (see `entries`).")
@click.option("--deployment", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--codename", default="lucid", show_default=True, help="The base's codename.")
@click.option("--arch", default="amd64", show_default=True)
@click.option("--signed", is_flag=True, help="Render as for a signed disc (no allow_unauth...).")
@installer_options
@click.pass_context
def preseed(
    ctx: click.Context,
    entry: str,
    deployment: Path | None,
    codename: str,
    arch: str,
    signed: bool,
    installer_url: str | None,
    installer_token: str | None,
    installer_fingerprint: str | None,
    installer_wait: int | None,
) -> None:
    """Print the rendered preseed of one boot entry (checked with debconf-set-selections)."""
    from distro_builder.build import render_entry_seed

    installer = installer_from_options(
        installer_url, installer_token, installer_fingerprint, installer_wait
    )

    seed = render_entry_seed(
        data_dir(ctx),
        entry,
        deployment=deployment,
        codename=codename,
        arch=arch,
        allow_unauthenticated=not signed,
        installer=installer,
    )
    click.echo(seed.text, nl=False)


@main.command()
@click.option("--deployment", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--architecture", metavar="NAME",
    help="Only this reference architecture's entries, as `build --architecture` makes them.",
)  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the entries as JSON on stdout.")
@click.pass_context
def entries(
    ctx: click.Context, deployment: Path | None, architecture: str | None, as_json: bool
) -> None:
    """List the StackOps boot entries, their roles and every prompt each shows.

    The count is what a person answers at the console without a deployment file: d-i's own
    questions left open (host name, domain, login password twice) and ours, a confirmed
    password counting twice. ESXi's installer shows 5 (EULA, disk, keyboard, root password
    twice). "made on the node": answers the node agent generates or finds on first boot.
    """
    from distro_builder.build import load_inputs
    from distro_builder.seed.preseed import (
        boot_entries,
        entry_answers,
        entry_prompts,
        made_on_node,
    )

    inputs = load_inputs(data_dir(ctx), deployment, architecture)
    rows = []
    for e in boot_entries(inputs.roleset, inputs.deployment, inputs.architecture):
        _, asks = entry_answers(e, inputs.roleset, inputs.deployment)
        prompts = entry_prompts(e, inputs.roleset, inputs.deployment)
        rows.append({
            "name": e.name, "label": e.label, "roles": list(e.roles), "asks": list(asks),
            "prompts": list(prompts), "prompt_count": len(prompts),
            "made_on_node": list(made_on_node(e, inputs.roleset)),
        })  # fmt: skip
    if as_json:
        emit_json(rows)
        return
    for r in rows:
        roles = ",".join(r["roles"]) or "(first boot)"
        click.echo(f"{r['name']:<18} {r['label']:<40} {roles}")
        n = r["prompt_count"]
        click.echo(f"{'':<18} {n} prompt{'' if n == 1 else 's'}: {', '.join(r['prompts'])}")
        if r["made_on_node"]:
            click.echo(f"{'':<18} made on the node: {', '.join(r['made_on_node'])}")
