"""demo/disc.yaml loading: the real file loads; bad files get errors naming file, key and line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from distro_builder.config import find_data_dir
from distro_builder.config.demo import load_demo_disc
from distro_builder.errors import ConfigError


def test_real_demo_disc_loads(data_dir: Path) -> None:
    disc = load_demo_disc(data_dir)
    assert disc.volume_id == "Ubuntu-Server 10.04.4 LTS amd64"
    assert disc.codename == "lucid" and disc.components == ("main", "restricted")
    names = {p.name for p in disc.packages}
    assert {"openssh-server", "mysql-server-5.1", "libvirt-bin", "netcfg"} <= names
    assert any(p.udeb for p in disc.packages) and any(p.task for p in disc.packages)


@pytest.fixture
def data_copy(tmp_path: Path, data_dir: Path) -> Path:
    shutil.copytree(data_dir / "demo", tmp_path / "demo")
    return tmp_path


def _edit(root: Path, old: str, new: str) -> None:
    p = root / "demo" / "disc.yaml"
    text = p.read_text()
    assert old in text
    p.write_text(text.replace(old, new, 1))


def test_unknown_key_is_named(data_copy: Path) -> None:
    _edit(data_copy, "  tzdata: {version:", "  tzdata: {colour: red, version:")
    with pytest.raises(ConfigError, match=r"disc.yaml: unknown key packages.tzdata.colour"):
        load_demo_disc(data_copy)


def test_yaml_syntax_error_names_the_line(data_copy: Path) -> None:
    _edit(data_copy, "maintainer: Ubuntu", "maintainer: [Ubuntu")
    with pytest.raises(ConfigError, match=r"disc.yaml:\d+: invalid YAML"):
        load_demo_disc(data_copy)


def test_component_must_be_listed(data_copy: Path) -> None:
    _edit(data_copy, "component: restricted", "component: multiverse")
    with pytest.raises(ConfigError, match="not in identity.components"):
        load_demo_disc(data_copy)


def test_volume_id_limit(data_copy: Path) -> None:
    _edit(data_copy, "volume_id: Ubuntu-Server 10.04.4 LTS amd64", "volume_id: " + "x" * 33)
    with pytest.raises(ConfigError, match="32 characters"):
        load_demo_disc(data_copy)


def test_find_data_dir(tmp_path: Path, data_dir: Path) -> None:
    assert find_data_dir(data_dir) == data_dir
    with pytest.raises(ConfigError, match="no data folder") as e:
        find_data_dir(tmp_path)
    assert e.value.hint and "--data-dir" in e.value.hint


def _laughs(levels: int, width: int) -> str:
    """The "billion laughs": `width` aliases of the level below, `levels` deep."""
    lines = ["l0: &l0 [" + ", ".join(['"lol"'] * width) + "]"]
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # 81 aliases only, but 9**9 nodes once expanded: the alias count alone is not enough
        (_laughs(10, 9), r"^{f}: the YAML expands to more than 100,000 nodes through its aliases$"),
        ("v: &v 1\nl:\n" + "  - *v\n" * 101, r"^{f}:103: more than 100 aliases \(\*v is one"),
        ("a: &x [1, *x]\n", r"^{f}:1: recursive alias \*x"),
        ("a: &x\n  b:\n    c: *x\n", r"^{f}:3: recursive alias \*x"),
        ("[" * 30000 + "]" * 30000 + "\n", r"^{f}: the YAML is nested too deeply$"),
        ("answers:\n  x: 1\n  y: 2\n  x: 3\n", r"^{f}:4: duplicate key 'x' \(first on line 2\)"),
        ("a: {k: 1, k: 2}\n", r"^{f}:1: duplicate key 'k' \(first on line 1\)"),
        # plain scalars stay text (issue 20 #15): '1' and 1 are the same key, one would be lost
        ("'1': a\n1: b\ntrue: c\n", r"^{f}:2: duplicate key '1' \(first on line 1\)"),
    ],
    ids=["billion-laughs", "101-aliases", "recursive", "recursive-map", "deep", "dup", "dup-flow",
         "dup-resolved"],
)  # fmt: skip
def test_hostile_or_ambiguous_yaml_is_refused(tmp_path: Path, text: str, message: str) -> None:
    import re
    import time

    from distro_builder.config import load_yaml

    f = tmp_path / "deployment.yaml"
    f.write_text(text)
    started = time.monotonic()
    with pytest.raises(ConfigError, match=message.format(f=re.escape(str(f)))):
        load_yaml(f)
    assert time.monotonic() - started < 5


def test_aliases_and_merge_keys_within_bounds_still_load(tmp_path: Path) -> None:
    from distro_builder.config import compose_yaml, load_yaml

    f = tmp_path / "ok.yaml"
    f.write_text(
        "v: &v 1\nl:\n" + "  - *v\n" * 99 + "base: &b {k: 1, j: 2}\nother:\n  <<: *b\n  k: 3\n"
    )
    data = load_yaml(f)
    assert data["l"] == ["1"] * 99 and data["other"] == {"k": "3", "j": "2"}
    node = compose_yaml(f)
    assert node is not None and node.value[0][0].value == "v"


def test_plain_scalars_stay_the_text_written(tmp_path: Path) -> None:
    """Issue 20 #15: YAML 1.1 turned 0123 into 83 and 1.10 into 1.1; only null is resolved, and
    integer and boolean fields read the text themselves (decimal only; an error otherwise)."""
    from distro_builder.config import Fields, load_yaml

    f = tmp_path / "x.yaml"
    f.write_text(
        "a: 0123\nb: 12:30\nc: 0x1F\nd: 1_000_000\ne: 1.10\nf: .inf\ng: yes\nh: ~\ni:\n"
        "n: 42\nm: -3\nx: 0x10\nt: true\nu: off\n"
    )
    data = load_yaml(f)
    assert [data[k] for k in "abcdefghi"] == [
        "0123", "12:30", "0x1F", "1_000_000", "1.10", ".inf", "yes", None, None
    ]  # fmt: skip
    fields = Fields(f, "", data, set(data))
    assert (fields.int("n"), fields.int("m"), fields.str("e")) == (42, -3, "1.10")
    assert (fields.bool("t"), fields.bool("u"), fields.bool("g")) == (True, False, True)
    for key in ("a", "x", "d", "e"):
        with pytest.raises(ConfigError, match=f"{key} must be a whole number written in decimal"):
            fields.int(key)
