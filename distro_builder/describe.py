"""What is on an ISO: flavor, boot catalog, boot menu, archive, and what distro-builder added.

Builds a plain-data report (for `inspect --json`) from an opened image; cli.py formats it.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from distro_builder.media.iso import IsoImage
from distro_builder.media.layout import (
    MANIFEST_PATH,
    archive_counts,
    detect_flavor,
    read_boot_menu,
)


def describe_iso(path: Path) -> dict[str, Any]:
    """The inspect report of the ISO at `path`; IsoError when it is not a usable install disc."""
    with IsoImage(path) as image:
        image.require_bootable()
        image.require_rock_ridge()
        flavor = detect_flavor(image)
        menu = read_boot_menu(image)
        manifest_text = image.read_text(MANIFEST_PATH)
        manifest: dict[str, Any] | None = None
        if manifest_text is not None:
            try:
                manifest = json.loads(manifest_text)
            except ValueError:
                manifest = {"error": f"{MANIFEST_PATH} is not valid JSON"}
        return {
            "path": str(path),
            "size": Path(path).stat().st_size,
            "volume_id": image.volume_id,
            "interchange_level": image.interchange_level,
            "joliet": image.has_joliet,
            "rock_ridge": image.has_rock_ridge,
            "flavor": asdict(flavor),
            "eltorito": [asdict(e) for e in image.eltorito()],
            "boot_menu": {
                "files": list(menu.files),
                "missing_includes": list(menu.missing_includes),
                "default": menu.default,
                "timeout": menu.timeout,
                "prompt": menu.prompt,
                "ui": menu.ui,
                "serial": menu.serial,
                "gfxboot": menu.gfxboot,
                "entries": [asdict(e) for e in menu.entries],
            },
            "archive": archive_counts(image, flavor),
            "distro_builder": manifest,
        }
