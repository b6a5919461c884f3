"""Where a PACS password comes from: ``OSTEOVIEW_PACS_PASSWORD``, the system keyring (only a real,
encrypted one), or a prompt. Nothing here ever writes a password to a file.
"""

from __future__ import annotations

import getpass
import os
import sys

from app.pacs.errors import PacsError

PASSWORD_ENV = "OSTEOVIEW_PACS_PASSWORD"
_SERVICE = "osteoview-pacs"


def _secure_keyring():
    """The system keyring when it is a real one (Secret Service, macOS Keychain, Windows), else
    None: the 'fail' backend and plain-text file backends (keyrings.alt) are refused, because a
    password there would sit on disk readable as text."""
    try:
        import keyring
        from keyring.backends import fail
    except ImportError:
        return None
    try:
        backend = keyring.get_keyring()
    except Exception:  # a broken keyring configuration is "no keyring", not a crash
        return None
    name = type(backend).__name__.lower()
    if isinstance(backend, fail.Keyring) or "plaintext" in name or "null" in name:
        return None
    if getattr(backend, "priority", 0) <= 0:
        return None
    return backend


def keyring_available() -> bool:
    return _secure_keyring() is not None


def _service(server: str) -> str:
    return f"{_SERVICE}:{server.rstrip('/')}"


def password_for(server: str, user: str, ask: bool = True) -> str:
    """The password of ``user`` at ``server``: the environment variable, else the keyring, else a
    prompt on the terminal (``ask``). PacsError when none of them can give one."""
    env = os.environ.get(PASSWORD_ENV)
    if env:
        return env
    backend = _secure_keyring()
    if backend is not None:
        try:
            stored = backend.get_password(_service(server), user)
        except Exception:  # a locked or unreachable keyring: fall through to the prompt
            stored = None
        if stored:
            return stored
    if ask and sys.stdin is not None and sys.stdin.isatty():
        return getpass.getpass(f"password for {user} at {server}: ")
    raise PacsError(
        f"{server}: no password for {user}: set {PASSWORD_ENV}, store it in the system keyring, "
        "or run in a terminal to be asked"
    )


def remember_password(server: str, user: str, password: str) -> bool:
    """Keep the password in the system keyring; False (nothing stored anywhere) without one."""
    backend = _secure_keyring()
    if backend is None:
        return False
    backend.set_password(_service(server), user, password)
    return True


def forget_password(server: str, user: str) -> None:
    backend = _secure_keyring()
    if backend is not None:
        try:
            backend.delete_password(_service(server), user)
        except Exception:  # nothing stored is the state we want
            pass
