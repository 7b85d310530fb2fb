"""What API Gateway's REST proxy integration hands the Lambda entry point:
an event with the request, and the runtime's context object."""
from __future__ import annotations

import json
import time
import uuid
from typing import Any, Dict, Optional


class LambdaContext:
    """The parts of the Lambda runtime's context the app reads, with a
    deadline `remaining_ms` after it is made."""

    function_name = "messaging-test"
    memory_limit_in_mb = 512

    def __init__(self, remaining_ms: float = 10_000) -> None:
        self.aws_request_id = str(uuid.uuid4())
        self._deadline = time.monotonic() + remaining_ms / 1000

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def api_gateway_event(path: str, params: Dict[str, Any], token: Optional[str] = None, method: str = "POST",
                      source_ip: str = "127.0.0.1") -> Dict[str, Any]:
    """A REST API proxy event with the parameters in the query string."""
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": {k: str(v) for k, v in params.items()} or None,
        "multiValueQueryStringParameters": {k: [str(v)] for k, v in params.items()} or None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {"resourcePath": path, "httpMethod": method, "path": f"/api{path}", "stage": "api",
                           "requestId": str(uuid.uuid4()), "identity": {"sourceIp": source_ip}},
        "body": None,
        "isBase64Encoded": False,
    }


def invoke(app: Any, path: str, params: Dict[str, Any], token: Optional[str] = None, *, remaining_ms: float = 10_000,
           method: str = "POST") -> Dict[str, Any]:
    """The app's answer as Lambda returns it, plus its parsed body as "json"."""
    response = app(api_gateway_event(path, params, token, method), LambdaContext(remaining_ms))
    response["json"] = json.loads(response["body"]) if response.get("body") else None
    return response
