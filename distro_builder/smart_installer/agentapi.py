"""The agent's API: plain `key='value'` text that lucid's sh and wget can speak.

    POST /agent/v1/register              Authorization: Bearer <enrolment token>; body: inventory
         -> node_id='7' node_token='...' poll_seconds='5'
    GET  /agent/v1/nodes/<id>/assignment Authorization: Bearer <node token>
         -> state='unassigned'|'waiting'|'ready' [roles='...'] [reason='...']
            [address_wanted='eth0'] (the network node: the controller waits for its address)
    GET  /agent/v1/nodes/<id>/answers    -> the node's answers-file lines (its own only; a
                                         `# <key>: derived` comment names each the service
                                         filled in) | 409 state='waiting' reason='...' (the
                                         controller, until the network node's address is known)
    POST /agent/v1/nodes/<id>/inventory  body: inventory (a node installed over the network,
                                         which never registered) -> inventory='stored'
    POST /agent/v1/nodes/<id>/progress   body: the agent's STACKOPS lines -> lines='N'
                                         (STACKOPS-LOG lines with a failure: its log's tail)
    GET  /agent/v1/nodes/<id>/retry      a failed node's agent: retry='yes' (the admin asked;
                                         once) | 'no'
    POST /agent/v1/nodes/<id>/credentials body: nova.zip (the controller, after its admin
                                         step) -> credentials='N' (bytes kept)

Errors are 4xx with `error='...'` (and `hint='...'`) lines.
"""

from __future__ import annotations

import re

from distro_builder.smart_installer import cloud, textfmt
from distro_builder.smart_installer.errors import Waiting
from distro_builder.smart_installer.http import Request, Response, Route, route
from distro_builder.smart_installer.store import Store

POLL_SECONDS = 5
MAX_BODY = 16 * 1024
_CREDENTIALS_RE = re.compile(r"/agent/v1/nodes/[^/]+/credentials")


def body_limit(path: str) -> int:
    """The largest request body taken on `path`: nova.zip is bigger than progress lines."""
    return cloud.MAX_CREDENTIALS if _CREDENTIALS_RE.fullmatch(path) else MAX_BODY


def routes(store: Store) -> list[Route]:
    def register(req: Request) -> Response:
        pairs = textfmt.parse(req.text())
        node_id, token = store.register(req.bearer() or "", pairs)
        return Response.text(registration(node_id, token), 201)

    def assignment(req: Request) -> Response:
        return Response.text(textfmt.render(store.poll(req.params["node"], req.bearer())))

    def answers(req: Request) -> Response:
        try:
            pairs, derived = store.answers(req.params["node"], req.bearer())
        except Waiting as e:
            body = [("state", "waiting"), ("reason", str(e)), ("error", str(e))]
            return Response.text(textfmt.render(body), e.status)
        header = "# StackOps answers from the Smart Installer (POSIX sh quoting)\n"
        for key, d in derived.items():
            header += (
                f"# {key}: derived (the address node {d['node']}, {d['hostname']}, reported on "
                f"{d['interface']})\n"
            )
        return Response.text(header + textfmt.render(pairs))

    def inventory(req: Request) -> Response:
        store.report_inventory(req.params["node"], req.bearer(), textfmt.parse(req.text()))
        return Response.text(textfmt.render([("inventory", "stored")]))

    def progress(req: Request) -> Response:
        n = store.report(req.params["node"], req.bearer(), req.text())
        return Response.text(textfmt.render([("lines", str(n))]))

    def retry(req: Request) -> Response:
        return Response.text(textfmt.render(store.retry_poll(req.params["node"], req.bearer())))

    def credentials(req: Request) -> Response:
        n = store.store_credentials(req.params["node"], req.bearer(), req.body)
        return Response.text(textfmt.render([("credentials", str(n))]))

    return [
        route("POST", "/agent/v1/register", register),
        route("GET", "/agent/v1/nodes/<node>/retry", retry),
        route("POST", "/agent/v1/nodes/<node>/credentials", credentials),
        route("GET", "/agent/v1/nodes/<node>/assignment", assignment),
        route("GET", "/agent/v1/nodes/<node>/answers", answers),
        route("POST", "/agent/v1/nodes/<node>/inventory", inventory),
        route("POST", "/agent/v1/nodes/<node>/progress", progress),
    ]


def registration(node_id: int, token: str) -> str:
    """What a registered node keeps (the client's state file `node`): its id, its token, how
    often to poll. Also what a network install's late command gets (netboot.py)."""
    return textfmt.render(
        [("node_id", str(node_id)), ("node_token", token), ("poll_seconds", str(POLL_SECONDS))]
    )


def error_body(message: str, hint: str | None) -> str:
    pairs = [("error", " ".join(message.split()))]
    if hint:
        pairs.append(("hint", " ".join(hint.split())))
    return textfmt.render(pairs)
