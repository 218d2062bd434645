"""Errors of the Smart Installer: each carries the HTTP status the service answers with."""

from __future__ import annotations

from distro_builder.errors import DistroBuilderError


class InstallerError(DistroBuilderError):
    """A request or operation the service refuses; `status` is its HTTP status code."""

    status = 400


class BadRequest(InstallerError):
    status = 400


class Unauthorized(InstallerError):
    status = 401


class Forbidden(InstallerError):
    status = 403


class NotFound(InstallerError):
    status = 404


class Conflict(InstallerError):
    status = 409


class TooLarge(InstallerError):
    status = 413


class DatabaseError(InstallerError):
    """The database cannot be opened or migrated (a setup problem, not a request's)."""

    status = 503
