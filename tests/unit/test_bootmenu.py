"""The isolinux parser on the demo base's lucid menu files and on edge cases."""

from __future__ import annotations

from pathlib import Path

from distro_builder.media.bootmenu import parse_boot_menu, resolve_path

DEMO_TREE = Path(__file__).resolve().parents[2] / "demo" / "tree"


def _reader(files: dict[str, str]):  # type: ignore[no-untyped-def]
    return files.get


def _tree_reader(root: Path):  # type: ignore[no-untyped-def]
    def read(path: str) -> str | None:
        p = root / path.lstrip("/")
        return p.read_text() if p.is_file() else None

    return read


def test_lucid_menu_follows_includes_and_submenus() -> None:
    menu = parse_boot_menu(_tree_reader(DEMO_TREE))
    assert menu.files[:4] == (
        "/isolinux/isolinux.cfg",
        "/isolinux/menu.cfg",
        "/isolinux/stdmenu.cfg",
        "/isolinux/text.cfg",
    )
    assert "/isolinux/adtext.cfg" in menu.files
    assert menu.ui == "vesamenu.c32" and menu.default == "install"
    assert menu.timeout == 0 and menu.prompt == 0 and menu.gfxboot == "bootlogo"
    by_label = {e.label: e for e in menu.entries}
    install = by_label["install"]
    assert install.menu_label == "Install Ubuntu Server"
    assert install.kernel == "/install/vmlinuz" and install.initrd == "/install/initrd.gz"
    assert "file=/cdrom/preseed/ubuntu-server.seed" in install.append
    assert install.submenu is None and install.config_file == "/isolinux/text.cfg"
    assert by_label["expert"].hidden and by_label["expert"].submenu == "Advanced options"
    assert by_label["hd"].localboot == "0x80" and by_label["hd"].kernel is None
    assert by_label["memtest"].kernel == "/install/mt86plus"
    assert menu.missing_includes == ()
    assert menu.menu_rows == 10  # stdmenu.cfg


def test_menu_rows_is_the_last_in_parse_order_not_in_file_order() -> None:
    # isolinux.cfg includes stdmenu.cfg first and sets its own rows after: isolinux ends with 1,
    # though stdmenu.cfg comes later in the list of files read.
    files = {
        "/isolinux/isolinux.cfg": "include stdmenu.cfg\nmenu rows 1\nlabel a\nkernel /k\n",
        "/isolinux/stdmenu.cfg": "menu rows 10\n",
    }
    menu = parse_boot_menu(_reader(files))
    assert menu.files == ("/isolinux/isolinux.cfg", "/isolinux/stdmenu.cfg")
    assert menu.menu_rows == 1
    assert parse_boot_menu(_reader({"/isolinux/isolinux.cfg": "label a\n"})).menu_rows is None


def test_relative_paths_resolve_against_isolinux_dir() -> None:
    files = {
        "/isolinux/isolinux.cfg": "serial 0 115200\nui menu.c32\nlabel a\n"
        "  KERNEL ../install/vmlinuz\n  INITRD initrd.gz\n  APPEND quiet --\n",
    }
    menu = parse_boot_menu(_reader(files))
    (entry,) = menu.entries
    assert entry.kernel == "/install/vmlinuz"
    assert entry.initrd == "/isolinux/initrd.gz"
    assert menu.serial == "0 115200" and menu.ui == "menu.c32"


def test_last_initrd_in_append_wins_and_missing_include_is_reported() -> None:
    files = {
        "/isolinux/isolinux.cfg": "include nothere.cfg\nlabel x\nkernel /k\n"
        "append initrd=/a.gz foo initrd=/b.gz,/c.gz --\n",
    }
    menu = parse_boot_menu(_reader(files))
    assert menu.entries[0].initrd == "/b.gz"
    assert menu.missing_includes == ("/isolinux/nothere.cfg",)


def test_include_cycle_terminates() -> None:
    files = {"/isolinux/isolinux.cfg": "include a.cfg\n", "/isolinux/a.cfg": "include a.cfg\n"}
    menu = parse_boot_menu(_reader(files))
    assert any("too deep" in m for m in menu.missing_includes)


def test_resolve_path() -> None:
    assert resolve_path("/install/./vmlinuz", "/isolinux") == "/install/vmlinuz"
    assert resolve_path("vesamenu.c32", "/isolinux") == "/isolinux/vesamenu.c32"


def test_stackops_labels_never_shadow_the_bases_labels(tmp_path: Path) -> None:
    """Issue 20 #16: every isolinux label on the disc is unique: an entry called `cloud` (a role
    or a reference-architecture node) would shadow the base's own `label cloud`."""
    import pytest

    from distro_builder.errors import ConfigError
    from distro_builder.imagemodel import Flavor
    from distro_builder.media.menu import plan_menu
    from distro_builder.model import BootEntry, SystemSettings

    data_dir = DEMO_TREE.parent.parent
    read = _tree_reader(DEMO_TREE)
    flavor = Flavor("Ubuntu", "lucid", "10.04", ("amd64",), ("main",), None, "lucid", (),
                    "/dists/lucid/Release")  # fmt: skip

    def plan(*names: str):  # type: ignore[no-untyped-def]
        entries = tuple(BootEntry(n, f"Install {n}", ("compute",)) for n in names)
        return plan_menu(data_dir, read, lambda p: True, flavor, entries, SystemSettings())

    assert plan("compute", "node-cn1").default == "compute"
    with pytest.raises(ConfigError, match=r"label 'cloud'.*isolinux/text.cfg"):
        plan("compute", "cloud")
    with pytest.raises(ConfigError, match=r"label 'expert'.*isolinux/adtext.cfg"):
        plan("expert")
