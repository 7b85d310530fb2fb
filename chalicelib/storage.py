"""Where attachments live: S3 deployed (boto3: presigned POST and GET,
CopyObject, HeadObject, DeleteObjects), files under data/ on `make run`.
Files never pass through the API: a client uploads with the form
/upload_url hands out and downloads from the URL /download_url hands out.
An upload lands under attachments/uploads/; a send copies it under
attachments/files/, where no form can write, and only that copy is ever
served.

The local store answers the same flow with the development server's own
endpoints (devserver/uploads.py): a form POST to /_uploads whose fields are
signed as S3 signs its policy (the key, the exact Content-Type and a size
limit, enforced while the body is read), and GET /_files/<key> with a
signature and an expiry, served with the same headers as S3's answer. Its
signing key is made by the process, so its URLs end with it.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Dict, List, Mapping, Optional, Protocol, Sequence, Tuple
from urllib.parse import quote, urlencode, urlsplit

from .settings import private_dir

UPLOAD_PATH = "/_uploads"
FILES_PATH = "/_files/"


@dataclass(frozen=True)
class Stored:
    size: int
    content_type: str


def disposition(content_type: str, file_name: Optional[str]) -> str:
    """Images are shown inline; everything else is downloaded, never rendered by the browser."""
    kind = "inline" if content_type.startswith("image/") else "attachment"
    name = file_name or "attachment"
    ascii_name = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in name)
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"


class Storage(Protocol):
    def upload_form(self, *, key: str, content_type: str, max_bytes: int,
                    expires_in: int) -> Tuple[str, Dict[str, str]]:
        """(url, form fields) of a POST that stores one file at `key`."""

    def seal(self, *, upload_key: str, key: str) -> Optional[Stored]:
        """Copy what was uploaded at `upload_key` to `key`, where no upload
        form can write, and answer the copy's size and type (None when
        nothing was uploaded): what was checked is what is served."""

    def download_url(self, *, key: str, content_type: str, file_name: Optional[str], expires_in: int) -> str:
        """A GET URL for the object, good for `expires_in` seconds."""

    def delete(self, *, keys: Sequence[str]) -> None:
        """Delete these objects (missing ones are deleted enough)."""

    def origins(self) -> List[str]:
        """The origins its upload and download URLs have (none: the API's own)."""


class S3Storage:
    """One bucket. The client is made once, lazily (boto3 costs ~100 ms to
    import), with explicit timeouts and no retries of its own."""

    def __init__(self, bucket: str, *, endpoint_url: Optional[str] = None, region: Optional[str] = None,
                 timeout_seconds: float = 2.0) -> None:
        self._bucket = bucket
        self._endpoint = endpoint_url
        self._region = region
        self._timeout = timeout_seconds
        self._client: Any = None
        self._lock = threading.Lock()
        self._origins: Optional[List[str]] = None

    def _s3(self) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    import boto3
                    from botocore.config import Config

                    self._client = boto3.client(
                        "s3", endpoint_url=self._endpoint, region_name=self._region,
                        config=Config(connect_timeout=self._timeout, read_timeout=self._timeout,
                                      retries={"max_attempts": 2, "mode": "standard"}, signature_version="s3v4",
                                      # The bucket's regional name: the global one redirects a new bucket's requests.
                                      s3={"addressing_style": "virtual" if self._endpoint is None else "path"}))
        return self._client

    def upload_form(self, *, key: str, content_type: str, max_bytes: int,
                    expires_in: int) -> Tuple[str, Dict[str, str]]:
        post = self._s3().generate_presigned_post(
            Bucket=self._bucket, Key=key, Fields={"Content-Type": content_type},
            Conditions=[{"Content-Type": content_type}, ["content-length-range", 1, max_bytes]],
            ExpiresIn=expires_in)
        return post["url"], dict(post["fields"])

    def origins(self) -> List[str]:
        """Worked out from URLs presigned here (no request is made): what
        boto3 addresses for this bucket and region, virtual-hosted or path style."""
        if self._origins is None:
            post = self._s3().generate_presigned_post(Bucket=self._bucket, Key="attachments/probe", ExpiresIn=60)
            get = self._s3().generate_presigned_url("get_object", Params={"Bucket": self._bucket,
                                                                          "Key": "attachments/probe"}, ExpiresIn=60)
            self._origins = sorted({_origin(post["url"]), _origin(get)})
        return self._origins

    def seal(self, *, upload_key: str, key: str) -> Optional[Stored]:
        from botocore.exceptions import ClientError

        try:  # within S3: no byte passes through the Lambda
            self._s3().copy_object(Bucket=self._bucket, Key=key, MetadataDirective="COPY",
                                   CopySource={"Bucket": self._bucket, "Key": upload_key})
            answer = self._s3().head_object(Bucket=self._bucket, Key=key)
        except ClientError as error:
            # Without s3:ListBucket (the role has none) a missing key is a 403, not a 404.
            if error.response.get("Error", {}).get("Code") in ("404", "403", "NoSuchKey", "NotFound", "AccessDenied"):
                return None
            raise
        return Stored(int(answer["ContentLength"]), answer.get("ContentType", ""))

    def download_url(self, *, key: str, content_type: str, file_name: Optional[str], expires_in: int) -> str:
        return self._s3().generate_presigned_url(
            "get_object", ExpiresIn=expires_in,
            Params={"Bucket": self._bucket, "Key": key, "ResponseContentType": content_type,
                    "ResponseContentDisposition": disposition(content_type, file_name)})

    def delete(self, *, keys: Sequence[str]) -> None:
        for start in range(0, len(keys), 1000):  # DeleteObjects takes 1,000 keys
            chunk = keys[start:start + 1000]
            if chunk:
                self._s3().delete_objects(Bucket=self._bucket,
                                          Delete={"Objects": [{"Key": k} for k in chunk], "Quiet": True})


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class Refused(Exception):
    """A local upload or download the signature, the expiry or the policy refuses."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class LocalStorage:
    """Files under `root` (data/attachments), each with its Content-Type
    beside it; URLs on the API's own origin, signed with a key of this process."""

    CHUNK = 64 * 1024

    def __init__(self, root: Path) -> None:
        self._root = root
        self._key = secrets.token_bytes(32)

    # ----------------------------------------------------------- what the app calls

    def upload_form(self, *, key: str, content_type: str, max_bytes: int,
                    expires_in: int) -> Tuple[str, Dict[str, str]]:
        policy = base64.urlsafe_b64encode(json.dumps(
            {"key": key, "content_type": content_type, "max_bytes": max_bytes,
             "expires": int(time.time()) + expires_in}, separators=(",", ":")).encode()).decode()
        return UPLOAD_PATH, {"key": key, "Content-Type": content_type, "policy": policy,
                             "signature": self._sign(policy)}

    def seal(self, *, upload_key: str, key: str) -> Optional[Stored]:
        source, target = self._path(upload_key), self._path(key)
        try:
            content_type = Path(f"{source}.type").read_text()
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            partial = target.with_name(target.name + ".part")
            shutil.copyfile(source, partial)
        except FileNotFoundError:
            return None
        Path(f"{target}.type").write_text(content_type)
        partial.replace(target)
        return Stored(target.stat().st_size, content_type)

    def download_url(self, *, key: str, content_type: str, file_name: Optional[str], expires_in: int) -> str:
        query = {"expires": str(int(time.time()) + expires_in), "type": content_type,
                 "disposition": disposition(content_type, file_name)}
        query["signature"] = self._sign(self._download_text(key, query))
        return f"{FILES_PATH}{quote(key)}?{urlencode(query)}"

    def origins(self) -> List[str]:
        return []

    def delete(self, *, keys: Sequence[str]) -> None:
        for key in keys:
            for path in (self._path(key), Path(f"{self._path(key)}.type")):
                path.unlink(missing_ok=True)

    # ----------------------------------------------------------- what the development server calls

    def accept(self, fields: Mapping[str, str], body: BinaryIO) -> None:
        """Store an upload the way S3 would accept it: the policy signed by
        us and not expired, its key and exact Content-Type given, and the
        file within its size range (read in chunks, refused once past it)."""
        policy = fields.get("policy", "")
        if not hmac.compare_digest(self._sign(policy), fields.get("signature", "")):
            raise Refused(403, "the upload's signature does not match its policy")
        rule = json.loads(base64.urlsafe_b64decode(policy.encode()))
        if rule["expires"] < time.time():
            raise Refused(403, "the upload form has expired")
        if fields.get("key") != rule["key"] or fields.get("Content-Type") != rule["content_type"]:
            raise Refused(403, "the key or the Content-Type is not the one the policy allows")
        path = self._path(rule["key"])
        private_dir(self._root)  # people's files: their owner's only, as the database beside them
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        partial = path.with_name(path.name + f".{secrets.token_hex(4)}.part")
        size = 0
        try:
            with open(os.open(partial, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o600), "wb") as out:
                while chunk := body.read(self.CHUNK):
                    size += len(chunk)
                    if size > rule["max_bytes"]:
                        raise Refused(400, "the file is larger than the upload allows")
                    out.write(chunk)
            if size < 1:
                raise Refused(400, "the file is empty")
            Path(f"{path}.type").write_text(rule["content_type"])
            partial.replace(path)
        finally:
            partial.unlink(missing_ok=True)

    def opened(self, key: str, query: Mapping[str, str]) -> Tuple[BinaryIO, Dict[str, str]]:
        """The file and the headers to serve it with, if the URL is ours and not expired."""
        if not hmac.compare_digest(self._sign(self._download_text(key, query)), query.get("signature", "")):
            raise Refused(403, "the download's signature does not match")
        if int(query.get("expires", "0")) < time.time():
            raise Refused(403, "the download link has expired")
        try:
            body = open(self._path(key), "rb")
        except FileNotFoundError:
            raise Refused(404, "no such file") from None
        return body, {"Content-Type": query["type"], "Content-Disposition": query["disposition"],
                      "X-Content-Type-Options": "nosniff", "Cache-Control": "private, max-age=300"}

    # ----------------------------------------------------------- steps

    def _sign(self, text: str) -> str:
        return hmac.new(self._key, text.encode(), hashlib.sha256).hexdigest()

    @staticmethod
    def _download_text(key: str, query: Mapping[str, str]) -> str:
        return "\n".join([key, query.get("expires", ""), query.get("type", ""), query.get("disposition", "")])

    def _path(self, key: str) -> Path:
        parts: List[str] = key.split("/")
        if any(p in ("", ".", "..") or "\\" in p for p in parts):
            raise Refused(400, "not a key this store makes")
        return self._root.joinpath(*parts)
