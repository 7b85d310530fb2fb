// The API's error codes and limits (generated from chalicelib/contract.py by `make contract`; do not edit).

// Code -> HTTP status and retry: 'always' | 'if_idempotent' | 'never'.
export const CODES = Object.freeze({
  BadRequest: { status: 400, retry: 'never' },
  Unauthorized: { status: 401, retry: 'never' },
  BadCredentials: { status: 401, retry: 'never' },
  Forbidden: { status: 403, retry: 'never' },
  Blocked: { status: 403, retry: 'never' },
  NotAMember: { status: 403, retry: 'never' },
  NotFound: { status: 404, retry: 'never' },
  UserNotFound: { status: 404, retry: 'never' },
  GroupNotFound: { status: 404, retry: 'never' },
  AttachmentNotFound: { status: 404, retry: 'never' },
  MessageNotFound: { status: 404, retry: 'never' },
  MethodNotAllowed: { status: 405, retry: 'never' },
  CursorAhead: { status: 409, retry: 'never' },
  GroupFull: { status: 409, retry: 'never' },
  IdempotencyConflict: { status: 409, retry: 'never' },
  AttachmentNotReady: { status: 409, retry: 'never' },
  HandleTaken: { status: 409, retry: 'never' },
  EditWindowClosed: { status: 409, retry: 'never' },
  MessageDeleted: { status: 409, retry: 'never' },
  PayloadTooLarge: { status: 413, retry: 'never' },
  UnsupportedMediaType: { status: 415, retry: 'never' },
  RateLimited: { status: 429, retry: 'always' },
  InternalServerError: { status: 500, retry: 'never' },
  ServiceUnavailable: { status: 503, retry: 'if_idempotent' },
});

export const MAX_WAIT_SECONDS = 20;
export const MAX_MESSAGE_CHARS = 4096;
export const MAX_USER_NAME_CHARS = 64;
export const MAX_GROUP_NAME_CHARS = 128;
export const MIN_HANDLE_CHARS = 3;
export const MAX_HANDLE_CHARS = 32;
export const MIN_PASSWORD_CHARS = 8;
export const MAX_PASSWORD_CHARS = 256;
export const MAX_DEVICE_NAME_CHARS = 64;
export const MAX_USERS_PER_LOOKUP = 100;
export const LINK_CODE_SECONDS = 300;
export const DEFAULT_PAGE = 100;
export const MAX_PAGE = 1000;
export const DEFAULT_CONVERSATIONS = 50;
export const MAX_CONVERSATIONS = 100;
export const DEFAULT_HISTORY = 50;
export const MAX_HISTORY = 200;
export const DEFAULT_MEMBERS = 100;
export const MAX_MEMBERS = 500;
export const MAX_UNREAD_COUNTED = 999;
export const MAX_ATTACHMENTS_PER_MESSAGE = 10;
export const MAX_FILE_NAME_CHARS = 255;
export const UPLOAD_URL_SECONDS = 600;
export const DOWNLOAD_URL_SECONDS = 300;
export const MAX_BODY_BYTES = 65536;
export const WAIT_REFUSED_PAUSE_SECONDS = 5;
