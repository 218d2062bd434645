"""Commands on media: demo-base, remaster, inspect."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from distro_builder.cli import data_dir, emit_json, main


@main.command("demo-base")
@click.option(
    "-o", "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("build/demo-base.iso"), show_default=True,
    help="Where to write the demo base ISO.",
)  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
@click.pass_context
def demo_base(ctx: click.Context, output: Path, as_json: bool) -> None:
    """Build the lucid-faithful DEMO base ISO.

    A stand-in for ubuntu-10.04.4-server-amd64.iso with the real disc's layout and quirks, tiny
    packages with the real 2011 names, and a Debian 12 installer kernel. Boot parts come from
    the host's isolinux, syslinux-common, debian-installer-12-netboot-amd64 and memtest86+
    packages.
    """
    from distro_builder.demo import build_demo_base

    out = build_demo_base(data_dir(ctx), output)
    size = out.stat().st_size
    if as_json:
        emit_json({"output": str(out), "size": size, "demo": True})
    else:
        click.echo(f"{out}: DEMO base ISO, {size:,} bytes")


@main.command()
@click.argument("base", type=click.Path(path_type=Path))
@click.option(
    "-o", "--output", required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The new ISO (written to a temporary file beside it, then renamed).",
)  # fmt: skip
@click.option(
    "--add", "overlays", multiple=True,
    type=click.Path(path_type=Path),
    help="A directory laid over the disc's root (repeatable; a later one wins).",
)  # fmt: skip
@click.option(
    "--hybrid", is_flag=True, help="Also make the ISO bootable from a USB stick (isohybrid MBR)."
)
@click.option(
    "--remove", "removals", multiple=True, metavar="PATH",
    help="A base file to drop, e.g. /dists/lucid/Release.gpg (repeatable).",
)  # fmt: skip
@click.option(
    "--rehash-md5", is_flag=True,
    help="Read every file for md5sum.txt (by default an untouched file keeps the base's MD5).",
)  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
def remaster(
    base: Path,
    output: Path,
    overlays: tuple[Path, ...],
    hybrid: bool,
    removals: tuple[str, ...],
    rehash_md5: bool,
    as_json: bool,
) -> None:
    """Remaster BASE into a new ISO with the overlay directories added.

    Files in an overlay are added or replace the base's; symlinks, modes and the El Torito boot
    (with its boot-info-table) survive; md5sum.txt is regenerated. With SOURCE_DATE_EPOCH set,
    the output is byte-identical from run to run, whatever the time zone.
    """
    from distro_builder.remaster import remaster as run_remaster
    from distro_builder.remaster import source_date_epoch_from_env

    epoch = source_date_epoch_from_env()
    show_bar = not as_json and sys.stderr.isatty()
    bar_ctx = click.progressbar(length=100, label="Writing", file=sys.stderr) if show_bar else None
    last = [0]

    def progress(done: int, total: int) -> None:
        if bar_ctx is not None and total:
            pct = done * 100 // total
            bar_ctx.update(pct - last[0])
            last[0] = pct

    try:
        result = run_remaster(
            base,
            output,
            overlays,
            remove=removals,
            hybrid=hybrid,
            source_date_epoch=epoch,
            progress=progress,
            rehash_md5=rehash_md5,
        )
    finally:
        if bar_ctx is not None:
            bar_ctx.render_finish()
    if as_json:
        emit_json(
            {
                "output": result.output,
                "size": result.size,
                "hybrid": result.hybrid,
                "md5sum_files": result.md5sum_files,
                "changes": [
                    {"path": c.path, "action": c.action, "kind": str(c.kind)}
                    for c in result.changes
                ],
            }
        )
        return
    n = {
        a: sum(1 for c in result.changes if c.action == a) for a in ("added", "replaced", "removed")
    }
    click.echo(
        f"{result.output}: {result.size:,} bytes, {n['added']} added, "
        f"{n['replaced']} replaced, {n['removed']} removed, "
        f"md5sum.txt lists {result.md5sum_files} files" + (", hybrid" if hybrid else "")
    )


@main.command()
@click.argument("iso", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")
@click.option(
    "--changes",
    "list_changes",
    is_flag=True,
    help="List every path distro-builder added, replaced or removed (by default only the counts; "
    "--json always has the list).",
)
def inspect(iso: Path, as_json: bool, list_changes: bool) -> None:
    """Show what is on ISO: flavor, volume id, El Torito, boot menu, archive, our changes."""
    from distro_builder.describe import describe_iso

    report = describe_iso(iso)
    if as_json:
        emit_json(report)
    else:
        click.echo(_format_report(report, list_changes=list_changes))


def _format_report(r: dict[str, Any], *, list_changes: bool = False) -> str:
    f = r["flavor"]
    lines = [
        f"ISO:         {r['path']} ({r['size']:,} bytes)",
        f"Volume id:   {r['volume_id']}",
        f"Flavor:      {f['distribution']} {f['version']} {f['codename']} "
        f"({' '.join(f['architectures'])}), {f['menu_style']} menu files: "
        + ", ".join(f["menu_files"]),
        f"Disk info:   {f['disk_info'] if f['disk_info'] is not None else '(none)'}",
        f"Names:       ISO 9660 level {r['interchange_level']}, Rock Ridge "
        f"{'yes' if r['rock_ridge'] else 'no'}, Joliet {'yes' if r['joliet'] else 'no'}",
        "El Torito:",
    ]
    for e in r["eltorito"]:
        lines.append(
            f"  {e['platform']} emulation={e['emulation']} load={e['sector_count']} sectors "
            f"image={e['boot_file'] or '?'} (LBA {e['load_rba']})"
            + (" boot-info-table" if e["boot_info_table"] else "")
            + ("" if e["bootable"] else " NOT BOOTABLE")
        )
    m = r["boot_menu"]
    lines.append(
        f"Boot menu:   default {m['default']}, timeout {m['timeout']}, ui {m['ui']}, "
        f"serial {m['serial'] or 'off'}, gfxboot {m['gfxboot'] or 'off'}"
    )
    for e in m["entries"]:
        where = f"[{e['submenu']}] " if e["submenu"] else ""
        hidden = " (hidden)" if e["hidden"] else ""
        lines.append(f"  {e['label']:<12} {where}{e['menu_label']}{hidden}")
        if e["kernel"]:
            lines.append(f"  {'':<12} kernel {e['kernel']}  initrd {e['initrd'] or '-'}")
        if e["append"]:
            lines.append(f"  {'':<12} append {e['append']}")
        if e["localboot"]:
            lines.append(f"  {'':<12} localboot {e['localboot']}")
    for missing in m["missing_includes"]:
        lines.append(f"  MISSING include: {missing}")
    lines.append(
        "Archive:     " + ", ".join(f"{k} {v} packages" for k, v in sorted(r["archive"].items()))
    )
    db = r["distro_builder"]
    if db is None:
        lines.append("Changes:     none (not written by distro-builder)")
    else:
        changes = db.get("changes", [])
        lines.append(
            f"Changes:     written by distro-builder {db.get('version', '?')}: "
            f"{sum(1 for c in changes if c.get('action') == 'added')} added, "
            f"{sum(1 for c in changes if c.get('action') == 'replaced')} replaced, "
            f"{sum(1 for c in changes if c.get('action') == 'removed')} removed"
            + ("" if list_changes or not changes else " (--changes lists them)")
        )
        for c in changes if list_changes else ():
            mark = {"added": "+", "removed": "-"}.get(c.get("action", ""), "~")
            lines.append(f"  {mark} {c.get('path')}" + ("/" if c.get("kind") == "dir" else ""))
    return "\n".join(lines)
