"""The lucid job starts after the network is up and keeps the console (issue 22 item 5).

No upstart 0.6.5 runs here (Debian 12 has none; building it needs libnih 1.0), so the job file
is parsed with init(5)'s 0.6.5 grammar (`start on EVENT [[KEY=]VALUE]... [and|or ...]`, `!=`,
fnmatch values, parentheses across lines: init/man/init.5:202-245) and its start condition is
run through a model of upstart 0.6.5's event operators (init/event_operator.c:390-426: a
matching event sets its leaf and is blocked; and/or are recomputed; the job starts when the root
is true and takes the blocks of the events that made it true, init/event.c:398-404) over lucid
boot orders: tty1 starts on `stopped rc RUNLEVEL=[2345]` (lucid upstart 0.6.5-6,
debian/conf/tty1.conf:6) and waits for its `starting` event to be unblocked (starting(7):25).
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
JOB = ROOT / "agent" / "upstart" / "stackops-agent.conf"
STANZAS_0_6_5 = {"description", "author", "start", "stop", "task", "console", "exec", "env",
                 "emits", "respawn", "script", "pre-start", "post-stop", "instance"}  # fmt: skip


@dataclass
class Node:
    kind: str  # "match", "and", "or"
    name: str = ""
    env: list[tuple[str, bool, str]] = field(default_factory=list)  # (key, negate, glob)
    kids: list[Node] = field(default_factory=list)
    value: bool = False


def _tokens(text: str) -> list[str]:
    return re.findall(r"\(|\)|[^\s()]+", text)


def parse_start_on(job: str) -> Node:
    """The `start on` expression (upstart joins lines until the parentheses close)."""
    m = re.search(r"^start on (.*?)$", job, re.M)
    assert m, "no start on"
    text = m.group(1)
    rest = job[m.end():].splitlines()  # fmt: skip
    while text.count("(") > text.count(")"):
        text += " " + rest.pop(0).strip()
    toks = _tokens(text)
    pos = 0

    def expr() -> Node:
        nonlocal pos
        left = term()
        while pos < len(toks) and toks[pos] in ("and", "or"):
            op = toks[pos]
            pos += 1
            left = Node(op, kids=[left, term()])
        return left

    def term() -> Node:
        nonlocal pos
        if toks[pos] == "(":
            pos += 1
            n = expr()
            assert toks[pos] == ")", toks
            pos += 1
            return n
        n = Node("match", name=toks[pos])
        assert re.fullmatch(r"[a-z][a-z0-9-]*", n.name), n.name
        pos += 1
        while pos < len(toks) and toks[pos] not in ("and", "or", ")"):
            k = re.fullmatch(r"([A-Z_]+)(!?=)(.*)", toks[pos])
            if k:
                n.env.append((k[1], k[2] == "!=", k[3]))
            else:  # a value by position (init.5: the KEY may be omitted)
                assert "=" not in toks[pos] and not n.env, toks[pos]
                n.env.append((f"#{len(n.env)}", False, toks[pos]))
            pos += 1
        return n

    root = expr()
    assert pos == len(toks), toks[pos:]
    return root


def _leaves(n: Node) -> list[Node]:
    return [n] if n.kind == "match" else [x for k in n.kids for x in _leaves(k)]


def _update(n: Node) -> bool:
    if n.kind != "match":
        vals = [_update(k) for k in n.kids]
        n.value = all(vals) if n.kind == "and" else any(vals)
    return n.value


def _value(env: dict[str, str], key: str) -> str:
    """An event's variable by name, or by position (#N)."""
    if key.startswith("#"):
        values = list(env.values())
        i = int(key[1:])
        return values[i] if i < len(values) else ""
    return env.get(key, "")


def boot(job: str, events: list[tuple[str, dict[str, str]]]) -> list[str]:
    """What happens, in order: 'agent' when the job starts, 'tty1' when the getty may start
    (its `starting` event unblocked); the agent is a task that runs to its end at once."""
    root = parse_start_on(job)
    log: list[str] = []
    blocked_tty1 = False
    for name, env in events:
        if name == "net-device-up" and env.get("IFACE") != "lo":
            log.append("up:" + env["IFACE"])
        for leaf in _leaves(root):
            if leaf.value or leaf.name != name:
                continue
            if all(fnmatch.fnmatchcase(_value(env, k), g) != neg for k, neg, g in leaf.env):
                leaf.value = True
                leaf.blocked = (name, env.get("JOB"))  # type: ignore[attr-defined]
        started = _update(root)
        if name == "starting" and env.get("JOB") == "tty1":
            blocked_tty1 = any(
                getattr(x, "blocked", None) == ("starting", "tty1") for x in _leaves(root)
            )
            if not blocked_tty1:
                log.append("tty1")
        if started:
            log.append("agent")  # the task runs and ends; its events are unblocked
            if blocked_tty1:
                log.append("tty1")
                blocked_tty1 = False
            for leaf in _leaves(root):
                leaf.value = False
            _update(root)
    return log


LO = ("net-device-up", {"IFACE": "lo"})
ETH0 = ("net-device-up", {"IFACE": "eth0"})
NETWORKING = ("stopped", {"JOB": "networking"})
RC2 = ("stopped", {"JOB": "rc", "RUNLEVEL": "2"})
TTY1 = ("starting", {"JOB": "tty1"})


def test_the_job_is_upstart_0_6_5_syntax() -> None:
    job = JOB.read_text()
    lines = [ln for ln in job.splitlines() if ln.strip() and not ln.startswith("#")]
    starts = {ln.split()[0] for ln in lines if not ln[0].isspace()}
    assert starts <= STANZAS_0_6_5, starts - STANZAS_0_6_5
    assert "console output" in job and "\ntask\n" in job
    assert "static-network-up" not in job, "ifupdown emits it only after lucid (§15)"
    parse_start_on(job)


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        # DHCP bound before the runlevel: the agent at `starting tty1`, the getty after it
        ([LO, ETH0, NETWORKING, RC2, TTY1], ["up:eth0", "agent", "tty1"]),
        # a slow lease: tty1 waits for the agent, which waits for eth0
        ([LO, NETWORKING, RC2, TTY1, ETH0], ["up:eth0", "agent", "tty1"]),
    ],
)
def test_the_agent_starts_after_the_network_and_before_the_getty(
    order: list[tuple[str, dict[str, str]]], expected: list[str]
) -> None:
    assert boot(JOB.read_text(), order) == expected


def test_the_model_holds_the_old_job_to_its_defect() -> None:
    """The job before the fix (`start on starting tty1`) starts the agent before a slow lease."""
    old = "start on starting tty1\ntask\n"
    assert boot(old, [LO, NETWORKING, RC2, TTY1, ETH0]) == ["agent", "tty1", "up:eth0"]
    new = JOB.read_text()
    # with the fix nothing runs on tty1 before eth0 is up
    assert boot(new, [LO, NETWORKING, RC2, TTY1]) == []
