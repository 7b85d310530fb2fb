"""Routes, WebSocket handlers and the other Lambda functions (migrate, the
hourly purge, push, forget_connections) only: each reads its parameters and
calls one use case; the edge (chalicelib/web/) authenticates, sets the
status and maps errors."""
from pathlib import Path

from chalice import Rate

from chalicelib import functions, lambdas, wiring
from chalicelib.contract import (
    DEFAULT_CONVERSATIONS,
    DEFAULT_HISTORY,
    DEFAULT_MEMBERS,
    DEFAULT_PAGE,
    MAX_ATTACHMENTS_PER_MESSAGE,
    MAX_CONVERSATIONS,
    MAX_DEVICE_NAME_CHARS,
    MAX_FILE_NAME_CHARS,
    MAX_GROUP_NAME_CHARS,
    MAX_HISTORY,
    MAX_MEMBERS,
    MAX_PAGE,
    MAX_PASSWORD_CHARS,
    MAX_USER_NAME_CHARS,
    MAX_USERS_PER_LOOKUP,
    MAX_WAIT_SECONDS,
)
from chalicelib.params import MAX_SEQ
from chalicelib.web import App, Call, Edge

STATIC = Path(__file__).resolve().parent / "chalicelib" / "static"
app = App(app_name="messaging")
app.experimental_feature_flags.update(["WEBSOCKETS"])
use = wiring.service
edge = Edge(app, authenticate=lambda header: use().accounts.authenticate(header))


@edge.route("/register", auth=False)
def register(call: Call):
    p = call.params
    return use().accounts.register(user_name=p.name("user_name", MAX_USER_NAME_CHARS), handle=p.optional_handle(),
                                   password=p.optional_password("password"),
                                   device_name=p.optional_name("device_name", MAX_DEVICE_NAME_CHARS),
                                   source_ip=call.source_ip)


@edge.route("/login", auth=False)
def login(call: Call):
    p = call.params
    return use().accounts.login(handle=p.handle(), password=p.text("password", MAX_PASSWORD_CHARS),
                                device_name=p.optional_name("device_name", MAX_DEVICE_NAME_CHARS),
                                source_ip=call.source_ip)


@edge.route("/link_code")
def link_code(call: Call):
    return use().accounts.link_code(caller=call.identity)


@edge.route("/link", auth=False)
def link(call: Call):
    p = call.params
    return use().accounts.link(code=p.text("code", 32), device_name=p.optional_name("device_name",
                                                                                    MAX_DEVICE_NAME_CHARS),
                               source_ip=call.source_ip)


@edge.route("/sessions")
def sessions(call: Call):
    return use().accounts.sessions(caller=call.identity)


@edge.route("/logout")
def logout(call: Call):
    p = call.params
    return use().accounts.logout(caller=call.identity, session_id=p.optional_id("session_id"),
                                 everywhere=p.optional_flag("all") or False)


@edge.route("/account")
def account(call: Call):
    return use().accounts.account(caller=call.identity)


@edge.route("/update_account")
def update_account(call: Call):
    p = call.params
    return use().accounts.update_account(
        caller=call.identity, user_name=p.optional_name("user_name", MAX_USER_NAME_CHARS),
        handle=p.optional_handle(), password=p.optional_password("password"),
        current_password=p.optional_text("current_password", MAX_PASSWORD_CHARS), source_ip=call.source_ip,
        read_receipts=p.optional_flag("read_receipts"))


@edge.route("/delete_account")
def delete_account(call: Call):
    return use().accounts.delete_account(caller=call.identity,
                                         password=call.params.optional_text("password", MAX_PASSWORD_CHARS),
                                         source_ip=call.source_ip)


@edge.route("/users")
def users(call: Call):
    return use().accounts.users(user_ids=call.params.ids("user_ids", MAX_USERS_PER_LOOKUP))


@edge.route("/find_user")
def find_user(call: Call):
    return use().accounts.find_user(handle=call.params.handle())


@edge.route("/block")
def block(call: Call):
    p = call.params
    return use().blocking.set_block(caller=call.caller, blocking_user_id=p.id("blocking_user_id"),
                                    blocked_user_id=p.id("blocked_user_id"), block=p.flag("to_block"))


@edge.route("/send")
def send(call: Call):
    p = call.params
    return use().sending.send(caller=call.caller, sender_id=p.id("sending_user_id"),
                              recipient_id=p.id("receiving_user_id"), text=p.optional_message_text(),
                              client_message_id=p.client_message_id(call.header("idempotency-key")),
                              attachment_ids=p.optional_ids("attachment_ids", MAX_ATTACHMENTS_PER_MESSAGE))


@edge.route("/create_group")
def create_group(call: Call):
    return use().membership.create_group(caller=call.caller,
                                         group_name=call.params.name("group_name", MAX_GROUP_NAME_CHARS))


@edge.route("/update_group")
def update_group(call: Call):
    p = call.params
    return use().membership.set_membership(caller=call.caller, user_id=p.id("user_id"), group_id=p.id("group_id"),
                                           member=p.flag("to_be_added"))


@edge.route("/send_group")
def send_group(call: Call):
    p = call.params
    return use().sending.send_group(caller=call.caller, sender_id=p.id("sending_user_id"),
                                    group_id=p.id("group_id"), text=p.optional_message_text(),
                                    client_message_id=p.client_message_id(call.header("idempotency-key")),
                                    attachment_ids=p.optional_ids("attachment_ids", MAX_ATTACHMENTS_PER_MESSAGE))


@edge.route("/read_messages")
def read_messages(call: Call):
    p = call.params
    return use().reading.read(caller=call.caller, user_id=p.id("user_id"), after=p.optional_int("after", 0, MAX_SEQ),
                              since=p.optional_timestamp("min_timestamp"),
                              limit=p.optional_int("limit", 1, MAX_PAGE) or DEFAULT_PAGE,
                              wait=p.optional_int("wait", 0, MAX_WAIT_SECONDS) or 0)


@edge.route("/sync")
def sync(call: Call):
    p = call.params
    return use().reading.sync(caller=call.caller, user_id=call.acting_user(),
                              after=p.optional_int("after", 0, MAX_SEQ) or 0,
                              limit=p.optional_int("limit", 1, MAX_PAGE) or DEFAULT_PAGE,
                              wait=p.optional_int("wait", 0, MAX_WAIT_SECONDS) or 0)


@edge.route("/edit_message")
def edit_message(call: Call):
    p = call.params
    return use().conversing.edit(caller=call.caller, user_id=call.acting_user(), message_id=p.id("message_id"),
                                 text=p.message_text())


@edge.route("/delete_message")
def delete_message(call: Call):
    return use().conversing.delete(caller=call.caller, user_id=call.acting_user(),
                                   message_id=call.params.id("message_id"))


@edge.route("/mark_read")
def mark_read(call: Call):
    p = call.params
    return use().conversing.mark_read(caller=call.caller, user_id=call.acting_user(),
                                      with_user_id=p.optional_id("with_user_id"), group_id=p.optional_id("group_id"),
                                      message_id=p.id("message_id"))


@edge.route("/conversations")
def conversations(call: Call):
    p = call.params
    return use().browsing.conversations(caller=call.caller, user_id=call.acting_user(),
                                        limit=p.optional_int("limit", 1, MAX_CONVERSATIONS) or DEFAULT_CONVERSATIONS,
                                        before=p.optional_int("before", 1, MAX_SEQ))


@edge.route("/history")
def history(call: Call):
    p = call.params
    return use().browsing.history(caller=call.caller, user_id=call.acting_user(),
                                  with_user_id=p.optional_id("with_user_id"), group_id=p.optional_id("group_id"),
                                  before_seq=p.optional_int("before_seq", 1, MAX_SEQ),
                                  limit=p.optional_int("limit", 1, MAX_HISTORY) or DEFAULT_HISTORY)


@edge.route("/group_info")
def group_info(call: Call):
    p = call.params
    return use().browsing.group_info(caller=call.caller, user_id=call.acting_user(), group_id=p.id("group_id"),
                                     after_user_id=p.optional_id("after_user_id"),
                                     limit=p.optional_int("limit", 1, MAX_MEMBERS) or DEFAULT_MEMBERS)


@edge.route("/upload_url")
def upload_url(call: Call):
    p = call.params
    return use().attaching.upload_url(caller=call.caller, user_id=call.acting_user(), content_type=p.content_type(),
                                      size=p.integer("size", 1, MAX_SEQ),
                                      file_name=p.optional_name("file_name", MAX_FILE_NAME_CHARS))


@edge.route("/download_url")
def download_url(call: Call):
    return use().attaching.download_url(caller=call.caller, user_id=call.acting_user(),
                                        attachment_id=call.params.id("attachment_id"))


@edge.route("/connect_ticket")
def connect_ticket(call: Call):
    return use().live.ticket(caller=call.identity, user_id=call.params.id("user_id"))


@edge.websocket(app.on_ws_connect())
def ws_connect(event):
    query = event.to_dict().get("queryStringParameters") or {}
    use().live.connect(ticket=query.get("ticket"), connection_id=event.connection_id)


@edge.websocket(app.on_ws_message())
def ws_message(event):
    use().live.message(connection_id=event.connection_id, body=event.body)


@edge.websocket(app.on_ws_disconnect())
def ws_disconnect(event):
    use().live.disconnect(connection_id=event.connection_id)


@edge.route("/health", method="GET", auth=False)
def health(call: Call):
    return use().health.check()


edge.static_files(STATIC, websocket_url=lambda: use().live.websocket_url,  # the web client at GET /
                  file_origins=lambda: use().attaching.file_origins)
edge.unknown_routes()


@app.lambda_function(name=functions.MIGRATE)
def migrate(event, context):
    """Applies pending schema migrations; `make deploy` invokes it once."""
    return {"applied": lambdas.migrate()}


@app.schedule(Rate(1, unit=Rate.HOURS), name=functions.PURGE)
def purge(event):
    """Deletes messages older than RETENTION_DAYS, in bounded batches."""
    return edge.job(functions.PURGE, lambda: use().retention.purge(), event.context)


@app.lambda_function(name=functions.PUSH)
def push(event, context):
    """Deployed outside the VPC: posts what the API hands it to @connections."""
    return lambdas.push(event)


@app.lambda_function(name=functions.FORGET_CONNECTIONS)
def forget_connections(event, context):
    """Deployed in the VPC: forgets the connections `push` found gone."""
    return lambdas.forget_connections(event)
