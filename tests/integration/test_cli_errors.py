"""Bad input: one clear line, a hint, a non-zero exit, never a traceback (real CLI)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests import isomutate
from tests.helpers import require_tool_or_skip

pytestmark = pytest.mark.integration


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "distro_builder", *args], capture_output=True, text=True
    )


def _assert_clean_error(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, proc.stderr
    assert any(line.startswith("hint: ") for line in proc.stderr.splitlines())
    for needle in needles:
        assert needle in errors[0], errors[0]


def _mkisofs(tree: Path, out: Path, *boot: str) -> Path:
    require_tool_or_skip("genisoimage")
    subprocess.run(
        ["genisoimage", "-quiet", "-r", "-J", "-l", "-o", str(out), *boot, str(tree)], check=True
    )
    return out


@pytest.fixture(scope="module")
def no_boot_iso(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tree = tmp_path_factory.mktemp("nb")
    (tree / "README").write_text("data disc\n")
    return _mkisofs(tree, tree.parent / "noboot.iso")


@pytest.fixture(scope="module")
def unknown_layout_iso(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tree = tmp_path_factory.mktemp("ul")
    (tree / "boot").mkdir()
    (tree / "boot" / "isolinux.bin").write_bytes(
        Path("/usr/lib/ISOLINUX/isolinux.bin").read_bytes()
    )
    boot = ["-b", "boot/isolinux.bin", "-c", "boot/boot.cat", "-no-emul-boot",
            "-boot-load-size", "4", "-boot-info-table"]  # fmt: skip
    return _mkisofs(tree, tree.parent / "unknown.iso", *boot)


@pytest.fixture(scope="module")
def no_rock_ridge_iso(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Bootable, but ISO 9660 names only (no -r): the engine works by Rock Ridge path."""
    require_tool_or_skip("genisoimage")
    tree = tmp_path_factory.mktemp("nr")
    (tree / "boot").mkdir()
    (tree / "boot" / "isolinux.bin").write_bytes(
        Path("/usr/lib/ISOLINUX/isolinux.bin").read_bytes()
    )
    out = tree.parent / "norr.iso"
    subprocess.run(
        ["genisoimage", "-quiet", "-J", "-o", str(out), "-b", "boot/isolinux.bin",
         "-c", "boot/boot.cat", "-no-emul-boot", "-boot-load-size", "4", str(tree)],
        check=True,
    )  # fmt: skip
    return out


@pytest.mark.parametrize("command", ["inspect", "remaster"])
def test_bad_inputs(
    command: str,
    tmp_path: Path,
    demo_base: Path,
    no_boot_iso: Path,
    unknown_layout_iso: Path,
    no_rock_ridge_iso: Path,
) -> None:
    def run(iso: Path) -> subprocess.CompletedProcess[str]:
        if command == "inspect":
            return _cli("inspect", str(iso))
        return _cli("remaster", str(iso), "-o", str(tmp_path / "out.iso"))

    _assert_clean_error(run(tmp_path / "missing.iso"), "no such file")
    _assert_clean_error(run(tmp_path), "not a regular file")
    text = tmp_path / "notes.iso"
    text.write_bytes(b"hello\n" * 20000)
    _assert_clean_error(run(text), "not an ISO 9660 image")
    truncated = tmp_path / "truncated.iso"
    with open(demo_base, "rb") as f:
        truncated.write_bytes(f.read(demo_base.stat().st_size // 2))
    _assert_clean_error(run(truncated), "truncated")
    _assert_clean_error(run(no_boot_iso), "no El Torito boot record")
    if command == "inspect":  # inspect describes install discs only
        _assert_clean_error(run(unknown_layout_iso), "unknown layout")
        assert not (tmp_path / "out.iso").exists()
        return
    # The engine takes any bootable image with Rock Ridge names (issue 15): a disc that is not
    # laid out like an install CD is remastered, not refused; one without Rock Ridge is refused.
    _assert_clean_error(run(no_rock_ridge_iso), "no Rock Ridge names")
    assert not (tmp_path / "out.iso").exists()
    proc = run(unknown_layout_iso)
    assert proc.returncode == 0, proc.stderr
    assert "not an install disc" in proc.stderr
    listing = subprocess.run(
        ["xorriso", "-indev", str(tmp_path / "out.iso"), "-report_el_torito", "plain"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "El Torito boot img :   1  BIOS  y   none" in listing, listing


def test_bad_output_paths(demo_base: Path, tmp_path: Path) -> None:
    _assert_clean_error(_cli("remaster", str(demo_base), "-o", "/proc/out.iso"), "not writable")
    _assert_clean_error(
        _cli("remaster", str(demo_base), "-o", str(tmp_path / "no" / "out.iso")), "does not exist"
    )
    _assert_clean_error(
        _cli("remaster", str(demo_base), "-o", str(demo_base)), "overwrite the base"
    )
    _assert_clean_error(
        _cli(
            "remaster", str(demo_base), "-o", str(tmp_path / "o.iso"), "--add", str(tmp_path / "x")
        ),
        "overlay is not a directory",
    )
    bad = tmp_path / "bad"
    (bad / "isolinux").mkdir(parents=True)
    (bad / "isolinux" / "boot.cat").write_text("x")
    _assert_clean_error(
        _cli("remaster", str(demo_base), "-o", str(tmp_path / "o.iso"), "--add", str(bad)),
        "generated by distro-builder",
    )
    env_bad = subprocess.run(
        [sys.executable, "-m", "distro_builder", "remaster", str(demo_base), "-o",
         str(tmp_path / "o.iso")],
        capture_output=True, text=True, env={**os.environ, "SOURCE_DATE_EPOCH": "yesterday"},
    )  # fmt: skip
    _assert_clean_error(env_bad, "SOURCE_DATE_EPOCH")


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    proc = _cli("--debug", "inspect", str(tmp_path / "missing.iso"))
    assert proc.returncode != 0 and "Traceback" in proc.stderr and "IsoError" in proc.stderr


def test_help_on_every_command() -> None:
    for args in ([], ["demo-base"], ["remaster"], ["inspect"]):
        proc = _cli(*args, "--help")
        assert proc.returncode == 0 and "Usage:" in proc.stdout, args


def test_inspect_json(demo_base: Path) -> None:
    import json

    proc = _cli("inspect", "--json", str(demo_base))
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["volume_id"] == "Ubuntu-Server 10.04.4 LTS amd64"
    assert report["flavor"]["codename"] == "lucid" and report["flavor"]["menu_style"] == "lucid"
    assert report["eltorito"][0]["boot_file"] == "/isolinux/isolinux.bin"
    labels = [e["label"] for e in report["boot_menu"]["entries"]]
    assert labels[:5] == ["install", "cloud", "check", "memtest", "hd"]
    assert report["archive"]["main"] > 30 and report["archive"]["main/debian-installer"] > 0
    assert report["distro_builder"] is None


def _special_files(tmp_path: Path) -> dict[str, Path]:
    nodes = {"FIFO": tmp_path / "fifo"}
    os.mkfifo(nodes["FIFO"])
    if os.geteuid() == 0:  # a stand-in for /dev/sdb: a character device (1,3 = null) in tmp
        nodes["character device"] = tmp_path / "sdb"
        os.mknod(nodes["character device"], 0o600 | stat.S_IFCHR, os.makedev(1, 3))
    link = tmp_path / "link-to-fifo"
    link.symlink_to(nodes["FIFO"])
    nodes["FIFO "] = link  # through a symlink: still the FIFO that would be replaced
    return nodes


def test_output_must_be_a_regular_file(demo_base: Path, tmp_path: Path) -> None:
    (tmp_path / "nodes").mkdir()
    nodes = _special_files(tmp_path / "nodes")
    for kind, node in nodes.items():
        for args in (
            ["remaster", str(demo_base), "-o", str(node)],
            ["build", "--base", str(demo_base), "-o", str(node), "--no-packages", "--unsigned"],
            ["demo-base", "-o", str(node)],
            ["installer", "deployment", "export", "lab", "-o", str(node)],
            ["smoke", str(demo_base), "--junit", str(node)],
        ):
            proc = _cli(*args)
            _assert_clean_error(proc, str(node), f"is a {kind.strip()}, not a regular file")
            assert not stat.S_ISREG(node.stat().st_mode), f"{args[0]} replaced {kind}"
        if "device" in kind:
            assert "dd if=" in proc.stderr and f"of={node}" in proc.stderr
    assert sorted(p.name for p in (tmp_path / "nodes").iterdir()) == sorted(
        p.name for p in nodes.values()
    )  # no temporary file left behind either


LAUGHS = 'l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n' + "".join(
    f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]\n" for i in range(1, 10)
)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (LAUGHS, "expands to more than 100,000 nodes"),
        ("answers: &a\n  x: *a\n", ":2: recursive alias *a"),
        ("architecture: single-node\narchitecture: dual-node\n", ":2: duplicate key 'architec"),
    ],
    ids=["billion-laughs", "recursive", "duplicate"],
)
def test_hostile_deployment_yaml_fails_fast(tmp_path: Path, text: str, needle: str) -> None:
    f = tmp_path / "deployment.yaml"
    f.write_text(text)
    proc = subprocess.run(
        [sys.executable, "-m", "distro_builder", "entries", "--deployment", str(f)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    _assert_clean_error(proc, str(f), needle)


# --- The bad-input table --------------------------------------------------------------------------
#
# Each case runs the real CLI in a fresh folder: `{in}` holds its input files, `{out}` is the output
# folder (whatever a case put there beforehand must be all that is there afterwards), TMPDIR is
# `{tmp}` (empty afterwards). `{base}` is the demo base ISO, `{repo}` the demo repositories'
# sources.list. Every case: exit code 1, one `error:` line holding the needle, a `hint:` line, no
# traceback, nothing left behind.


@dataclass(frozen=True)
class Case:
    id: str
    args: tuple[str, ...]
    needle: str
    files: dict[str, str | bytes] = field(default_factory=dict)  # under {in}; "out/..." under {out}
    env: dict[str, str] = field(default_factory=dict)
    stdin: str | None = None
    setup: tuple[tuple[str, ...], ...] = ()  # CLI runs that must succeed first
    disk: str | None = None  # "full": {out} is a tmpfs with `free` bytes left; "ro": read-only
    free: int = 64 * 1024
    repo_edit: tuple[str, str, str] | None = None  # (file in {in}/repo, old, new): a bad repo
    leaves: tuple[str, ...] = ()  # what may stay in {out}: paths, or folders ending in "/"
    damage: str | None = None  # {bad}: the demo base with this damage (tests/isomutate.DAMAGED)
    links: dict[str, str] = field(default_factory=dict)  # symlinks under {in}: path -> target


def _dep(text: str) -> dict[str, str | bytes]:
    return {"d.yaml": text}


PRESEED = ("preseed", "--entry", "compute", "--deployment", "{in}/d.yaml")
ENTRIES = ("entries", "--deployment", "{in}/d.yaml")
DB = ("--db", "sqlite:///{in}/db.sqlite")
LAB = ("installer", "deployment", "create", "lab", "-a", "dual-node", *DB)
GOOD_ANSWERS = (
    "answers: {controller_address: 10.0.0.1, mysql_root_password: secret-1,"
    " nova_db_password: secret-2, rabbit_password: secret-3, admin_password: secret-4}\n"
)

CASES: list[Case] = [
    # Item 2: no value reaches a preseed, kernel command line or menu with a line break in it.
    Case("fullname-newline", PRESEED, "system.fullname: contains a line break",
         _dep('system: {fullname: "Ops\\nd-i passwd/root-login boolean true"}\n')),
    Case("fullname-cr", PRESEED, "system.fullname: contains a line break",
         _dep('system: {fullname: "Ops\\rx"}\n')),
    Case("fullname-colon", PRESEED, "system.fullname: must be 1-128 characters without ':'",
         _dep('system: {fullname: "a:b"}\n')),
    Case("crypted-newline", PRESEED, "system.password_crypted: contains a line break",
         _dep('system: {password_crypted: "$6$abc$def\\nd-i passwd/root-login boolean true"}\n')),
    Case("crypted-not-a-hash", PRESEED, "system.password_crypted: is not a crypt(3) hash",
         _dep('system: {password_crypted: "$6$ not a hash"}\n')),
    Case("locale-newline", PRESEED, "system.locale: contains a line break",
         _dep('system: {locale: "en_US\\nd-i x string y"}\n')),
    Case("locale-escape", ENTRIES, "system.locale: contains a line break",
         _dep('system: {locale: "en_US\\e[2J"}\n')),
    Case("locale-shape", ENTRIES, "'en_US;reboot' is not a locale",
         _dep('system: {locale: "en_US;reboot"}\n')),
    Case("keyboard-newline", ENTRIES, "system.keyboard: contains a line break",
         _dep('system: {keyboard: "us\\n"}\n')),
    Case("keyboard-shape", ENTRIES, "is not a keyboard layout code",
         _dep('system: {keyboard: "us\\"x"}\n')),
    Case("timezone-tab", ENTRIES, "system.timezone: contains a line break",
         _dep('system: {timezone: "UTC\\tx"}\n')),
    Case("username-newline", ENTRIES, "system.username: contains a line break",
         _dep('system: {username: "ops\\nd-i x string y"}\n')),
    Case("answer-newline", ENTRIES, "answers.rabbit_password: (secret) is not valid",
         _dep(GOOD_ANSWERS.replace("secret-3", '"secret-3\\nd-i passwd/root-login boolean true"'))),
    Case("node-name-newline", ENTRIES, "is not a host name",
         _dep(GOOD_ANSWERS + 'nodes: [{name: "cn1\\nx", roles: [compute]}]\n')),
    Case("installer-url-newline",
         ("preseed", "--entry", "compute", "--installer-url", "http://10.0.0.2:8080/\nx",
          "--installer-token", "abcdefgh12345678"), "not an http(s) URL"),
    Case("installer-token-newline",
         ("preseed", "--entry", "compute", "--installer-url", "http://10.0.0.2:8080",
          "--installer-token", "abcdefgh\nd-i passwd/root-login boolean true"),
         "--installer-token: not an enrolment token"),
    # Item 9: values that are well-formed but wrong.
    Case("controller-any", ENTRIES, "controller_address: '0.0.0.0' is not valid",
         _dep(GOOD_ANSWERS.replace("10.0.0.1", "0.0.0.0"))),
    Case("controller-broadcast", ENTRIES, "controller_address: '255.255.255.255' is not valid",
         _dep(GOOD_ANSWERS.replace("10.0.0.1", "255.255.255.255"))),
    Case("controller-in-floating", ENTRIES, "172.16.0.0/28 contains controller_address 172.16.0.5",
         _dep(GOOD_ANSWERS.replace("10.0.0.1", "172.16.0.5").replace(
             "}", ", floating_range: 172.16.0.0/28}"))),
    Case("username-root", ENTRIES, "system.username: 'root' is a system account",
         _dep("system: {username: root}\n")),
    Case("username-daemon", ENTRIES, "'daemon' is a system account",
         _dep("system: {username: daemon}\n")),
    Case("username-mysql", ENTRIES, "'mysql' is a system account",
         _dep("system: {username: mysql}\n")),
    Case("username-upper", ENTRIES, "'Ops' is not a user name",
         _dep("system: {username: Ops}\n")),
    Case("username-dash-first", ENTRIES, "'-ops' is not a user name",
         _dep('system: {username: "-ops"}\n')),
    Case("timezone-traversal", PRESEED, "'../../../etc/passwd' is not a time zone name",
         _dep("system: {timezone: ../../../etc/passwd}\n")),
    Case("timezone-absolute", ENTRIES, "'/etc/passwd' is not a time zone name",
         _dep("system: {timezone: /etc/passwd}\n")),
    Case("timezone-dots", ENTRIES, "'Europe/..' is not a time zone name",
         _dep("system: {timezone: Europe/..}\n")),
    Case("db-not-a-url", ("installer", "deployment", "list", "--db", "not a url"),
         "unsupported database URL 'not a url'"),
    Case("db-bare-path", ("installer", "deployment", "list", "--db", "installer.sqlite"),
         "unsupported database URL 'installer.sqlite'"),
    Case("db-mysql", ("installer", "deployment", "list", "--db", "mysql://u@h/db"),
         "unsupported database URL 'mysql://u@h/db'"),
    Case("db-empty-sqlite", ("installer", "deployment", "list", "--db", "sqlite://"),
         "names no SQLite file"),
    Case("set-controller-any",
         ("installer", "deployment", "set", "lab", "controller_address=0.0.0.0",
          "--db", "sqlite:///{in}/db.sqlite"),
         "controller_address: '0.0.0.0' is not valid",
         setup=(LAB,)),
    Case("set-controller-broadcast",
         ("installer", "deployment", "set", "lab", "controller_address=255.255.255.255",
          "--db", "sqlite:///{in}/db.sqlite"),
         "controller_address: '255.255.255.255' is not valid",
         setup=(LAB,)),
    Case("set-controller-in-floating",
         ("installer", "deployment", "set", "lab", "controller_address=172.16.0.5",
          "floating_range=172.16.0.0/28", "--db", "sqlite:///{in}/db.sqlite"),
         "172.16.0.0/28 contains controller_address 172.16.0.5",
         setup=(LAB,)),
    Case("set-param-newline",
         ("installer", "deployment", "set", "lab", "rabbit_password=aaaaaaaa\nd-i x string y",
          "--db", "sqlite:///{in}/db.sqlite"),
         "rabbit_password",
         setup=(LAB,)),
]  # fmt: skip

REMASTER = ("remaster", "{base}", "-o", "{out}/o.iso")
BUILD = ("build", "--base", "{base}", "-o", "{out}/o.iso", "--no-packages")
EXTRAS = ("extras", "--base", "{base}", "--role", "compute", "--sources", "{repo}",
          "--cache", "{in}/cache")  # fmt: skip
HUGE_EPOCH = {"SOURCE_DATE_EPOCH": "99999999999999"}
NOT_UTF8 = "ov/caf\udce9.txt"  # a Latin-1 name (b"caf\xe9.txt") as Python sees it
CASES += [
    # Item 8: the machine's faults and odd inputs give one line and a hint, never a traceback.
    Case("sde-huge-remaster", REMASTER, "SOURCE_DATE_EPOCH=99999999999999 is after 2106",
         env=HUGE_EPOCH),
    Case("sde-huge-build", BUILD, "SOURCE_DATE_EPOCH=99999999999999 is after 2106",
         env=HUGE_EPOCH),
    Case("sde-2**32", REMASTER, "is after 2106", env={"SOURCE_DATE_EPOCH": str(2**32)}),
    Case("remove-boot-image", (*REMASTER, "--remove", "/isolinux/isolinux.bin"),
         "cannot remove /isolinux/isolinux.bin: the disc boots from it"),
    Case("remove-md5sum", (*REMASTER, "--remove", "/md5sum.txt"),
         "cannot remove /md5sum.txt: distro-builder writes it"),
    Case("remove-missing", (*REMASTER, "--remove", "/nope"), "cannot remove /nope: not on the"),
    Case("remove-dir", (*REMASTER, "--remove", "/isolinux"), "/isolinux: it is a directory"),
    Case("overlay-name-not-utf8", (*REMASTER, "--add", "{in}/ov"),
         "ov/caf\\xe9.txt: the file name (or link target) is not UTF-8", {NOT_UTF8: "x"}),
    Case("deployment-not-utf8", ENTRIES, "not UTF-8", {"d.yaml": b"system: {fullname: caf\xe9}\n"}),
    Case("sources-not-utf8", ("resolve", "--base", "{base}", "--sources", "{in}/s.list"),
         "s.list:2: not UTF-8 text", {"s.list": b"# ok\ndeb file:///caf\xe9 lucid main\n"}),
    Case("release-size-not-a-number", ("resolve", "--base", "{base}", "--sources", "{repo}"),
         "size '14x44' is not a number",
         repo_edit=("ppa/dists/lucid/Release", "    14744 main", "    14x44 main")),
    Case("sha256sums-is-a-folder", BUILD, "{out}/SHA256SUMS: is in the way",
         {"out/SHA256SUMS": "<dir>"}),
    Case("manifest-is-a-folder", BUILD, "{out}/o.iso.build.json: is in the way",
         {"out/o.iso.build.json": "<dir>"}),
    Case("enospc-remaster", REMASTER, "No space left on device", disk="full"),
    Case("enospc-build", BUILD, "No space left on device", disk="full"),
    # the disc's files are copied on worker threads: the disk fills up in one of them
    Case("enospc-remaster-mid-copy", REMASTER, "No space left on device", disk="full",
         free=4 << 20),
    Case("enospc-extras", (*EXTRAS, "-o", "{out}/ex"), "No space left on device", disk="full",
         free=8 * 1024),
    Case("enospc-demo-repo", ("demo-repo", "-o", "{out}/repo"), "No space left on device",
         disk="full", free=64 * 1024),
    Case("enospc-fetch", ("fetch", *EXTRAS[1:-2], "--cache", "{out}/cache"),
         "No space left on device", disk="full", free=8 * 1024,
         leaves=("cache", "cache/partial", "cache/by-hash", "cache/by-hash/", "cache/parsed",
                 "cache/parsed/")),  # verified files and parsed indexes
    Case("readonly-extras", (*EXTRAS, "-o", "{out}/ex"), "Read-only file system", disk="ro"),
    Case("readonly-remaster", REMASTER, "Read-only file system", disk="ro"),
    # Every error carries a hint (these had none).
    Case("admin-bad-name", ("installer", "admin", "create", "bad name!", "--password-stdin", *DB),
         "user name: 1-64 letters", stdin="a-long-password\n"),
    Case("deployment-exists", LAB, "deployment 'lab' exists", setup=(LAB,)),
    Case("deployment-bad-name", ("installer", "deployment", "create", "Lab!", "-a", "dual-node",
                                 *DB), "name: lower-case letters"),
    Case("node-missing", ("installer", "node", "show", "lab", "7", *DB), "no node '7'",
         setup=(LAB,)),
    Case("set-unknown-param", ("installer", "deployment", "set", "lab", "nope=1", *DB),
         "unknown parameter 'nope'", setup=(LAB,)),
    Case("set-per-node-param", ("installer", "deployment", "set", "lab", "hostname=a", *DB),
         "hostname is a per-node value", setup=(LAB,)),
]  # fmt: skip


# Issue 20: bases that are damaged (or use what the engine cannot carry over) are refused with
# the record named, by every command that opens a disc; the overlays' and --remove's own traps.
BAD = "{in}/bad.iso"
BAD_BASE = "damaged ISO 9660 image: /README.DISKDEFINES;1: "
OPENERS = {
    "inspect": ("inspect", BAD),
    "remaster": ("remaster", BAD, "-o", "{out}/o.iso"),
    "build": ("build", "--base", BAD, "-o", "{out}/o.iso", "--no-packages"),
    "verify": ("verify", BAD),
    "netboot": ("netboot", BAD, "-o", "{out}/tftp"),
}
DAMAGE_NEEDLES = {
    # the block numbers move with the demo base's contents: the sentence is what is checked
    "file-flagged-dir": ", where no folder was read",
    "rr-name-not-utf8": BAD_BASE + "its Rock Ridge name b'README.diskdefine\\xff' is not UTF-8",
    "rr-name-slash": BAD_BASE + "its Rock Ridge name b'README/diskdefines' is not a file name",
    "extent-beyond-end": ") lies beyond the end of the volume",
    "multi-extent": BAD_BASE + "a multi-extent file",
    "interleaved": BAD_BASE + "an interleaved file",
    "px-dir-on-file": BAD_BASE + "a file whose Rock Ridge mode says folder (40555)",
    "px-link-no-sl": BAD_BASE + "a symlink mode (120777) without a target (no SL entry)",
    "sl-continue-last": "damaged ISO 9660 image: Invalid Rock Ridge symlink flags",
    "joliet-name-odd": "damaged ISO 9660 image: Joliet /isolinux/b'\\x00s\\x00t\\x00d",
}
CASES += [
    Case(f"{damage}-{command}", args, needle, damage=damage)
    for damage, needle in DAMAGE_NEEDLES.items()
    for command, args in OPENERS.items()
]
CASES += [
    Case("symlink-target-4000", (*REMASTER, "--add", "{in}/ov"),
         "ov/far: the symlink's target is 4,000 bytes; distro-builder writes Rock Ridge link "
         "targets of up to 1,000", links={"ov/far": "ab/" * 1333 + "c"}),
    Case("empty-boot-image", (*REMASTER, "--add", "{in}/ov"),
         "/isolinux/isolinux.bin: the disc boots from it (an El Torito boot image) and the new "
         "one is 0 bytes", {"ov/isolinux/isolinux.bin": ""}),
    Case("short-boot-image", (*REMASTER, "--add", "{in}/ov"),
         "and the new one is 40 bytes, shorter than its 64-byte boot-info table",
         {"ov/isolinux/isolinux.bin": "x" * 40}),
    Case("remove-dotdot-md5sum", (*REMASTER, "--remove", "/pool/../md5sum.txt"),
         "cannot remove /md5sum.txt: distro-builder writes it"),
    Case("remove-dotdot-boot", (*REMASTER, "--remove", "/pool/./../isolinux/isolinux.bin"),
         "cannot remove /isolinux/isolinux.bin: the disc boots from it"),
    # raw escape sequences never reach the terminal, nor a line break a line of its own
    Case("remove-escapes", (*REMASTER, "--remove", "/\x1b[2J\x1b]0;owned\x07\r\nerror: x"),
         "cannot remove /\\x1b[2J\\x1b]0;owned\\x07\\r\\nerror: x: not on the base"),
]  # fmt: skip


@pytest.fixture(scope="module")
def demo_sources(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("repo") / "repo"
    subprocess.run(
        [sys.executable, "-m", "distro_builder", "demo-repo", "-o", str(out)],
        check=True, capture_output=True,
    )  # fmt: skip
    return out / "sources.list"


def _listing(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


def _mount_tmpfs(where: Path, options: str) -> None:
    if os.geteuid() != 0:
        pytest.skip("disk-full and read-only cases mount a tmpfs: run as root (CI does)")
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], check=True)


def _fill(folder: Path, free: int) -> None:
    """Leave `free` bytes on folder's file system (a filler file, listed as already there)."""
    st = os.statvfs(folder)
    size = st.f_bavail * st.f_frsize - free
    with open(folder / "filler", "wb") as f:
        f.truncate(0)
        while size > 0:
            chunk = min(size, 1 << 20)
            f.write(b"\0" * chunk)
            size -= chunk


def _copy_repo(sources: Path, into: Path, edit: tuple[str, str, str]) -> Path:
    import shutil

    shutil.copytree(sources.parent, into)
    listing = (into / "sources.list").read_text().replace(str(sources.parent), str(into))
    (into / "sources.list").write_text(listing)
    name, old, new = edit
    target = into / name
    text = target.read_text()
    assert old in text, (name, old)
    target.write_text(text.replace(old, new, 1))
    return into / "sources.list"


def run_case(case: Case, work: Path, base: Path | None = None, repo: Path | None = None) -> None:
    """Run one table case in `work` and check the contract."""
    dirs = {name: work / name for name in ("in", "out", "tmp")}
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    mounted = False
    try:
        if case.disk == "full":
            _mount_tmpfs(dirs["out"], "size=8m")
            mounted = True
            _fill(dirs["out"], case.free)
        elif case.disk == "ro":
            _mount_tmpfs(dirs["out"], "size=1m,ro")
            mounted = True
        _run_case(case, dirs, base, repo)
    finally:
        if mounted:
            subprocess.run(["umount", str(dirs["out"])], check=True)


def _run_case(case: Case, dirs: dict[str, Path], base: Path | None, repo: Path | None) -> None:
    for name, content in case.files.items():
        target = dirs["out"] / name[4:] if name.startswith("out/") else dirs["in"] / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if content == "<dir>":
            target.mkdir(exist_ok=True)
        else:
            target.write_bytes(content.encode() if isinstance(content, str) else content)
    if case.repo_edit is not None:
        assert repo is not None
        repo = _copy_repo(repo, dirs["in"] / "repo", case.repo_edit)
    for name, target in case.links.items():
        (dirs["in"] / name).parent.mkdir(parents=True, exist_ok=True)
        (dirs["in"] / name).symlink_to(target)
    subst = {k: str(v) for k, v in dirs.items()} | {"base": str(base), "repo": str(repo)}
    if case.damage is not None:
        assert base is not None
        subst["bad"] = str(isomutate.damaged(base, case.damage, dirs["in"] / "bad.iso"))
    args = [a.format(**subst) for a in case.args]
    before = _listing(dirs["out"])
    env = {**os.environ, "TMPDIR": str(dirs["tmp"]), **case.env}
    for setup in case.setup:
        done = subprocess.run(
            [sys.executable, "-m", "distro_builder", *(a.format(**subst) for a in setup)],
            capture_output=True, text=True, env=env, cwd=dirs["in"],
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
    proc = subprocess.run(
        [sys.executable, "-m", "distro_builder", *args],
        capture_output=True, text=True, env=env, input=case.stdin, timeout=300, cwd=dirs["out"],
    )  # fmt: skip
    _assert_clean_error(proc, case.needle.format(**subst))
    assert not any(c in proc.stderr for c in "\x1b\r\x07"), "a control character reached stderr"
    after = [
        p
        for p in _listing(dirs["out"])
        if p.endswith(".part")  # a half-written file is never a cache entry
        or (p not in case.leaves and not any(p.startswith(f) for f in case.leaves if f[-1] == "/"))
    ]
    assert after == before, f"left in the output folder: {after}"
    assert _listing(dirs["tmp"]) == [], f"left in TMPDIR: {_listing(dirs['tmp'])}"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_table(case: Case, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    uses = " ".join(case.args)
    needs_base = "{base}" in uses or case.damage is not None
    base = request.getfixturevalue("demo_base") if needs_base else None
    repo = request.getfixturevalue("demo_sources") if "{repo}" in uses else None
    run_case(case, tmp_path, base, repo)


def test_a_reader_that_goes_away_ends_the_output_quietly() -> None:
    """`distro-builder entries | head -1`: stdout's reader is gone before the output is written;
    no "error: entries: Broken pipe" and no traceback, the exit status is 141 (SIGPIPE)."""
    r, w = os.pipe()
    os.close(r)  # the reader is gone before the command writes anything
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "distro_builder", "entries"],
            stdout=w, stderr=subprocess.PIPE, text=True, timeout=120,
        )  # fmt: skip
    finally:
        os.close(w)
    assert proc.stderr == "" and proc.returncode == 141, (proc.returncode, proc.stderr)
