"""build --installer-url/--installer-token/--installer-fingerprint: the options checked, baked
into every entry's preseed as stackops/installer_*, the token counted as a plaintext secret; the
installer_* keys are answers-file keys that no role may ask."""

from __future__ import annotations

from pathlib import Path

import pytest

from distro_builder.build import load_inputs
from distro_builder.config.roles import INSTALLER_KEYS, answer_keys, load_roles
from distro_builder.errors import ConfigError
from distro_builder.seed.preseed import boot_entries, installer_settings, render_preseed

TOKEN = "Zq3-enrolment_token.42"
FP = "ab" * 32


def test_settings_are_checked_and_normalized() -> None:
    s = installer_settings("http://10.0.0.2:8080/", TOKEN)
    assert (s.url, s.token, s.fingerprint, s.wait) == ("http://10.0.0.2:8080", TOKEN, None, 3600)
    assert installer_settings("http://h", TOKEN, None, 0).wait == 0
    assert installer_settings("http://h", TOKEN, None, 86400).wait == 86400
    for bad in (-1, 86401):
        with pytest.raises(ConfigError, match=f"--installer-wait {bad}: not between 0 and 86400"):
            installer_settings("http://h", TOKEN, None, bad)
    s = installer_settings("https://installer.example.com", TOKEN, FP)
    assert s.fingerprint == ":".join(["AB"] * 32)
    colons = ":".join(["cd"] * 32)
    assert installer_settings("https://h", TOKEN, colons).fingerprint == ":".join(["CD"] * 32)


@pytest.mark.parametrize(
    ("url", "token", "fp", "message"),
    [
        ("ftp://10.0.0.2", TOKEN, None, "not an http"),
        ("http://", TOKEN, None, "not an http"),
        ("http://10.0.0.2/a b", TOKEN, None, "not an http"),
        ("http://h/'x", TOKEN, None, "not an http"),
        ("http://h/?q=1", TOKEN, None, "not an http"),
        ("http://user:pw@h", TOKEN, None, "no user or password"),
        ("http://h:port", TOKEN, None, "port is not a number"),
        ("http://h", None, None, "needs --installer-token"),
        ("http://h", "short", None, "not an enrolment token"),
        ("http://h", "has space in it", None, "not an enrolment token"),
        ("http://h", TOKEN, FP, "for an https"),
        ("https://h", TOKEN, "ab" * 31, "not a SHA-256"),
    ],
)
def test_bad_settings(url: str, token: str | None, fp: str | None, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as e:
        installer_settings(url, token, fp)
    if token:
        assert token not in str(e.value) and token not in (e.value.hint or "")


def test_every_entry_carries_the_installer(data_dir: Path) -> None:
    inputs = load_inputs(data_dir, None)
    s = installer_settings("https://10.0.0.2:8443", TOKEN, FP, 600)
    entries = boot_entries(inputs.roleset)
    assert any(not e.roles for e in entries)  # the first-boot entry too
    for entry in entries:
        seed = render_preseed(
            data_dir, entry, roleset=inputs.roleset, deployment=None, codename="lucid",
            flavor_version="10.04", arch="amd64", allow_unauthenticated=True, installer=s,
        )  # fmt: skip
        lines = seed.text.splitlines()
        assert "d-i stackops/installer_url string https://10.0.0.2:8443" in lines
        assert f"d-i stackops/installer_token password {TOKEN}" in lines
        assert f"d-i stackops/installer_fingerprint string {s.fingerprint}" in lines
        assert "d-i stackops/installer_wait string 600" in lines
        assert "installer_token" in seed.plaintext_secrets
        plain = render_preseed(
            data_dir, entry, roleset=inputs.roleset, deployment=None, codename="lucid",
            flavor_version="10.04", arch="amd64", allow_unauthenticated=True,
        )  # fmt: skip
        assert "installer_" not in plain.text and not plain.plaintext_secrets


def test_installer_keys_are_answers_but_not_questions(data_dir: Path, tmp_path: Path) -> None:
    roles = load_roles(data_dir)
    assert set(INSTALLER_KEYS) <= set(answer_keys(roles))
    assert not {q.key for q in roles.questions} & set(INSTALLER_KEYS)
    # the agent knows them (no "ignoring unknown key" warning)
    assert "SO_INSTALLER_KEYS" in (data_dir / "agent/lib/answers.sh").read_text()
    for key in INSTALLER_KEYS:
        assert key in (data_dir / "agent/lib/common.sh").read_text()
        assert key in (data_dir / "d-i/late.sh").read_text()
    # a role cannot ask one
    import shutil

    shutil.copytree(data_dir / "roles", tmp_path / "roles")
    path = tmp_path / "roles" / "compute" / "role.yaml"
    path.write_text(
        path.read_text().replace("questions:", "questions:\n  installer_url: {type: string}", 1)
    )
    with pytest.raises(ConfigError, match="'installer_url' cannot be a question key"):
        load_roles(tmp_path)
