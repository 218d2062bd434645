"""Errors of the Smart Installer: each carries the HTTP status the service answers with."""

from __future__ import annotations

from distro_builder.errors import DistroBuilderError


class InstallerError(DistroBuilderError):
    """A request or operation the service refuses; `status` is its HTTP status code."""

    status = 400
    default_hint = "fix the value named above (README.md: the Smart Installer)"


class BadRequest(InstallerError):
    status = 400


class InvalidFields(BadRequest):
    """Values refused field by field: `fields` maps each key to why (the UI shows each beside
    its input; the API's JSON carries them as "fields")."""

    def __init__(self, fields: dict[str, str], *, hint: str | None = None) -> None:
        super().__init__("; ".join(f"{k}: {why}" for k, why in fields.items()), hint=hint)
        self.fields = dict(fields)


class Unauthorized(InstallerError):
    status = 401
    default_hint = "log in again (POST /api/login), or check the token"


class Forbidden(InstallerError):
    status = 403
    default_hint = "use the token this node received when it registered"


class NotFound(InstallerError):
    status = 404
    default_hint = "list what exists: distro-builder installer deployment list / node list"


class RequestTimeout(InstallerError):
    status = 408
    default_hint = "send the whole request at once"


class Conflict(InstallerError):
    status = 409
    default_hint = "the record's current state does not allow it: look at it and retry"


class Waiting(Conflict):
    """A node must wait for another before it gets its answers (the controller, for the address
    the network node reports): the agent API answers 409 with state='waiting' and the reason."""

    default_hint = "poll until state=ready"


class LengthRequired(InstallerError):
    status = 411
    default_hint = "send the body with a Content-Length header"


class TooLarge(InstallerError):
    status = 413
    default_hint = "send less"


class TooManyRequests(InstallerError):
    """Too many attempts (logins) from one client or for one user: wait `retry_after` seconds."""

    status = 429
    default_hint = "wait and try again"

    def __init__(self, message: str, *, retry_after: int, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.retry_after = retry_after


class DatabaseError(InstallerError):
    """The database cannot be opened or migrated (a setup problem, not a request's)."""

    status = 503
    default_hint = "check --db (sqlite:///PATH or postgresql://...) and that the database is up"


class StorageFull(InstallerError):
    """The disk under the database is full: nothing can be written until space is freed."""

    status = 507
    default_hint = "free space on the disk that holds the database (see /healthz)"
