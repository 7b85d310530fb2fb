"""Routes only: read the request, call one use case, return its result."""
from chalice import Chalice, Response

from chalicelib import wiring
from chalicelib.params import DEFAULT_PAGE, MAX_GROUP_NAME_CHARS, MAX_PAGE, MAX_SEQ, MAX_USER_NAME_CHARS
from chalicelib.errors import ServiceUnavailable
from chalicelib.web import BODY_TYPES, created, handled, log_request, params

app = Chalice(app_name="messaging")
service = wiring.service
route = app.route
edge = handled(app)


@app.middleware("http")
def request_log(request, get_response):
    return log_request(app, request, get_response)


def _caller():
    return service().authenticate(app.current_request.headers.get("authorization"))


@route("/register", methods=["POST"], content_types=BODY_TYPES)
@edge
def register():
    request = app.current_request
    p = params(request)
    user = service().register(
        user_name=p.name("user_name", MAX_USER_NAME_CHARS),
        source_ip=request.context.get("identity", {}).get("sourceIp", "unknown"),
    )
    return Response(body=user, status_code=201)


@route("/block", methods=["POST"], content_types=BODY_TYPES)
@edge
def block():
    caller, p = _caller(), params(app.current_request)
    return service().set_block(
        caller=caller,
        blocking_user_id=p.id("blocking_user_id"),
        blocked_user_id=p.id("blocked_user_id"),
        block=p.flag("to_block"),
    )


@route("/send", methods=["POST"], content_types=BODY_TYPES)
@edge
def send():
    caller, p = _caller(), params(app.current_request)
    return created(
        service().send(
            caller=caller,
            sender_id=p.id("sending_user_id"),
            recipient_id=p.id("receiving_user_id"),
            text=p.message_text(),
            client_message_id=p.client_message_id(app.current_request.headers.get("idempotency-key")),
        )
    )


@route("/create_group", methods=["POST"], content_types=BODY_TYPES)
@edge
def create_group():
    _caller()
    p = params(app.current_request)
    return Response(
        body=service().create_group(group_name=p.name("group_name", MAX_GROUP_NAME_CHARS)), status_code=201
    )


@route("/update_group", methods=["POST"], content_types=BODY_TYPES)
@edge
def update_group():
    caller, p = _caller(), params(app.current_request)
    return service().set_membership(
        caller=caller, user_id=p.id("user_id"), group_id=p.id("group_id"), member=p.flag("to_be_added")
    )


@route("/send_group", methods=["POST"], content_types=BODY_TYPES)
@edge
def send_group():
    caller, p = _caller(), params(app.current_request)
    return created(
        service().send_group(
            caller=caller,
            sender_id=p.id("sending_user_id"),
            group_id=p.id("group_id"),
            text=p.message_text(),
            client_message_id=p.client_message_id(app.current_request.headers.get("idempotency-key")),
        )
    )


@route("/read_messages", methods=["POST"], content_types=BODY_TYPES)
@edge
def read_messages():
    caller, p = _caller(), params(app.current_request)
    page, cache = service().read(
        caller=caller,
        user_id=p.id("user_id"),
        after=p.optional_int("after", 0, MAX_SEQ),
        since=p.optional_timestamp("min_timestamp"),
        limit=p.optional_int("limit", 1, MAX_PAGE) or DEFAULT_PAGE,
    )
    return Response(body=page, headers={"X-Cache": cache})


@route("/health", methods=["GET"])
@edge
def health():
    status = service().health()
    if status["database"] == "ok":
        return status
    return Response(
        body=status, status_code=503, headers={"Retry-After": str(ServiceUnavailable.retry_after_seconds)}
    )


@app.lambda_function(name="migrate")
def migrate(event, context):
    """Applies pending schema migrations; `make deploy` invokes it once."""
    return {"applied": wiring.migrate()}
