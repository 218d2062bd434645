"""Commands on packages: demo-repo, resolve, fetch, extras, verify."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click

from distro_builder.cli import data_dir, emit_json, main
from distro_builder.errors import ConfigError, IsoError

DEFAULT_BASE = Path("build/demo-base.iso")
DEFAULT_DEMO_SOURCES = Path("build/demo-repo/sources.list")


def _source_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option(
            "--base", type=click.Path(dir_okay=False, path_type=Path), default=DEFAULT_BASE,
            show_default=True, help="The base ISO whose archive counts as already there.",
        ),
        click.option(
            "--role", "roles", multiple=True, metavar="ROLE",
            help="A role to resolve, a folder under roles/ (repeatable; default: every role).",
        ),
        click.option(
            "--repo", "repos", multiple=True, metavar="SPEC",
            help="A repository: 'deb [signed-by=KEYRING] URL SUITE COMPONENT...' "
            "(file://, http(s)://) or a local directory of .debs. Repeatable.",
        ),
        click.option(
            "--sources", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
            help="A sources.list-style file (or YAML with `repositories:`). Repeatable. "
            f"Default with no --repo: {DEFAULT_DEMO_SOURCES} (the DEMO repositories).",
        ),
        click.option(
            "--cache", type=click.Path(file_okay=False, path_type=Path),
            help="Package cache (default: $XDG_CACHE_HOME/distro-builder).",
        ),
        click.option("--offline", is_flag=True, help="Use the cache only; name what is missing."),
    ]  # fmt: skip
    for opt in reversed(options):
        fn = opt(fn)
    return fn


def _specs(repos: tuple[str, ...], sources: tuple[Path, ...]) -> Any:
    from distro_builder.packageset import collect_specs

    if not repos and not sources:
        if not DEFAULT_DEMO_SOURCES.is_file():
            raise ConfigError(
                "no repositories given (--repo/--sources)",
                hint=f"for the demo: distro-builder demo-repo -o {DEFAULT_DEMO_SOURCES.parent}",
            )
        click.echo(f"Using the DEMO repositories of {DEFAULT_DEMO_SOURCES}", err=True)
        sources = (DEFAULT_DEMO_SOURCES,)
    return collect_specs(repos, sources)


def _open_base(base: Path) -> Any:
    from distro_builder.media.iso import IsoImage

    if base == DEFAULT_BASE and not base.exists():
        raise IsoError(
            f"{base}: no such file (the default base)",
            hint=f"build the demo base (distro-builder demo-base -o {base}) or pass --base ISO",
        )
    return IsoImage(base)


def _size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000  # type: ignore[assignment]
    return str(n)


def _plan_json(plan: Any) -> dict[str, Any]:
    def pkg(p: Any) -> dict[str, Any]:
        return {
            "name": p.name, "version": p.version, "arch": p.arch, "size": p.size,
            "origin": p.origin, "repository": p.repo or None, "filename": p.filename,
            "sha256": p.sha256 or None,
        }  # fmt: skip

    return {
        "arch": plan.arch,
        "codename": plan.codename,
        "repositories": list(plan.repositories),
        "unauthenticated": list(plan.unauthenticated),
        "roles": {
            r.role: {
                "roots": list(r.roots),
                "closure": [p.name for p in r.closure],
                "on_disc": [pkg(p) for p in r.on_disc],
                "to_add": [pkg(p) for p in r.to_add],
            }
            for r in plan.roles
        },
        "to_add": [pkg(p) for p in plan.to_add],
        "to_add_bytes": sum(p.size for p in plan.to_add),
    }


def _print_plan(plan: Any) -> None:
    for r in plan.roles:
        click.echo(
            f"role {r.role}: {len(r.roots)} listed, closure {len(r.closure)} packages: "
            f"{len(r.on_disc)} on the disc, {len(r.to_add)} to add"
        )
        width = max((len(p.name) for p in r.to_add), default=10)
        vwidth = max((len(p.version) for p in r.to_add), default=10)
        for p in r.to_add:
            where = f"{p.origin} {p.repo}" if p.repo else p.origin
            click.echo(
                f"  + {p.name:<{width}}  {p.version:<{vwidth}}  {p.arch:<5}  "
                f"{_size(p.size):>8}  {where}"
            )
        if r.on_disc:
            names = " ".join(p.name for p in r.on_disc)
            click.echo(f"  = on the disc: {names}")
    total = sum(p.size for p in plan.to_add)
    click.echo(
        f"The disc gains {len(plan.to_add)} packages ({_size(total)}) for "
        f"{', '.join(r.role for r in plan.roles)} on {plan.codename} {plan.arch}."
    )
    for u in plan.unauthenticated:
        click.echo(f"WARNING: unauthenticated source: {u}", err=True)


@main.command("demo-repo")
@click.option(
    "-o", "--output", type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_DEMO_SOURCES.parent, show_default=True,
    help="Folder for the DEMO repositories and their sources.list.",
)  # fmt: skip
@click.option("--sign-key", metavar="KEYID", help="Sign each Release with this gpg key (RSA).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
@click.pass_context
def demo_repo(ctx: click.Context, output: Path, sign_key: str | None, as_json: bool) -> None:
    """Write the DEMO apt repositories (lucid slice + Cactus PPA) from demo/ppa.yaml.

    Real apt repositories with tiny packages carrying the 2011 names and dependency graph, for
    use as file:// sources (OUTPUT/sources.list lists them).
    """
    from distro_builder.demorepo import SOURCES_LIST, build_demo_repo

    out = build_demo_repo(data_dir(ctx), output, sign_key=sign_key)
    if as_json:
        emit_json({"output": str(out), "sources": str(out / SOURCES_LIST), "demo": True})
    else:
        click.echo(f"{out}: DEMO repositories; apt sources in {out / SOURCES_LIST}")


@main.command()
@_source_options
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON on stdout.")
@click.pass_context
def resolve(
    ctx: click.Context,
    base: Path,
    roles: tuple[str, ...],
    repos: tuple[str, ...],
    sources: tuple[Path, ...],
    cache: Path | None,
    offline: bool,
    as_json: bool,
) -> None:
    """Print what each role needs: its closure, what the disc has, what must be added.

    Resolves common + <role> package lists over the base disc's archive and the repositories
    (Depends, Pre-Depends, alternatives, Provides, versions, architectures). An unsatisfiable
    package fails with the chain that pulled it in; two that Conflict or Break fail with both.
    """
    from distro_builder.archive.fetch import Fetcher
    from distro_builder.media.layout import detect_flavor
    from distro_builder.packageset import plan_packages

    specs = _specs(repos, sources)
    with _open_base(base) as image:
        flavor = detect_flavor(image)
        plan = plan_packages(
            data_dir(ctx), image, flavor, roles=roles or None, specs=specs,
            fetcher=Fetcher(cache, offline=offline),
        )  # fmt: skip
    if as_json:
        emit_json(_plan_json(plan))
    else:
        _print_plan(plan)


@main.command()
@_source_options
@click.option("--json", "as_json", is_flag=True, help="Print the fetched files as JSON.")
@click.pass_context
def fetch(
    ctx: click.Context,
    base: Path,
    roles: tuple[str, ...],
    repos: tuple[str, ...],
    sources: tuple[Path, ...],
    cache: Path | None,
    offline: bool,
    as_json: bool,
) -> None:
    """Resolve the roles and fetch what the disc lacks into the cache (checked by SHA256).

    Downloads run several at once over kept-alive connections (at most 6 per host), continue
    an interrupted download where it stopped (HTTP Range), and ask a repository's other mirrors
    (`mirror=URL` in a source line) when one fails. Progress in bytes with the rate and ETA goes
    to stderr: one updating line on a terminal, a line every 5 seconds otherwise (none with
    --json).
    """
    from distro_builder.archive.fetch import Fetcher
    from distro_builder.media.layout import detect_flavor
    from distro_builder.packageset import plan_packages
    from distro_builder.progress import TransferMeter

    fetcher = Fetcher(cache, offline=offline)
    specs = _specs(repos, sources)
    with _open_base(base) as image:
        flavor = detect_flavor(image)
        plan = plan_packages(
            data_dir(ctx), image, flavor, roles=roles or None, specs=specs, fetcher=fetcher
        )
    wanted = [p for p in plan.to_add if p.repo]
    if as_json:
        paths = fetcher.fetch_all(wanted)
    else:
        with TransferMeter() as meter:
            paths = fetcher.fetch_all(wanted, meter)
    if as_json:
        emit_json({"cache": str(fetcher.cache_dir), "files": {k: str(v) for k, v in paths.items()}})
    else:
        total = sum(p.size for p in wanted)
        click.echo(f"{len(paths)} packages ({_size(total)}) in {fetcher.cache_dir}, verified")


@contextlib.contextmanager
def _emptied_on_failure(output: Path) -> Iterator[None]:
    """A failed or interrupted staging leaves `output` as it found it (new, or empty)."""
    existed = output.exists()
    try:
        yield
    except BaseException:
        if output.is_dir() and not existed:
            shutil.rmtree(output)
        elif output.is_dir():
            _empty(output)
        raise


def _empty(folder: Path) -> None:
    for child in folder.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


@main.command()
@_source_options
@click.option(
    "-o", "--output", required=True, type=click.Path(file_okay=False, path_type=Path),
    help="Overlay directory to stage into (give it to `remaster --add`).",
)  # fmt: skip
@click.option("--sign-key", metavar="KEYID", help="Sign the disc's Release with this RSA key.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
@click.pass_context
def extras(
    ctx: click.Context,
    base: Path,
    roles: tuple[str, ...],
    repos: tuple[str, ...],
    sources: tuple[Path, ...],
    cache: Path | None,
    offline: bool,
    output: Path,
    sign_key: str | None,
    as_json: bool,
) -> None:
    """Stage the disc's extras component (packages, metapackages, indexes, Release) into OUTPUT.

    Without --sign-key the Release is unsigned and the installer must be told
    debian-installer/allow_unauthenticated (the build's preseed does that).
    """
    from distro_builder.archive.fetch import Fetcher
    from distro_builder.media.layout import detect_flavor
    from distro_builder.packageset import stage_package_overlay
    from distro_builder.remaster import source_date_epoch_from_env

    if output.exists() and any(output.iterdir()):
        raise ConfigError(f"{output}: not empty", hint="give a new or empty directory")
    epoch = source_date_epoch_from_env()
    specs = _specs(repos, sources)
    with _open_base(base) as image, _emptied_on_failure(output):
        flavor = detect_flavor(image)
        plan, result = stage_package_overlay(
            data_dir(ctx), image, flavor, output,
            roles=roles or None, specs=specs, fetcher=Fetcher(cache, offline=offline),
            sign_key=sign_key, mtime=epoch if epoch is not None else 1302825600,
        )  # fmt: skip
    if as_json:
        emit_json({"output": str(output), "plan": _plan_json(plan), "publish": asdict(result)})
    else:
        click.echo(
            f"{output}: {len(result.packages)} packages in pool/{result.component}, "
            f"metapackages {', '.join(result.metapackages)}; Release "
            + ("signed by " + str(result.sign_key) if result.signed else "UNSIGNED")
        )


@main.command()
@click.argument("iso", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the checks as JSON on stdout.")
@click.pass_context
def verify(ctx: click.Context, iso: Path, as_json: bool) -> None:
    """Check a disc's archive: Release hashes, pool files, dependency closure, preseed packages.

    Exits 1 when a check fails.
    """
    from distro_builder.verify import verify_archive

    checks = verify_archive(iso)
    if as_json:
        emit_json(
            {
                "iso": str(iso),
                "ok": all(c.ok for c in checks),
                "checks": [
                    {"name": c.name, "ok": c.ok, "checked": c.checked, "problems": c.problems}
                    for c in checks
                ],
            }
        )
    else:
        for c in checks:
            click.echo(f"{'ok  ' if c.ok else 'FAIL'} {c.name}: {c.checked} checked")
            for p in c.problems[:20]:
                click.echo(f"     {p}")
            if len(c.problems) > 20:
                click.echo(f"     ... {len(c.problems) - 20} more (--json shows all)")
    if not all(c.ok for c in checks):
        ctx.exit(1)
