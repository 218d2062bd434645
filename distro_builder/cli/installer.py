"""Smart Installer commands: `serve` (the service) and `installer ...` (the admin's operations).

The `installer` subcommands work on the database directly (the same store the service uses), so
they need no running service and no login: whoever can open the database is its admin. They are
what a script uses; the browser UI and the JSON API offer the same operations over HTTP.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import click

from distro_builder.cli import data_dir, emit_json, main
from distro_builder.errors import OutputError

DB_OPTION = click.option(
    "--db", "db_url", envvar="DISTRO_BUILDER_INSTALLER_DB", metavar="URL",
    help="sqlite:///path or postgresql://user:pass@host/db "
    "(default: $XDG_DATA_HOME/distro-builder/installer.sqlite).",
)  # fmt: skip


def _store(ctx: click.Context, db_url: str | None) -> Any:
    from distro_builder.config.roles import load_roles
    from distro_builder.smart_installer.db import Database
    from distro_builder.smart_installer.store import Store

    return Store(Database(db_url), load_roles(data_dir(ctx)))


@main.command()
@DB_OPTION
@click.option(
    "--listen", default="127.0.0.1:8080", show_default=True, metavar="ADDR:PORT",
    help="Address and port (port 0: any free one; 0.0.0.0 for every interface).",
)  # fmt: skip
@click.option(
    "--tls-cert", type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Serve HTTPS with this PEM certificate (its SHA-256 fingerprint goes on the disc).",
)  # fmt: skip
@click.option("--tls-key", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option(
    "--legacy-tls", is_flag=True,
    help="Also accept TLS 1.0 and its ciphers: lucid nodes (wget 1.12, OpenSSL 0.9.8) speak no "
    "newer TLS. Weaker for every client; the nodes pin the certificate's fingerprint.",
)  # fmt: skip
@click.option(
    "--disc", type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Also serve this StackOps ISO for network installs: its archive as a mirror, its "
    "netboot kernel and initrd, an iPXE script per machine and each node's preseed.",
)  # fmt: skip
@click.option(
    "--request-timeout", type=click.FloatRange(min=1, max=3600), default=30, show_default=True,
    metavar="SECONDS",
    help="A request (TLS handshake, head and body) must arrive whole within this; a response "
    "its client takes nothing of for this long is cut.",
)  # fmt: skip
@click.option(
    "--workers", type=click.IntRange(min=1, max=64), default=1, show_default=True,
    help="Worker processes (64 threads each). They share the database, and with it the login "
    "lockout; on PostgreSQL, several workers or several hosts behind a load balancer scale out.",
)  # fmt: skip
@click.pass_context
def serve(
    ctx: click.Context,
    db_url: str | None,
    listen: str,
    tls_cert: Path | None,
    tls_key: Path | None,
    legacy_tls: bool,
    disc: Path | None,
    request_timeout: float,
    workers: int,
) -> None:
    """Run the Smart Installer: the admin's UI and API, and the nodes' agent API.

    \b
    Nodes built with --installer-url register here, wait for their roles, fetch their answers
    and report progress. Create the first admin with `distro-builder installer admin create`.
    Served by gunicorn: --workers processes of 64 threads (README "Smart Installer").
    Stop with Ctrl-C or SIGTERM; everything is in the database, nothing is lost on restart.
    """
    from distro_builder.smart_installer.server import make_server, serve_forever

    if bool(tls_cert) != bool(tls_key):
        raise click.UsageError("--tls-cert and --tls-key go together")
    tls = (tls_cert, tls_key) if tls_cert and tls_key else None
    if legacy_tls and not tls:
        raise click.UsageError("--legacy-tls needs --tls-cert and --tls-key")
    if disc and tls:
        # iPXE as Debian's ipxe-qemu builds it and lucid's installer (busybox wget) speak no
        # HTTPS: the bootfile, kernel, preseed and mirror must be plain http.
        raise click.UsageError(
            "--disc serves the network install over plain HTTP (iPXE and the installer speak no "
            "HTTPS): run it as a second `serve --disc` without --tls-cert on another port, "
            "with the same --db"
        )
    server = make_server(
        db_url, listen, data_dir(ctx), tls=tls, legacy_tls=legacy_tls, disc=disc,
        request_timeout=request_timeout, workers=workers,
    )  # fmt: skip
    host, port = server.server_address
    scheme = "https" if tls else "http"
    click.echo(f"Smart Installer listening on {scheme}://{host}:{port}/", err=True)
    click.echo(f"database: {server.shown_db}", err=True)
    if server.fingerprint:
        click.echo(f"certificate SHA-256 fingerprint: {server.fingerprint}", err=True)
    if legacy_tls:
        click.echo(
            "WARNING: --legacy-tls: TLS 1.0 and CBC/RSA ciphers accepted (for lucid's wget); "
            "weaker against a network attacker for every client. Keep the service on the "
            "deployment's own network.",
            err=True,
        )
    if disc:
        click.echo(
            f"network install from {disc}: DHCP bootfile http://{host}:{port}/ipxe/DEPLOYMENT",
            err=True,
        )
    if server.admins == 0:
        click.echo(
            "no admin yet: create one with `distro-builder installer admin create NAME`", err=True
        )
    serve_forever(server)


@main.command()
@click.argument("iso", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option(
    "-o", "--output", "out", required=True, type=click.Path(file_okay=False, path_type=Path),
    help="The TFTP root to write (pxelinux.0, pxelinux.cfg/default, ubuntu-installer/...).",
)  # fmt: skip
@click.option("--default-entry", help="The entry the menu boots (default: the disc's first).")
@click.option(
    "--timeout", type=int, default=0, show_default=True,
    help="Seconds before the menu boots its default entry (0: it waits for a choice).",
)  # fmt: skip
@click.option(
    "--preseed-url", metavar="URL",
    help="Entries fetch their preseed from URL/stackops-<entry>.seed (serve OUTPUT/preseed/ "
    "there) instead of reading it from the initrd; they boot in d-i's auto mode with the host "
    "name (the seed's, else stackops; DHCP's wins) on the command line.",
)  # fmt: skip
@click.option(
    "--mirror", metavar="URL",
    help="The disc's archive over HTTP for the installer, e.g. http://10.0.0.2:8080/disc "
    "(a running `serve --disc`); without it the installer asks for a mirror.",
)  # fmt: skip
@click.option("--force", is_flag=True, help="Replace OUTPUT if it is not empty.")
def netboot(
    iso: Path, out: Path, default_entry: str | None, timeout: int, preseed_url: str | None,
    mirror: str | None, force: bool,
) -> None:  # fmt: skip
    """Export a built StackOps disc ISO as a classic PXE tree for your own TFTP/DHCP server.

    \b
    The menu holds the disc's StackOps entries with the same kernel command lines; their
    preseeds travel in the initrd (or over HTTP with --preseed-url). Boot with a PXE ROM,
    DHCP option 67 / dnsmasq `dhcp-boot=pxelinux.0` (see README "Network install").
    """
    from distro_builder.smart_installer.pxetree import export_pxe_tree

    tree = export_pxe_tree(
        iso, out, default_entry=default_entry, timeout=timeout, preseed_url=preseed_url,
        mirror=mirror, force=force,
    )  # fmt: skip
    for e in tree.entries:
        mark = "*" if e.label == tree.default else " "
        click.echo(f" {mark} {e.label:20} roles={e.roles or '(chosen later)'}")
    click.echo(f"netboot: {len(tree.files)} files in {tree.out} ({tree.arch})")


@main.group()
def installer() -> None:
    """The Smart Installer's admin operations, on its database (no running service needed)."""


@installer.group()
def admin() -> None:
    """Admin accounts of the browser UI and the JSON API."""


@admin.command("create")
@DB_OPTION
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin (scripts).")
@click.option("--reset", is_flag=True, help="Set a new password for an existing admin.")
@click.pass_context
def admin_create(
    ctx: click.Context, db_url: str | None, username: str, password_stdin: bool, reset: bool
) -> None:
    """Create an admin (the password is stored as a scrypt hash)."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    _store(ctx, db_url).create_admin(username, password, replace=reset)
    click.echo(f"admin {username} {'updated' if reset else 'created'}")


@installer.group()
def deployment() -> None:
    """Deployments: a reference architecture, its global parameters, its nodes."""


def _print_deployment(dep: dict[str, Any]) -> None:
    click.echo(f"deployment {dep['name']} (id {dep['id']}): {dep['architecture']}")
    click.echo("parameters:")
    for key, p in dep["params"].items():
        value = p["value"] if p["set"] else f"(unset, default {p['default']})"
        if not p["set"] and p["default"] is None:
            value = "(unset)"
        if not p["set"] and p.get("derived"):
            value = _derived_text(p["derived"])
        click.echo(f"  {key:22} {value}")
    if "nodes" in dep:
        click.echo(f"nodes: {len(dep['nodes'])}")
        _print_nodes(dep["nodes"])
    for problem in dep.get("problems", []):
        click.echo(f"todo: {problem}")


def _derived_text(d: dict[str, Any]) -> str:
    """A value the Smart Installer derived (store._derivations), as the admin reads it."""
    if d["value"] is None:
        return f"(derived: none yet; {d['reason']})"
    return f"{d['value']} (derived: node {d['node']} {d['hostname']}'s address on {d['interface']})"


def _print_derived(n: dict[str, Any], indent: str) -> None:
    for key, d in n.get("derived", {}).items():
        click.echo(f"{indent}{key} = {_derived_text(d)}")


def _stamp(seconds: float) -> str:
    """A record's time as the admin reads it: local time to the second."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seconds))


def _print_nodes(nodes: list[dict[str, Any]]) -> None:
    if nodes:
        click.echo(
            f"  {'ID':>4}  {'HOST':20} {'MAC':17}  {'HARDWARE':22} {'ROLES':30} STATE PROGRESS"
        )
    for n in nodes:
        inv = n["inventory"]
        roles = ",".join(n["roles"]) or "-"
        click.echo(
            f"  {n['id']:>4}  {n['hostname']:20} {n['mac']}  {inv['cpus']} cpu {inv['virt']:4} "
            f"{inv['mem_mb']} MB  {roles:30} {n['state']} {n['step']}".rstrip()
        )
        for note in n["notes"]:
            click.echo(f"        note: {note}")


@deployment.command("create")
@DB_OPTION
@click.argument("name")
@click.option(
    "--architecture", "-a", required=True,
    type=click.Choice(["single-node", "dual-node", "multi-node"]),
    help="The reference architecture.",
)  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the deployment and token as JSON.")
@click.pass_context
def deployment_create(
    ctx: click.Context, db_url: str | None, name: str, architecture: str, as_json: bool
) -> None:
    """Create a deployment; prints its enrolment token (shown this once: it goes on the discs)."""
    dep, token = _store(ctx, db_url).create_deployment(name, architecture)
    if as_json:
        emit_json({"deployment": dep, "enrolment_token": token})
        return
    click.echo(f"deployment {dep['name']} created ({architecture})")
    click.echo(f"enrolment token: {token}")
    click.echo("(shown only now; build the discs with --installer-url URL and this token)")


@deployment.command("list")
@DB_OPTION
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def deployment_list(ctx: click.Context, db_url: str | None, as_json: bool) -> None:
    """List the deployments."""
    deps = _store(ctx, db_url).list_deployments()
    if as_json:
        emit_json(deps)
        return
    for d in deps:
        click.echo(f"{d['id']:>4}  {d['name']:24} {d['architecture']:12} {d['node_count']} nodes")


@deployment.command("show")
@DB_OPTION
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def deployment_show(ctx: click.Context, db_url: str | None, name: str, as_json: bool) -> None:
    """A deployment's parameters (secrets masked), nodes and what is still missing."""
    dep = _store(ctx, db_url).deployment(name)
    emit_json(dep) if as_json else _print_deployment(dep)


@deployment.command("set")
@DB_OPTION
@click.argument("name")
@click.argument("assignments", nargs=-1, required=True, metavar="KEY=VALUE...")
@click.pass_context
def deployment_set(
    ctx: click.Context, db_url: str | None, name: str, assignments: tuple[str, ...]
) -> None:
    """Set global parameters (KEY= clears one; KEY=- asks for it without echo, for secrets).

    The values are checked with the deployment file's rules (the same messages).
    """
    values: dict[str, str | None] = {}
    for a in assignments:
        key, sep, value = a.partition("=")
        if not sep:
            raise click.BadParameter(f"{a!r} is not KEY=VALUE", param_hint="assignments")
        if value == "-":
            value = click.prompt(key, hide_input=True, confirmation_prompt=True)
        values[key] = value or None
    dep = _store(ctx, db_url).set_params(name, values)
    click.echo(f"deployment {dep['name']}: set {', '.join(values)}")


@deployment.command("token")
@DB_OPTION
@click.argument("name")
@click.pass_context
def deployment_token(ctx: click.Context, db_url: str | None, name: str) -> None:
    """Make a new enrolment token (discs with the old one can no longer register nodes)."""
    click.echo(f"enrolment token: {_store(ctx, db_url).rotate_token(name)}")


@deployment.command("delete")
@DB_OPTION
@click.argument("name")
@click.option("--yes", is_flag=True, help="Delete without asking (scripts).")
@click.pass_context
def deployment_delete(ctx: click.Context, db_url: str | None, name: str, yes: bool) -> None:
    """Delete a deployment with its nodes and their events (asks first unless --yes)."""
    if not yes:
        click.confirm(f"delete deployment {name} and all its nodes?", abort=True)
    _store(ctx, db_url).delete_deployment(name, name)
    click.echo(f"deployment {name}: deleted")


@deployment.command("netboot")
@DB_OPTION
@click.argument("name")
@click.option(
    "--unknown", type=click.Choice(["menu", "wait"]),
    help="What a machine the deployment does not know gets when it network-boots: a menu of "
    "the architecture's entries, or a wait until the admin assigns its roles.",
)  # fmt: skip
@click.pass_context
def deployment_netboot(
    ctx: click.Context, db_url: str | None, name: str, unknown: str | None
) -> None:
    """Show (or set with --unknown) the deployment's policy for unknown network-booted machines."""
    policy = _store(ctx, db_url).netboot_policy(name, unknown)
    click.echo(f"deployment {name}: unknown machines get: {policy}")


@deployment.command("export")
@DB_OPTION
@click.argument("name")
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
    help="Write here (mode 0600) instead of stdout.",
)  # fmt: skip
@click.option(
    "--with-secrets", is_flag=True,
    help="Include the passwords (else the installer asks them on each node).",
)  # fmt: skip
@click.pass_context
def deployment_export(
    ctx: click.Context, db_url: str | None, name: str, output: Path | None, with_secrets: bool
) -> None:
    """Write the deployment as a deployment.yaml that `build --deployment` accepts."""
    if output is not None:
        from distro_builder.media.iso import check_output_path

        check_output_path(output)  # a device or FIFO would be replaced by the rename below
    text = _store(ctx, db_url).export(name, with_secrets=with_secrets)
    if output is None:
        click.echo(text, nl=False)
        return
    tmp = output.with_name(f".{output.name}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, output)
    except OSError as e:
        raise OutputError(f"cannot write {output}: {e.strerror}") from e
    click.echo(f"wrote {output}", err=True)


@installer.group()
def node() -> None:
    """Nodes that registered: inventory, roles, progress."""


@node.command("list")
@DB_OPTION
@click.argument("deployment_name", metavar="DEPLOYMENT")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def node_list(ctx: click.Context, db_url: str | None, deployment_name: str, as_json: bool) -> None:
    """The deployment's nodes with their inventory, roles and state."""
    nodes = _store(ctx, db_url).nodes(deployment_name)
    emit_json(nodes) if as_json else _print_nodes(nodes)


@node.command("show")
@DB_OPTION
@click.argument("deployment_name", metavar="DEPLOYMENT")
@click.argument("node_ref", metavar="NODE")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def node_show(
    ctx: click.Context, db_url: str | None, deployment_name: str, node_ref: str, as_json: bool
) -> None:
    """One node (by id or host name): inventory, roles, notes and its progress lines."""
    n = _store(ctx, db_url).node(deployment_name, node_ref)
    if as_json:
        emit_json(n)
        return
    _print_nodes([n])
    for nic in n["inventory"]["nics"]:
        click.echo(f"        nic  {nic['name']:8} {nic['mac']} {nic['state']} {nic.get('ipv4', '')}"
                   .rstrip())  # fmt: skip
    _print_derived(n, "        ")
    for disk in n["inventory"]["disks"]:
        free = "free" if disk["free"] else "in use"
        click.echo(f"        disk {disk['name']:8} {disk['size_mb']} MB {free}")
    for e in n["events"]:
        click.echo(f"        {_stamp(e['at'])}  {e['kind']:6} {e['line']}")
    if n["state"] == "failed" and n["failure_log"]:
        click.echo("        the failing step's log (its last lines, as the agent sent them):")
        for line in n["failure_log"].splitlines():
            click.echo(f"        | {line}")


@node.command("assign")
@DB_OPTION
@click.argument("deployment_name", metavar="DEPLOYMENT")
@click.argument("node_ref", metavar="NODE")
@click.option(
    "--roles", required=True, metavar="ROLES",
    help="Comma list of roles, the folders under roles/ ('' removes the roles).",
)  # fmt: skip
@click.option(
    "--set", "values", multiple=True, metavar="KEY=VALUE",
    help="A per-node value (hostname, public_interface, flat_interface, volume_device, "
    "libvirt_type); repeatable.",
)  # fmt: skip
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def node_assign(
    ctx: click.Context,
    db_url: str | None,
    deployment_name: str,
    node_ref: str,
    roles: str,
    values: tuple[str, ...],
    as_json: bool,
) -> None:
    """Give a node its roles, after the fitness checks (prints what they decided)."""
    wanted = {}
    for v in values:
        key, sep, value = v.partition("=")
        if not sep:
            raise click.BadParameter(f"{v!r} is not KEY=VALUE", param_hint="--set")
        wanted[key] = value
    n = _store(ctx, db_url).assign(deployment_name, node_ref, roles, wanted)
    if as_json:
        emit_json(n)
        return
    click.echo(f"node {n['id']} ({n['hostname']}): roles {','.join(n['roles']) or 'none'}")
    for key, value in n["answers"].items():
        click.echo(f"  {key} = {value}")
    _print_derived(n, "  ")
    for note in n["notes"]:
        click.echo(f"  note: {note}")
    if n["missing"]:
        click.echo(f"  waiting for parameters: {', '.join(n['missing'])}")


@node.command("forget")
@DB_OPTION
@click.argument("deployment_name", metavar="DEPLOYMENT")
@click.argument("node_ref", metavar="NODE")
@click.option("--yes", is_flag=True, help="Forget without asking (scripts).")
@click.pass_context
def node_forget(
    ctx: click.Context, db_url: str | None, deployment_name: str, node_ref: str, yes: bool
) -> None:
    """Forget a node: its record, token and events go (it registers anew if it boots again)."""
    if not yes:
        click.confirm(f"forget node {node_ref} of {deployment_name}?", abort=True)
    _store(ctx, db_url).forget_node(deployment_name, node_ref)
    click.echo(f"node {node_ref}: forgotten")


def _decide(ctx: click.Context, db_url: str | None, dep: str, node_ref: str, ok: bool) -> None:
    n = _store(ctx, db_url).approve_reregistration(dep, node_ref, approve=ok)
    click.echo(f"node {n['id']} ({n['hostname']}): registration {'approved' if ok else 'rejected'}")


@node.command("approve")
@DB_OPTION
@click.argument("deployment_name", metavar="DEPLOYMENT")
@click.argument("node_ref", metavar="NODE")
@click.pass_context
def node_approve(
    ctx: click.Context, db_url: str | None, deployment_name: str, node_ref: str
) -> None:
    """Approve a node's registration again without its token (a reinstall): it gets a new one."""
    _decide(ctx, db_url, deployment_name, node_ref, True)


@node.command("reject")
@DB_OPTION
@click.argument("deployment_name", metavar="DEPLOYMENT")
@click.argument("node_ref", metavar="NODE")
@click.pass_context
def node_reject(
    ctx: click.Context, db_url: str | None, deployment_name: str, node_ref: str
) -> None:
    """Reject a node's registration again without its token (a replayed MAC): the node keeps
    its record and old token."""
    _decide(ctx, db_url, deployment_name, node_ref, False)


@node.command("retry")
@DB_OPTION
@click.argument("deployment_name", metavar="DEPLOYMENT")
@click.argument("node_ref", metavar="NODE")
@click.pass_context
def node_retry(ctx: click.Context, db_url: str | None, deployment_name: str, node_ref: str) -> None:
    """Retry a failed node's first boot from its failed step: the node's agent, waiting after
    the failure, sees the request on its next poll and runs again."""
    n = _store(ctx, db_url).request_retry(deployment_name, node_ref)
    click.echo(f"node {n['id']} ({n['hostname']}): retry requested ({n['step']})")


@node.command("reinstall")
@DB_OPTION
@click.argument("deployment_name", metavar="DEPLOYMENT")
@click.argument("node_ref", metavar="NODE")
@click.option("--yes", is_flag=True, help="Do it without asking (scripts).")
@click.pass_context
def node_reinstall(
    ctx: click.Context, db_url: str | None, deployment_name: str, node_ref: str, yes: bool
) -> None:
    """Install a node again on its next network boot (iPXE), with its roles: its disk is
    wiped then. Until it boots, its state is `reinstall`."""
    if not yes:
        click.confirm(
            f"reinstall node {node_ref} of {deployment_name} on its next network boot "
            "(its disk is wiped)?",
            abort=True,
        )
    n = _store(ctx, db_url).request_reinstall(deployment_name, node_ref)
    click.echo(f"node {n['id']} ({n['hostname']}): {n['state']} on its next network boot")


@deployment.command("credentials")
@DB_OPTION
@click.argument("name")
@click.option(
    "-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
    help="Write nova.zip here (mode 0600; it holds the cloud admin's secret key).",
)  # fmt: skip
@click.pass_context
def deployment_credentials(ctx: click.Context, db_url: str | None, name: str, output: Path) -> None:
    """The cloud's credentials (nova.zip: novarc and the EC2 certificates), uploaded by the
    controller's agent after its admin step; and where the cloud's endpoints are."""
    from distro_builder.media.iso import check_output_path

    check_output_path(output)
    store = _store(ctx, db_url)
    data = store.credentials(name)
    info = store.cloud(name)
    tmp = output.with_name(f".{output.name}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, output)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"cannot write {output}: {e.strerror}") from e
    click.echo(f"wrote {output} ({len(data)} bytes, mode 0600)", err=True)
    verdict = info["check"]["verdict"]
    click.echo(f"cloud {'ready' if info['ready'] else 'not ready'} (stackops-check: {verdict})")
    for key, url in info["endpoints"].items():
        click.echo(f"  {key:7} {url}")
    click.echo(f"  admin   {info['admin_user']}, project {info['project']}")
