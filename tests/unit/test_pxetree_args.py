"""`distro-builder netboot --preseed-url` (smart_installer/pxetree.py): the kernel command line of
an entry whose preseed d-i fetches over HTTP. network-preseed fetches a `url=` seed only after
netcfg, so the questions netcfg asks first must be answered on the command line (Debian's auto
mode), or d-i stops at its host name question. That d-i really gets past it is
tests/qemu/test_di_debconf.py's."""

from __future__ import annotations

from distro_builder.imagemodel import MenuEntry
from distro_builder.smart_installer.pxetree import PxeEntry, _boot_args, _pxelinux_cfg, _url_args

DISC_APPEND = (
    "file=/cdrom/preseed/stackops-{name}.seed stackops/roles={roles} {extra}locale=en_US "
    "console-setup/ask_detect=false console-setup/layoutcode=us initrd=/install/initrd.gz "
    "console=ttyS0,115200n8 -- console=ttyS0,115200n8"
)
URL = "http://10.0.0.2:8000/preseed/stackops-{name}.seed"


def _entry(name: str, roles: str, extra: str = "") -> MenuEntry:
    append = DISC_APPEND.format(name=name, roles=roles, extra=extra)
    return MenuEntry(name, f"Install {name}", "/install/vmlinuz", None, append, "text.cfg")


def _line(name: str, roles: str, seed: str, extra: str = "") -> str:
    e = _entry(name, roles, extra)
    return _boot_args(e, _url_args(e, URL.format(name=name), seed))


def test_url_entry_carries_auto_mode_and_the_network_answers() -> None:
    words = _line("first-boot", "", "d-i netcfg/choose_interface select auto\n").split()
    assert words[:6] == [
        "auto=true", "priority=critical", f"url={URL.format(name='first-boot')}",
        "interface=auto", "netcfg/get_hostname=stackops", "netcfg/get_domain=",
    ]  # fmt: skip
    # the rest of the disc entry's line as it was, the CD preseed gone
    assert words[6:] == [
        "stackops/roles=", "locale=en_US", "console-setup/ask_detect=false",
        "console-setup/layoutcode=us", "console=ttyS0,115200n8", "--", "console=ttyS0,115200n8",
    ]  # fmt: skip
    assert not any(w.startswith(("file=", "initrd=")) for w in words)


def test_the_seeds_host_and_domain_go_on_the_command_line() -> None:
    seed = "d-i netcfg/get_hostname string compute\nd-i netcfg/get_domain string lab.example\n"
    words = _line("compute", "compute", seed).split()
    assert "netcfg/get_hostname=compute" in words and "netcfg/get_domain=lab.example" in words
    # an empty domain in the seed stays empty, not the fallback
    seed = "d-i netcfg/get_hostname string compute\nd-i netcfg/get_domain string\n"
    assert "netcfg/get_domain=" in _line("compute", "compute", seed).split()


def test_the_entrys_own_answers_and_priority_are_kept() -> None:
    # a deployment node's entry names its host on the disc's line (media/menu.py); an expert
    # entry keeps its priority (the admin wants every question)
    words = _line(
        "node-1", "compute", "d-i netcfg/get_hostname string other\n",
        extra="netcfg/get_hostname=node-1 priority=low ",
    ).split()  # fmt: skip
    assert words.count("priority=low") == 1 and "priority=critical" not in words
    assert [w for w in words if w.startswith("netcfg/get_hostname=")] == [
        "netcfg/get_hostname=node-1"
    ]
    assert "auto=true" in words


def test_written_pxelinux_cfg_has_the_url_line() -> None:
    e = _entry("first-boot", "")
    args = _boot_args(e, _url_args(e, URL.format(name="first-boot"), ""))
    cfg = _pxelinux_cfg(
        [PxeEntry("first-boot", "Install", "", args, "stackops-first-boot.seed")],
        "amd64", "first-boot", 0, True,
    )  # fmt: skip
    want = (
        "  append initrd=ubuntu-installer/amd64/initrd.gz auto=true priority=critical "
        f"url={URL.format(name='first-boot')} interface=auto netcfg/get_hostname=stackops "
        "netcfg/get_domain= stackops/roles= "
    )
    assert want in cfg, cfg
