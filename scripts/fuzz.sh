#!/usr/bin/env bash
# Fuzz the API with schemathesis against `chalice local` (auth on, a fresh
# SQLite file), driven by openapi.yaml. Exits non-zero on any failed check.
#   FUZZ_EXAMPLES  test cases per operation and phase (default 100)
#   FUZZ_SEED      hypothesis seed (default 20261127)
#   FUZZ_WORKERS   schemathesis workers (default 1: Python 3.11's ast.parse,
#                  which hypothesis calls, can fail spuriously in threads)
# Extra arguments go to `schemathesis run`.
#
# Who calls: every request with a token speaks for one user, fuzz-me, except
# those to /logout, /update_account and /delete_account, which sign sessions
# out (the caller's own by default), change the password (signing the
# account's other sessions out) or delete the account: each of those gets a
# throwaway account of its own, registered for it by the auth hook below
# (every other one with a handle and the known password, so the password
# checks are reached too), and fuzz-me stays signed in for the whole run.
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION=4.32.5
FUZZ_VENV=.venv-fuzz
PYTHON=${PYTHON:-python3}
EXAMPLES=${FUZZ_EXAMPLES:-100}
SEED=${FUZZ_SEED:-20261127}
WORKERS=${FUZZ_WORKERS:-1}

# schemathesis pins many packages: it gets a venv of its own, never .venv.
if ! "$FUZZ_VENV/bin/schemathesis" --version 2>/dev/null | grep -qF "$SCHEMATHESIS_VERSION"; then
  "$PYTHON" -m venv "$FUZZ_VENV"
  log=$(mktemp)
  "$FUZZ_VENV/bin/pip" install --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION" >"$log" 2>&1 \
    || { cat "$log" >&2; exit 1; }
  rm -f "$log"
fi
./scripts/venv.sh dev  # the app's own venv

WORK=$(mktemp -d "${TMPDIR:-/tmp}/fuzz.XXXXXX")
PORT=$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BASE="http://127.0.0.1:$PORT"
SERVER_PID=""
STATUS=1

cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [ "$STATUS" -eq 0 ]; then rm -rf "$WORK"; else echo "fuzz: kept $WORK (server.log, report/)" >&2; fi
}
trap cleanup EXIT

# The server: auth on, its own SQLite file and signing secret, no Redis
# (so no rate limits), default group cap. The sign-in failure limits are on
# by default: raised to their maximum, so the generated wrong passwords and
# link codes (all from 127.0.0.1) do not turn every later sign-in into a 429
# (tests/integration/test_openapi.py checks that 429 against the spec).
env -u REDIS_URL -u DB_SECRET_ARN -u AUTH_SECRET_ARN -u MAX_GROUP_MEMBERS \
    -u RATE_LIMIT_SENDS_PER_MINUTE -u RATE_LIMIT_READS_PER_MINUTE -u RATE_LIMIT_REGISTRATIONS_PER_HOUR \
    SIGN_IN_FAILURES_PER_HANDLE=1000 SIGN_IN_FAILURES_PER_SOURCE=100000 \
    DATABASE_URL="sqlite:///$WORK/fuzz.sqlite3" \
    AUTH_SECRET="$("$PYTHON" -c 'import secrets; print(secrets.token_urlsafe(32))')" \
    AUTH_MODE=token \
    .venv/bin/chalice local --no-autoreload --host 127.0.0.1 --port "$PORT" --stage dev >"$WORK/server.log" 2>&1 &
SERVER_PID=$!

for _ in $(seq 300); do  # at most 30 s
  curl -fsS -o /dev/null "$BASE/health" 2>/dev/null && break
  kill -0 "$SERVER_PID" 2>/dev/null || { echo "fuzz: chalice local exited" >&2; cat "$WORK/server.log" >&2; exit 1; }
  sleep 0.1
done
curl -fsS -o /dev/null "$BASE/health" || { echo "fuzz: no /health within 30 s" >&2; cat "$WORK/server.log" >&2; exit 1; }

# Real users, a group and some messages, so generated requests can pass auth
# and reach the deeper rules (membership, blocking, idempotency, reading);
# fuzz-other has a handle and a password to sign in with and a link code.
post() {  # post PATH TOKEN JSON -> body (/register ignores the header)
  curl -fsS -X POST "$BASE$1" -H "Authorization: Bearer $2" -H 'Content-Type: application/json' -d "$3"
}
field() { "$PYTHON" -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
PASSWORD="fuzz password 1"
ME_JSON=$(post /register "" '{"user_name": "fuzz-me"}')
OTHER_JSON=$(post /register "" "{\"user_name\": \"fuzz-other\", \"handle\": \"fuzz_other\", \"password\": \"$PASSWORD\"}")
ME=$(field user_id <<<"$ME_JSON"); TOKEN=$(field token <<<"$ME_JSON")
OTHER=$(field user_id <<<"$OTHER_JSON"); OTHER_TOKEN=$(field token <<<"$OTHER_JSON")
GROUP=$(post /create_group "$TOKEN" '{"group_name": "fuzz"}' | field group_id)
post /update_group "$TOKEN" "{\"user_id\": \"$ME\", \"group_id\": \"$GROUP\", \"to_be_added\": 1}" >/dev/null
post /update_group "$OTHER_TOKEN" "{\"user_id\": \"$OTHER\", \"group_id\": \"$GROUP\", \"to_be_added\": 1}" >/dev/null
post /send "$OTHER_TOKEN" "{\"sending_user_id\": \"$OTHER\", \"receiving_user_id\": \"$ME\", \"message_text\": \"hi\"}" >/dev/null
post /send_group "$OTHER_TOKEN" "{\"sending_user_id\": \"$OTHER\", \"group_id\": \"$GROUP\", \"message_text\": \"hello\"}" >/dev/null
MINE=$(post /send "$TOKEN" "{\"sending_user_id\": \"$ME\", \"receiving_user_id\": \"$OTHER\", \"message_text\": \"hi\", \"client_message_id\": \"fuzz-key\"}" | field message_id)
THEIRS=$(post /sync "$TOKEN" '{}' | python3 -c 'import json, sys; print(next(e["message_id"] for e in json.load(sys.stdin)["events"] if e["type"] == "message" and e["group_id"] is None and e["recipient_id"] != e["sender_id"] and e["text"] == "hi" and e["sender_id"] != "'"$ME"'"))')
CODE=$(post /link_code "$OTHER_TOKEN" '{}' | field code)  # good for one /link, for 5 minutes

# Every request's token, set by schemathesis' auth hook rather than a
# --header (a configured header would win over the hook): fuzz-me's, or for
# the three operations that sign out or delete, a new account's each time.
cat >"$WORK/hooks.py" <<'HOOKS'
import itertools
import json
import os
import urllib.request

import schemathesis

BASE, TOKEN, PASSWORD = os.environ["FUZZ_BASE"], os.environ["FUZZ_TOKEN"], os.environ["FUZZ_PASSWORD"]
THROWAWAY = ["/logout", "/update_account", "/delete_account"]
_made = itertools.count()


def _bearer(case, token):
    case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}


@schemathesis.auth(refresh_interval=None).apply_to(path=THROWAWAY)
class ThrowawayAccount:
    """A new account per test case: half with no handle or password, half
    with a handle and PASSWORD (the dictionaries offer it as `password` and
    `current_password`), so both sides of the password checks are reached."""

    def get(self, case, context):
        n = next(_made)
        body = {"user_name": f"fuzz-throwaway-{n}", "device_name": "fuzz"}
        if n % 2:
            body.update(handle=f"fuzz_throwaway_{n}", password=PASSWORD)
        request = urllib.request.Request(f"{BASE}/register", data=json.dumps(body).encode(), method="POST",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as answer:
            return json.load(answer)["token"]

    def set(self, case, data, context):
        _bearer(case, data)


@schemathesis.auth(refresh_interval=None).skip_for(path=THROWAWAY)
class FuzzMe:
    def get(self, case, context):
        return TOKEN

    def set(self, case, data, context):
        _bearer(case, data)
HOOKS

# Bind the id parameters to the real ids most of the time, and handles,
# passwords, the link code and user_ids to real ones some of the time (query
# string and JSON body alike), so sign-ins and look-ups succeed too; the
# rest stay generated.
{
  echo "[dictionaries.me]"; echo "values = [\"$ME\"]"
  echo "[dictionaries.other]"; echo "values = [\"$OTHER\"]"
  echo "[dictionaries.group]"; echo "values = [\"$GROUP\"]"
  echo "[dictionaries.key]"; echo "values = [\"fuzz-key\"]"
  echo "[dictionaries.handle]"; echo "values = [\"fuzz_other\", \"Fuzz_Other\"]"
  echo "[dictionaries.password]"; echo "values = [\"$PASSWORD\"]"
  echo "[dictionaries.code]"; echo "values = [\"$CODE\"]"
  echo "[dictionaries.users]"; echo "values = [\"$ME,$OTHER\", \"$OTHER\"]"
  echo "[dictionaries.message]"; echo "values = [\"$MINE\", \"$THEIRS\"]"
  # chalice local's http.server answers TRACE and QUERY with 501 itself,
  # before Chalice routing (405) or the app: probe the other methods only.
  echo "[phases.coverage]"; echo 'unexpected-methods = ["get", "put", "post", "delete", "patch"]'
  echo "[parameters]"
  for where in query body; do
    for name in user_id sending_user_id blocking_user_id; do
      echo "\"$where.$name\" = { dictionary = \"me\", probability = 0.8 }"
    done
    for name in receiving_user_id blocked_user_id; do
      echo "\"$where.$name\" = { dictionary = \"other\", probability = 0.8 }"
    done
    echo "\"$where.group_id\" = { dictionary = \"group\", probability = 0.8 }"
    echo "\"$where.client_message_id\" = { dictionary = \"key\", probability = 0.2 }"
    echo "\"$where.handle\" = { dictionary = \"handle\", probability = 0.3 }"
    for name in password current_password; do
      echo "\"$where.$name\" = { dictionary = \"password\", probability = 0.5 }"
    done
    echo "\"$where.code\" = { dictionary = \"code\", probability = 0.2 }"
    echo "\"$where.user_ids\" = { dictionary = \"users\", probability = 0.5 }"
    echo "\"$where.message_id\" = { dictionary = \"message\", probability = 0.7 }"
    echo "\"$where.with_user_id\" = { dictionary = \"other\", probability = 0.7 }"
  done
} >"$WORK/schemathesis.toml"

# positive_data_acceptance is left out: a required parameter may come from the
# query string or the body, which OpenAPI cannot express, so the spec marks
# none required and a request without one is rightly a 400.
started=$(date +%s)
set +e
FUZZ_BASE="$BASE" FUZZ_TOKEN="$TOKEN" FUZZ_PASSWORD="$PASSWORD" SCHEMATHESIS_HOOKS="$WORK/hooks.py" \
"$FUZZ_VENV/bin/schemathesis" --config-file "$WORK/schemathesis.toml" run openapi.yaml \
  --url "$BASE" \
  --phases examples,coverage,fuzzing \
  --checks all --exclude-checks positive_data_acceptance \
  --max-examples "$EXAMPLES" --seed "$SEED" --workers "$WORKERS" \
  --generation-database none --request-timeout 10 \
  --report junit --report-dir "$WORK/report" \
  --no-color "$@"
STATUS=$?
set -e
elapsed=$(( $(date +%s) - started ))

# Requests the server answered, per operation and status (its request log).
"$PYTHON" - "$WORK/server.log" "$elapsed" <<'EOF'
import collections, json, sys
statuses = collections.defaultdict(collections.Counter)
for line in open(sys.argv[1], encoding="utf-8", errors="replace"):
    if line.startswith('{"_aws"'):  # the app's request log line (Embedded Metric Format)
        r = json.loads(line)
        declared = r["method"] == ("GET" if r["Route"] in ("/health", "/", "/static/{name}") else "POST")
        statuses[f'{r["method"]} {r["Route"]}' if declared else "undeclared methods"][r["status"]] += 1
for key, counts in sorted(statuses.items()):
    detail = " ".join(f"{s}:{n}" for s, n in sorted(counts.items()))
    print(f"fuzz: {key:20} {sum(counts.values()):6} requests ({detail})")
total = sum(sum(c.values()) for c in statuses.values())
print(f"fuzz: total {total} requests to the server (with the setup's) in {sys.argv[2]} s")
EOF
exit "$STATUS"
