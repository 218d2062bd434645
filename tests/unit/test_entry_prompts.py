"""How many prompts each entry shows without a deployment file (issue 22, ESXi-easy).

ESXi's installer asks for the EULA, the disk, the keyboard and the root password twice (5).
The all-in-one entry asks d-i's host name, domain and login password twice, then only what a
person must decide: the cloud administrator's secret key, twice. The service passwords are made
on the node and the interfaces found there (roles/*/role.yaml `made_on_node`), because no other
node needs them; defaults are taken as they are on that entry (`stackops/ask required`).
"""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from distro_builder.cli import main

ROOT = Path(__file__).resolve().parents[2]
DI = ["netcfg/get_hostname", "netcfg/get_domain", "passwd/user-password",
      "passwd/user-password-again"]  # fmt: skip


def _entries() -> dict[str, dict[str, object]]:
    result = CliRunner().invoke(main, ["--data-dir", str(ROOT), "entries", "--json"])
    assert result.exit_code == 0, result.output
    return {e["name"]: e for e in json.loads(result.stdout)}


def test_the_all_in_one_entry_asks_what_a_person_must_decide() -> None:
    e = _entries()["all-in-one"]
    assert e["prompts"] == [*DI, "admin_password", "admin_password_again"]
    assert e["prompt_count"] == 6
    # made on the node: nobody else needs them
    assert set(e["made_on_node"]) == {
        "nova_db_password", "rabbit_password", "mysql_root_password",
        "public_interface", "flat_interface",
    }  # fmt: skip


def test_nodes_of_larger_clouds_still_ask_what_other_nodes_share() -> None:
    entries = _entries()
    compute = entries["compute"]["prompts"]
    # the compute node must know the controller and the shared service passwords
    assert "controller_address" in compute
    assert "nova_db_password" in compute and "nova_db_password_again" in compute
    assert "rabbit_password" in compute
    controller = entries["controller"]["prompts"]
    # MySQL's root password is the controller's alone: made there
    assert "mysql_root_password" not in controller
    assert "nova_db_password" in controller  # the other nodes need it
    assert entries["controller"]["prompt_count"] == len(controller)


def test_entries_prints_the_count() -> None:
    result = CliRunner().invoke(main, ["--data-dir", str(ROOT), "entries"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    i = next(n for n, ln in enumerate(lines) if ln.startswith("all-in-one"))
    assert any("6 prompts" in ln for ln in lines[i : i + 3]), lines[i : i + 3]
