"""A stand-in for AWS Secrets Manager on a local port, speaking its real wire
format (JSON 1.1: POST / with `X-Amz-Target: secretsmanager.GetSecretValue`),
so the app's own boto3 code fetches from it. Point boto3 at it with
AWS_ENDPOINT_URL_SECRETS_MANAGER and any credentials."""
from __future__ import annotations

import json
from typing import Dict, List

from tests.support.stand_in import QuietHandler, StandIn


class SecretsManager(StandIn):
    def __init__(self) -> None:
        self.secrets: Dict[str, str] = {}  # ARN -> SecretString
        self.requests: List[str] = []  # the SecretIds asked for
        outer = self

        class Handler(QuietHandler):
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
                self.answer(status, json.dumps(payload).encode(), "application/x-amz-json-1.1")

        super().__init__(Handler)

    def environment(self) -> Dict[str, str]:
        """What boto3 in the app needs to talk to this stand-in."""
        return {"AWS_ENDPOINT_URL_SECRETS_MANAGER": self.url, "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
