"""A stand-in for AWS Secrets Manager on a local port, speaking its real wire
format (JSON 1.1: POST / with `X-Amz-Target: secretsmanager.GetSecretValue`),
so the app's own boto3 code fetches from it. Point boto3 at it with
AWS_ENDPOINT_URL_SECRETS_MANAGER and any credentials."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Dict, List


class SecretsManager:
    def __init__(self) -> None:
        self.secrets: Dict[str, str] = {}  # ARN -> SecretString
        self.requests: List[str] = []  # the SecretIds asked for
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                target = self.headers.get("X-Amz-Target", "")
                secret_id = body.get("SecretId", "")
                outer.requests.append(secret_id)
                if target != "secretsmanager.GetSecretValue":
                    self._answer(400, {"__type": "UnknownOperationException", "message": target})
                elif secret_id not in outer.secrets:
                    self._answer(400, {"__type": "ResourceNotFoundException",
                                       "message": "Secrets Manager can't find the specified secret."})
                else:
                    self._answer(200, {"ARN": secret_id, "Name": secret_id.rsplit(":", 1)[-1],
                                       "SecretString": outer.secrets[secret_id], "VersionId": "v1",
                                       "VersionStages": ["AWSCURRENT"], "CreatedDate": 1700000000.0})

            def _answer(self, status: int, payload: dict) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:  # quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> "SecretsManager":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def environment(self) -> Dict[str, str]:
        """What boto3 in the app needs to talk to this stand-in."""
        return {"AWS_ENDPOINT_URL_SECRETS_MANAGER": self.url, "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
