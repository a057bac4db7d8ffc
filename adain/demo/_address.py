"""Where the web demo listens, checked before anything loads: a host that does not resolve or is not this
machine's, and a port that is taken, are refused in one line within seconds (Gradio would retry a bad host
forever and answer a busy port with advice about its own API)."""

from __future__ import annotations

import errno
import socket
import threading

from ..errors import InputError

RESOLVE_TIMEOUT_S = 5.0
"""Seconds a host name may take to resolve (``getaddrinfo`` has no timeout of its own)."""


def check_address(host: str, port: int | None, *, timeout: float = RESOLVE_TIMEOUT_S) -> None:
    """Refuse, before the model loads, an address the demo's server could not listen on.

    Arguments:
        host: a host name or IP address of this machine (``"127.0.0.1"``, ``"0.0.0.0"``, ``"localhost"``).
        port: a TCP port from 1 to 65535, or ``None`` (Gradio takes the first free one from 7860: not checked).
        timeout: seconds the name may take to resolve.

    Raises:
        InputError: ``host: ...`` for a name that does not resolve (or not within ``timeout``) or an address
            that is not this machine's; ``port: ...`` for a port that is taken or not allowed.
    """
    found: list = []

    def resolve() -> None:
        try:
            found.append(socket.getaddrinfo(host, port or 0, type=socket.SOCK_STREAM))
        except (OSError, UnicodeError) as exc:
            found.append(exc)

    worker = threading.Thread(target=resolve, name="adain-resolve", daemon=True)  # abandoned on a timeout
    worker.start()
    worker.join(timeout)
    if not found:
        raise InputError(f"host: {host!r} did not resolve within {timeout:g} s; give an address of this machine")
    if isinstance(found[0], Exception):
        reason = getattr(found[0], "strerror", None) or str(found[0])
        raise InputError(f"host: cannot resolve {host!r} ({reason}); give an address of this machine")
    if port is None:
        return
    family, kind, proto, _, address = found[0][0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server does: TIME_WAIT is no obstacle
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRNOTAVAIL:
                raise InputError(f"host: {host!r} is not an address of this machine") from None
            raise InputError(
                f"port: {port} on {host} cannot be used ({exc.strerror or exc}); choose another port, or none "
                "for the first free one from 7860"
            ) from None
