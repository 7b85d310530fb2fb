"""chalicelib/contract.py is the one source of the error codes and limits:
the server's errors take their status from it, and every generated view of
it (the clients' modules, docs/api.md, openapi.yaml) is current."""
from __future__ import annotations

import inspect

from chalicelib import contract, errors
from scripts import contract as generator


def test_every_generated_view_of_the_contract_is_current():
    assert generator.stale() == [], "run `make contract`"


def test_every_domain_error_has_a_code_of_the_contract():
    classes = [c for _, c in inspect.getmembers(errors, inspect.isclass)
               if issubclass(c, errors.DomainError) and c is not errors.DomainError]
    assert classes
    for cls in classes:
        assert cls.code in contract.BY_NAME, cls


def test_what_a_client_may_retry_is_what_the_server_promises():
    # 429 refuses before doing anything; a 503 may follow a commit whose answer was lost.
    assert contract.BY_NAME["RateLimited"].retry == contract.ALWAYS
    assert contract.BY_NAME["ServiceUnavailable"].retry == contract.IF_IDEMPOTENT
    assert {c.name for c in contract.CODES if c.retry != contract.NEVER} == {"RateLimited", "ServiceUnavailable"}
