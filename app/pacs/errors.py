"""PACS errors in words: which server, what was being done, and why it failed.

``PacsError`` subclasses ``CliError`` so that every caller already catching the user-error list
(CLI, batch, viewer workers) prints it as one line instead of a traceback.
"""

from __future__ import annotations

import json

from app.errors import CliError


class PacsError(CliError):
    """A PACS request failed for a reason the user can act on (server, credentials, study)."""


class PacsCancelled(PacsError):
    """The user cancelled a retrieve; what arrived stays in the cache for the next attempt."""


_HTTP_REASONS = {
    401: "the server refused the user name or password (401 Unauthorized)",
    403: "the user may not do this (403 Forbidden)",
    404: "not found on the server (404)",
    413: "the server refused the upload as too large (413)",
    500: "the server failed (500 Internal Server Error)",
    503: "the server is unavailable (503)",
}


def describe(exc: BaseException, server: str, what: str) -> PacsError:
    """One ``PacsError`` for a ``requests``/decoding failure while doing ``what`` on ``server``."""
    if isinstance(exc, PacsError):
        return exc
    import requests  # here, so the viewer's menu can import this module cheaply

    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        code = exc.response.status_code
        reason = _HTTP_REASONS.get(code, f"HTTP {code} {exc.response.reason or ''}".strip())
        return PacsError(f"{server}: {what}: {reason}")
    if isinstance(exc, requests.Timeout):
        return PacsError(f"{server}: {what}: the server did not answer in time")
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return PacsError(f"{server}: {what}: the connection dropped during the transfer")
    if isinstance(exc, requests.ConnectionError):
        return PacsError(
            f"{server}: {what}: cannot connect (is the server running and the URL right?)"
        )
    if isinstance(exc, json.JSONDecodeError | requests.exceptions.JSONDecodeError):
        return PacsError(f"{server}: {what}: the server answered with malformed JSON")
    if isinstance(exc, requests.RequestException):
        return PacsError(f"{server}: {what}: {type(exc).__name__}")
    return PacsError(f"{server}: {what}: malformed answer ({exc})")
