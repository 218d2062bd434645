"""qa.qemu argv and accelerator choice, qa.console cleaning, matching and timeouts (no QEMU)."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from distro_builder.errors import DistroBuilderError, SmokeTestError, ToolError
from distro_builder.qa import qemu
from distro_builder.qa.console import (
    KEYS,
    TIMEOUT_MULTIPLIER_ENV,
    AnsiCleaner,
    SerialConsole,
    scale_timeout,
    strip_ansi,
    timeout_multiplier,
)
from distro_builder.qa.qemu import choose_accel, probe_kvm, qemu_argv

ISO = Path("/srv/out/web.iso")

# --- real console samples (captured from QEMU 7.2 / SeaBIOS 1.16.2 / ISOLINUX 6.04) -------------

# The sample from the lucid disc: SeaBIOS sercon splits words with redundant cursor moves.
LUCID_TITLE = "In\x1b[02;32H\x1b[02;33Hstaller boot menu"

# menu.c32 with `serial 0 115200` (sercon off): DEC line drawing via ESC ) 0 and SO/SI.
MENU_C32 = (
    "ISOLINUX 6.04 20200816  Copyright (C) 1994-2015 H. Peter Anvin et al\r\r\n"
    "\x1be\x1b%@\x1b)0\x1b(B\x1b[0;37;40m\x1b[?25l\x1b[2J\x1b[1;11H\x1b[0;30;44m\x0el"
    + "q"
    * 58
    + "k\x1b[2;11H\x1b[0;30;44mx\x0f\x1b[0;1;36;44m                      Tiny boot menu"
    "                      \x1b[0;30;44m\x0ex\x1b[3;11H\x1b[0;30;44mt"
    + "q"
    * 58
    + "u\x0f\x1b[4;11H\x1b[0;30;44m\x0ex\x0f\x1b[0;7;37;40m \x1b[0;1;7;37;40mI"
    "\x1b[0;7;37;40mnstall tiny                                             \x1b[0;30;44m\x0ex"
    "\x0f\x1b[5;11H\x1b[0;30;44m\x0ex\x0f\x1b[0;37;44m \x1b[0;1;37;44mR\x1b[0;37;44mescue mode"
    "                                              \x1b[0;30;44m\x0ex\x0f"
    "\x1b[16;11H\x1b[0;30;44m\x0em" + "q" * 58 + "j\x0f\x1b[0;31;40m\x1b[18;27H"
    "Press [Tab] to edit options"
)

# vesamenu.c32 without serial directive, -vga none (sercon on): SeaBIOS translates CP437.
VESAMENU_SERCON = (
    "\x1b[2J\x1b[01;11H\x1b[0;30;44m┌" + "─" * 58 + "┐\x1b[02;11H│\x1b[0;36;44;1m"
    "                   Installer boot menu                    \x1b[0;30;44m│\x1b[03;11H├"
    + "─" * 49
    + "\x1b[03;60H\x1b[03;61H"
    + "─" * 9
    + "┤\x1b[04;11H│\x1b[0;30;47m \x1b[0;30;47;1mI\x1b[0;30;47mnstall Ubuntu Server"
    "                                    \x1b[0;30;44m│\x1b[05;11H│\x1b[0;44m \x1b[0;44;1mR"
    "\x1b[0;44mescue a broken system    \x1b[05;38H\x1b[05;39H                               "
    "\x1b[0;30;44m│"
)

KERNEL = (
    "\x1b[?25h\x1b[24;1H\x1b[0mLoading /install/linux... ok\r\r\n"
    "[    0.000000] Linux version 6.1.0-50-amd64 (debian-kernel@lists.debian.org)\r\r\n"
    "[    0.000000] Command line: BOOT_IMAGE=/install/linux console=ttyS0,115200n8 ---\r\r\n"
)

SAMPLES = [LUCID_TITLE, MENU_C32, VESAMENU_SERCON, KERNEL]


# --- qemu_argv -----------------------------------------------------------------------------------


def test_argv_serial_directive_disc_turns_sercon_off() -> None:
    assert qemu_argv(ISO, accel="tcg", sercon=False) == [
        "qemu-system-x86_64",
        "-nographic",
        "-no-reboot",
        "-nic", "none",
        "-m", "1024",
        "-accel", "tcg",
        "-fw_cfg", "name=etc/sercon-port,string=0",
        "-cdrom", "/srv/out/web.iso",
        "-boot", "d",
    ]  # fmt: skip


def test_argv_unmodified_disc_uses_sercon_without_vga() -> None:
    argv = qemu_argv(ISO, accel="kvm", memory_mb=512, sercon=True, extra=["-smp", "2"])
    assert argv[argv.index("-vga") + 1] == "none"
    assert "-fw_cfg" not in argv
    assert argv[argv.index("-accel") + 1] == "kvm"
    assert argv[argv.index("-m") + 1] == "512"
    assert "-nographic" in argv
    assert argv[-2:] == ["-smp", "2"]


def test_argv_hybrid_disc_as_disk_never_writes_it() -> None:
    argv = qemu_argv(Path("/tmp/a,b.iso"), accel="tcg", sercon=False, boot="disk")
    assert "-cdrom" not in argv
    assert argv[argv.index("-drive") + 1] == "file=/tmp/a,,b.iso,format=raw,if=ide,snapshot=on"
    assert argv[argv.index("-boot") + 1] == "c"


@pytest.mark.parametrize("kwargs", [{"accel": "xen"}, {"accel": "tcg", "boot": "floppy"}])
def test_argv_rejects_unknown_values(kwargs: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        qemu_argv(ISO, sercon=False, **kwargs)  # type: ignore[arg-type]


# --- KVM probe and accelerator choice ------------------------------------------------------------


@pytest.fixture
def fresh_probe(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setattr(qemu, "_probe_cache", {})
    monkeypatch.setattr(qemu, "find_tool", lambda name: "/usr/bin/" + name)
    kvm = tmp_path / "kvm"
    kvm.touch()
    monkeypatch.setattr(qemu, "KVM_DEVICE", kvm)
    return kvm


def _fake_run(monkeypatch: pytest.MonkeyPatch, result: object) -> list[list[str]]:
    calls: list[list[str]] = []

    def fake(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[bytes]:
        calls.append(list(argv))
        if isinstance(result, Exception):
            raise result
        assert isinstance(result, subprocess.CompletedProcess)
        return result

    monkeypatch.setattr(qemu, "run", fake)
    return calls


def test_probe_kvm_boots_seabios_under_kvm_and_caches(
    fresh_probe: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ok = subprocess.CompletedProcess([], 0, b"\x1bcSeaBIOS (version 1.16.2)\r\nBooting from", b"")
    calls = _fake_run(monkeypatch, ok)
    assert probe_kvm() is True
    assert probe_kvm() is True
    assert len(calls) == 1
    argv = calls[0]
    assert argv[argv.index("-accel") + 1] == "kvm"
    assert "-no-reboot" in argv and "-nographic" in argv


@pytest.mark.parametrize(
    "result",
    [
        subprocess.CompletedProcess([], 1, b"", b"Could not access KVM kernel module"),
        subprocess.CompletedProcess([], 0, b"", b""),
        ToolError("'qemu-system-x86_64' did not finish within 20 s"),
    ],
)
def test_probe_kvm_fails_on_error_silence_or_hang(
    fresh_probe: Path, monkeypatch: pytest.MonkeyPatch, result: object
) -> None:
    _fake_run(monkeypatch, result)
    assert probe_kvm() is False


def test_probe_kvm_without_device_starts_nothing(
    fresh_probe: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fresh_probe.unlink()
    calls = _fake_run(monkeypatch, ToolError("must not run"))
    assert probe_kvm() is False
    assert calls == []


def test_choose_accel(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(qemu, "probe_kvm", lambda timeout=20, *, iso=None, netboot=False: True)
    assert choose_accel("auto") == "kvm"
    assert choose_accel("kvm") == "kvm"
    assert choose_accel("tcg") == "tcg"
    # KVM runs SeaBIOS and the disc but not the NIC's iPXE ROM (this machine): a network boot
    # gets TCG, a disc boot KVM.
    monkeypatch.setattr(
        qemu, "probe_kvm", lambda timeout=20, *, iso=None, netboot=False: not netboot
    )
    assert choose_accel("auto", netboot=True) == "tcg"
    assert choose_accel("auto") == "kvm"
    monkeypatch.setattr(qemu, "probe_kvm", lambda timeout=20, *, iso=None, netboot=False: False)
    assert choose_accel("auto") == "tcg"
    assert choose_accel("tcg") == "tcg"
    with pytest.raises(SmokeTestError) as info:
        choose_accel("kvm")
    assert info.value.hint and "tcg" in info.value.hint
    with pytest.raises(ValueError):
        choose_accel("hvf")


# --- ANSI cleaning -------------------------------------------------------------------------------


def test_sercon_word_split_by_cursor_moves_is_joined() -> None:
    assert strip_ansi(LUCID_TITLE) == "Installer boot menu"


def test_menu_c32_serial_menu() -> None:
    lines = strip_ansi(MENU_C32).splitlines()
    assert lines[0] == "ISOLINUX 6.04 20200816  Copyright (C) 1994-2015 H. Peter Anvin et al"
    assert "┌" + "─" * 58 + "┐" in lines
    assert "│ Install tiny" in [line.rstrip(" │") for line in lines]
    assert "│ Rescue mode" in [line.rstrip(" │") for line in lines]
    assert "└" + "─" * 58 + "┘" in lines
    assert lines[-1] == "Press [Tab] to edit options"
    assert "qqq" not in strip_ansi(MENU_C32)
    assert "\x1b" not in strip_ansi(MENU_C32)


def test_vesamenu_sercon_menu() -> None:
    lines = [line.rstrip() for line in strip_ansi(VESAMENU_SERCON).splitlines() if line]
    assert lines[1].strip("│ ") == "Installer boot menu"
    assert lines[2] == "├" + "─" * 58 + "┤"  # the redundant moves add no gap
    assert lines[3].strip("│ ") == "Install Ubuntu Server"
    assert lines[4].strip("│ ") == "Rescue a broken system"


def test_kernel_lines() -> None:
    text = strip_ansi(KERNEL)
    assert "Loading /install/linux... ok\n[    0.000000] Linux version 6.1.0" in text
    assert "\r" not in text


def test_real_gap_on_a_row_becomes_a_space() -> None:
    assert strip_ansi("\x1b[5;1HLabel\x1b[5;40Hhelp text") == "Label help text"
    assert strip_ansi("x\x1b[5;1HLabel\x1b[6;1Hnext") == "x\nLabel\nnext"


@pytest.mark.parametrize("sample", SAMPLES)
def test_cleaning_does_not_depend_on_chunking(sample: str) -> None:
    cleaner = AnsiCleaner()
    pieces = [cleaner.feed(ch) for ch in sample]
    assert "".join(pieces) + cleaner.flush() == strip_ansi(sample)
    cleaner = AnsiCleaner()
    pieces = [cleaner.feed(sample[i : i + 7]) for i in range(0, len(sample), 7)]
    assert "".join(pieces) + cleaner.flush() == strip_ansi(sample)


def test_cut_off_escape_is_held_back() -> None:
    cleaner = AnsiCleaner()
    assert cleaner.feed("abc\x1b[0;3") == "abc"
    assert cleaner.feed("7mdef") == "def"
    assert cleaner.feed("\x1b") == ""
    assert cleaner.flush() == ""


# --- timeouts ------------------------------------------------------------------------------------


def test_timeout_multiplier(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TIMEOUT_MULTIPLIER_ENV, raising=False)
    assert timeout_multiplier() == 1
    assert scale_timeout(30) == 30
    monkeypatch.setenv(TIMEOUT_MULTIPLIER_ENV, "2.5")
    assert scale_timeout(30) == 75


@pytest.mark.parametrize("value", ["fast", "0", "-1", "inf", "nan"])
def test_timeout_multiplier_rejects_nonsense(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(TIMEOUT_MULTIPLIER_ENV, value)
    with pytest.raises(DistroBuilderError) as info:
        timeout_multiplier()
    assert TIMEOUT_MULTIPLIER_ENV in str(info.value)
    assert info.value.hint


# --- SerialConsole on a stand-in process (a shell printing real samples) -------------------------


def _script(tmp_path: Path, body: str) -> list[str]:
    script = tmp_path / "guest.py"
    script.write_text(f"import sys, time\n{body}\n")
    return [sys.executable, "-u", str(script)]


def test_expect_line_waits_for_the_end_of_a_line_that_arrives_in_pieces(tmp_path: Path) -> None:
    # The serial line delivered "Command line: BO" and the rest later in CI: a pattern ending in
    # an open group matched the fragment. expect_line must wait for the newline.
    guest = _script(
        tmp_path,
        "sys.stdout.write('Command line: BO'); sys.stdout.flush(); time.sleep(1.0)\n"
        "sys.stdout.write('OT_IMAGE=/install/vmlinuz  \\r\\nnext'); sys.stdout.flush()\n"
        "time.sleep(30)",
    )
    with SerialConsole(guest, tmp_path / "console.log") as console:
        assert console.expect_line("Command line:", timeout=10) == "BOOT_IMAGE=/install/vmlinuz"


def test_console_matches_across_escapes_and_records_stages(tmp_path: Path) -> None:
    guest = _script(
        tmp_path,
        f"sys.stdout.write({VESAMENU_SERCON!r}); sys.stdout.flush()\n"
        "line = sys.stdin.readline()\n"
        f"sys.stdout.write('got ' + line + {KERNEL!r})\n"
        "time.sleep(30)",
    )
    with SerialConsole(guest, tmp_path / "console.log") as console:
        with console.stage("menu", timeout=10):
            assert console.expect("Installer boot menu") == 0
            assert console.expect(["no such text", "nstall Ubuntu Server"]) == 1
        console.send("go")
        console.send_key("enter")
        with console.stage("kernel", timeout=10):
            console.expect("got go")
            console.expect(re.compile(r"Command line: (\S+)\s"))
            assert console.match is not None
            assert console.match.group(1) == "BOOT_IMAGE=/install/linux"
        assert console.tail(2)[-1].endswith("console=ttyS0,115200n8 ---")
    assert [(r.name, r.passed) for r in console.results] == [("menu", True), ("kernel", True)]
    first, second = console.results
    assert 0 <= first.started_at <= first.finished_at <= second.started_at <= second.finished_at
    assert second.seconds <= second.finished_at
    raw = (tmp_path / "console.log").read_text()
    assert "\x1b[03;60H" in raw  # the log keeps the raw stream


def test_each_stage_is_reported_as_it_ends(tmp_path: Path) -> None:
    """pxe-smoke prints each stage as it passes: on_stage sees a stage before the next starts."""
    guest = _script(tmp_path, "print('one', flush=True); time.sleep(30)")
    seen: list[tuple[str, bool]] = []
    with SerialConsole(
        guest, tmp_path / "c.log", on_stage=lambda r: seen.append((r.name, r.passed))
    ) as console:
        with console.stage("first", timeout=10):
            console.expect("one")
        assert seen == [("first", True)]
        with pytest.raises(SmokeTestError), console.stage("second", timeout=0.5):
            console.expect("never")
    assert seen == [("first", True), ("second", False)]


def test_console_timeout_names_pattern_seconds_tail_and_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TIMEOUT_MULTIPLIER_ENV, "0.5")
    guest = _script(tmp_path, "print('line one'); print('line two', flush=True); time.sleep(30)")
    with SerialConsole(guest, tmp_path / "c.log") as console:
        console.expect("line two", timeout=10)
        start = time.monotonic()
        with pytest.raises(SmokeTestError) as info:
            console.expect("Linux version", timeout=2)  # scaled to 1 s
        assert 0.9 < time.monotonic() - start < 3
    message = str(info.value)
    assert "Timed out after 1.0 s waiting for 'Linux version'" in message
    assert "| line one\n  | line two" in message
    assert f"Full console log: {tmp_path / 'c.log'}" in message
    assert TIMEOUT_MULTIPLIER_ENV in (info.value.hint or "")


def test_console_eof_and_fatal_fail_at_once(tmp_path: Path) -> None:
    guest = _script(tmp_path, "print('bye')")
    with SerialConsole(guest, tmp_path / "eof.log") as console:
        start = time.monotonic()
        with pytest.raises(SmokeTestError, match="QEMU exited .* while waiting for 'never'"):
            console.expect("never", timeout=20)
        assert time.monotonic() - start < 10
        with pytest.raises(SmokeTestError):
            console.send("x")
    guest = _script(
        tmp_path, "print('KVM internal error. Suberror: 1', flush=True); time.sleep(30)"
    )
    with SerialConsole(guest, tmp_path / "kvm.log") as console:
        with pytest.raises(SmokeTestError) as info:
            console.expect("never", timeout=20)
        assert info.value.hint and "tcg" in info.value.hint


def test_console_close_kills_and_reaps(tmp_path: Path) -> None:
    guest = _script(tmp_path, "time.sleep(60)")
    console = SerialConsole(guest, tmp_path / "k.log")
    pid = console.pid
    assert Path(f"/proc/{pid}").exists()
    console.close()
    console.close()
    assert not Path(f"/proc/{pid}").exists()


def test_send_key_names() -> None:
    assert KEYS["enter"] == "\r"
    assert KEYS["down"] == "\x1b[B"
    assert KEYS["up"] == "\x1b[A"
    assert KEYS["tab"] == "\t"
    assert KEYS["esc"] == "\x1b"


def test_send_key_rejects_unknown_key(tmp_path: Path) -> None:
    with SerialConsole(_script(tmp_path, "time.sleep(30)"), tmp_path / "x.log") as console:
        with pytest.raises(ValueError, match="known: enter"):
            console.send_key("f13")


@pytest.mark.parametrize(
    ("roles", "needs"),
    [("compute", ("controller",)), ("network", ("controller",)), ("volume", ("controller",)),
     ("controller", ()), ("controller,network,volume", ()),
     ("controller,network,volume,compute", ())],
)  # fmt: skip
def test_which_nodes_wait_for_their_controller(roles: str, needs: tuple[str, ...]) -> None:
    """smoke --full fails stage 5 at once for a node the lone stand-in cannot serve: read from
    the questions table the disc's installer carries (controller_address: skip_with)."""
    from distro_builder.qa import firstboot

    inputs = firstboot.inputs_from_tree(Path(__file__).resolve().parents[2], roles)
    assert firstboot.waits_for(inputs) == needs
