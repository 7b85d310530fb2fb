"""Request parameters: merged from the query string and a JSON or form body,
then parsed and validated one by one. Every failure names its parameter."""
from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, List, Mapping, Optional, Sequence
from urllib.parse import unquote_to_bytes

from .contract import (  # noqa: F401
    DEFAULT_PAGE,
    MAX_BODY_BYTES,
    MAX_GROUP_NAME_CHARS,
    MAX_HANDLE_CHARS,
    MAX_MESSAGE_CHARS,
    MAX_PAGE,
    MAX_PASSWORD_CHARS,
    MAX_USER_NAME_CHARS,
    MAX_WAIT_SECONDS,
    MIN_HANDLE_CHARS,
    MIN_PASSWORD_CHARS,
)
from .errors import BadRequest, PayloadTooLarge, UnsupportedMediaType

MAX_SEQ = 2**63 - 1
REPLACEMENT = "\ufffd"

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# C0/C1 control characters except tab, newline and carriage return, and lone
# surrogates (they cannot be stored as UTF-8).
_FORBIDDEN_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
_CLIENT_KEY = re.compile(r"[\x21-\x7e]{1,64}")
_MEDIA_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,62}/[a-z0-9][a-z0-9!#$&^_.+-]{0,62}")
_HANDLE = re.compile(r"[a-z][a-z0-9_]*", re.ASCII | re.IGNORECASE)
_INTEGER = re.compile(r"-?[0-9]{1,19}")
# re.ASCII: \d is 0-9 only, not every script's digits.
_TIMESTAMP = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})"
    r"(?:[T ](?P<h>\d{2}):(?P<m>\d{2})(?::(?P<s>\d{2})(?:[.,](?P<frac>\d{1,9}))?)?)?"
    r"(?P<zone>Z|z|[+\- ]\d{2}(?::?\d{2})?)?",
    re.ASCII,
)


class RequestParams:
    """All values given for each parameter name, from every source."""

    def __init__(self, values: Mapping[str, Sequence[Any]]) -> None:
        self._values = {k: list(v) for k, v in values.items()}

    @classmethod
    def from_request(
        cls,
        query: Optional[Mapping[str, Sequence[str]]],
        body: Optional[bytes],
        content_type: Optional[str],
    ) -> "RequestParams":
        values: Dict[str, List[Any]] = {}
        for name, vals in (query or {}).items():
            for value in vals:
                if REPLACEMENT in value:
                    # The gateway decodes the query string and puts U+FFFD
                    # where the bytes were not UTF-8: the text sent is lost.
                    raise BadRequest(name, "is not valid UTF-8 once percent-decoded (a query string cannot carry"
                                           " U+FFFD; send such text in a JSON body)")
            values.setdefault(name, []).extend(vals)
        for name, vals in _parse_body(body, content_type).items():
            values.setdefault(name, []).extend(vals)
        return cls(values)

    def _one(self, name: str, convert) -> Any:
        """The parameter's single value after `convert`; repeats must agree."""
        found = [convert(name, v) for v in self._values.get(name, ()) if v is not None]
        if not found:
            return None
        if any(v != found[0] for v in found[1:]):
            raise BadRequest(name, "given more than once with different values")
        return found[0]

    def _required(self, name: str, convert) -> Any:
        value = self._one(name, convert)
        if value is None:
            raise BadRequest(name, "is required")
        return value

    def id(self, name: str) -> str:
        return self._required(name, parse_id)

    def flag(self, name: str) -> bool:
        return self._required(name, parse_flag)

    def message_text(self, name: str = "message_text") -> str:
        return self._required(name, lambda n, v: parse_text(n, v, MAX_MESSAGE_CHARS))

    def optional_message_text(self, name: str = "message_text") -> Optional[str]:
        return self._one(name, lambda n, v: parse_text(n, v, MAX_MESSAGE_CHARS))

    def optional_ids(self, name: str, most: int) -> List[str]:
        return self._one(name, lambda n, v: parse_ids(n, v, most)) or []

    def content_type(self, name: str = "content_type") -> str:
        return self._required(name, parse_content_type)

    def name(self, name: str, max_chars: int) -> str:
        return self._required(name, lambda n, v: parse_name(n, v, max_chars))

    def optional_id(self, name: str) -> Optional[str]:
        return self._one(name, parse_id)

    def optional_flag(self, name: str) -> Optional[bool]:
        return self._one(name, parse_flag)

    def optional_name(self, name: str, max_chars: int) -> Optional[str]:
        return self._one(name, lambda n, v: parse_name(n, v, max_chars))

    def handle(self, name: str = "handle") -> str:
        return self._required(name, parse_handle)

    def optional_handle(self, name: str = "handle") -> Optional[str]:
        return self._one(name, parse_handle)

    def password(self, name: str) -> str:
        return self._required(name, parse_password)

    def optional_password(self, name: str) -> Optional[str]:
        return self._one(name, parse_password)

    def ids(self, name: str, most: int) -> List[str]:
        """A comma-separated list of 1 to `most` ids, each once."""
        return self._required(name, lambda n, v: parse_ids(n, v, most))

    def text(self, name: str, max_chars: int) -> str:
        """A required string of printable text (a code, a password to check), as given."""
        return self._required(name, lambda n, v: parse_text(n, v, max_chars))

    def optional_text(self, name: str, max_chars: int) -> Optional[str]:
        return self._one(name, lambda n, v: parse_text(n, v, max_chars))

    def integer(self, name: str, lo: int, hi: int) -> int:
        return self._required(name, lambda n, v: parse_int(n, v, lo, hi))

    def optional_int(self, name: str, lo: int, hi: int) -> Optional[int]:
        return self._one(name, lambda n, v: parse_int(n, v, lo, hi))

    def optional_timestamp(self, name: str) -> Optional[datetime]:
        return self._one(name, parse_timestamp)

    def client_message_id(self, header_value: Optional[str]) -> Optional[str]:
        """`client_message_id` or the Idempotency-Key header; both must agree."""
        key = self._one("client_message_id", parse_client_key)
        if header_value is None:
            return key
        header_key = parse_client_key("Idempotency-Key", header_value)
        if key is not None and key != header_key:
            raise BadRequest("client_message_id", "differs from the Idempotency-Key header")
        return header_key


def _parse_body(body: Optional[bytes], content_type: Optional[str]) -> Dict[str, List[Any]]:
    if not body:
        return {}
    if len(body) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"request body is larger than {MAX_BODY_BYTES} bytes")
    media_type = (content_type or "application/json").split(";")[0].strip().lower()
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("body", "is not valid UTF-8") from None
    if media_type == "application/x-www-form-urlencoded":
        return _parse_form(text)
    if media_type != "application/json":
        raise UnsupportedMediaType(f"unsupported Content-Type {media_type!r}")
    try:
        data = json.loads(text, object_pairs_hook=_Members, parse_constant=_no_constant)
    except (ValueError, RecursionError):  # deep nesting overflows the parser
        raise BadRequest("body", "is not valid JSON") from None
    if not isinstance(data, _Members):
        raise BadRequest("body", "must be a JSON object")
    values: Dict[str, List[Any]] = {}
    for name, value in data:  # a repeated key counts as the name given twice
        values.setdefault(name, []).append(value)
    return values


def _parse_form(text: str) -> Dict[str, List[str]]:
    """A form body's fields, each name and value percent-decoded as strict
    UTF-8 (parse_qs would put U+FFFD for bytes that are not, and the text
    would not be stored as sent)."""
    values: Dict[str, List[str]] = {}
    for field in text.split("&"):
        if not field:
            continue
        raw_name, _, raw_value = field.partition("=")
        name = _form_text("body", raw_name)
        values.setdefault(name, []).append(_form_text(name, raw_value))
    return values


def _form_text(name: str, raw: str) -> str:
    try:
        return unquote_to_bytes(raw.replace("+", " ")).decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest(name, "is not valid UTF-8 once percent-decoded") from None


class _Members(list):
    """A JSON object as its (name, value) pairs, duplicates kept."""


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _string(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise BadRequest(name, "must be a string")
    return value


def parse_id(name: str, value: Any) -> str:
    value = _string(name, value)
    if not _UUID.fullmatch(value):
        raise BadRequest(name, "must be an id (a UUID)")
    return value.lower()


def parse_flag(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if value in ("1", "0") or (type(value) is int and value in (0, 1)):
        return value in ("1", 1)
    raise BadRequest(name, "must be 1 or 0")


def parse_int(name: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool):
        raise BadRequest(name, "must be an integer")
    if isinstance(value, str) and _INTEGER.fullmatch(value):
        value = int(value)
    if not isinstance(value, int):
        raise BadRequest(name, "must be an integer")
    if not lo <= value <= hi:
        unbounded = value < lo and hi >= 2**31  # "between 0 and 9223372036854775807" says nothing
        raise BadRequest(name, f"must be {lo} or more" if unbounded else f"must be between {lo} and {hi}")
    return value


def parse_text(name: str, value: Any, max_chars: int) -> str:
    value = _string(name, value)
    if not value:
        raise BadRequest(name, "must not be empty")
    if len(value) > max_chars:
        raise BadRequest(name, f"must be at most {max_chars} characters")
    bad = _FORBIDDEN_CHARS.search(value)
    if bad:
        code = ord(bad.group())
        kind = "an unpaired surrogate" if 0xD800 <= code <= 0xDFFF else "the control character"
        raise BadRequest(name, f"must not contain {kind} U+{code:04X}")
    return value


def parse_name(name: str, value: Any, max_chars: int) -> str:
    value = parse_text(name, value, max_chars)
    if value.isspace():
        raise BadRequest(name, "must not be blank")
    return value


def parse_handle(name: str, value: Any) -> str:
    """3-32 characters [a-z][a-z0-9_]*, accepted in any case, answered in lower case."""
    value = _string(name, value)
    # re.ASCII and IGNORECASE, lower() after: "\u212a" (the Kelvin sign) lowers to k but is no letter here.
    if not MIN_HANDLE_CHARS <= len(value) <= MAX_HANDLE_CHARS or not _HANDLE.fullmatch(value):
        raise BadRequest(name, f"must be {MIN_HANDLE_CHARS}-{MAX_HANDLE_CHARS} characters: a letter, then letters,"
                               " digits or _")
    return value.lower()


def parse_password(name: str, value: Any) -> str:
    value = _string(name, value)
    if not MIN_PASSWORD_CHARS <= len(value) <= MAX_PASSWORD_CHARS:
        raise BadRequest(name, f"must be {MIN_PASSWORD_CHARS}-{MAX_PASSWORD_CHARS} characters")
    if _FORBIDDEN_CHARS.search(value):
        raise BadRequest(name, "must not contain control characters or unpaired surrogates")
    return value


def parse_ids(name: str, value: Any, most: int) -> List[str]:
    parts = _string(name, value).split(",")
    if not 1 <= len(parts) <= most:
        raise BadRequest(name, f"must list 1 to {most} ids, comma-separated")
    return list(dict.fromkeys(parse_id(name, part.strip()) for part in parts))


def parse_content_type(name: str, value: Any) -> str:
    """A media type, type/subtype, without parameters; kept in lower case."""
    value = _string(name, value).strip().lower()
    if len(value) > 100 or not _MEDIA_TYPE.fullmatch(value):
        raise BadRequest(name, "must be a media type such as image/png (type/subtype, no parameters)")
    return value


def parse_client_key(name: str, value: Any) -> str:
    value = _string(name, value)
    if not _CLIENT_KEY.fullmatch(value):
        raise BadRequest(name, "must be 1-64 printable ASCII characters without spaces")
    return value


def parse_timestamp(name: str, value: Any) -> datetime:
    """A naive UTC datetime from `YYYY-MM-DD HH:MM:SS[.ffffff]` or ISO 8601.

    No zone means UTC. A `+` that arrived as a space (not URL-encoded) is read
    as `+`. Digits past the microsecond round up, so `sent_at >= value` keeps
    its exact meaning at the column's microsecond precision.
    """
    text = _string(name, value).strip()
    match = _TIMESTAMP.fullmatch(text)
    if not match:
        raise BadRequest(name, "must be a timestamp like 2024-07-01 09:10:00.0 or 2024-07-01T09:10:00Z")
    frac = match["frac"] or ""
    micros = int(frac[:6].ljust(6, "0"))
    try:
        moment = datetime.fromisoformat(match["date"]).replace(
            hour=int(match["h"] or 0),
            minute=int(match["m"] or 0),
            second=int(match["s"] or 0),
            microsecond=micros,
        )
        if len(frac) > 6 and int(frac[6:]) > 0:
            moment += timedelta(microseconds=1)
        zone = match["zone"]
        if zone and zone not in "Zz":
            sign = -1 if zone[0] == "-" else 1
            digits = zone[1:].replace(":", "")
            offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:] or 0))
            if offset >= timedelta(hours=24):
                raise ValueError("offset out of range")
            moment = moment.replace(tzinfo=timezone(sign * offset)).astimezone(timezone.utc)
        return moment.replace(tzinfo=None)
    except (ValueError, OverflowError):
        raise BadRequest(name, "is not a valid date and time") from None
