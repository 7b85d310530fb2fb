"""The local stand-in for the attachments bucket: the form POST an upload
URL names (/_uploads, multipart, the file last, as S3 takes it) and the
GET a download URL names (/_files/<key>). The rules (signature, expiry,
key, exact Content-Type, size) are the app's LocalStorage's; this only
moves bytes between aiohttp and it, in chunks, never a whole file in memory."""
from __future__ import annotations

import asyncio
import json
from typing import Any, Dict, Optional

from aiohttp import BodyPartReader, web

from chalicelib import wiring
from chalicelib.storage import FILES_PATH, UPLOAD_PATH, LocalStorage, Refused

from .threads import in_thread

CHUNK = 64 * 1024


class _PartReader:
    """A file-like read() over an aiohttp body part, for a worker thread."""

    def __init__(self, part: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._part = part
        self._loop = loop

    def read(self, size: int = CHUNK) -> bytes:
        return asyncio.run_coroutine_threadsafe(self._part.read_chunk(size), self._loop).result()


def _store() -> Optional[LocalStorage]:
    return wiring.service().attaching.local_store


def _refused(status: int, reason: str) -> web.Response:
    # S3 answers an XML error; the reason is what a developer needs here.
    return web.Response(status=status, text=json.dumps({"Code": "UploadRefused", "Message": reason}),
                        content_type="application/json", headers={"X-Content-Type-Options": "nosniff"})


async def upload(request: web.Request) -> web.StreamResponse:
    store = await in_thread(_store)
    if store is None:
        return _refused(404, "this server stores no files locally")
    if not request.content_type.startswith("multipart/form-data"):
        return _refused(400, "an upload is a multipart/form-data POST")
    reader = await request.multipart()
    fields: Dict[str, str] = {}
    while True:
        part = await reader.next()
        if part is None:
            return _refused(400, "the form has no file field")
        if not isinstance(part, BodyPartReader):
            return _refused(400, "a form field may not be a multipart body itself")
        if part.name == "file":
            break
        fields[part.name or ""] = (await part.read(decode=True)).decode("utf-8", "replace")[:4096]
    try:
        await in_thread(store.accept, fields, _PartReader(part, asyncio.get_running_loop()))
    except Refused as refused:
        return _refused(refused.status, refused.reason)
    return web.Response(status=204)


async def download(request: web.Request) -> web.StreamResponse:
    store = await in_thread(_store)
    if store is None:
        return _refused(404, "this server stores no files locally")
    try:
        body, headers = await in_thread(store.opened, request.match_info["key"], dict(request.query))
    except Refused as refused:
        return _refused(refused.status, refused.reason)
    response = web.StreamResponse(headers=headers)
    await response.prepare(request)
    try:
        while chunk := await in_thread(body.read, CHUNK):
            await response.write(chunk)
    finally:
        body.close()
    await response.write_eof()
    return response


def routes(webapp: web.Application) -> None:
    webapp.router.add_post(UPLOAD_PATH, upload)
    webapp.router.add_get(FILES_PATH + "{key:.+}", download)
