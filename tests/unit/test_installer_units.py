"""Smart Installer pieces without a service: the agent's wire format, inventory and fitness
rules, password hashing, and the database's numbered migrations on a real SQLite file."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from distro_builder.config.roles import load_roles
from distro_builder.model import RoleSet
from distro_builder.smart_installer import auth, fitness, textfmt
from distro_builder.smart_installer.db import MIGRATIONS, SCHEMA_VERSION, Database
from distro_builder.smart_installer.errors import BadRequest, Conflict, DatabaseError
from distro_builder.smart_installer.store import Store

DATA = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def roleset():
    return load_roles(DATA)


def test_textfmt_round_trip() -> None:
    pairs = [("a", "plain"), ("b", "it's"), ("c", "'''"), ("d", ""), ("e", "$(rm -rf /) `x`")]
    text = textfmt.render(pairs)
    assert text.splitlines()[1] == "b='it'\\''s'"
    assert textfmt.parse(text) == pairs
    assert textfmt.parse("nic=eth0 52:54:00:00:00:01 up\n# comment\n\n") == [
        ("nic", "eth0 52:54:00:00:00:01 up")
    ]
    for bad in ("novalue", "Key=1", "k='open", "k='a'b'", "k=a\x07b"):
        with pytest.raises(BadRequest):
            textfmt.parse(bad)
    with pytest.raises(BadRequest, match="too many lines"):
        textfmt.parse("a=1\n" * 300)
    with pytest.raises(ValueError):
        textfmt.render([("k", "two\nlines")])


def test_passwords_and_tokens() -> None:
    h = auth.hash_password("correct horse")
    assert h.startswith("scrypt$") and "correct horse" not in h
    assert auth.verify_password("correct horse", h)
    assert not auth.verify_password("correct hors", h)
    assert not auth.verify_password("x", "garbage")
    assert auth.hash_password("correct horse") != h  # salted
    t = auth.new_token()
    assert len(t) >= 40 and auth.token_hash(t) != t and len(auth.token_hash(t)) == 64


def _inv(roleset, *, virt="vmx", nics=("eth0", "eth1"), disks=("sda 1024 used",)):
    pairs = [("hostname", "n1"), ("cpus", "2"), ("virt", virt), ("mem_kb", "2097152")]
    pairs += [("nic", f"{n} 52:54:00:00:00:0{i} up") for i, n in enumerate(nics)]
    pairs += [("disk", d) for d in disks]
    return fitness.parse_inventory(pairs, roleset)


def test_fitness_rules(roleset) -> None:
    inv = _inv(roleset, virt="none")
    fit = fitness.check_roles(("compute",), inv, {}, roleset)
    assert fit.answers == {
        "hostname": "n1", "public_interface": "eth0", "flat_interface": "eth1",
        "libvirt_type": "qemu",
    }  # fmt: skip
    assert any("falls back to qemu" in n for n in fit.notes)
    with pytest.raises(Conflict, match="vmx"):
        fitness.check_roles(("compute",), inv, {"libvirt_type": "kvm"}, roleset)
    assert (
        fitness.check_roles(("compute",), _inv(roleset), {}, roleset).answers["libvirt_type"]
        == "auto"
    )
    # One disk (no free one): the group stays on the system disk, said in a note (finding 8).
    one_disk = fitness.check_roles(("volume",), inv, {}, roleset)
    assert "volume_device" not in one_disk.answers
    assert any("system disk only" in n for n in one_disk.notes), one_disk.notes
    inv2 = _inv(roleset, disks=("sda 1024 used", "sdc 4096 free", "sdb 2048 free"))
    assert fitness.check_roles(("volume",), inv2, {}, roleset).answers["volume_device"] == (
        "/dev/sdb"
    )
    with pytest.raises(Conflict, match="not a free disk"):
        fitness.check_roles(("volume",), inv2, {"volume_device": "/dev/sda"}, roleset)
    one = _inv(roleset, nics=("eth0",))
    fit = fitness.check_roles(("network",), one, {}, roleset)
    assert fit.answers["flat_interface"] == "eth0" and "one NIC only" in fit.notes[0]
    with pytest.raises(Conflict, match="not one of the node's NICs"):
        fitness.check_roles(("network",), one, {"flat_interface": "eth7"}, roleset)
    with pytest.raises(BadRequest, match="interface"):
        fitness.check_roles(("network",), one, {"flat_interface": "eth 7"}, roleset)


def test_architecture_counts(roleset: RoleSet) -> None:
    arch = roleset.architecture
    fitness.check_architecture(arch("dual-node"), ("compute",), [("compute",)] * 5)
    with pytest.raises(Conflict, match="already"):
        fitness.check_architecture(
            arch("dual-node"),
            ("controller", "network", "volume"),
            [("controller", "network", "volume")],
        )
    with pytest.raises(Conflict, match="single-node nodes are"):
        fitness.check_architecture(arch("single-node"), ("compute",), [])
    with pytest.raises(Conflict, match="already"):
        fitness.check_architecture(arch("multi-node"), ("network",), [("network",)])
    assert fitness.parse_roles("compute,controller", roleset) == ("controller", "compute")
    with pytest.raises(BadRequest):
        fitness.parse_roles("web", roleset)


def test_inventory_rejects_nonsense(roleset) -> None:
    for pairs in (
        [("cpus", "2")],
        [("nic", "eth0 52:54:00:00:00:01")],
        [("nic", "eth0 52:54:00:00:00:01 up"), ("nic", "eth0 52:54:00:00:00:02 up")],
        [("nic", "eth0 52:54:00:00:00:01 up"), ("virt", "maybe")],
        [("nic", "eth0 52:54:00:00:00:01 up"), ("disk", "sdb big free")],
    ):
        with pytest.raises(BadRequest):
            fitness.parse_inventory(pairs, roleset)


def test_migrations_are_numbered_and_resumable(tmp_path: Path, roleset) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    old = Database(url, migrate=False)
    assert old.migrate(upto=1) == [1]
    with old.transaction() as tx:
        tx.execute(
            "INSERT INTO deployments (name, architecture, enrol_token_hash, params, created_at,"
            " updated_at) VALUES ('kept', 'single-node', 'h', '{}', 1, 1)"
        )
    old.close()
    db = Database(url)  # applies migrations 2 and on, keeps the row
    assert db.version() == SCHEMA_VERSION == len(MIGRATIONS)
    assert Database(url).migrate() == []  # nothing twice
    assert [d["name"] for d in Store(db, roleset).list_deployments()] == ["kept"]
    assert (tmp_path / "db.sqlite").stat().st_mode & 0o777 == 0o600
    db.close()
    conn = sqlite3.connect(tmp_path / "db.sqlite")
    conn.execute("INSERT INTO schema_migrations VALUES (99, 'future', 0)")
    conn.commit()
    conn.close()
    with pytest.raises(DatabaseError, match="schema version 99"):
        Database(url)
    with pytest.raises(DatabaseError, match="unsupported database URL"):
        Database("mysql://x/y")


def test_store_rules_on_sqlite(tmp_path: Path, roleset) -> None:
    store = Store(Database(f"sqlite:///{tmp_path / 'db.sqlite'}"), roleset)
    dep, token = store.create_deployment("lab", "multi-node")
    with pytest.raises(Conflict):
        store.create_deployment("lab", "multi-node")
    with pytest.raises(BadRequest, match="overlaps"):
        store.set_params("lab", {"fixed_range": "10.0.0.0/8", "floating_range": "10.2.0.0/16"})
    store.set_params("lab", {"nova_db_password": "s3cret-pw", "controller_address": "10.0.0.1"})
    shown = store.deployment("lab")["params"]
    assert shown["nova_db_password"]["value"] == "********"
    store.set_params("lab", {"controller_address": None})
    assert store.deployment("lab")["params"]["controller_address"]["set"] is False
    node_id, node_token = store.register(
        token, [("hostname", "c1"), ("nic", "eth0 52:54:00:00:00:01 up")]
    )
    store.assign("lab", node_id, ["controller"])
    poll = dict(store.poll(str(node_id), node_token))
    assert poll["state"] == "waiting" and "rabbit_password" in poll["reason"]
    with pytest.raises(Conflict, match="missing"):
        store.answers(str(node_id), node_token)


def test_set_params_refuses_every_bad_value_by_key(tmp_path: Path, roleset) -> None:
    """All refusals at once, keyed by field (the UI shows each beside its input), not only the
    first; a cross-field refusal is keyed by the field it names; descriptions and required flags
    reach the view."""
    from distro_builder.smart_installer.errors import InvalidFields

    store = Store(Database(f"sqlite:///{tmp_path / 'db.sqlite'}"), roleset)
    store.create_deployment("lab", "dual-node")
    bad = {"controller_address": "10.0.0.999", "fixed_range": "10.0.0.1/8", "project": "-x"}
    with pytest.raises(InvalidFields) as caught:
        store.set_params("lab", {**bad, "admin_user": "fine"})
    assert sorted(caught.value.fields) == sorted(bad)
    assert "IPv4" in caught.value.fields["controller_address"]
    with pytest.raises(InvalidFields) as caught:
        store.set_params("lab", {"rabbit_password": "two\nlines"})
    assert caught.value.fields["rabbit_password"].startswith("(secret) is not valid")
    assert "two" not in str(caught.value)
    with pytest.raises(InvalidFields) as caught:
        store.set_params("lab", {"fixed_range": "10.0.0.0/8", "floating_range": "10.2.0.0/16"})
    assert list(caught.value.fields) == ["floating_range"] or list(caught.value.fields) == [
        "fixed_range"
    ]
    assert store.deployment("lab")["params"]["controller_address"]["set"] is False
    shown = store.deployment("lab")["params"]
    assert shown["controller_address"]["required"] is True
    assert shown["floating_range"]["required"] is False
    assert shown["admin_password"]["description"]


def test_the_controllers_check_lines_reach_the_node_events(tmp_path: Path, roleset) -> None:
    """The controller's last step (stackops-check) reports its lines as STACKOPS-CHECK progress
    (roles/controller/steps.sh so_step_check): the store keeps them with the node, and the step
    line of `check` moves the node on, with no new field."""
    store = Store(Database(f"sqlite:///{tmp_path / 'db.sqlite'}"), roleset)
    _dep, token = store.create_deployment("lab", "multi-node")
    node_id, node_token = store.register(
        token, [("hostname", "c1"), ("nic", "eth0 52:54:00:00:00:01 up")]
    )
    store.assign("lab", node_id, ["controller"])
    lines = [
        "STACKOPS-CHECK ok   services: 4 services alive on 1 node(s): nova-scheduler@node1",
        "STACKOPS-CHECK FAIL network: no network (nova-manage network create has not run)",
        "STACKOPS-CHECK stackops-check: FAILED 1 of 4 checks: network",
        "STACKOPS step=11/11 role=controller name=check status=failed t=9.1s",
        "STACKOPS-FIRSTBOOT failed step=check log=/var/log/stackops/steps/check.log",
    ]
    assert store.report(str(node_id), node_token, "\n".join(lines)) == 5
    node = store.node("lab", node_id)
    shown = [e["line"] for e in node["events"]]
    for line in lines:
        assert line in shown
    assert node["state"] == "failed" and "check" in node["step"]
    with pytest.raises(BadRequest):  # why so_step_check cuts a line to 400 characters
        store.report(str(node_id), node_token, "STACKOPS-CHECK ok   services: " + "x" * 400)
