"""Every operation of the Smart Installer, over the database. The HTTP server and the CLI both call
these, so the rules live in one place.

Records leave this module as JSON-ready dicts with secrets masked (auth.mask); the only ways to
read a secret back are a node's own answers (agent API) and `export(with_secrets=True)` (CLI).
The global parameters are stored in the database in clear text because nodes must receive them;
the SQLite file is created 0600 and PostgreSQL access is the site's to protect.
"""

from __future__ import annotations

import base64
import hmac
import json
import re
from typing import Any

from distro_builder import __version__
from distro_builder.config.deployment import per_node_keys
from distro_builder.config.installer import check_deployment, render_deployment
from distro_builder.config.questions import validate_value
from distro_builder.errors import ConfigError
from distro_builder.model import RoleSet
from distro_builder.smart_installer import auth, cloud, fitness
from distro_builder.smart_installer.db import Database, Row, Tx, now_ms
from distro_builder.smart_installer.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    InvalidFields,
    NotFound,
    Unauthorized,
    Waiting,
)
from distro_builder.smart_installer.lockout import FailedLogins

SESSION_SECONDS = 12 * 3600
MAX_EVENTS_SHOWN = 200
MAX_REPORT_LINES = 200
_NAME_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
_USER_RE = re.compile(r"[A-Za-z0-9_.@-]{1,64}")
# Node states, in order.
STATES = ("registered", "assigned", "configuring", "done", "failed")
_STEP_RE = re.compile(
    r"STACKOPS step=(\d+)/(\d+) role=([a-z]+) name=([A-Za-z0-9_.-]+) status=(ok|failed) t=[0-9.]+s"
)
_DONE_RE = re.compile(r"STACKOPS-FIRSTBOOT done roles=([a-z,]*)")
_FAILED_RE = re.compile(r"STACKOPS-FIRSTBOOT failed step=(\S+) log=(\S+)")
# The tail of the failing step's log, sent with the failure (agent/lib/installer.sh
# so_report_failure): kept on the node (failure_log), not as events.
_LOG_PREFIX = "STACKOPS-LOG"
MAX_FAILURE_LOG = 8 * 1024
# Questions the Smart Installer answers itself when the admin leaves them empty: the IPv4
# address that the deployment's node holding one of the question's skip_with roles reported on
# its public_interface. network_address (roles/controller/role.yaml): a controller without
# nova-network routes the instances' fixed range through the network node, so that nova-api's
# metadata answers reach them (roles/controller/steps.sh so_step_metadata_route).
DERIVED_ADDRESSES = ("network_address",)
# A hash to verify against when the user does not exist (same time either way).
_DUMMY_HASH = auth.hash_password("not a password of anyone")


class Store:
    def __init__(self, db: Database, roleset: RoleSet) -> None:
        self.db = db
        self.roleset = roleset
        self.per_node_keys = per_node_keys(roleset)
        self.global_keys = tuple(
            q.key for q in roleset.questions if q.key not in self.per_node_keys
        )  # fmt: skip
        self.architectures = {a.name: a for a in roleset.architectures}
        self.derived = tuple(
            q for q in roleset.questions if q.key in DERIVED_ADDRESSES and q.skip_with
        )  # fmt: skip
        self.login_guard = auth.LoginGuard(FailedLogins(db))

    # --- admins and sessions ------------------------------------------------------------------

    def create_admin(self, username: str, password: str, *, replace: bool = False) -> None:
        if not _USER_RE.fullmatch(username or ""):
            raise BadRequest("user name: 1-64 letters, digits, '_', '.', '@' or '-'")
        if not auth.MIN_PASSWORD <= len(password) <= 1024:
            raise BadRequest(f"the password must have {auth.MIN_PASSWORD} to 1024 characters")
        hashed = auth.hash_password(password)
        with self.db.transaction() as tx:
            row = tx.one("SELECT id FROM admins WHERE username = ?", (username,))
            if row and not replace:
                raise Conflict(f"admin {username!r} exists", hint="--reset to set a new password")
            if row:
                tx.execute("UPDATE admins SET password_hash = ? WHERE id = ?", (hashed, row["id"]))
                tx.execute("DELETE FROM sessions WHERE admin_id = ?", (row["id"],))
            else:
                tx.execute(
                    "INSERT INTO admins (username, password_hash, created_at) VALUES (?, ?, ?)",
                    (username, hashed, now_ms()),
                )

    def admin_count(self) -> int:
        with self.db.transaction() as tx:
            return int(tx.value("SELECT COUNT(*) AS n FROM admins"))

    def login(self, username: str, password: str, client: str = "") -> str:
        """A new session token; Unauthorized on a wrong password, TooManyRequests when the
        client address or the user name has too many recent failures (auth.LoginGuard)."""
        keys = self.login_guard.keys(username, client)
        self.login_guard.check(keys)  # before any hashing: a storm costs no memory
        with self.db.transaction() as tx:
            row = tx.one("SELECT id, password_hash FROM admins WHERE username = ?", (username,))
        stored = row["password_hash"] if row else _DUMMY_HASH
        ok = self.login_guard.run(auth.verify_password, password[:1024], stored)
        if not ok or row is None:
            self.login_guard.failed(keys)
            raise Unauthorized("wrong user name or password")
        self.login_guard.succeeded(keys)
        token = auth.new_token()
        now = now_ms()
        with self.db.transaction() as tx:
            tx.execute("DELETE FROM sessions WHERE expires_at < ?", (now,))
            tx.execute(
                "INSERT INTO sessions (token_hash, admin_id, created_at, expires_at)"
                " VALUES (?, ?, ?, ?)",
                (auth.token_hash(token), row["id"], now, now + SESSION_SECONDS * 1000),
            )
        return token

    def session_admin(self, token: str | None) -> str:
        """The admin's user name for a session token; Unauthorized when none or expired."""
        if not token:
            raise Unauthorized("log in first", hint="POST /api/login, or open / in a browser")
        with self.db.transaction() as tx:
            row = tx.one(
                "SELECT a.username FROM sessions s JOIN admins a ON a.id = s.admin_id"
                " WHERE s.token_hash = ? AND s.expires_at > ?",
                (auth.token_hash(token), now_ms()),
            )
        if row is None:
            raise Unauthorized("the session is unknown or expired", hint="log in again")
        return str(row["username"])

    def logout(self, token: str) -> None:
        with self.db.transaction() as tx:
            tx.execute("DELETE FROM sessions WHERE token_hash = ?", (auth.token_hash(token),))

    # --- deployments --------------------------------------------------------------------------

    def create_deployment(self, name: str, architecture: str) -> tuple[dict[str, Any], str]:
        """The new deployment and its enrolment token (shown this once; only its hash is kept)."""
        if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
            raise BadRequest("name: lower-case letters, digits and '-', at most 63")
        if architecture not in self.architectures:
            raise BadRequest(
                f"unknown reference architecture {architecture!r}",
                hint="architectures: " + ", ".join(self.architectures),
            )
        token = auth.new_token()
        now = now_ms()
        with self.db.transaction() as tx:
            if tx.one("SELECT id FROM deployments WHERE name = ?", (name,)):
                raise Conflict(f"deployment {name!r} exists")
            tx.execute(
                "INSERT INTO deployments (name, architecture, enrol_token_hash, params,"
                " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
                (name, architecture, auth.token_hash(token), "{}", now, now),
            )
        return self.deployment(name), token

    def rotate_token(self, ref: str) -> str:
        dep = self._deployment_row(ref)
        token = auth.new_token()
        with self.db.transaction() as tx:
            tx.execute(
                "UPDATE deployments SET enrol_token_hash = ?, updated_at = ? WHERE id = ?",
                (auth.token_hash(token), now_ms(), dep["id"]),
            )
        return token

    def delete_deployment(self, ref: str, confirm: str) -> None:
        """Delete a deployment with its nodes and their events; `confirm` must be its name."""
        with self.db.transaction() as tx:
            dep = self._deployment_row(ref, tx)
            if confirm != dep["name"]:
                raise BadRequest(
                    f"confirm the deletion of deployment {dep['name']!r} with its name",
                    hint='send {"confirm": "<the deployment\'s name>"}',
                )
            node_ids = [r["id"] for r in tx.all("SELECT id FROM nodes WHERE deployment_id = ?",
                                                (dep["id"],))]  # fmt: skip
            for node_id in node_ids:
                tx.execute("DELETE FROM events WHERE node_id = ?", (node_id,))
            tx.execute("DELETE FROM nodes WHERE deployment_id = ?", (dep["id"],))
            tx.execute("DELETE FROM deployments WHERE id = ?", (dep["id"],))

    def netboot_policy(self, ref: str, unknown: str | None = None) -> str:
        """What a machine the deployment does not know gets when it network-boots: "menu" (the
        architecture's entries) or "wait" (for the admin); set it when `unknown` is given."""
        with self.db.transaction() as tx:
            dep = self._deployment_row(ref, tx)
            if unknown is None:
                return str(dep["netboot_unknown"])
            if unknown not in ("menu", "wait"):
                raise BadRequest("unknown: one of menu, wait")
            tx.execute(
                "UPDATE deployments SET netboot_unknown = ?, updated_at = ? WHERE id = ?",
                (unknown, now_ms(), dep["id"]),
            )
            return unknown

    def forget_node(self, ref: str, node_id: str | int) -> None:
        """Forget a node: its record, token and events go; the machine registers anew if it
        boots again (with the deployment's token, as a new node)."""
        with self.db.transaction() as tx:
            dep = self._deployment_row(ref, tx)
            row = self._node_row(dep, node_id, tx)
            tx.execute("DELETE FROM events WHERE node_id = ?", (row["id"],))
            tx.execute("DELETE FROM nodes WHERE id = ?", (row["id"],))

    def _deployment_row(self, ref: str | int, tx: Tx | None = None) -> Row:
        if tx is None:
            with self.db.transaction() as t:
                return self._deployment_row(ref, t)
        text = str(ref)
        if text.isdigit() and len(text) < 18:
            row = tx.one("SELECT * FROM deployments WHERE id = ?", (int(text),))
        else:
            row = tx.one("SELECT * FROM deployments WHERE name = ?", (text,))
        if row is None:
            raise NotFound(
                f"no deployment {text[:64]!r}", hint="list them: installer deployment list"
            )
        return row

    def list_deployments(self) -> list[dict[str, Any]]:
        with self.db.transaction() as tx:
            rows = tx.all("SELECT * FROM deployments ORDER BY id")
            counts = {
                r["deployment_id"]: int(r["n"])
                for r in tx.all(
                    "SELECT deployment_id, COUNT(*) AS n FROM nodes GROUP BY deployment_id"
                )
            }
        return [self._deployment_view(r, counts.get(r["id"], 0)) for r in rows]

    def deployment(self, ref: str | int) -> dict[str, Any]:
        with self.db.transaction() as tx:
            row = self._deployment_row(ref, tx)
            nodes = tx.all("SELECT * FROM nodes WHERE deployment_id = ? ORDER BY id", (row["id"],))
        view = self._deployment_view(row, len(nodes))
        derivations = self._derivations(row, nodes)
        for key, d in derivations.items():
            view["params"][key]["derived"] = d
        view["nodes"] = [self._node_view(n, row, derivations=derivations) for n in nodes]
        view["problems"] = self._problems(row, nodes, derivations)
        view["now"] = now_ms() / 1000  # the service's clock: the UI's elapsed and silent times
        return view

    def _params(self, dep: Row) -> dict[str, str]:
        return dict(json.loads(dep["params"]))

    def _deployment_view(self, row: Row, node_count: int) -> dict[str, Any]:
        params = self._params(row)
        shown = {}
        for q in self.roleset.questions:
            if q.key not in self.global_keys:
                continue
            value = params.get(q.key)
            shown[q.key] = {
                "value": (auth.mask(value) if q.secret else value) if value is not None else None,
                "set": value is not None,
                "secret": q.secret,
                "default": q.default,
                "type": q.type,
                "prompt": q.prompt,
                "description": q.description,
                "required": q.default is None and not q.optional,
                "choices": list(q.choices),
                "min_length": q.minimum if q.type == "password" else None,
            }
        return {
            "id": row["id"],
            "name": row["name"],
            "architecture": row["architecture"],
            "params": shown,
            "node_count": node_count,
            # network boots refused discovery (netboot.py's bounds): a count, not a junk table
            "discovery": {
                "refused": row.get("discovery_refused") or 0,
                "last_at": (row.get("discovery_refused_at") or 0) / 1000,
                "last_source": row.get("discovery_refused_source") or "",
            },
            "created_at": row["created_at"] / 1000,
            "updated_at": row["updated_at"] / 1000,
        }

    def set_params(self, ref: str, values: dict[str, Any]) -> dict[str, Any]:
        """Set (a value) or clear (None or "") global parameters; checked like a deployment file."""
        if not isinstance(values, dict) or not values:
            raise BadRequest("give the parameters to set as a mapping of key to value")
        with self.db.transaction() as tx:
            dep = self._deployment_row(ref, tx)
            params = self._params(dep)
            for key, value in values.items():
                if key in self.per_node_keys:
                    raise BadRequest(
                        f"{key} is a per-node value",
                        hint="set it when assigning roles to a node",
                    )
                if key not in self.global_keys:
                    raise BadRequest(
                        f"unknown parameter {str(key)[:64]!r}",
                        hint="parameters: " + ", ".join(self.global_keys),
                    )
                if value is None or value == "":
                    params.pop(key, None)
                elif isinstance(value, bool) or not isinstance(value, str | int):
                    raise BadRequest(f"{key} must be a string")
                elif len(str(value)) > 1024:
                    raise BadRequest(f"{key} is longer than 1024 characters")
                else:
                    params[key] = str(value)
            # The deployment file's rules: each value by its question (all refusals at once, by
            # key), then the cross-field ones.
            by_key = {q.key: q for q in self.roleset.questions}
            refused = {}
            for k in values:
                if k in params and (why := validate_value(by_key[k], params[k])) is not None:
                    shown = "(secret)" if by_key[k].secret else repr(params[k])
                    refused[k] = f"{shown} is not valid: {why}"  # config/deployment.py's words
            if refused:
                raise InvalidFields(refused, hint="correct the values named (each by its key)")
            try:
                check_deployment(render_deployment(None, params), self.roleset, label="parameters")
            except ConfigError as e:
                # "parameters:6: answers.floating_range: ..." -> "floating_range: ..."
                message = re.sub(r"^parameters(:\d+)?: (answers\.)?", "", str(e))
                key, sep, why = message.partition(": ")
                if sep and key in self.global_keys:
                    raise InvalidFields({key: why}, hint=e.hint) from e
                raise BadRequest(message, hint=e.hint) from e
            tx.execute(
                "UPDATE deployments SET params = ?, updated_at = ? WHERE id = ?",
                (json.dumps(params, sort_keys=True), now_ms(), dep["id"]),
            )
        return self.deployment(dep["id"])

    def _missing(self, dep: Row, roles: tuple[str, ...], node_answers: dict[str, str]) -> list[str]:
        """The questions a node with `roles` would have to ask on its console."""
        params = self._params(dep)
        missing = []
        for q in self.roleset.questions_for(roles):
            if set(q.skip_with) & set(roles):
                continue
            if q.key in params or q.key in node_answers or q.default is not None or q.optional:
                continue  # an optional one left out means "none" (volume_address: the controller)
            missing.append(q.key)
        return missing

    def _derivations(self, dep: Row, nodes: list[Row]) -> dict[str, dict[str, Any]]:
        """The derived answers (DERIVED_ADDRESSES) of the deployment, each that the admin left
        empty, that a node's roles ask (not all-in-one, nor a controller+network node) and for
        which a node holds one of its skip_with roles (the first by id; a role's
        max_per_deployment keeps it one): its address on its public_interface (None while it
        has reported none, with the reason the nodes that need it wait), and where it is from."""
        params = self._params(dep)
        out: dict[str, dict[str, Any]] = {}
        asked = {
            q.key
            for n in nodes
            if n["roles"]
            for q in self.roleset.questions_for(tuple(n["roles"].split(",")))
        }
        for q in self.derived:
            if params.get(q.key) or q.key not in asked:
                continue  # the admin's value wins; no node needs it
            holders = [n for n in nodes if set(q.skip_with) & set((n["roles"] or "").split(","))]
            source = holders[0] if holders else None
            if source is None:
                # None assigned yet: wait when the architecture has such a node (multi-node's
                # network node; min_count >= 1), else nothing to derive from (optional: none).
                shapes = self.architectures[dep["architecture"]].nodes
                needed = [s for s in shapes if s.min_count and set(q.skip_with) & set(s.roles)]
                if needed:
                    out[q.key] = {
                        "value": None, "node": None, "hostname": None, "interface": None,
                        "reason": (
                            f"waits for a {'+'.join(needed[0].roles)} node to be assigned and "
                            f"report its address ({q.key})"
                        ),
                    }  # fmt: skip
                continue
            own = json.loads(source["answers"])
            iface = own.get("public_interface", "")
            nics = json.loads(source["inventory"])["nics"]
            value = next((c.get("ipv4") for c in nics if c["name"] == iface), None)
            host = own.get("hostname", source["hostname"])
            out[q.key] = {
                "value": value,
                "node": source["id"],
                "hostname": host,
                "interface": iface,
                "reason": None if value else (
                    f"waits for the {source['roles'].replace(',', '+')} node {source['id']} "
                    f"({host}) to report its address on {iface} ({q.key})"
                ),
            }  # fmt: skip
        return out

    def _asked(self, roles: str, derivations: dict[str, Any]) -> dict[str, Any]:
        """The derivations a node with `roles` (comma list) is answered by: the questions its
        roles ask (skip_with: not where the node holds the role itself, all-in-one)."""
        if not derivations:
            return {}
        keys = {q.key for q in self.roleset.questions_for(tuple(roles.split(",")))}
        return {k: d for k, d in derivations.items() if k in keys}

    def _assigned_nodes(self, tx: Tx, dep: Row) -> list[Row]:
        return tx.all(
            "SELECT * FROM nodes WHERE deployment_id = ? AND roles IS NOT NULL ORDER BY id",
            (dep["id"],),
        )

    def _node_derived(self, tx: Tx, dep: Row, roles: str) -> dict[str, Any]:
        """_asked() for one node, reading the deployment's nodes only when its roles ask a
        derived question (a compute node's poll costs no query)."""
        if not self._asked(roles, {q.key: None for q in self.derived}):
            return {}
        nodes = self._assigned_nodes(tx, dep)
        return self._asked(roles, self._derivations(dep, nodes))

    def _problems(self, dep: Row, nodes: list[Row], derivations: dict[str, Any]) -> list[str]:
        problems = []
        assigned = [tuple(n["roles"].split(",")) for n in nodes if n["roles"]]
        for shape in self.architectures[dep["architecture"]].nodes:
            have = sum(1 for a in assigned if a == shape.roles)
            if have < shape.min_count:
                problems.append(f"no node has the {'+'.join(shape.roles)} roles yet")
        keys: set[str] = set()
        for n in nodes:
            if n["roles"]:
                keys.update(
                    self._missing(dep, tuple(n["roles"].split(",")), json.loads(n["answers"]))
                )
        if keys:
            problems.append("parameters still missing: " + ", ".join(sorted(keys)))
        for n in nodes:
            if n["roles"]:
                problems += [
                    f"node {n['id']} {d['reason']}"
                    for d in self._asked(n["roles"], derivations).values()
                    if d["value"] is None
                ]  # fmt: skip
        if dep.get("discovery_refused"):
            problems.append(
                f"network boot discovery refused {dep['discovery_refused']} times (last from"
                f" {dep.get('discovery_refused_source') or '?'}): too many undecided discovered"
                " machines; give each roles, or none to set it aside"
            )
        return problems

    def export(self, ref: str, *, with_secrets: bool = False) -> str:
        """deployment.yaml for `build --deployment`; checked by the build's own loader."""
        with self.db.transaction() as tx:
            dep = self._deployment_row(ref, tx)
            nodes = self._assigned_nodes(tx, dep)
        params = self._params(dep)
        secret = {q.key for q in self.roleset.questions if q.secret}
        omitted = sorted(k for k in params if k in secret) if not with_secrets else []
        answers = {k: v for k, v in params.items() if k not in omitted}
        derived = []
        for key, d in self._derivations(dep, nodes).items():
            if d["value"] is None:
                derived.append(f"{key}: not derived yet: {d['reason']}")
                continue
            answers[key] = d["value"]
            derived.append(f"{key}: derived (the address node {d['node']}, {d['hostname']}, "
                           f"reported on {d['interface']})")  # fmt: skip
        specs = []
        for n in nodes:
            own = json.loads(n["answers"])
            specs.append((own.get("hostname", n["hostname"]), n["roles"].split(","), own))
        header = (
            f"deployment {dep['name']} ({dep['architecture']}), exported by the Smart Installer"
            f" (distro-builder {__version__})"
        )
        if omitted:
            header += (
                "\nsecrets left out (the installer asks them): "
                + ", ".join(omitted)
                + "\nexport with --with-secrets to include them"
            )
        header += "".join("\n" + line for line in derived)
        text = render_deployment(dep["architecture"], answers, specs, header=header)
        try:
            check_deployment(text, self.roleset, label=f"deployment {dep['name']}")
        except ConfigError as e:
            raise Conflict(str(e), hint=e.hint) from e
        return text

    # --- nodes (admin side) -------------------------------------------------------------------

    def _node_row(self, dep: Row, node_id: str | int, tx: Tx) -> Row:
        text = str(node_id)
        row = None
        if text.isdigit() and len(text) < 18:
            row = tx.one(
                "SELECT * FROM nodes WHERE id = ? AND deployment_id = ?", (int(text), dep["id"])
            )
        if row is None:
            row = tx.one(
                "SELECT * FROM nodes WHERE hostname = ? AND deployment_id = ? ORDER BY id",
                (text, dep["id"]),
            )
        if row is None:
            raise NotFound(f"no node {text[:64]!r} in deployment {dep['name']!r}")
        return row

    def nodes(self, ref: str) -> list[dict[str, Any]]:
        return list(self.deployment(ref)["nodes"])

    def node(self, ref: str, node_id: str | int, *, events: int = MAX_EVENTS_SHOWN) -> dict:
        with self.db.transaction() as tx:
            dep = self._deployment_row(ref, tx)
            row = self._node_row(dep, node_id, tx)
            evs = tx.all(
                "SELECT at, kind, line FROM events WHERE node_id = ? ORDER BY id DESC LIMIT ?",
                (row["id"], events),
            )
            view = self._node_view(row, dep, tx)
        view["events"] = [
            {"at": e["at"] / 1000, "kind": e["kind"], "line": e["line"]} for e in reversed(evs)
        ]
        return view

    def _node_view(
        self, row: Row, dep: Row, tx: Tx | None = None, *, derivations: dict | None = None
    ) -> dict[str, Any]:
        """A node as the admin sees it; `derived`: the answers the Smart Installer fills in for
        it (_derivations), from `derivations` or read with `tx`."""
        roles = tuple(row["roles"].split(",")) if row["roles"] else ()
        answers = json.loads(row["answers"])
        derived: dict[str, Any] = {}
        if roles and derivations is not None:
            derived = self._asked(row["roles"], derivations)
        elif roles and tx is not None:
            derived = self._node_derived(tx, dep, row["roles"])
        return {
            "id": row["id"],
            "deployment": dep["name"],
            "hostname": answers.get("hostname", row["hostname"]),
            "mac": row["mac"],
            "inventory": json.loads(row["inventory"]),
            "roles": list(roles),
            "answers": answers,  # per-node values only: none of them is a secret
            "derived": derived,
            "notes": [n for n in row["notes"].split("\n") if n],
            "state": row["state"],
            "step": row["step"],
            "missing": self._missing(dep, roles, answers) if roles else [],
            "registered_at": row["registered_at"] / 1000,
            "last_seen": row["last_seen"] / 1000,
            "fetched_at": row["fetched_at"] / 1000 if row.get("fetched_at") else None,
            "failed_step": row.get("failed_step") or "",
            "failure_log": row.get("failure_log") or "",
            "retry_requested": bool(row.get("retry_at")),
            "pending": None
            if not row.get("pending_token_hash")
            else {
                "at": row["pending_at"] / 1000,
                "inventory": json.loads(row["pending_inventory"]),
            },
        }

    def assign(
        self, ref: str, node_id: str | int, roles: Any, wanted: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Give a node its roles (empty: unassign) and its own values, after the fitness checks."""
        role_tuple = fitness.parse_roles(
            roles if isinstance(roles, list) else str(roles), self.roleset
        )
        wanted = wanted or {}
        if not isinstance(wanted, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in wanted.items()
        ):
            raise BadRequest("per-node values must map names to strings")
        bad = sorted(set(wanted) - set(self.per_node_keys))
        if bad:
            raise BadRequest(
                f"{bad[0]} is not a per-node value",
                hint="per-node: " + ", ".join(self.per_node_keys),
            )
        with self.db.transaction() as tx:
            dep = self._deployment_row(ref, tx)
            row = self._node_row(dep, node_id, tx)
            if row["state"] in ("configuring", "done"):
                raise Conflict(
                    f"node {row['id']} is {row['state']}: its roles can no longer change",
                    hint="reinstall the node to give it other roles",
                )
            if not role_tuple:
                tx.execute(
                    "UPDATE nodes SET roles = NULL, answers = ?, notes = '', state = 'registered'"
                    " WHERE id = ?",
                    ("{}", row["id"]),
                )
                _event(tx, row["id"], "admin", "roles removed")
                return self._node_view(self._node_row(dep, row["id"], tx), dep, tx)
            others = [
                tuple(r["roles"].split(","))
                for r in tx.all(
                    "SELECT roles FROM nodes WHERE deployment_id = ? AND id <> ?"
                    " AND roles IS NOT NULL",
                    (dep["id"], row["id"]),
                )
            ]
            fitness.check_architecture(self.architectures[dep["architecture"]], role_tuple, others)
            fit = fitness.check_roles(
                role_tuple, json.loads(row["inventory"]), dict(wanted), self.roleset
            )
            host = fit.answers["hostname"]
            for other in tx.all(
                "SELECT id, answers FROM nodes WHERE deployment_id = ? AND id <> ?"
                " AND roles IS NOT NULL",
                (dep["id"], row["id"]),
            ):
                if json.loads(other["answers"]).get("hostname") == host:
                    raise Conflict(
                        f"node {other['id']} already has the host name {host}",
                        hint="give this node another hostname",
                    )
            tx.execute(
                "UPDATE nodes SET roles = ?, answers = ?, notes = ?, state = 'assigned'"
                " WHERE id = ?",
                (
                    ",".join(role_tuple),
                    json.dumps(fit.answers, sort_keys=True),
                    "\n".join(fit.notes),
                    row["id"],
                ),
            )
            _event(tx, row["id"], "admin", "roles " + ",".join(role_tuple))
            return self._node_view(self._node_row(dep, row["id"], tx), dep, tx)

    # --- nodes (agent side) -------------------------------------------------------------------

    def register(self, enrol_token: str, pairs: list[tuple[str, str]]) -> tuple[int, str]:
        """A node registers its inventory; (node id, the node's own token). A known MAC
        registers again at once only with its node token (`token=` in the inventory); without
        it the request waits for the admin (approve_reregistration)."""
        if not enrol_token:
            raise Unauthorized("no enrolment token", hint="the disc's installer_token")
        own_token = next((v for k, v in pairs if k == "token"), "")
        inv = fitness.parse_inventory(pairs, self.roleset)
        mac = fitness.primary_mac(inv)
        token = auth.new_token()
        now = now_ms()
        with self.db.transaction() as tx:
            dep = tx.one(
                "SELECT * FROM deployments WHERE enrol_token_hash = ?",
                (auth.token_hash(enrol_token),),
            )
            if dep is None:
                raise Unauthorized("the enrolment token is not any deployment's")
            hostname = inv["hostname"] or "node-" + mac.replace(":", "")[-6:]
            old = tx.one(
                "SELECT id, roles, token_hash FROM nodes WHERE deployment_id = ? AND mac = ?",
                (dep["id"], mac),
            )
            if (
                old
                and own_token
                and hmac.compare_digest(auth.token_hash(own_token), old["token_hash"])
            ):
                # The node itself (it holds its token): a new token, its inventory refreshed.
                tx.execute(
                    "UPDATE nodes SET token_hash = ?, inventory = ?, hostname = ?, last_seen = ?,"
                    " pending_token_hash = NULL, pending_inventory = NULL, pending_at = NULL"
                    " WHERE id = ?",
                    (auth.token_hash(token), json.dumps(inv), hostname, now, old["id"]),
                )
                node_id = int(old["id"])
                _event(tx, node_id, "agent", "registered again with its node token")
            elif old:
                # Without the node's token this is a reinstall, or someone replaying the disc's
                # enrolment token with a MAC seen on the network: the node keeps its token,
                # roles and name until the admin approves (approve_reregistration); the new
                # token only polls ("waiting for the admin's approval") until then.
                tx.execute(
                    "UPDATE nodes SET pending_token_hash = ?, pending_inventory = ?,"
                    " pending_at = ? WHERE id = ?",
                    (auth.token_hash(token), json.dumps(inv), now, old["id"]),
                )
                node_id = int(old["id"])
                _event(
                    tx, node_id, "agent",
                    f"registration again as {hostname} without the node token: waits for the "
                    "admin's approval",
                )  # fmt: skip
            else:
                node_id = int(
                    tx.value(
                        "INSERT INTO nodes (deployment_id, token_hash, mac, hostname, inventory,"
                        " roles, answers, notes, state, step, registered_at, last_seen)"
                        " VALUES (?, ?, ?, ?, ?, NULL, '{}', '', 'registered', '', ?, ?)"
                        " RETURNING id",
                        (
                            dep["id"],
                            auth.token_hash(token),
                            mac,
                            hostname,
                            json.dumps(inv),
                            now,
                            now,
                        ),
                    )
                )
                _event(tx, node_id, "agent", "registered")
        return node_id, token

    def approve_reregistration(self, ref: str, node_id: str | int, approve: bool = True) -> dict:
        """The admin's answer to a node that registered again without its token: approved, the
        new token replaces the old one and the roles wait to be assigned again (the old
        behaviour); rejected, the request is dropped and the node stays as it was."""
        with self.db.transaction() as tx:
            dep = self._deployment_row(ref, tx)
            row = self._node_row(dep, node_id, tx)
            if not row.get("pending_token_hash"):
                raise Conflict(f"node {row['id']} has no registration waiting for approval")
            if approve:
                inv = json.loads(row["pending_inventory"])
                mac = fitness.primary_mac(inv)
                hostname = inv["hostname"] or "node-" + mac.replace(":", "")[-6:]
                tx.execute(
                    "UPDATE nodes SET token_hash = pending_token_hash, inventory = ?,"
                    " hostname = ?, roles = NULL, answers = '{}', notes = '',"
                    " state = 'registered', step = '', fetched_at = NULL,"
                    " pending_token_hash = NULL, pending_inventory = NULL, pending_at = NULL"
                    " WHERE id = ?",
                    (row["pending_inventory"], hostname, row["id"]),
                )
                line = "registration again approved (new node token)"
                if row["roles"]:
                    line += f"; roles {row['roles']} cleared until the admin assigns them again"
            else:
                tx.execute(
                    "UPDATE nodes SET pending_token_hash = NULL, pending_inventory = NULL,"
                    " pending_at = NULL WHERE id = ?",
                    (row["id"],),
                )
                line = "registration again rejected"
            _event(tx, row["id"], "admin", line)
            return self._node_view(self._node_row(dep, row["id"], tx), dep, tx)

    def _agent_node(self, tx: Tx, node_id: str, token: str | None) -> tuple[Row, Row]:
        if not token:
            raise Unauthorized("no node token", hint="register first")
        row = tx.one("SELECT * FROM nodes WHERE token_hash = ?", (auth.token_hash(token),))
        if row is None:
            pending = tx.one(
                "SELECT id FROM nodes WHERE pending_token_hash = ?", (auth.token_hash(token),)
            )
            if pending is not None and str(pending["id"]) == str(node_id):
                raise _AwaitingApproval()
            raise Unauthorized("the node token is unknown (the node registered again?)")
        if str(row["id"]) != str(node_id):
            raise Forbidden("this token belongs to another node")
        dep = tx.one("SELECT * FROM deployments WHERE id = ?", (row["deployment_id"],))
        assert dep is not None
        return row, dep

    def poll(self, node_id: str, token: str | None) -> list[tuple[str, str]]:
        """What the node should do: state unassigned | waiting (reason) | ready (roles, and
        address_wanted=<interface> while another node waits for its address there)."""
        try:
            with self.db.transaction() as tx:
                row, dep = self._agent_node(tx, node_id, token)
                tx.execute("UPDATE nodes SET last_seen = ? WHERE id = ?", (now_ms(), row["id"]))
        except _AwaitingApproval:
            return [("state", "unassigned"), ("reason", "registered again: waiting for the "
                                              "admin's approval")]  # fmt: skip
        if not row["roles"]:
            return [("state", "unassigned"), ("reason", "waiting for the admin to assign roles")]
        roles = tuple(row["roles"].split(","))
        missing = self._missing(dep, roles, json.loads(row["answers"]))
        if missing:
            return [
                ("state", "waiting"),
                ("roles", row["roles"]),
                ("reason", "parameters still missing: " + ",".join(missing)),
            ]
        misfit = self._misfit(row, roles)
        if misfit:
            return [("state", "waiting"), ("roles", row["roles"]), ("reason", misfit)]
        with self.db.transaction() as tx:
            waits = _waits(self._node_derived(tx, dep, row["roles"]))
            wanted = self._address_wanted(tx, dep, row) if not waits else ""
        if waits:
            return [("state", "waiting"), ("roles", row["roles"]), ("reason", waits)]
        if wanted:
            # The inventory it sent had no address there (DHCP was slow?): it sends it again.
            return [("state", "ready"), ("roles", row["roles"]), ("address_wanted", wanted)]
        return [("state", "ready"), ("roles", row["roles"])]

    def _address_wanted(self, tx: Tx, dep: Row, row: Row) -> str:
        """The interface on which another node waits for this node's address (_derivations:
        the network node's public_interface, for the controller), "" when none does."""
        holds = set(row["roles"].split(","))
        if not any(holds & set(q.skip_with) for q in self.derived):
            return ""
        nodes = self._assigned_nodes(tx, dep)
        return next((d["interface"] for d in self._derivations(dep, nodes).values()
                     if d["node"] == row["id"] and d["value"] is None), "")  # fmt: skip

    def _misfit(self, row: Row, roles: tuple[str, ...]) -> str | None:
        """Why the node's hardware does not fit the roles and values the admin gave it, checked
        again on its current inventory (a network-booted node reports its disks only on first
        boot); None when it fits."""
        inv = json.loads(row["inventory"])
        if not fitness.disks_known(inv):
            return None
        own = json.loads(row["answers"])
        wanted = {k: v for k, v in own.items() if k in self.per_node_keys}
        try:
            fitness.check_roles(roles, inv, wanted, self.roleset)
        except (Conflict, BadRequest) as e:
            return f"the node's hardware does not fit: {e} (the admin assigns it again)"
        return None

    def report_inventory(
        self, node_id: str, token: str | None, pairs: list[tuple[str, str]]
    ) -> None:
        """The node's own inventory, sent on first boot by a node installed over the network
        (it holds its token from the installer, so it never registered): replaces what iPXE
        told (MAC, SMBIOS). A misfit with its roles is logged for the admin; poll says so."""
        inv = fitness.parse_inventory(pairs, self.roleset)
        with self.db.transaction() as tx:
            row, _dep = self._agent_node(tx, node_id, token)
            old = json.loads(row["inventory"])
            if "pxe" in old:
                inv["pxe"] = old["pxe"]
            tx.execute(
                "UPDATE nodes SET inventory = ?, hostname = ?, last_seen = ? WHERE id = ?",
                (json.dumps(inv), inv["hostname"] or row["hostname"], now_ms(), row["id"]),
            )
            _event(tx, row["id"], "agent", f"inventory: {len(inv['nics'])} NIC(s), "
                   f"{len(inv['disks'])} disk(s)")  # fmt: skip
            if row["roles"]:
                roles = tuple(row["roles"].split(","))
                misfit = self._misfit({**row, "inventory": json.dumps(inv)}, roles)
                if misfit:
                    _event(tx, row["id"], "agent", misfit)
                elif old.get("reported") is False:
                    self._refit(tx, row, roles, old, inv)

    def _refit(self, tx: Tx, row: Row, roles: tuple[str, ...], old: dict, inv: dict) -> None:
        """A network-booted node was assigned on iPXE's inventory; on the hardware it reported,
        its automatic answers (libvirt_type, interfaces) are computed again, the notes
        replaced, and an event says what changed (fitness.refit)."""
        answers = json.loads(row["answers"])
        try:
            fit, changes = fitness.refit(roles, old, inv, answers, self.roleset)
        except (Conflict, BadRequest) as e:
            _event(tx, row["id"], "agent", f"the node's hardware does not fit: {e}")
            return
        notes = "\n".join(fit.notes)
        if not changes and notes == row["notes"]:
            return
        tx.execute(
            "UPDATE nodes SET answers = ?, notes = ? WHERE id = ?",
            (json.dumps(fit.answers, sort_keys=True), notes, row["id"]),
        )
        line = "re-fitted on the reported hardware: " + ("; ".join(changes) or "same answers")
        _event(tx, row["id"], "agent", line + "; notes: " + ("; ".join(fit.notes) or "none"))

    def answers(
        self, node_id: str, token: str | None
    ) -> tuple[list[tuple[str, str]], dict[str, Any]]:
        """The node's answers (global parameters injected, its own filled in): its alone; and
        which of them the Smart Installer derived (_derivations). Waiting (409) while a derived
        one is not known yet: the controller, until the network node reported its address."""
        with self.db.transaction() as tx:
            row, dep = self._agent_node(tx, node_id, token)
            if not row["roles"]:
                raise Conflict("no roles assigned yet", hint="poll until state=ready")
            roles = tuple(row["roles"].split(","))
            own = json.loads(row["answers"])
            missing = self._missing(dep, roles, own)
            if missing:
                raise Conflict("parameters still missing: " + ", ".join(missing))
            derived = self._node_derived(tx, dep, row["roles"])
            if waits := _waits(derived):
                raise Waiting(waits, hint="poll until state=ready, then fetch the answers")
            now = now_ms()
            state = "configuring" if row["state"] == "assigned" else row["state"]
            tx.execute(
                "UPDATE nodes SET fetched_at = ?, last_seen = ?, state = ? WHERE id = ?",
                (now, now, state, row["id"]),
            )
            _event(tx, row["id"], "agent", "fetched its answers")
        params = self._params(dep)
        keys = {q.key for q in self.roleset.questions_for(roles)}
        out = [("roles", row["roles"])]
        for q in self.roleset.questions:
            if q.key not in keys or (set(q.skip_with) & set(roles)):
                continue
            if q.key in own:
                out.append((q.key, own[q.key]))
            elif q.key in params:
                out.append((q.key, params[q.key]))
            elif q.key in derived:
                out.append((q.key, derived[q.key]["value"]))
        return out, derived

    def report(self, node_id: str, token: str | None, text: str) -> int:
        """The agent's STACKOPS lines; the node's state and step follow them. Lines stored."""
        # A log line keeps its indentation (the step's output); a progress line is stripped.
        lines = [
            ln.rstrip() if ln.lstrip().startswith(_LOG_PREFIX) else ln.strip()
            for ln in text.splitlines()
            if ln.strip()
        ]
        lines = [ln.lstrip() if ln.lstrip().startswith(_LOG_PREFIX) else ln for ln in lines]
        if not lines:
            raise BadRequest("no progress lines")
        if len(lines) > MAX_REPORT_LINES:
            raise BadRequest(f"more than {MAX_REPORT_LINES} lines in one report")
        for ln in lines:
            if not ln.startswith("STACKOPS") or len(ln) > 400 or not ln.isprintable():
                raise BadRequest(f"not an agent progress line: {ln[:60]!r}")
        with self.db.transaction() as tx:
            row, dep = self._agent_node(tx, node_id, token)
            state, step = row["state"], row["step"]
            failed_step, failure_log = row.get("failed_step"), row.get("failure_log")
            assigned = bool(row["roles"])  # progress of a node on its local answers: shown only
            log_tail: list[str] = []
            for ln in lines:
                if ln.startswith(_LOG_PREFIX):
                    log_tail.append(ln[len(_LOG_PREFIX) + 1 :])
                    continue
                kind = "info"
                if m := _STEP_RE.fullmatch(ln):
                    kind = "step"
                    step = f"{m[1]}/{m[2]} {m[3]} {m[4]} {m[5]}"
                    state = "failed" if m[5] == "failed" else "configuring"
                    failed_step = step if m[5] == "failed" else None
                elif _DONE_RE.fullmatch(ln):
                    kind, state, failure_log = "done", "done", None
                elif m := _FAILED_RE.fullmatch(ln):
                    if not step.endswith(" failed"):
                        failed_step = None  # failed before any step (answers, packages)
                    kind, state, step = "failed", "failed", f"failed at {m[1]} (log {m[2]})"
                    failure_log = self._redacted(dep, "\n".join(log_tail))[-MAX_FAILURE_LOG:]
                    log_tail = []
                _event(tx, row["id"], kind, ln)
            if not assigned:
                state = row["state"]
            # A retry asked for and not fetched is void once the agent runs again by itself (a
            # reboot): else it would re-run the node at its next failure.
            ran = any(_STEP_RE.fullmatch(ln) or _DONE_RE.fullmatch(ln) for ln in lines)
            retry_at = None if ran else row.get("retry_at")
            tx.execute(
                "UPDATE nodes SET state = ?, step = ?, last_seen = ?, failed_step = ?,"
                " failure_log = ?, retry_at = ? WHERE id = ?",
                (state, step, now_ms(), failed_step, failure_log or None, retry_at, row["id"]),
            )
        return len(lines)

    def _redacted(self, dep: Row, text: str) -> str:
        """`text` with the deployment's secret parameters replaced by *****: the agent redacts
        its logs already (agent/lib/redact.awk); this is the service's own guard."""
        params = self._params(dep)
        for q in self.roleset.questions:
            value = params.get(q.key)
            if q.secret and value and len(value) >= 3:
                text = text.replace(value, "*****")
        return text

    # --- node actions: retry the failed step, reinstall over the network ----------------------

    def request_retry(self, ref: str, node_id: str | int) -> dict[str, Any]:
        """The admin asks a failed node's agent to run again from its failed step: the agent
        sees it on its next poll (GET /agent/v1/nodes/<id>/retry)."""
        with self.db.transaction() as tx:
            dep = self._deployment_row(ref, tx)
            row = self._node_row(dep, node_id, tx)
            if row["state"] != "failed":
                raise Conflict(
                    f"node {row['id']} is {row['state']}, not failed: nothing to retry",
                    hint="retry is for a node whose first boot failed",
                )
            tx.execute("UPDATE nodes SET retry_at = ? WHERE id = ?", (now_ms(), row["id"]))
            _event(tx, row["id"], "admin", f"retry requested ({row['step']}): the agent runs "
                   "again from the failed step on its next poll")  # fmt: skip
            return self._node_view(self._node_row(dep, row["id"], tx), dep, tx)

    def retry_poll(self, node_id: str, token: str | None) -> list[tuple[str, str]]:
        """A failed node's agent asks whether to run again: retry='yes' once per request."""
        with self.db.transaction() as tx:
            row, _dep = self._agent_node(tx, node_id, token)
            now = now_ms()
            if not row.get("retry_at") or row["state"] != "failed":
                tx.execute("UPDATE nodes SET last_seen = ? WHERE id = ?", (now, row["id"]))
                return [("retry", "no")]
            tx.execute(
                "UPDATE nodes SET retry_at = NULL, state = 'configuring', failure_log = NULL,"
                " last_seen = ? WHERE id = ?",
                (now, row["id"]),
            )
            _event(tx, row["id"], "agent", f"retrying from the failed step ({row['step']}), as "
                   "the admin asked")  # fmt: skip
        return [("retry", "yes")]

    def request_reinstall(self, ref: str, node_id: str | int) -> dict[str, Any]:
        """The node's next network boot installs it again (a fresh boot token then, netboot.py),
        with its roles; until then its state is `reinstall`."""
        with self.db.transaction() as tx:
            dep = self._deployment_row(ref, tx)
            row = self._node_row(dep, node_id, tx)
            if not row["roles"]:
                raise Conflict(
                    f"node {row['id']} has no roles: there is nothing to install",
                    hint="assign its roles first",
                )
            tx.execute(
                "UPDATE nodes SET state = 'reinstall', step = '', boot_token_hash = NULL,"
                " fetched_at = NULL, retry_at = NULL, failed_step = NULL, failure_log = NULL"
                " WHERE id = ?",
                (row["id"],),
            )
            _event(tx, row["id"], "admin", "reinstall on its next network boot (was "
                   f"{row['state']})")  # fmt: skip
            return self._node_view(self._node_row(dep, row["id"], tx), dep, tx)

    # --- the cloud: credentials and endpoints -------------------------------------------------

    def _serves_cloud(self, row: dict[str, Any]) -> bool:
        """Is this node the cloud's controller? The roles that answer controller_address on
        their own node (its skip_with: roles/base/role.yaml), read from the role data."""
        serving = {r for q in self.roleset.questions if q.key == "controller_address"
                   for r in q.skip_with}  # fmt: skip
        return bool(serving & set((row["roles"] or "").split(",")))

    def store_credentials(self, node_id: str, token: str | None, data: bytes) -> int:
        """The controller's agent uploads nova.zip (after its admin step made it); the bytes
        kept. Only a node with the controller role may."""
        cloud.check_zip(data)
        with self.db.transaction() as tx:
            row, dep = self._agent_node(tx, node_id, token)
            if not self._serves_cloud(row):
                raise Forbidden("only the controller node uploads the cloud's credentials")
            now = now_ms()
            tx.execute(
                "UPDATE deployments SET credentials = ?, credentials_at = ?, credentials_node = ?,"
                " updated_at = ? WHERE id = ?",
                (base64.b64encode(data).decode("ascii"), now, row["id"], now, dep["id"]),
            )
            tx.execute("UPDATE nodes SET last_seen = ? WHERE id = ?", (now, row["id"]))
            _event(tx, row["id"], "agent", f"credentials uploaded (nova.zip, {len(data)} bytes)")
        return len(data)

    def credentials(self, ref: str) -> bytes:
        """nova.zip of the deployment's cloud (the admin's download). Raises NotFound."""
        dep = self._deployment_row(ref)
        if not dep.get("credentials"):
            raise NotFound(
                f"deployment {dep['name']!r} has no credentials yet",
                hint="the controller's agent uploads nova.zip after its admin step",
            )
        return base64.b64decode(dep["credentials"])

    def cloud(self, ref: str) -> dict[str, Any]:
        """Is the cloud ready (the controller done, stackops-check passed)? Its endpoints, admin
        user and project, the credentials' presence (never their content), the check's lines."""
        with self.db.transaction() as tx:
            dep = self._deployment_row(ref, tx)
            ctl = None
            for n in tx.all("SELECT * FROM nodes WHERE deployment_id = ? AND roles IS NOT NULL"
                            " ORDER BY id", (dep["id"],)):  # fmt: skip
                if self._serves_cloud(n):
                    ctl = n
                    break
            lines = []
            if ctl is not None:
                lines = [
                    (e["at"] / 1000, e["line"])
                    for e in tx.all(
                        "SELECT at, line FROM events WHERE node_id = ? AND line LIKE ? ORDER BY id",
                        (ctl["id"], "STACKOPS-CHECK%"),
                    )
                ]
        params = self._params(dep)
        defaults = {q.key: q.default for q in self.roleset.questions}
        address = params.get("controller_address") or (
            json.loads(ctl["answers"]).get("hostname", ctl["hostname"]) if ctl else ""
        )
        check = cloud.verdict(lines)
        state = ctl["state"] if ctl else "none"
        return {
            "ready": state == "done" and check["verdict"] != "failed",
            "cloud_node": None
            if ctl is None
            else {"id": ctl["id"], "hostname": ctl["hostname"], "state": state},
            "address": address,
            "endpoints": cloud.endpoints(address) if address else {},
            "admin_user": params.get("admin_user") or defaults.get("admin_user") or "",
            "project": params.get("project") or defaults.get("project") or "",
            "credentials": None
            if not dep.get("credentials")
            else {
                "at": dep["credentials_at"] / 1000,
                "node": dep["credentials_node"],
                "size": len(base64.b64decode(dep["credentials"])),
            },
            "check": check,
        }


class _AwaitingApproval(Unauthorized):
    """A token of a registration the admin has not approved yet (only poll accepts it)."""

    def __init__(self) -> None:
        super().__init__(
            "this registration waits for the admin's approval",
            hint="the admin approves it in the UI (or POST .../nodes/<id>/approve)",
        )


def _waits(derived: dict[str, Any]) -> str:
    """Why a node waits for its derived answers ("" when it need not): the first reason."""
    return next((f"this node {d['reason']}" for d in derived.values() if d["value"] is None), "")


def _event(tx: Tx, node_id: int, kind: str, line: str) -> None:
    tx.execute(
        "INSERT INTO events (node_id, at, kind, line) VALUES (?, ?, ?, ?)",
        (node_id, now_ms(), kind, line),
    )
