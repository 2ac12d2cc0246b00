"""Validation of user-supplied names: nothing is ever written outside the root."""

from __future__ import annotations

import re

_FORBIDDEN = ("\x00", "\\")
_SEGMENT_OK = re.compile(r"^[^\x00-\x1f/\\]+$")


def check_name(value: object, what: str, *, allow_slash: bool = False) -> str:
    """Return ``value`` if it is a safe relative name, else raise ``ValueError``.

    ``what`` names the argument in the message (``"experiment name"``). With ``allow_slash``
    the name may have several ``/``-separated parts (namespaces, file names in folders);
    each part must still be non-empty and not ``.`` or ``..``.
    """
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, got {type(value).__name__} ({value!r})")
    if not value or not value.strip():
        raise ValueError(f"{what} must not be empty; give a short name such as 'baseline'")
    if value.startswith("/"):
        raise ValueError(f"{what} {value!r} is absolute; give a path relative to the root")
    for bad in _FORBIDDEN:
        if bad in value:
            raise ValueError(f"{what} {value!r} contains {bad!r}; use letters, digits, '-', '_', '.'")
    parts = value.split("/")
    if "/" in value and not allow_slash:
        raise ValueError(f"{what} {value!r} contains '/'; path separators are not allowed here")
    for part in parts:
        if part in ("", ".", ".."):
            raise ValueError(
                f"{what} {value!r} has an empty, '.' or '..' part; "
                "each '/'-separated part must be a plain name"
            )
        if not _SEGMENT_OK.match(part):
            raise ValueError(f"{what} {value!r} contains control characters; use printable names")
    return value
