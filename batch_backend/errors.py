"""Errors users can read: one exception type per failure kind.

Each maps once to an HTTP status (in the API layer) and once to a CLI message
and exit code (in ``cli.common``); nothing else catches them piecemeal.
"""


class BatchError(Exception):
    """Base of every expected failure; ``str(e)`` is the user-facing message."""

    status = 500
    code = "error"

    def __init__(self, message, **details):
        super().__init__(message)
        self.message = message
        self.details = details


class InvalidRequest(BatchError):
    """The request is malformed or asks for something impossible (HTTP 400)."""

    status = 400
    code = "invalid_request"


class AuthenticationFailed(BatchError):
    """The caller could not be identified (HTTP 401)."""

    status = 401
    code = "unauthenticated"


class PermissionDenied(BatchError):
    """The caller may not do this (HTTP 403)."""

    status = 403
    code = "permission_denied"


class NotFound(BatchError):
    """Unknown job, node or partition (HTTP 404)."""

    status = 404
    code = "not_found"


class Conflict(BatchError):
    """The object is in a state that forbids the change (HTTP 409)."""

    status = 409
    code = "conflict"


class AccountingUnavailable(BatchError):
    """The accounting database does not answer (HTTP 503); sacct says so, as Slurm's does."""

    status = 503
    code = "accounting_unavailable"
