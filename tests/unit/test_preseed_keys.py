"""Every preseed key the templates write is a question lucid defines (docs/lucid-preseed-keys.md).

debconf-set-selections --checkonly accepts any key; d-i silently ignores one no template defines
(issue 14.12 found three). So the keys are checked against a list kept with its sources.
"""

from __future__ import annotations

import re
from pathlib import Path

from distro_builder.build import load_inputs
from distro_builder.model import InstallerSettings, SystemSettings
from distro_builder.seed.preseed import boot_entries, render_initrd_preseed, render_preseed

ROOT = Path(__file__).resolve().parents[2]
DEPLOYMENT = """\
architecture: dual-node
answers:
  controller_address: 10.0.0.1
  mysql_root_password: r00t-secret
  nova_db_password: n0va-secret
  rabbit_password: r4bbit-secret
  admin_password: adm1n-secret
system:
  password_crypted: PASSWORD_CRYPTED
""".replace(
    "PASSWORD_CRYPTED",
    "$6$abcdefgh$KQeXafAQAaOoKTevphVU215RvJdg"
    "zyfASRasIOuh12hO8u0r1bGW92ZnTmC9IjsiQ8VPiTXBiZF49dFL1U4wX/",
)


def _listed() -> set[tuple[str, str]]:
    text = (ROOT / "docs" / "lucid-preseed-keys.md").read_text()
    return {(m[1], m[2]) for m in re.finditer(r"^\| `(\S+) (\S+)` \|", text, re.M)}


def _keys(text: str) -> set[tuple[str, str]]:
    out = set()
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 3 and not line.startswith("#"):
            out.add((words[0], words[1]))
    return out


def test_every_rendered_key_is_a_lucid_question(tmp_path: Path) -> None:
    listed = _listed()
    assert ("d-i", "partman-partitioning/confirm_write_new_label") in listed
    dep = tmp_path / "deployment.yaml"
    dep.write_text(DEPLOYMENT)
    seen: set[tuple[str, str]] = set()
    installer = InstallerSettings("http://10.0.0.1:8080", "token", "AB" * 32, 60)
    for deployment in (None, dep):
        inputs = load_inputs(ROOT, deployment)
        for entry in boot_entries(inputs.roleset, inputs.deployment):
            for unsigned in (True, False):
                seed = render_preseed(
                    ROOT, entry, roleset=inputs.roleset, deployment=inputs.deployment,
                    codename="lucid", flavor_version="10.04", arch="amd64",
                    allow_unauthenticated=unsigned, installer=installer if deployment else None,
                )  # fmt: skip
                seen |= _keys(seed.text)
    seen |= _keys(render_initrd_preseed(ROOT, SystemSettings()))
    ours = {k for k in seen if k[1].startswith("stackops/")}
    assert ours and all(owner == "d-i" for owner, _ in ours)
    unknown = sorted(k for k in seen - ours if k not in listed)
    assert not unknown, f"not a lucid question (docs/lucid-preseed-keys.md): {unknown}"
    assert ("d-i", "partman/confirm_write_new_label") not in seen
    assert ("d-i", "keyboard-configuration/xkb-keymap") not in seen
