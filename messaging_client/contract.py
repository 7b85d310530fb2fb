"""The API's error codes and limits (generated from chalicelib/contract.py by `make contract`; do not edit)."""

# Code -> (HTTP status, retry: 'always' | 'if_idempotent' | 'never')
CODES = {
    'BadRequest': (400, 'never'),
    'Unauthorized': (401, 'never'),
    'BadCredentials': (401, 'never'),
    'Forbidden': (403, 'never'),
    'Blocked': (403, 'never'),
    'NotAMember': (403, 'never'),
    'NotFound': (404, 'never'),
    'UserNotFound': (404, 'never'),
    'GroupNotFound': (404, 'never'),
    'AttachmentNotFound': (404, 'never'),
    'MessageNotFound': (404, 'never'),
    'MethodNotAllowed': (405, 'never'),
    'CursorAhead': (409, 'never'),
    'GroupFull': (409, 'never'),
    'IdempotencyConflict': (409, 'never'),
    'AttachmentNotReady': (409, 'never'),
    'HandleTaken': (409, 'never'),
    'EditWindowClosed': (409, 'never'),
    'MessageDeleted': (409, 'never'),
    'PayloadTooLarge': (413, 'never'),
    'UnsupportedMediaType': (415, 'never'),
    'RateLimited': (429, 'always'),
    'InternalServerError': (500, 'never'),
    'ServiceUnavailable': (503, 'if_idempotent'),
}

MAX_WAIT_SECONDS = 20
MAX_MESSAGE_CHARS = 4096
MAX_USER_NAME_CHARS = 64
MAX_GROUP_NAME_CHARS = 128
MIN_HANDLE_CHARS = 3
MAX_HANDLE_CHARS = 32
MIN_PASSWORD_CHARS = 8
MAX_PASSWORD_CHARS = 256
MAX_DEVICE_NAME_CHARS = 64
MAX_USERS_PER_LOOKUP = 100
LINK_CODE_SECONDS = 300
DEFAULT_PAGE = 100
MAX_PAGE = 1000
DEFAULT_CONVERSATIONS = 50
MAX_CONVERSATIONS = 100
DEFAULT_HISTORY = 50
MAX_HISTORY = 200
DEFAULT_MEMBERS = 100
MAX_MEMBERS = 500
MAX_UNREAD_COUNTED = 999
MAX_ATTACHMENTS_PER_MESSAGE = 10
MAX_FILE_NAME_CHARS = 255
UPLOAD_URL_SECONDS = 600
DOWNLOAD_URL_SECONDS = 300
MAX_BODY_BYTES = 65536
WAIT_REFUSED_PAUSE_SECONDS = 5
