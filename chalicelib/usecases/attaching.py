"""Attachments: an upload form for a declared file, the check that what was
stored is what was declared before a send may carry it, download URLs for
those whose stream holds the message, and deleting the files with their
message or, never attached, after a day."""
from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ..contract import DOWNLOAD_URL_SECONDS, UPLOAD_URL_SECONDS
from ..db import MissingReference, Tx
from ..errors import (
    AttachmentNotFound,
    AttachmentNotReady,
    BadRequest,
    PayloadTooLarge,
    ServiceUnavailable,
    UserNotFound,
)
from ..repositories import Attachment, Attachments, upload_key
from ..storage import LocalStorage, Storage
from .deps import Deps
from .results import DownloadUrl, UploadUrl

log = logging.getLogger(__name__)

# An upload may be attached for a day after it was asked for; the purge
# deletes those never attached an hour later, so the two never meet.
ATTACHABLE = timedelta(days=1)
SWEPT_AFTER = ATTACHABLE + timedelta(hours=1)


class Attaching:
    def __init__(self, deps: Deps) -> None:
        self._deps = deps

    def upload_url(self, *, caller: Optional[str], user_id: str, content_type: str, size: int,
                   file_name: Optional[str]) -> UploadUrl:
        deps = self._deps
        deps.act_as(caller, "user_id", user_id)
        storage = self._storage()
        if content_type not in deps.attachment_types:
            raise BadRequest("content_type", f"{content_type} is not a type this server accepts: "
                                             + ", ".join(sorted(deps.attachment_types)))
        if size > deps.max_attachment_bytes:
            raise PayloadTooLarge(f"size: at most {deps.max_attachment_bytes} bytes (MAX_ATTACHMENT_BYTES)")
        deps.limit(deps.limits.writes, user_id)
        attachment_id = str(uuid.uuid4())
        def work(tx: Tx) -> None:
            try:
                Attachments(tx).add(attachment_id=attachment_id, uploader_id=user_id, content_type=content_type,
                                    size=size, file_name=file_name, created_at=deps.now())
            except MissingReference:  # AUTH_MODE=none: any id may be given
                raise UserNotFound(f"user_id: no user {user_id}") from None

        deps.db.run(work, write=True)
        url, fields = storage.upload_form(key=upload_key(user_id, attachment_id), content_type=content_type,
                                          max_bytes=size, expires_in=UPLOAD_URL_SECONDS)
        return UploadUrl(attachment_id, {"url": url, "fields": fields}, UPLOAD_URL_SECONDS)

    def download_url(self, *, caller: Optional[str], user_id: str, attachment_id: str) -> DownloadUrl:
        deps = self._deps
        deps.act_as(caller, "user_id", user_id)
        storage = self._storage()
        deps.limit(deps.limits.reads, user_id)
        found = deps.db.run(lambda tx: Attachments(tx).held(attachment_id=attachment_id, user_id=user_id),
                            write=False)
        if found is None:
            raise AttachmentNotFound(f"attachment_id: no message you hold carries {attachment_id}")
        url = storage.download_url(key=found.key, content_type=found.content_type, file_name=found.file_name,
                                   expires_in=DOWNLOAD_URL_SECONDS)
        return DownloadUrl(url, DOWNLOAD_URL_SECONDS)

    def ready(self, *, uploader_id: str, attachment_ids: Sequence[str]) -> Tuple[Dict[str, Any], ...]:
        """The attachments as a message carries them, in the order given, if
        each is the uploader's, not attached yet, and stored with its
        declared type and within its declared size (asked of the store
        itself: a presigned policy alone is not trusted). Each file is first
        copied where no upload form writes, and the copy is what is checked
        and served. Else 409."""
        if not attachment_ids:
            return ()
        storage = self._storage()
        rows = {a.attachment_id: a for a in self._deps.db.run(
            lambda tx: Attachments(tx).of_ids(attachment_ids=attachment_ids), write=False)}
        carried = []
        for attachment_id in attachment_ids:
            row = rows.get(attachment_id)
            if row is None or row.uploader_id != uploader_id:
                raise AttachmentNotReady(f"attachment_ids: {attachment_id} is not an upload of yours")
            if row.message_id is not None:
                raise AttachmentNotReady(f"attachment_ids: {attachment_id} is already attached to a message")
            stored = storage.seal(upload_key=row.upload_key, key=row.key)
            if stored is None:
                raise AttachmentNotReady(f"attachment_ids: {attachment_id} has not been uploaded")
            if stored.content_type != row.content_type or not 0 < stored.size <= row.size:
                raise AttachmentNotReady(f"attachment_ids: {attachment_id} is not the {row.content_type} file of at"
                                         f" most {row.size} bytes it was declared as")
            carried.append({"attachment_id": attachment_id, "content_type": row.content_type, "size": stored.size,
                            "file_name": row.file_name})
        return tuple(carried)

    def forget(self, attachments: List[Attachment]) -> bool:
        """Delete the files, then their rows; False when the store failed."""
        if not attachments or self._deps.storage is None:
            return True
        try:
            self._deps.storage.delete(keys=[k for a in attachments for k in (a.key, a.upload_key)])
        except Exception as error:  # noqa: BLE001 - the message is gone either way
            log.warning("attachments: deleting %d files failed (%s)", len(attachments), type(error).__name__)
            return False
        ids = [a.attachment_id for a in attachments]
        self._deps.db.run(lambda tx: Attachments(tx).remove(attachment_ids=ids), write=True)
        return True

    @property
    def file_origins(self) -> List[str]:
        """Where browsers upload and download files (the page's CSP allows them)."""
        return [] if self._deps.storage is None else self._deps.storage.origins()

    @property
    def local_store(self) -> Optional[LocalStorage]:
        """The files under data/, for the development server's upload and download endpoints."""
        return self._deps.storage if isinstance(self._deps.storage, LocalStorage) else None

    def _storage(self) -> Storage:
        if self._deps.storage is None:
            raise ServiceUnavailable("attachments are not configured on this server (ATTACHMENTS_BUCKET)")
        return self._deps.storage
