"""A node's inventory, and whether (and how) it fits the roles an admin gives it.

The node's client sends its inventory as key=value pairs (textfmt): `hostname`, `cpus`, `virt`
(vmx, svm or none: the /proc/cpuinfo flag), `mem_kb`, one `nic=<name> <mac> <up|down> [<ipv4>]`
per interface and one `disk=<name> <size_kb> <free|used>` per whole disk. check_architecture()
applies the shapes of roles/architectures.yaml (the ones config/deployment.py applies to a
deployment file); check_roles() the hardware rules of the questions the roles ask: a hypervisor
without virtualization extensions falls back to qemu and says so; a volume device must be a free
disk, and with none named or free the nova-volumes group stays on the system disk, where the
installer made it (issue 22 finding 8); a machine found by a network boot has reported no disks,
so a device the admin names is checked when the node reports its inventory on first boot;
interfaces must exist.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from distro_builder.config.questions import validate_value
from distro_builder.model import Architecture, Question, RoleSet
from distro_builder.smart_installer.errors import BadRequest, Conflict

_MAC_RE = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}")
_NAME_RE = re.compile(r"[A-Za-z0-9_.:-]{1,15}")
MAX_NICS = 64
MAX_DISKS = 128
# A NIC's address is checked by the rule of the ipv4 questions (config/questions.py).
_IPV4 = Question(key="ipv4", type="ipv4", prompt="", description="")


def _int(key: str, value: str, *, low: int = 0, high: int = 2**53) -> int:
    if not value.isdigit() or not low <= int(value) <= high:
        raise BadRequest(f"inventory: {key} must be a whole number ({low}..{high})")
    return int(value)


def _nic(value: str) -> dict[str, str]:
    """`<name> <mac> <up|down|unknown> [<ipv4>]`: the address (the interface's first IPv4) is
    newer; a client that sends three fields still fits."""
    parts = value.split()
    shape = f"inventory: nic {value[:64]!r} is not '<name> <mac> <up|down> [<ipv4>]'"
    if len(parts) not in (3, 4) or not _NAME_RE.fullmatch(parts[0]):
        raise BadRequest(shape)
    name, mac, state = parts[0], parts[1].lower(), parts[2]
    if not _MAC_RE.fullmatch(mac) or state not in ("up", "down", "unknown"):
        raise BadRequest(shape)
    nic = {"name": name, "mac": mac, "state": state}
    if len(parts) == 4:
        if validate_value(_IPV4, parts[3]) is not None:
            raise BadRequest(shape)
        nic["ipv4"] = parts[3]
    return nic


def parse_inventory(pairs: list[tuple[str, str]], roleset: RoleSet) -> dict[str, Any]:
    """The inventory record stored for a node; BadRequest on anything malformed."""
    inv: dict[str, Any] = {"hostname": "", "cpus": 0, "virt": "none", "mem_mb": 0}
    nics: list[dict[str, str]] = []
    disks: list[dict[str, Any]] = []
    for key, value in pairs:
        if key == "hostname":
            why = validate_value(roleset.question("hostname"), value)
            if why:
                raise BadRequest(f"inventory: hostname {value[:64]!r}: {why}")
            inv["hostname"] = value
        elif key == "cpus":
            inv["cpus"] = _int(key, value, low=1, high=100000)
        elif key == "virt":
            if value not in ("vmx", "svm", "none"):
                raise BadRequest("inventory: virt must be vmx, svm or none")
            inv["virt"] = value
        elif key == "mem_kb":
            inv["mem_mb"] = _int(key, value, high=2**44) // 1024
        elif key == "nic":
            nics.append(_nic(value))
        elif key == "disk":
            parts = value.split()
            if (
                len(parts) != 3
                or not _NAME_RE.fullmatch(parts[0])
                or parts[2]
                not in (
                    "free",
                    "used",
                )
            ):
                raise BadRequest(
                    f"inventory: disk {value[:64]!r} is not '<name> <size_kb> <free|used>'"
                )
            size = _int("disk size", parts[1], high=2**50)
            disks.append({"name": parts[0], "size_mb": size // 1024, "free": parts[2] == "free"})
        elif key in ("token", "client"):
            continue
        else:
            raise BadRequest(f"inventory: unknown key {key!r}")
    if not nics:
        raise BadRequest("inventory: no network interface (nic=<name> <mac> <state>)")
    if len(nics) > MAX_NICS or len(disks) > MAX_DISKS:
        raise BadRequest("inventory: too many interfaces or disks")
    if len({n["name"] for n in nics}) != len(nics) or len({d["name"] for d in disks}) != len(disks):
        raise BadRequest("inventory: an interface or disk is named twice")
    inv["nics"] = sorted(nics, key=lambda n: n["name"])
    inv["disks"] = sorted(disks, key=lambda d: d["name"])
    return inv


def disks_known(inv: dict[str, Any]) -> bool:
    """False for a machine only seen by a network boot (netboot.py marks its inventory
    `reported: false`): iPXE tells the MAC and SMBIOS, not the disks."""
    return inv.get("reported", True) is not False


def primary_mac(inv: dict[str, Any]) -> str:
    """The MAC that identifies a node across re-registrations: the lowest one."""
    return min(n["mac"] for n in inv["nics"])


def parse_roles(text: str | list[str], roleset: RoleSet) -> tuple[str, ...]:
    """'compute,network' or a list -> the roles in role order; () unassigns."""
    names = text if isinstance(text, list) else [r.strip() for r in text.split(",") if r.strip()]
    if not all(isinstance(r, str) for r in names):
        raise BadRequest("roles must be role names")
    unknown = [r for r in names if r not in roleset.names]
    if unknown:
        raise BadRequest(f"unknown role {unknown[0]!r} (roles: {', '.join(roleset.names)})")
    if len(set(names)) != len(names):
        raise BadRequest("a role is named twice")
    return roleset.ordered(list(names))


def check_architecture(
    architecture: Architecture, roles: tuple[str, ...], others: list[tuple[str, ...]]
) -> None:
    """Conflict when a node with `roles` does not fit `architecture` given the other nodes."""
    shapes = {n.roles: n for n in architecture.nodes}
    if roles not in shapes:
        allowed = " | ".join("+".join(s) for s in shapes)
        raise Conflict(
            f"{architecture.name} nodes are {allowed}, not {'+'.join(roles)}",
            hint="pick one of the architecture's node shapes",
        )
    limit = shapes[roles].max_count
    if limit is not None and sum(1 for o in others if o == roles) >= limit:
        raise Conflict(
            f"{architecture.name} has {limit} {'+'.join(roles)} node(s) already",
            hint="unassign the other node first",
        )


@dataclass
class Fit:
    """What assigning roles to a node means: per-node answers, notes for the admin."""

    answers: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def check_roles(
    roles: tuple[str, ...], inv: dict[str, Any], wanted: dict[str, str], roleset: RoleSet
) -> Fit:
    """Fill in the node's own answers from its inventory; Conflict when the hardware cannot.
    Which answers a node needs follows from the questions its roles ask."""
    fit = Fit()
    asked = {q.key for q in roleset.questions_for(roles)}
    nics = {n["name"]: n for n in inv["nics"]}
    names = [n["name"] for n in inv["nics"]]
    for key, value in wanted.items():
        why = validate_value(roleset.question(key), value)
        if why:
            raise BadRequest(f"{key}: {value[:64]!r}: {why}")
    fit.answers["hostname"] = wanted.get("hostname") or inv["hostname"]
    if not fit.answers["hostname"]:
        raise Conflict("the node reported no host name", hint="give one: hostname=...")

    public = wanted.get("public_interface") or ("eth0" if "eth0" in nics else names[0])
    if public not in nics:
        raise Conflict(f"public_interface {public} is not one of the node's NICs: {names}")
    fit.answers["public_interface"] = public
    if nics[public]["state"] != "up":
        fit.notes.append(f"public interface {public} has no link")

    if "flat_interface" in asked:
        others = [n for n in names if n != public]
        flat = wanted.get("flat_interface") or ("eth1" if "eth1" in others else None)
        flat = flat or (others[0] if others else public)
        if flat not in nics:
            raise Conflict(f"flat_interface {flat} is not one of the node's NICs: {names}")
        if flat == public:
            fit.notes.append(
                f"one NIC only: the instances' flat network shares {public} with the public one"
            )
        fit.answers["flat_interface"] = flat

    if "libvirt_type" in asked:
        hv = wanted.get("libvirt_type", "auto")
        if inv["virt"] == "none":
            if hv == "kvm":
                raise Conflict(
                    "libvirt_type kvm needs vmx or svm, and this node's CPU has neither",
                    hint="use libvirt_type qemu (or auto), or enable VT-x/AMD-V in the firmware",
                )
            hv = "qemu"
            fit.notes.append(
                "no virtualization extensions (vmx/svm): libvirt falls back to qemu (slow)"
            )
        fit.answers["libvirt_type"] = hv

    if "volume_device" in asked:
        free = [d["name"] for d in inv["disks"] if d["free"]]
        device = wanted.get("volume_device")
        if not disks_known(inv):
            # Found by a network boot: iPXE cannot see disks. A device the admin names is checked
            # when the node's first boot reports its inventory (poll).
            if device is None:
                fit.notes.append(
                    "nova-volumes on the system disk only (the installer makes the group there); "
                    "name volume_device to add a second disk"
                )
                return fit
            fit.notes.append(
                f"volume_device {device} is checked when the node reports its disks (first boot)"
            )
        elif device is None:
            if not free:
                # Issue 22 finding 8: the installer's stackops-volumes recipe makes the
                # nova-volumes group on the first disk, so one disk is enough.
                fit.notes.append(
                    "no free disk: nova-volumes on the system disk only (room the installer left)"
                )
                return fit
            device = f"/dev/{free[0]}"
        elif device.removeprefix("/dev/") not in free:
            raise Conflict(f"volume_device {device} is not a free disk of this node: {free}")
        fit.answers["volume_device"] = device
    return fit


# Per-node values a re-fit keeps as they are: the admin names them (hostname) or the disks were
# checked against what the admin gave (volume_device).
KEPT_ON_REFIT = ("hostname", "volume_device")


def refit(
    roles: tuple[str, ...],
    old_inv: dict[str, Any],
    new_inv: dict[str, Any],
    answers: dict[str, str],
    roleset: RoleSet,
) -> tuple[Fit, list[str]]:
    """The node's answers computed again on the hardware it reported (a network-booted node was
    assigned on iPXE's inventory: no CPU facts, one NIC). A value equal to what the old
    inventory gave by itself counts as automatic and is computed again; a value the admin chose
    (different from that) stays. Returns the new fit and what changed ("key old -> new");
    Conflict/BadRequest when the hardware does not fit what the admin chose."""
    kept = {k: v for k, v in answers.items() if k in KEPT_ON_REFIT}
    auto_before = check_roles(roles, old_inv, kept, roleset).answers
    wanted = dict(kept)
    for key, value in answers.items():
        if key not in KEPT_ON_REFIT and auto_before.get(key) != value:
            wanted[key] = value  # the admin's choice
    fit = check_roles(roles, new_inv, wanted, roleset)
    changes = [
        f"{key} {answers.get(key, '(none)')} -> {value}"
        for key, value in sorted(fit.answers.items())
        if answers.get(key) != value
    ]
    return fit, changes
