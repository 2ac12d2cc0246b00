"""``/api/files`` (the files table) and ``/api/file`` (bytes, with range requests).

Bytes are found through the run's manifests: the request names a file path (and optionally
a version, and the rank where several ranks saved one name), the manifest record names a
sha256, and the bytes are the content-addressed blob of that digest under the root. A request path is never joined to a storage path, so no
spelling of ``..`` can reach outside the root. Responses carry the recorded media type; the
browser may show images, video and audio inline, but every file response is sandboxed
(``Content-Security-Policy: sandbox``) so that a saved HTML or SVG file cannot run script
in the dashboard's origin.
"""

from __future__ import annotations

import re
from dataclasses import asdict
from typing import Any, Iterator
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from ..cas import ContentStore
from ..files.kinds import _compressed, media_type_of
from .api import Api, arg_int, arg_str
from .paths import check_sha256

CHUNK = 256 << 10
FILE_CSP = "sandbox; default-src 'none'; img-src 'self' data:; media-src 'self'; style-src 'unsafe-inline'"
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def served_type(name: str, recorded: str | None) -> str:
    """The media type a file is listed and served with: its record's, except for a compressed
    name (``table.csv.gz``), which is its compression's (``media_type_of``: application/gzip)
    whatever its record says - distlog before ad072c2 recorded the content's (text/csv), and
    the page would preview the gzip bytes as text."""
    if _compressed(name):
        return media_type_of(name)
    return recorded or "application/octet-stream"


def files(api: Api, request: Request) -> dict[str, Any]:
    run = api.run(request)
    recs = run.files.records()
    latest: dict[str, Any] = {}
    for r in recs:
        if r.path not in latest or (r.version, -r.rank) > (latest[r.path].version, -latest[r.path].rank):
            latest[r.path] = r
    return {"files": [{**asdict(r), "media_type": served_type(r.name, r.media_type)} for r in recs],
            "latest": sorted(latest),
            "count": len(latest)}


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``(first, last)`` inclusive of a single ``bytes=`` range, None for the whole file;
    ``ValueError`` when it cannot be satisfied."""
    if not header:
        return None
    m = _RANGE.match(header.strip())
    if not m or (not m.group(1) and not m.group(2)):
        return None  # several ranges or another unit: send the whole file (allowed by RFC 9110)
    if not m.group(1):  # suffix: the last N bytes
        n = int(m.group(2))
        if n == 0:
            raise ValueError("empty suffix range")
        return max(0, size - n), size - 1
    first = int(m.group(1))
    last = int(m.group(2)) if m.group(2) else size - 1
    if first >= size or last < first:
        raise ValueError(f"range {header!r} outside 0..{size - 1}")
    return first, min(last, size - 1)


def file_bytes(api: Api, request: Request) -> Response:
    run = api.run(request)
    path = arg_str(request, "path")
    rec = run.files.find(path, arg_int(request, "version", None, 0), rank=arg_int(request, "rank", None, 0))
    sha = check_sha256(rec.sha256)
    root = run.root_storage()
    size = int(rec.size)
    headers = {"Accept-Ranges": "bytes", "Content-Security-Policy": FILE_CSP,
               "X-Content-Type-Options": "nosniff", "Cache-Control": "private, max-age=3600",
               "ETag": f'"{sha}"'}
    filename = rec.name.rsplit("/", 1)[-1]
    disposition = "attachment" if request.query_params.get("download") in ("1", "true") else "inline"
    headers["Content-Disposition"] = f"{disposition}; filename*=UTF-8''{quote(filename)}"
    media = served_type(rec.name, rec.media_type)
    if media.startswith("text/") and "charset" not in media:
        media += "; charset=utf-8"
    try:
        rng = parse_range(request.headers.get("range"), size)
    except ValueError:
        return Response(status_code=416, headers={"Content-Range": f"bytes */{size}"})
    first, last = rng if rng else (0, size - 1)
    length = max(0, last - first + 1)
    if rng:
        headers["Content-Range"] = f"bytes {first}-{last}/{size}"
    if request.method == "HEAD" or length == 0:
        headers["Content-Length"] = str(length)
        return Response(b"", status_code=206 if rng else 200, headers=headers, media_type=media)
    # FileNotFoundError -> 404 when the blob is gone; a blob not the size its record says
    # (cut short) -> DamagedRecord, said (it was served as a download that broke off)
    f = ContentStore(root).open_record(rec)

    def body() -> Iterator[bytes]:
        with f:
            f.seek(first)
            left = length
            while left > 0:
                chunk = f.read(min(CHUNK, left))
                if not chunk:
                    break
                left -= len(chunk)
                yield chunk

    headers["Content-Length"] = str(length)
    return StreamingResponse(body(), status_code=206 if rng else 200, headers=headers, media_type=media)

