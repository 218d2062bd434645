"""The admin's JSON API (and the pages of the browser UI, which call it).

Every /api route but login needs an admin session: the `stackops_session` cookie the login sets
(HttpOnly, SameSite=Strict) or `Authorization: Bearer <token>`. Bodies are JSON objects sent as
application/json, which a cross-site form cannot send; with SameSite=Strict that closes CSRF.

    POST /api/login                           {username, password} -> {token}
    POST /api/logout
    GET  /api/whoami
    GET  /api/architectures
    GET  /api/deployments                     POST {name, architecture} -> {deployment, token}
    GET  /api/deployments/<d>                 (secrets masked)
    PUT  /api/deployments/<d>/params          {key: value | null}
    POST /api/deployments/<d>/token           a new enrolment token (the old discs stop working)
    GET  /api/deployments/<d>/nodes[/<n>]
    PUT  /api/deployments/<d>/nodes/<n>/roles {roles: [...], answers: {per-node values}}
    POST /api/deployments/<d>/nodes/<n>/approve|reject   a registration again without the
                                              node's token (a reinstall, or a MAC replayed)
    POST /api/deployments/<d>/nodes/<n>/forget   the node's record, token and events go
    POST /api/deployments/<d>/nodes/<n>/retry    a failed node's agent runs again from the
                                              failed step (it sees it on its next poll)
    POST /api/deployments/<d>/nodes/<n>/reinstall  its next network boot installs it again
    GET  /api/deployments/<d>/cloud           cloud ready? endpoints, admin user, project,
                                              stackops-check's verdict
    GET  /api/deployments/<d>/credentials     nova.zip (the cloud admin's credentials)
    POST /api/deployments/<d>/delete          {confirm: <d>} the deployment and its nodes go
    GET  /api/deployments/<d>/export          deployment.yaml (secrets left out)
"""

from __future__ import annotations

from pathlib import Path

from distro_builder.smart_installer.errors import BadRequest, NotFound, TooManyRequests
from distro_builder.smart_installer.http import SESSION_COOKIE, Request, Response, Route, route
from distro_builder.smart_installer.store import SESSION_SECONDS, Store

MAX_BODY = 64 * 1024
# The UI's files (installer/web/): name -> content type. Nothing else is served.
WEB_FILES = {
    "index.html": "text/html",
    "app.js": "text/javascript",
    "actions.js": "text/javascript",
    "style.css": "text/css",
    "topology.js": "text/javascript",
    "nodes.js": "text/javascript",
}


def _str(data: dict, key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise BadRequest(f"{key} is missing or not a string")
    return value


def routes(store: Store, web_dir: Path) -> list[Route]:
    web = {}
    for name, ctype in WEB_FILES.items():
        web[name] = (web_dir / name).read_bytes(), ctype

    def admin(req: Request) -> str:
        return store.session_admin(req.bearer() or req.cookie(SESSION_COOKIE))

    def static(name: str):
        def serve(req: Request) -> Response:
            body, ctype = web[name]
            return Response(200, body, f"{ctype}; charset=utf-8")

        return serve

    def login(req: Request) -> Response:
        data = req.json()
        try:
            token = store.login(_str(data, "username"), _str(data, "password"), req.client)
        except TooManyRequests as e:
            refused = Response.json({"error": str(e), "hint": e.hint}, 429)
            refused.headers.append(("Retry-After", str(e.retry_after)))
            return refused
        resp = Response.json({"token": token, "expires_in": SESSION_SECONDS})
        resp.headers.append(
            (
                "Set-Cookie",
                f"{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; "
                f"Max-Age={SESSION_SECONDS}",
            )
        )
        return resp

    def logout(req: Request) -> Response:
        token = req.bearer() or req.cookie(SESSION_COOKIE)
        admin(req)
        if req.body or "content-type" in req.headers:
            req.json()  # JSON or nothing, as every API call: a cross-site <form> is refused
        store.logout(token or "")
        resp = Response.json({"ok": True})
        resp.headers.append(("Set-Cookie", f"{SESSION_COOKIE}=; Path=/; Max-Age=0"))
        return resp

    def healthz(req: Request) -> Response:
        problem = store.db.storage_problem()
        if problem:  # what a monitor should page about, not "ok"
            return Response.text(f"error: {problem}\n", 503)
        return Response.text("ok\n")

    def whoami(req: Request) -> Response:
        return Response.json({"username": admin(req)})

    def architectures(req: Request) -> Response:
        admin(req)
        return Response.json(
            [
                {
                    "name": a.name,
                    "shapes": [
                        {"roles": list(n.roles), "min": n.min_count, "max": n.max_count}
                        for n in a.nodes
                    ],
                }
                for a in store.roleset.architectures
            ]
        )

    def deployments(req: Request) -> Response:
        admin(req)
        return Response.json(store.list_deployments())

    def create(req: Request) -> Response:
        admin(req)
        data = req.json()
        dep, token = store.create_deployment(_str(data, "name"), _str(data, "architecture"))
        return Response.json({"deployment": dep, "enrolment_token": token}, 201)

    def show(req: Request) -> Response:
        admin(req)
        return Response.json(store.deployment(req.params["dep"]))

    def params(req: Request) -> Response:
        admin(req)
        return Response.json(store.set_params(req.params["dep"], req.json()))

    def token(req: Request) -> Response:
        admin(req)
        return Response.json({"enrolment_token": store.rotate_token(req.params["dep"])})

    def nodes(req: Request) -> Response:
        admin(req)
        return Response.json(store.nodes(req.params["dep"]))

    def node(req: Request) -> Response:
        admin(req)
        return Response.json(store.node(req.params["dep"], req.params["node"]))

    def assign(req: Request) -> Response:
        admin(req)
        data = req.json()
        roles = data.get("roles")
        if not isinstance(roles, list):
            raise BadRequest("roles must be a list (empty to unassign)")
        wanted = data.get("answers") or {}
        return Response.json(store.assign(req.params["dep"], req.params["node"], roles, wanted))

    def approve(req: Request) -> Response:
        admin(req)
        return Response.json(
            store.approve_reregistration(req.params["dep"], req.params["node"], approve=True)
        )

    def reject(req: Request) -> Response:
        admin(req)
        return Response.json(
            store.approve_reregistration(req.params["dep"], req.params["node"], approve=False)
        )

    def forget(req: Request) -> Response:
        admin(req)
        store.forget_node(req.params["dep"], req.params["node"])
        return Response.json({"forgotten": req.params["node"]})

    def delete(req: Request) -> Response:
        admin(req)
        data = req.json()
        store.delete_deployment(req.params["dep"], str(data.get("confirm") or ""))
        return Response.json({"deleted": req.params["dep"]})

    def retry(req: Request) -> Response:
        admin(req)
        if req.body or "content-type" in req.headers:
            req.json()  # JSON or nothing, as logout: a cross-site <form> is refused
        return Response.json(store.request_retry(req.params["dep"], req.params["node"]))

    def reinstall(req: Request) -> Response:
        admin(req)
        if req.body or "content-type" in req.headers:
            req.json()  # JSON or nothing, as logout: a cross-site <form> is refused
        return Response.json(store.request_reinstall(req.params["dep"], req.params["node"]))

    def cloud(req: Request) -> Response:
        admin(req)
        return Response.json(store.cloud(req.params["dep"]))

    def credentials(req: Request) -> Response:
        admin(req)  # the admin's session only: the zip holds the cloud admin's secret key
        data = store.credentials(req.params["dep"])
        resp = Response(200, data, "application/zip")
        resp.headers.append(("Content-Disposition", 'attachment; filename="nova.zip"'))
        resp.headers.append(("Cache-Control", "no-store"))
        return resp

    def export(req: Request) -> Response:
        admin(req)
        text = store.export(req.params["dep"])
        resp = Response.text(text, content_type="application/yaml")
        resp.headers.append(("Content-Disposition", 'attachment; filename="deployment.yaml"'))
        return resp

    def not_found(req: Request) -> Response:
        raise NotFound(f"no such path {req.path[:80]!r}")

    return [
        route("GET", "/", static("index.html")),
        route("GET", "/static/app.js", static("app.js")),
        route("GET", "/static/style.css", static("style.css")),
        route("GET", "/static/actions.js", static("actions.js")),
        route("GET", "/static/topology.js", static("topology.js")),
        route("GET", "/static/nodes.js", static("nodes.js")),
        route("GET", "/healthz", healthz),
        route("POST", "/api/login", login),
        route("POST", "/api/logout", logout),
        route("GET", "/api/whoami", whoami),
        route("GET", "/api/architectures", architectures),
        route("GET", "/api/deployments", deployments),
        route("POST", "/api/deployments", create),
        route("GET", "/api/deployments/<dep>", show),
        route("PUT", "/api/deployments/<dep>/params", params),
        route("POST", "/api/deployments/<dep>/token", token),
        route("GET", "/api/deployments/<dep>/nodes", nodes),
        route("GET", "/api/deployments/<dep>/nodes/<node>", node),
        route("PUT", "/api/deployments/<dep>/nodes/<node>/roles", assign),
        route("POST", "/api/deployments/<dep>/nodes/<node>/approve", approve),
        route("POST", "/api/deployments/<dep>/nodes/<node>/reject", reject),
        route("POST", "/api/deployments/<dep>/nodes/<node>/forget", forget),
        route("POST", "/api/deployments/<dep>/nodes/<node>/retry", retry),
        route("POST", "/api/deployments/<dep>/nodes/<node>/reinstall", reinstall),
        route("GET", "/api/deployments/<dep>/cloud", cloud),
        route("GET", "/api/deployments/<dep>/credentials", credentials),
        route("POST", "/api/deployments/<dep>/delete", delete),
        route("GET", "/api/deployments/<dep>/export", export),
        route("GET", "/api/.*", not_found),
    ]
