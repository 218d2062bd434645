"""`distro-builder build`: checked preseeds, menus per flavor, the initrd, reproducibility.

Real tools: debconf-set-selections (--checkonly), openssl (crypt), genisoimage (a txt.cfg-flavored
base), zcat + cpio (the appended initrd), the CLI as a process.
"""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from distro_builder.build import BuildOptions, build_iso, load_inputs, render_seeds
from distro_builder.errors import ConfigError
from distro_builder.media.initrd import list_initrd
from distro_builder.media.iso import IsoImage
from distro_builder.media.layout import detect_flavor, read_boot_menu
from distro_builder.seed.check import check_preseed
from distro_builder.seed.crypt import sha512_crypt
from tests.helpers import require_tool_or_skip

pytestmark = pytest.mark.integration

DEPLOYMENT = """\
architecture: multi-node
answers:
  controller_address: 10.0.0.1
  mysql_root_password: "r00t'pw-secret"
  nova_db_password: n0va-secret
  rabbit_password: r4bbit-secret
  admin_password: adm1n-secret
  floating_range: 172.16.0.0/28
system:
  username: ops
  password: correct-horse
"""


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "distro_builder", *args],
        capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=300,
    )  # fmt: skip


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("dep") / "deployment.yaml"
    path.write_text(DEPLOYMENT)
    return path


def test_sha512_crypt_reference_vector() -> None:
    require_tool_or_skip("openssl")
    # The reference vector of the SHA-crypt specification (Drepper).
    assert sha512_crypt("Hello world!", "saltstring") == (
        "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbY"
        "EdFCoEOfaS35inz1"
    )


def test_checker_rejects_bad_lines() -> None:
    require_tool_or_skip("debconf-set-selections")
    check_preseed("d-i a/b string x\n", "ok.seed")
    with pytest.raises(ConfigError, match="bad.seed.*parse error"):
        check_preseed("d-i a/b string x\nbad\n", "bad.seed")
    with pytest.raises(ConfigError, match="Unknown type"):  # exit 0 but a warning: rejected
        check_preseed("d-i a/b bogus x\n", "warn.seed")


@pytest.mark.parametrize("with_deployment", [False, True])
@pytest.mark.parametrize("unsigned", [True, False])
def test_every_entry_of_every_architecture_passes_checkonly(
    data_dir: Path, demo_base: Path, deployment: Path, with_deployment: bool, unsigned: bool
) -> None:
    require_tool_or_skip("debconf-set-selections", "openssl")
    inputs = load_inputs(data_dir, deployment if with_deployment else None)
    with IsoImage(demo_base) as image:
        flavor = detect_flavor(image)
    entries, seeds = render_seeds(inputs, flavor, allow_unauthenticated=unsigned)  # checks each
    names = {e.name for e in entries}
    arches = inputs.roleset.architectures
    if with_deployment:  # a multi-node deployment's disc offers its architecture's entries only
        arches = (inputs.roleset.architecture("multi-node"),)
        assert not names & {"all-in-one", "cloud-controller"}, names
    for arch in arches:
        assert {n.name for n in arch.nodes} <= names
    for seed in seeds:
        text = seed.text
        # "choose roles later" installs every role's packages (issue 14.2)
        roles = seed.entry.roles or ("controller", "network", "volume", "compute")
        pkgs = " ".join(f"stackops-{r}" for r in roles)
        assert f"d-i pkgsel/include string {pkgs}\n" in text
        assert ("allow_unauthenticated boolean true" in text) == unsigned
        # no security/updates mirror to reach (issue 22.11): apt-setup asks nothing offline
        assert "d-i apt-setup/services-select multiselect\n" in text
        assert "d-i apt-setup/security_host string\n" in text
        # every entry that installs mysql-server answers its root-password prompt, "choose
        # roles later" too (issue 22.3): an unanswered high-priority prompt stops pkgsel
        assert ("mysql-server/root_password password" in text) == ("controller" in roles)
        if with_deployment:
            assert "correct-horse" not in text
            assert "d-i passwd/user-password-crypted password $6$" in text
            if seed.entry.roles:
                assert seed.unanswered == ()  # zero-touch
            if "controller" in seed.entry.roles:
                assert "mysql-server/root_password password r00t'pw-secret\n" in text
                assert "WARNING: plaintext secret on the disc" in text
        else:
            assert "user-password-crypted" not in text


def test_preseed_command_prints_a_checked_preseed(deployment: Path) -> None:
    require_tool_or_skip("debconf-set-selections", "openssl")
    out = _cli("preseed", "--entry", "compute", "--deployment", str(deployment))
    assert out.returncode == 0, out.stderr
    assert "d-i stackops/controller_address string 10.0.0.1" in out.stdout
    assert "stackops/mysql_root_password" not in out.stdout  # compute does not need it
    bad = _cli("preseed", "--entry", "storage")
    assert bad.returncode == 1 and "no boot entry 'storage'" in bad.stderr
    assert "hint: entries: all-in-one," in bad.stderr


def test_deployment_errors_stop_the_build_before_slow_work(tmp_path: Path, demo_base: Path) -> None:
    dep = tmp_path / "d.yaml"
    dep.write_text(DEPLOYMENT.replace("  controller_address: 10.0.0.1\n", ""))
    out = tmp_path / "out.iso"
    proc = _cli("build", "--base", str(demo_base), "-o", str(out), "--no-packages",
                "--deployment", str(dep))  # fmt: skip
    assert proc.returncode == 1
    assert "d.yaml:1: architecture: network needs controller_address" in proc.stderr
    assert not out.exists()


def test_the_user_password_reaches_no_byte_of_the_output_nor_the_log(
    tmp_path: Path, deployment: Path, demo_replay_base: Path
) -> None:
    """The whole write path (the copy, the read-back, the boot-info table of a replayed base,
    SHA256SUMS, the manifest) and --verbose --debug output carry the login password only as
    its SHA-512 crypt hash."""
    require_tool_or_skip("debconf-set-selections", "openssl")
    out = tmp_path / "stackops.iso"
    proc = _cli("--verbose", "--debug", "build", "--base", str(demo_replay_base), "-o", str(out),
                "--no-packages", "--deployment", str(deployment))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    secret = b"correct-horse"
    written = [out, out.with_name("SHA256SUMS"), out.with_name(out.name + ".build.json")]
    assert all(p.is_file() for p in written)
    for p in written:
        assert secret not in p.read_bytes(), p
    assert secret.decode() not in proc.stdout + proc.stderr
    assert b"d-i passwd/user-password-crypted password $6$" in out.read_bytes()  # it was used


def test_no_secret_reaches_the_package_cache(
    tmp_path: Path, deployment: Path, demo_base: Path
) -> None:
    """A build with packages and a deployment keeps control fields in the package cache
    (controls.json, archive/controls.py) and the base's digest there: none of the deployment's
    passwords, nor the login password, is in any file of the cache, which is 0644 and may be
    shared between users of one build machine."""
    require_tool_or_skip("debconf-set-selections", "openssl")
    repo = _cli("demo-repo", "-o", str(tmp_path / "repo"))
    assert repo.returncode == 0, repo.stderr
    cache, out = tmp_path / "cache", tmp_path / "stackops.iso"
    proc = _cli("build", "--base", str(demo_base), "-o", str(out), "--deployment",
                str(deployment), "--sources", str(tmp_path / "repo" / "sources.list"),
                "--cache", str(cache))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert (cache / "controls.json").is_file()
    secrets = [b"correct-horse", b"r00t'pw-secret", b"n0va-secret", b"r4bbit-secret",
               b"adm1n-secret"]  # fmt: skip
    files = [p for p in cache.rglob("*") if p.is_file()]
    assert len(files) > 10
    for p in files:
        data = p.read_bytes()
        assert not [s for s in secrets if s in data], p


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, data_dir: Path, demo_base: Path) -> Path:
    require_tool_or_skip("debconf-set-selections")
    out = tmp_path_factory.mktemp("built") / "stackops.iso"
    opts = BuildOptions(base=demo_base, output=out, packages=False, source_date_epoch=1300000000,
                        default_entry="compute", timeout=30)  # fmt: skip
    build_iso(data_dir, opts)
    return out


def test_lucid_menu(built: Path, demo_base: Path) -> None:
    with IsoImage(built) as image:
        menu = read_boot_menu(image)
        text_cfg = image.read_text("/isolinux/text.cfg") or ""
        assert image.read_text("/isolinux/lang") == "en\n"
        assert image.lookup("/isolinux/txt.cfg") is None
    assert menu.default == "compute" and menu.timeout == 300
    assert menu.gfxboot == "bootlogo" and menu.serial is None  # not a QA disc
    by_label = {e.label: e for e in menu.entries}
    compute = by_label["compute"]
    assert compute.menu_label == "Install StackOps compute node"
    assert compute.append.split() == [
        "file=/cdrom/preseed/stackops-compute.seed", "stackops/roles=compute", "locale=en_US",
        "console-setup/ask_detect=false", "console-setup/layoutcode=us",
        "initrd=/install/initrd.gz", "quiet", "--",  # lucid's own separator (its text.cfg)
    ]  # fmt: skip
    assert by_label["all-in-one"].menu_label == "Install StackOps all-in-one"
    assert "stackops/roles=controller,network,volume,compute" in by_label["all-in-one"].append
    assert "install" in by_label and by_label["install"].menu_label == "Install Ubuntu Server"
    assert by_label["compute-expert"].submenu == "Advanced options"
    assert "priority=low" in by_label["compute-expert"].append
    assert text_cfg.count("\ndefault ") + text_cfg.startswith("default ") == 1


def test_initrd_unpacks_to_the_original_files_plus_ours(
    built: Path, demo_base: Path, tmp_path: Path
) -> None:
    require_tool_or_skip("cpio", "zcat")
    with IsoImage(demo_base) as image:
        original = image.read("/install/initrd.gz")
    with IsoImage(built) as image:
        new = image.read("/install/initrd.gz")
    assert new.startswith(original)
    listings = []
    for data in (original, new[len(original) :]):
        part = tmp_path / "part.gz"
        part.write_bytes(data)
        proc = subprocess.run(f"zcat {part} | cpio -it --quiet", shell=True, capture_output=True,
                              text=True, check=True)  # fmt: skip
        listings.append(proc.stdout.split())
    ours = {"preseed.cfg", "stackops", "stackops/early.sh", "stackops/late.sh",
            "stackops/questions", "stackops/stackops.templates",
            "stackops/validate.sh"}  # fmt: skip
    assert set(listings[1]) == ours
    assert sorted(list_initrd(new)) == sorted(n for n in listings[0] + listings[1] if n != ".")
    extract = tmp_path / "x"
    extract.mkdir()
    subprocess.run(f"zcat {part} | cpio -id --quiet", shell=True, cwd=extract, check=True)
    assert (
        "preseed/early_command string sh /stackops/early.sh"
        in (extract / "preseed.cfg").read_text()
    )
    assert os.access(extract / "stackops" / "late.sh", os.X_OK)
    assert gzip.decompress(new[len(original) :])  # a gzip member of its own


def test_build_is_reproducible_and_writes_sums(built: Path, data_dir: Path, demo_base: Path,
                                               tmp_path: Path) -> None:  # fmt: skip
    again = tmp_path / "stackops.iso"
    opts = BuildOptions(base=demo_base, output=again, packages=False, source_date_epoch=1300000000,
                        default_entry="compute", timeout=30)  # fmt: skip
    build_iso(data_dir, opts)
    assert again.read_bytes() == built.read_bytes()
    sums = (built.parent / "SHA256SUMS").read_text().split()
    import hashlib

    assert sums == [hashlib.sha256(built.read_bytes()).hexdigest(), "stackops.iso"]
    manifest = (built.parent / "stackops.iso.build.json").read_text()
    with IsoImage(built) as image:
        assert image.read_text("/.disk/stackops-build.json") == manifest
    assert '"roles/compute/role.yaml"' in manifest and '"questions/validate.sh"' in manifest


def test_the_manifest_takes_the_base_sha256_hashed_while_the_image_is_written(
    built: Path, data_dir: Path, demo_base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The build manifest is laid out last and finished when the write gets there
    (remaster's `late`), so the rest of the image is written while the base is still hashed.
    Here the digest arrives only once the write is under way: the manifest still carries it,
    md5sum.txt and the engine's manifest agree with it, and the ISO is the one a build whose
    digest was there from the start gives, byte for byte (the layout never depends on it)."""
    import hashlib
    import json
    import threading
    from concurrent.futures import Future

    from distro_builder.media import iso as iso_module

    want = hashlib.sha256(demo_base.read_bytes()).hexdigest()
    assert (
        json.loads((built.parent / "stackops.iso.build.json").read_text())["base"]["sha256"] == want
    )

    digest: Future[str] = Future()
    writing = threading.Event()
    real_copies = iso_module._file_copies

    def copies(*args, **kwargs):  # type: ignore[no-untyped-def]
        writing.set()  # the write began: now the base's digest may come
        threading.Timer(0.3, digest.set_result, [want]).start()
        return real_copies(*args, **kwargs)

    monkeypatch.setattr(iso_module, "_file_copies", copies)
    out = tmp_path / "stackops.iso"
    opts = BuildOptions(base=demo_base, output=out, packages=False, source_date_epoch=1300000000,
                        default_entry="compute", timeout=30)  # fmt: skip
    build_iso(data_dir, opts, digest)
    assert writing.is_set()
    assert out.read_bytes() == built.read_bytes()
    manifest = (out.parent / "stackops.iso.build.json").read_text()
    assert json.loads(manifest)["base"]["sha256"] == want
    with IsoImage(out) as image:
        assert image.read_text("/.disk/stackops-build.json") == manifest
        md5s = dict(
            reversed(line.split("  ./", 1)) for line in (image.read_text("/md5sum.txt") or "")
            .splitlines()
        )  # fmt: skip
        engine = json.loads(image.read_text("/.disk/distro-builder.json") or "")
        tail = sorted(
            ("/md5sum.txt", "/.disk/distro-builder.json", "/.disk/stackops-build.json"),
            key=lambda p: image.extent(p)[0],
        )
        others = [image.extent(e.path) for e in image.walk()
                  if e.kind.value == "file" and e.path not in tail]  # fmt: skip
        last = max(at for at, size in others if size)
        assert all(image.extent(p)[0] > last for p in tail)
    assert md5s[".disk/stackops-build.json"] == hashlib.md5(manifest.encode()).hexdigest()
    entry = next(c for c in engine["changes"] if c["path"] == "/.disk/stackops-build.json")
    assert entry["sha256"] == hashlib.sha256(manifest.encode()).hexdigest()


@pytest.fixture(scope="module")
def txt_base(tmp_path_factory: pytest.TempPathFactory, demo_base: Path) -> Path:
    """A 10.10+-flavored base: txt.cfg/adtxt.cfg instead of text.cfg/adtext.cfg."""
    require_tool_or_skip("xorriso", "genisoimage")
    root = tmp_path_factory.mktemp("txt")
    tree = root / "tree"
    subprocess.run(["xorriso", "-osirrox", "on", "-indev", str(demo_base), "-extract", "/",
                    str(tree)], check=True, capture_output=True)  # fmt: skip
    subprocess.run(["chmod", "-R", "u+w", str(tree)], check=True)
    iso = tree / "isolinux"
    (iso / "text.cfg").rename(iso / "txt.cfg")
    (iso / "adtext.cfg").rename(iso / "adtxt.cfg")
    for name in ("menu.cfg",):
        p = iso / name
        p.write_text(p.read_text().replace("text.cfg", "txt.cfg").replace("adtxt.cfg", "adtxt.cfg")
                     .replace("adtext.cfg", "adtxt.cfg"))  # fmt: skip
    shutil.rmtree(tree / "isolinux" / "boot.cat", ignore_errors=True)
    (tree / "isolinux" / "boot.cat").unlink(missing_ok=True)
    out = root / "txt-base.iso"
    subprocess.run([
        "genisoimage", "-quiet", "-r", "-J", "-l", "-V", "Ubuntu-Server 10.10 amd64",
        "-b", "isolinux/isolinux.bin", "-c", "isolinux/boot.cat", "-no-emul-boot",
        "-boot-load-size", "4", "-boot-info-table", "-o", str(out), str(tree),
    ], check=True)  # fmt: skip
    return out


def test_txt_flavor_menu_and_serial_console(txt_base: Path, data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "txt.iso"
    build_iso(data_dir, BuildOptions(base=txt_base, output=out, packages=False,
                                     serial_console=True))  # fmt: skip
    with IsoImage(out) as image:
        assert detect_flavor(image).menu_style == "txt"
        assert image.lookup("/isolinux/text.cfg") is None
        menu = read_boot_menu(image)
        txt = image.read_text("/isolinux/txt.cfg") or ""
    assert "label all-in-one" in txt and "Install Ubuntu Server" in txt
    assert menu.serial == "0 115200" and menu.gfxboot is None and menu.ui == "menu.c32"
    compute = next(e for e in menu.entries if e.label == "compute")
    # the base's separator; the serial console for the installer's kernel and the installed system
    assert compute.append.endswith("console=ttyS0,115200n8 -- console=ttyS0,115200n8")
    assert " quiet " not in compute.append
    assert any(e.label == "network-expert" for e in menu.entries)


def test_unsigned_build_drops_the_base_release_signature(demo_base: Path, tmp_path: Path) -> None:
    """A real disc carries dists/<c>/Release.gpg; after Release is rewritten it must go."""
    import subprocess
    import sys

    from distro_builder.remaster import remaster
    from tests import isocheck

    overlay = tmp_path / "gpg"
    (overlay / "dists" / "lucid").mkdir(parents=True)
    (overlay / "dists" / "lucid" / "Release.gpg").write_text("-----BEGIN PGP SIGNATURE-----\n")
    signed_base = tmp_path / "signed-base.iso"
    remaster(demo_base, signed_base, [overlay])

    def cli(*args: str) -> None:
        proc = subprocess.run([sys.executable, "-m", "distro_builder", *args],
                              capture_output=True, text=True)  # fmt: skip
        assert proc.returncode == 0, proc.stderr

    cli("demo-repo", "-o", str(tmp_path / "repo"))
    out = tmp_path / "out.iso"
    sources = tmp_path / "repo" / "sources.list"
    cli("build", "--base", str(signed_base), "-o", str(out), "--unsigned",
        "--sources", str(sources), "--cache", str(tmp_path / "cache"))  # fmt: skip
    paths = isocheck.isoinfo_paths(out, "rr")
    assert "/dists/lucid/Release" in paths
    assert "/dists/lucid/Release.gpg" not in paths
    cli("verify", str(out))


def test_inspect_counts_the_changes_and_lists_them_with_changes(built: Path) -> None:
    """`make iso` ends with the build's summary; `inspect` shows the counts of our changes and
    lists them only with --changes (the list is 200+ lines on a build with packages)."""
    short, full = _cli("inspect", str(built)), _cli("inspect", "--changes", str(built))
    assert short.returncode == 0 and full.returncode == 0, short.stderr + full.stderr
    listed = [ln for ln in full.stdout.splitlines() if ln.startswith(("  + ", "  ~ ", "  - "))]
    assert len(listed) >= 10 and "/preseed/stackops-compute.seed" in full.stdout
    assert not [ln for ln in short.stdout.splitlines() if ln.startswith(("  + ", "  ~ "))]
    assert "(--changes lists them)" in short.stdout
    assert len(short.stdout.splitlines()) < len(full.stdout.splitlines()) - 10
