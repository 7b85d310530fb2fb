"""The app's Lambda functions by the names Chalice gives them, as
chalicelib/functions.py reads them from chalicelib/functions.json (the one
list: app.py registers the functions under these names, infra/ and
scripts/check-infra.sh read the file too), and Chalice's rules for the names
it derives from them. Standard library only, as chalicelib/functions.py is:
the renderer runs on a bare python3."""
from __future__ import annotations

from typing import List

from chalicelib.functions import ALL, API_HANDLER, FORGET_CONNECTIONS, MIGRATE, PURGE, PUSH, WEBSOCKET_HANDLERS
from chalicelib.settings import PROJECT_ROOT

__all__ = ["API_HANDLER", "EXTRA_FUNCTIONS", "FORGET_CONNECTIONS", "FUNCTIONS", "FUNCTIONS_FILE", "MIGRATE", "PURGE",
           "PUSH", "WEBSOCKET_HANDLERS", "function_name", "log_group_name", "role_name"]

FUNCTIONS_FILE = PROJECT_ROOT / "chalicelib" / "functions.json"
# Every function, in the file's order (the order the rendered policies name them in).
FUNCTIONS: List[str] = ALL
# Every function but the API handler and migrate (whose log groups have
# resources and outputs of their own): local.extra_functions in
# infra/locals.tf, the groups of output function_log_group_names, which the
# deploy imports when Lambda made them before Terraform managed them.
EXTRA_FUNCTIONS: List[str] = sorted(set(FUNCTIONS) - {API_HANDLER, MIGRATE})


def function_name(app: str, stage: str, function: str = API_HANDLER) -> str:
    """Chalice's function names: "<app>-<stage>" for the API handler (no
    suffix, for backward compatibility), "<app>-<stage>-<name>" for the rest."""
    api = f"{app}-{stage}"
    return api if function == API_HANDLER else f"{api}-{function}"


def log_group_name(app: str, stage: str, function: str = API_HANDLER) -> str:
    return f"/aws/lambda/{function_name(app, stage, function)}"


def role_name(app: str, stage: str, function: str) -> str:
    """The role Chalice makes for a function when autogen_policy is false (as
    the renderer sets it): "<app>-<stage>-<function>", whose one inline
    policy has the role's name (chalice/deploy/appgraph.py, planner.py)."""
    return f"{app}-{stage}-{function}"
