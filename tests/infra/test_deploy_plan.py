"""The pure logic of the deploy (scripts/deploy/): names, the state key, the
backend settings it accepts, the order of the code steps (migrations before
new code), the stage throttling it sets on the REST and the WebSocket API
(its requests checked against botocore's service models) and where it finds
the APIs. Nothing here talks to AWS or deploys (the boto3 calls run against
botocore's Stubber); one test has Terraform evaluate infra/'s function lists
offline (skipped without .venv-infra)."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from scripts.deploy import (configure, cors, destroy, functions, migrate, plan, preflight, terraform, throttle,
                            websocket)
from scripts.deploy.render import __main__ as render_cli
from tests.infra import terraform_eval

ROOT = Path(__file__).resolve().parents[2]

SAMPLE = ROOT / "infra" / "testdata" / "terraform-output.sample.json"

# .chalice/deployed/prod.json as Chalice 1.x writes it (chalice/deploy/deployer.py:
# {"resources": [...], "schema_version": "2.0", "backend": "api"}; one entry
# per resource, keyed by "name", with the values its RecordResource* steps
# stored; _plan_websocketapi records the URL, then the id, merged under one
# name). scripts/check-infra.sh renders the WebSocket API id of it too.
DEPLOYED = json.loads((ROOT / "infra" / "testdata" / "chalice-deployed.sample.json").read_text())

GOOD_BACKEND = """
# comment
bucket       = "state-bucket" # trailing comment
region       = "eu-west-1"
encrypt      = true
kms_key_id   = "arn:aws:kms:eu-west-1:123456789012:key/00000000-0000-0000-0000-000000000000"
use_lockfile = true
"""


# --------------------------------------------------------------------------- names


def test_function_names_follow_chalice():
    app = preflight.app_name((ROOT / ".chalice" / "config.json").read_text())
    assert app == "messaging"
    assert functions.function_name(app, "prod") == "messaging-prod"
    assert functions.function_name(app, "prod", "migrate") == "messaging-prod-migrate"


def test_the_migrate_function_is_the_one_app_py_declares():
    # app.py registers it under chalicelib/functions.py's name, the very
    # constant the deploy uses (scripts/deploy/functions.py imports it).
    from chalicelib import functions as registered

    assert "@app.lambda_function(name=functions.MIGRATE)" in (ROOT / "app.py").read_text()
    assert registered.MIGRATE == functions.MIGRATE == "migrate"


def test_app_name_must_be_there():
    with pytest.raises(plan.DeployError, match="no app_name"):
        preflight.app_name(json.dumps({"version": "2.0"}))


@pytest.mark.parametrize("stage", ["prod", "dev", "s2", "staging123"])
def test_valid_stages(stage):
    assert preflight.check_stage(stage) == stage


@pytest.mark.parametrize("stage", ["", "p", "Prod", "2prod", "pro-d", "prod_1", "stagingxxxx", "../prod"])
def test_invalid_stages(stage):
    with pytest.raises(plan.DeployError):
        preflight.check_stage(stage)


def test_stage_rule_is_the_terraform_one():
    variables = (ROOT / "infra" / "variables.tf").read_text()
    block = variables[variables.index('variable "stage"'):]
    assert preflight.STAGE_PATTERN.pattern in block[:block.index("\n}\n")].replace("\\\\", "\\")


# --------------------------------------------------------------------------- state


def test_every_stage_has_its_own_state_key():
    keys = {preflight.state_key("messaging", s) for s in ("prod", "dev", "staging")}
    assert keys == {"messaging/prod/terraform.tfstate", "messaging/dev/terraform.tfstate",
                    "messaging/staging/terraform.tfstate"}
    assert preflight.state_key("team/messaging", "prod") == "team/messaging/prod/terraform.tfstate"


@pytest.mark.parametrize("prefix", ["", "/abs", "a//b", "a/", "a b", "../x"])
def test_bad_state_prefixes(prefix):
    with pytest.raises(plan.DeployError):
        preflight.state_key(prefix, "prod")


def test_init_is_per_stage_and_reconfigures():
    cmd = terraform.init_command(Path("/x/infra/backend.hcl"), "messaging/dev/terraform.tfstate")
    assert cmd[:3] == ["terraform", f"-chdir={terraform.INFRA}", "init"]
    assert "-reconfigure" in cmd and "-input=false" in cmd
    # The key comes after the file, so it wins even over a key in the file.
    assert cmd.index("-backend-config=/x/infra/backend.hcl") < cmd.index(
        "-backend-config=key=messaging/dev/terraform.tfstate")


def test_the_example_backend_is_accepted():
    settings = preflight.parse_backend_config((ROOT / "infra" / "backend.hcl.example").read_text())
    assert preflight.backend_problems(settings) == []
    assert settings["use_lockfile"] == "true" and settings["encrypt"] == "true" and "key" not in settings


def test_backend_settings_are_parsed_without_comments():
    assert preflight.parse_backend_config(GOOD_BACKEND) == {
        "bucket": "state-bucket", "region": "eu-west-1", "encrypt": "true",
        "kms_key_id": "arn:aws:kms:eu-west-1:123456789012:key/00000000-0000-0000-0000-000000000000",
        "use_lockfile": "true"}


@pytest.mark.parametrize("change, problem", [
    ('key = "messaging/terraform.tfstate"', "sets `key`"),
    ("encrypt = false", "encrypt = true"),
    ("use_lockfile = false", "use_lockfile = true"),
    ('kms_key_id = ""', "kms_key_id"),
    ('bucket = ""', "no `bucket`"),
])
def test_unfit_backends_are_refused(change, problem):
    name = change.split()[0]
    text = "\n".join(line for line in GOOD_BACKEND.splitlines() if not line.startswith(name + " ")) + "\n" + change
    assert any(problem in p for p in preflight.backend_problems(preflight.parse_backend_config(text)))


def test_dynamodb_locking_is_the_accepted_alternative():
    text = GOOD_BACKEND.replace("use_lockfile = true", 'dynamodb_table = "terraform-locks"')
    assert preflight.backend_problems(preflight.parse_backend_config(text)) == []


# --------------------------------------------------------------------------- region and terraform arguments


def test_region_order():
    assert preflight.resolve_region("eu-west-1", {"AWS_REGION": "us-east-1"}, "us-west-2") == "eu-west-1"
    assert preflight.resolve_region(None, {"AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "x"}, None) == "us-east-1"
    assert preflight.resolve_region(None, {"AWS_DEFAULT_REGION": "us-east-2"}, "us-west-2") == "us-east-2"
    assert preflight.resolve_region(None, {}, "us-west-2") == "us-west-2"
    with pytest.raises(plan.DeployError, match="no AWS region"):
        preflight.resolve_region(None, {}, None)
    with pytest.raises(plan.DeployError, match="does not look like"):
        preflight.resolve_region("useast1", {}, None)


def test_tfvars_region():
    assert preflight.tfvars_region((ROOT / "infra" / "terraform.tfvars.example").read_text()) == "us-east-1"
    assert preflight.tfvars_region('# region = "eu-west-1"\nstage = "prod"\n') is None
    assert preflight.tfvars_region('region = "eu-west-1" # the stack\n') == "eu-west-1"


def test_stage_and_region_go_to_the_commands_that_take_variables():
    apply = terraform.terraform_command(["apply", "-var", "deletion_protection=false"], "dev", "eu-west-1")
    assert apply == ["terraform", f"-chdir={terraform.INFRA}", "apply", "-var", "stage=dev", "-var",
                     "region=eu-west-1", "-var", "deletion_protection=false"]
    assert terraform.terraform_command(["output", "-json"], "dev", "eu-west-1")[2:] == ["output", "-json"]
    assert terraform.terraform_command(["state", "list"], "dev", "eu-west-1")[2:] == ["state", "list"]
    with pytest.raises(plan.DeployError):
        terraform.terraform_command([], "dev", "eu-west-1")


def test_the_rest_api_id_goes_to_the_commands_that_take_variables_once_known():
    # The attachments bucket's CORS origin (infra/attachments.tf, var.rest_api_id).
    apply = terraform.terraform_command(["apply"], "dev", "eu-west-1", "a1b2c3d4e5")
    assert apply[2:] == ["apply", "-var", "stage=dev", "-var", "region=eu-west-1", "-var", "rest_api_id=a1b2c3d4e5"]
    assert terraform.terraform_command(["apply"], "dev", "eu-west-1", None)[2:] == [
        "apply", "-var", "stage=dev", "-var", "region=eu-west-1"]
    assert terraform.terraform_command(["output", "-json"], "dev", "eu-west-1", "a1b2c3d4e5")[2:] == ["output", "-json"]


def test_the_rest_api_id_for_cors_is_the_one_chalice_recorded():
    assert cors.rest_api_id(json.dumps(DEPLOYED)) == throttle.rest_api_id(json.dumps(DEPLOYED))
    assert cors.rest_api_id(None) is None  # before the first chalice deploy
    assert cors.rest_api_id(json.dumps({"schema_version": "2.0", "resources": []})) is None
    with pytest.raises(plan.DeployError, match="no single rest_api"):
        cors.rest_api_id(json.dumps({"schema_version": "2.0", "resources": [
            {"name": "rest_api", "resource_type": "rest_api", "rest_api_id": "Not/An/Id"}]}))


@pytest.mark.parametrize("applied_with, recorded, again", [
    (None, "a1b2c3d4e5", True),           # first deploy: the apply had no API yet
    ("a1b2c3d4e5", "a1b2c3d4e5", False),  # the usual deploy: nothing to do
    ("a1b2c3d4e5", "f6g7h8i9j0", True),   # Chalice had to make the API anew
    (None, None, False),                  # no REST API recorded: nothing to allow
])
def test_terraform_applies_once_more_only_for_a_new_rest_api(applied_with, recorded, again):
    assert cors.apply_again_for_cors(applied_with, recorded) is again


def test_the_cors_step_runs_after_the_code_steps():
    source = (ROOT / "scripts" / "deploy" / "pipeline.py").read_text()
    # The id the first apply had is read before it; the second apply after
    # every code step (chalice deploy recorded the API by then).
    assert source.index("applied_with = cors.recorded_id(ctx)") < source.index("terraform.apply(ctx)")
    assert source.index("cors.cors(ctx, applied_with)") > source.index("websocket.websocket(ctx, outputs, rendered_with)")
    variables = (ROOT / "infra" / "variables.tf").read_text()
    block = variables[variables.index('variable "rest_api_id"'):]
    # The variable takes exactly the ids the deploy accepts.
    assert 'condition     = can(regex("^[a-z0-9]{0,32}$", var.rest_api_id))' in block[:block.index("\n}\n")]
    from scripts.deploy.render.outputs import API_ID_PATTERN
    assert API_ID_PATTERN.pattern == r"^[a-z0-9]{1,32}$"


def test_outputs_region():
    sample = (ROOT / "infra" / "testdata" / "terraform-output.sample.json").read_text()
    assert terraform.outputs_region(sample) == "us-east-1"
    with pytest.raises(plan.DeployError):
        terraform.outputs_region("{}")


# --------------------------------------------------------------------------- step order


def names(steps):
    return [s.name for s in steps]


def test_existing_stage_migrates_with_the_new_code_before_it_serves():
    steps = names(plan.plan_code_steps(migrate_exists=True))
    assert steps == ["package", "update_migrate", "invoke_migrate", "chalice_deploy", "throttle", "websocket_throttle",
                     "websocket"]
    assert steps.index("update_migrate") < steps.index("invoke_migrate") < steps.index("chalice_deploy")


def test_first_deploy_creates_the_functions_throttles_then_migrates():
    # Throttled right after the stage comes into existence, before the
    # (possibly long) migration.
    assert names(plan.plan_code_steps(migrate_exists=False)) == [
        "chalice_deploy", "throttle", "websocket_throttle", "websocket", "invoke_migrate"]


@pytest.mark.parametrize("migrate_exists", [True, False])
def test_the_websocket_step_comes_after_the_deploy_that_records_the_api(migrate_exists):
    steps = names(plan.plan_code_steps(migrate_exists))
    assert steps.index("chalice_deploy") < steps.index("websocket")


@pytest.mark.parametrize("migrate_exists", [True, False])
def test_throttling_follows_chalice_deploy_at_once(migrate_exists):
    # chalice deploy creates the stage (first deploy) and records the REST API id.
    steps = names(plan.plan_code_steps(migrate_exists))
    assert steps.index("throttle") == steps.index("chalice_deploy") + 1


@pytest.mark.parametrize("migrate_exists", [True, False])
def test_the_websocket_stage_is_throttled_as_soon_as_its_id_is_recorded(migrate_exists):
    # The chalice deploy just before records the WebSocket API id (on a first
    # deploy too: it makes the API); the WebSocket step's second chalice
    # deploy keeps the API and its stage, so nothing waits for it, and the
    # stage is throttled before the (possibly long) first migration.
    steps = names(plan.plan_code_steps(migrate_exists))
    assert steps.index("websocket_throttle") == steps.index("throttle") + 1 < steps.index("websocket")
    if not migrate_exists:
        assert steps.index("websocket_throttle") < steps.index("invoke_migrate")


def test_every_step_is_handled_by_the_runner():
    source = (ROOT / "scripts" / "deploy" / "pipeline.py").read_text()
    for step in {*plan.plan_code_steps(True), *plan.plan_code_steps(False)}:
        constant = next(k for k, v in vars(plan).items() if v is step)
        assert re.search(rf"step is {constant}\b", source), constant


# --------------------------------------------------------------------------- what migrate runs with


def rendered_config(tmp_path: Path) -> str:
    """.chalice/config.json as the renderer writes it from the recorded sample."""
    shutil.copytree(ROOT / ".chalice", tmp_path / ".chalice",
                    ignore=shutil.ignore_patterns("deployments", "deployed", "venv", "policy-*.json"))
    ca = tmp_path / "chalicelib" / "certs" / "rds-ca-bundle.pem"
    ca.parent.mkdir(parents=True)
    ca.write_text("placeholder\n")
    done = subprocess.run([sys.executable, "-m", configure.RENDER_MODULE, str(SAMPLE), "--project-dir", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return (tmp_path / ".chalice" / "config.json").read_text()


def test_migrate_gets_the_environment_and_policy_chalice_would_give_it(tmp_path: Path):
    # Before it runs, the migrate Lambda gets what `chalice deploy` would set
    # (its master secret and APP_DB_SECRET_ARN, which the previous release may
    # lack), computed as Chalice computes it.
    from chalice.config import Config

    text = rendered_config(tmp_path)
    cfg = json.loads(text)
    outputs = {k: v["value"] for k, v in json.loads(SAMPLE.read_text()).items()}
    for function in ("migrate", "api_handler", "push", "forget_connections", "websocket_message", "purge",
                     "added_later"):
        chalice = Config(chalice_stage="prod", function_name=function, config_from_disk=cfg)
        assert migrate.function_environment(text, "prod", function) == chalice.environment_variables, function
        assert migrate.function_policy_file(text, "prod", function) == chalice.iam_policy_file, function
    env = migrate.function_environment(text, "prod", functions.MIGRATE)
    assert (env["DB_SECRET_ARN"], env["APP_DB_SECRET_ARN"]) == (outputs["db_secret_arn"], outputs["db_app_secret_arn"])
    assert migrate.function_policy_file(text, "prod", functions.MIGRATE) == "policy-prod-migrate.json"
    assert (tmp_path / ".chalice" / "policy-prod-migrate.json").is_file()


def test_policy_file_lookup_order_is_chalices():
    from chalice.config import Config

    layers = {
        "iam_policy_file": "top.json",
        "lambda_functions": {"migrate": {"iam_policy_file": "top-migrate.json"}},
        "stages": {"prod": {"iam_policy_file": "stage.json",
                            "lambda_functions": {"migrate": {"iam_policy_file": "stage-migrate.json"}}}},
    }
    for drop in (None, ("stages", "prod", "lambda_functions"), ("stages", "prod", "iam_policy_file"),
                 ("lambda_functions",), ("iam_policy_file",)):
        if drop:
            scope = layers
            for key in drop[:-1]:
                scope = scope[key]
            scope.pop(drop[-1])
        chalice = Config(chalice_stage="prod", function_name="migrate", config_from_disk=json.loads(json.dumps(layers)))
        assert migrate.function_policy_file(json.dumps(layers), "prod", "migrate") == (
            chalice.iam_policy_file or "policy-prod.json"), drop


def test_the_migrate_role_is_the_one_chalice_makes():
    # autogen_policy false: "<app>-<stage>-<function>" (chalice/deploy/appgraph.py).
    assert functions.role_name("messaging", "prod", "migrate") == "messaging-prod-migrate"


# --------------------------------------------------------------------------- results


def test_migrate_result():
    assert migrate.migrate_result(b'{"applied": ["0001_initial"]}', None) == {"applied": ["0001_initial"]}
    assert migrate.migrate_result(b"", None) is None
    with pytest.raises(plan.DeployError, match="(?s)migrate failed \\(Unhandled\\).*boom.*RequestId"):
        migrate.migrate_result(b'{"errorMessage": "boom"}', "Unhandled", "START RequestId ...")


def test_a_failed_migration_says_which_code_serves():
    assert "old code still serves" in plan.after_failed_migration(plan.plan_code_steps(True))
    assert "schema is not applied" in plan.after_failed_migration(plan.plan_code_steps(False))


def test_package_size_limit():
    migrate.check_package_size(migrate.MAX_DIRECT_UPLOAD)
    with pytest.raises(plan.DeployError, match="50 MiB"):
        migrate.check_package_size(migrate.MAX_DIRECT_UPLOAD + 1)


def test_left_behind_names_the_stage():
    notes = destroy.left_behind("messaging", "dev")
    assert any("messaging-dev-final-" in n for n in notes)
    # Terraform owns the migrate log group now (infra/lambda.tf): the destroy deletes it.
    assert not any("log group" in n for n in notes)


# --------------------------------------------------------------------------- API Gateway stage throttling


def test_throttle_values_come_from_the_outputs():
    assert throttle.api_throttle(SAMPLE.read_text()) == (100, 200)


def test_patch_operations_set_the_stage_wide_method_settings():
    assert throttle.throttle_patch_operations(100, 200) == [
        {"op": "replace", "path": "/*/*/throttling/rateLimit", "value": "100"},
        {"op": "replace", "path": "/*/*/throttling/burstLimit", "value": "200"},
    ]
    # UpdateStage takes string values; a fractional rate (a Double) stays one.
    ops = throttle.throttle_patch_operations(12.5, 20.0)
    assert [o["value"] for o in ops] == ["12.5", "20"]
    assert all(isinstance(o["value"], str) for o in ops)


@pytest.mark.parametrize("rate, burst, message", [
    (0, 200, "api_throttle_rate_limit"),
    (10_001, 200, "api_throttle_rate_limit"),
    ("100", 200, "api_throttle_rate_limit"),
    (True, 200, "api_throttle_rate_limit"),
    (100, 0, "api_throttle_burst_limit"),
    (100, 5_001, "api_throttle_burst_limit"),
    (100, 2.5, "api_throttle_burst_limit"),
])
def test_throttle_values_out_of_bounds_are_refused(rate, burst, message):
    outputs = json.loads(SAMPLE.read_text())
    outputs["api_throttle_rate_limit"]["value"] = rate
    outputs["api_throttle_burst_limit"]["value"] = burst
    with pytest.raises(plan.DeployError, match=message):
        throttle.api_throttle(json.dumps(outputs))


def test_throttle_outputs_must_be_there():
    outputs = json.loads(SAMPLE.read_text())
    del outputs["api_throttle_burst_limit"]
    with pytest.raises(plan.DeployError, match="did the apply finish"):
        throttle.api_throttle(json.dumps(outputs))


def test_the_rest_api_id_is_the_one_chalice_recorded():
    assert throttle.rest_api_id(json.dumps(DEPLOYED)) == "a1b2c3d4e5"


@pytest.mark.parametrize("change, message", [
    (lambda d: d["resources"].pop(), "no single rest_api"),
    (lambda d: d["resources"][-1].pop("rest_api_id"), "no single rest_api"),
    (lambda d: d["resources"][-1].update(rest_api_id="../x"), "no single rest_api"),
    (lambda d: d["resources"].append(dict(d["resources"][-1])), "no single rest_api"),
    (lambda d: d.update(schema_version="1.0"), "schema_version 2.0"),
])
def test_a_deployed_file_without_one_rest_api_is_refused(change, message):
    deployed = json.loads(json.dumps(DEPLOYED))
    change(deployed)
    with pytest.raises(plan.DeployError, match=message):
        throttle.rest_api_id(json.dumps(deployed))


def test_a_deployed_file_that_is_not_json_is_refused():
    with pytest.raises(plan.DeployError, match="not JSON"):
        throttle.rest_api_id("{")


def test_the_rest_update_stage_request_fits_the_service_model():
    # What aws.set_throttling sends, checked by botocore's own validator
    # against the apigateway UpdateStage input shape of the installed botocore.
    from botocore.validate import validate_parameters

    validate_parameters({"restApiId": "a1b2c3d4e5", "stageName": "api",
                         "patchOperations": throttle.throttle_patch_operations(12.5, 20)},
                        update_stage_input("apigateway"))


# --------------------------------------------------------------------------- WebSocket API stage throttling


def update_stage_input(service: str):
    import botocore.session

    return botocore.session.get_session().get_service_model(service).operation_model("UpdateStage").input_shape


def test_websocket_throttle_values_come_from_the_outputs():
    assert throttle.websocket_throttle(SAMPLE.read_text()) == (50, 100)


def test_the_websocket_stage_gets_default_route_settings():
    settings = throttle.websocket_route_settings(50, 100)
    assert throttle.websocket_stage_update("f6g7h8i9j0", "api", settings) == {
        "ApiId": "f6g7h8i9j0",
        "StageName": "api",
        "DefaultRouteSettings": {"ThrottlingRateLimit": 50.0, "ThrottlingBurstLimit": 100},
    }
    # Typed as the model has them: the rate a Double, the burst an Integer
    # (Terraform's numbers may arrive as 100.0).
    settings = throttle.websocket_route_settings(12.5, 100.0)
    assert settings == {"ThrottlingRateLimit": 12.5, "ThrottlingBurstLimit": 100}
    assert isinstance(settings["ThrottlingRateLimit"], float) and isinstance(settings["ThrottlingBurstLimit"], int)
    # Both limits, always: one left unset has been reported to act as 0.
    assert set(settings) == {"ThrottlingRateLimit", "ThrottlingBurstLimit"}


@pytest.mark.parametrize("rate, burst", [(50, 100), (12.5, 100.0), (0.5, 1), (10_000, 5_000)])
def test_the_websocket_update_stage_request_fits_the_service_model(rate, burst):
    # The request, built from values the outputs' checks accept, is what
    # botocore's apigatewayv2 UpdateStage takes: the names
    # (ApiId, StageName, DefaultRouteSettings.ThrottlingRateLimit / ThrottlingBurstLimit),
    # the required members and the types; validate_parameters raises otherwise.
    from botocore.validate import validate_parameters

    outputs = json.loads(SAMPLE.read_text())
    outputs["websocket_throttle_rate_limit"]["value"] = rate
    outputs["websocket_throttle_burst_limit"]["value"] = burst
    settings = throttle.websocket_route_settings(*throttle.websocket_throttle(json.dumps(outputs)))
    validate_parameters(throttle.websocket_stage_update("f6g7h8i9j0", "api", settings), update_stage_input("apigatewayv2"))


@pytest.mark.parametrize("request_, problem", [
    # REST's lowercase wire names are not the parameters.
    ({"ApiId": "f6g7h8i9j0", "StageName": "api", "DefaultRouteSettings": {"throttlingRateLimit": 50.0}},
     "Unknown parameter"),
    ({"ApiId": "f6g7h8i9j0", "StageName": "api", "DefaultRouteSettings": {"ThrottlingBurstLimit": 100.0}},
     "Invalid type"),
    ({"ApiId": "f6g7h8i9j0", "StageName": "api", "DefaultRouteSettings": {"ThrottlingRateLimit": "50"}},
     "Invalid type"),
    ({"ApiId": "f6g7h8i9j0", "DefaultRouteSettings": {"ThrottlingRateLimit": 50.0}}, "Missing required parameter"),
])
def test_the_service_model_check_catches_a_wrong_request(request_, problem):
    # The check above would notice a misnamed or mistyped parameter.
    from botocore.exceptions import ParamValidationError
    from botocore.validate import validate_parameters

    with pytest.raises(ParamValidationError, match=problem):
        validate_parameters(request_, update_stage_input("apigatewayv2"))


@pytest.mark.parametrize("rate, burst, message", [
    (0, 100, "websocket_throttle_rate_limit"),
    (10_001, 100, "websocket_throttle_rate_limit"),
    ("50", 100, "websocket_throttle_rate_limit"),
    (False, 100, "websocket_throttle_rate_limit"),
    (50, 0, "websocket_throttle_burst_limit"),
    (50, 5_001, "websocket_throttle_burst_limit"),
    (50, 2.5, "websocket_throttle_burst_limit"),
])
def test_websocket_throttle_values_out_of_bounds_are_refused(rate, burst, message):
    outputs = json.loads(SAMPLE.read_text())
    outputs["websocket_throttle_rate_limit"]["value"] = rate
    outputs["websocket_throttle_burst_limit"]["value"] = burst
    with pytest.raises(plan.DeployError, match=message):
        throttle.websocket_throttle(json.dumps(outputs))


def test_websocket_throttle_outputs_must_be_there():
    outputs = json.loads(SAMPLE.read_text())
    del outputs["websocket_throttle_rate_limit"]
    with pytest.raises(plan.DeployError, match="no websocket_throttle_rate_limit .*did the apply finish"):
        throttle.websocket_throttle(json.dumps(outputs))


def test_the_websocket_bounds_are_those_of_the_variables():
    # The deploy checks the outputs by the variables' validation bounds.
    variables = (ROOT / "infra" / "variables.tf").read_text()
    for name, condition in (
            ("websocket_throttle_rate_limit", "var.{0} > 0 && var.{0} <= 10000"),
            ("websocket_throttle_burst_limit", "var.{0} >= 1 && var.{0} <= 5000 && floor(var.{0}) == var.{0}")):
        block = variables[variables.index(f'variable "{name}"'):]
        block = block[:block.index("\n}\n")]
        assert "type        = number" in block and f"condition     = {condition.format(name)}" in block, name
    outputs = (ROOT / "infra" / "outputs.tf").read_text()
    for name in throttle.WEBSOCKET_THROTTLE_OUTPUTS:
        assert f'output "{name}" {{' in outputs and f"value       = var.{name}\n" in outputs, name


class StubbedSession:
    """A boto3 Session whose clients answer from botocore's Stubber: the
    call is serialized and its parameters validated against the service
    model as for AWS, the expected parameters compared, nothing is sent."""

    def __init__(self, service: str, operation: str, response: dict, expected: dict):
        import boto3

        self._session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                      region_name="us-east-1")
        self._service, self._operation, self._response, self._expected = service, operation, response, expected
        self.stubbers = []

    def client(self, service, **kwargs):
        from botocore.stub import Stubber

        assert service == self._service
        made = self._session.client(service, **kwargs)
        stubber = Stubber(made)
        stubber.add_response(self._operation, self._response, self._expected)
        stubber.activate()
        self.stubbers.append(stubber)
        return made


def test_aws_sends_the_websocket_request_to_apigatewayv2_update_stage():
    from scripts.deploy import aws

    request = throttle.websocket_stage_update("f6g7h8i9j0", "api", throttle.websocket_route_settings(50, 100))
    now = {"ThrottlingRateLimit": 50.0, "ThrottlingBurstLimit": 100, "DetailedMetricsEnabled": False}
    session = StubbedSession("apigatewayv2", "update_stage", {"StageName": "api", "DefaultRouteSettings": now}, request)
    assert aws.set_websocket_throttling(session, "us-east-1", request) == now
    [stubber] = session.stubbers
    stubber.assert_no_pending_responses()


def test_aws_sends_the_rest_patch_to_apigateway_update_stage():
    from scripts.deploy import aws

    operations = throttle.throttle_patch_operations(100, 200)
    expected = {"restApiId": "a1b2c3d4e5", "stageName": "api", "patchOperations": operations}
    now = {"throttlingRateLimit": 100.0, "throttlingBurstLimit": 200}
    session = StubbedSession("apigateway", "update_stage", {"stageName": "api", "methodSettings": {"*/*": now}},
                             expected)
    assert aws.set_throttling(session, "us-east-1", "a1b2c3d4e5", "api", operations) == now
    session.stubbers[0].assert_no_pending_responses()


def deploy_context() -> plan.Context:
    return plan.Context(stage="prod", region="us-east-1", app="messaging", key="messaging/prod/terraform.tfstate",
                        bucket="state-bucket", session=object(), env={}, chalice="chalice")


def test_the_websocket_stage_of_the_recorded_api_is_throttled(monkeypatch, capsys):
    from scripts.deploy import aws, chalice_deploy

    sent = []
    monkeypatch.setattr(chalice_deploy, "deployed_text", lambda ctx: json.dumps(DEPLOYED))
    monkeypatch.setattr(aws, "set_websocket_throttling",
                        lambda session, region, request: sent.append((region, request)) or
                        request["DefaultRouteSettings"])
    settings = throttle.websocket_route_settings(50, 100)
    assert throttle.throttle_websocket(deploy_context(), settings) == "f6g7h8i9j0"
    # The stage name is the one Chalice gives both APIs (api_gateway_stage).
    stage = throttle.api_gateway_stage(plan.CHALICE_CONFIG.read_text(), "prod")
    assert sent == [("us-east-1", {"ApiId": "f6g7h8i9j0", "StageName": stage, "DefaultRouteSettings": settings})]
    assert f"WebSocket API f6g7h8i9j0 stage {stage}: throttling rate 50.0/s, burst 100" in capsys.readouterr().out


def test_no_websocket_api_no_websocket_throttling(monkeypatch, capsys):
    from scripts.deploy import aws, chalice_deploy

    before_push = json.loads(json.dumps(DEPLOYED))
    before_push["resources"] = [r for r in before_push["resources"] if r["resource_type"] != "websocket_api"]
    monkeypatch.setattr(chalice_deploy, "deployed_text", lambda ctx: json.dumps(before_push))
    monkeypatch.setattr(aws, "set_websocket_throttling", lambda *a: pytest.fail("no API to throttle"))
    assert throttle.throttle_websocket(deploy_context(), throttle.websocket_route_settings(50, 100)) is None
    assert "no WebSocket stage to throttle" in capsys.readouterr().out


def test_a_failed_websocket_throttling_says_the_code_is_deployed(monkeypatch):
    from botocore.exceptions import ClientError

    from scripts.deploy import aws, chalice_deploy

    def refuse(session, region, request):
        raise ClientError({"Error": {"Code": "TooManyRequestsException", "Message": "slow down"}}, "UpdateStage")

    monkeypatch.setattr(chalice_deploy, "deployed_text", lambda ctx: json.dumps(DEPLOYED))
    monkeypatch.setattr(aws, "set_websocket_throttling", refuse)
    with pytest.raises(plan.DeployError, match=r"(?s)^AWS: .*slow down.*\nThe new code is deployed but the stage "
                                               r"throttling of WebSocket API f6g7h8i9j0 stage .* is not set; "
                                               r"deploy again\.$"):
        throttle.throttle_websocket(deploy_context(), throttle.websocket_route_settings(50, 100))


def test_a_missing_deployed_file_is_an_error_for_the_websocket_throttling(monkeypatch):
    from scripts.deploy import chalice_deploy

    monkeypatch.setattr(chalice_deploy, "deployed_text", lambda ctx: None)
    with pytest.raises(plan.DeployError, match="missing after chalice deploy: the WebSocket stage throttling"):
        throttle.throttle_websocket(deploy_context(), throttle.websocket_route_settings(50, 100))


# --------------------------------------------------------------------------- the WebSocket API


def test_the_websocket_api_id_is_the_one_chalice_recorded():
    assert websocket.websocket_api_id(json.dumps(DEPLOYED)) == "f6g7h8i9j0"
    # The REST API's lookup is not confused by it.
    assert throttle.rest_api_id(json.dumps(DEPLOYED)) == "a1b2c3d4e5"


def test_no_websocket_api_yet():
    assert websocket.websocket_api_id(None) is None  # no deployed file: first deploy
    before_push = json.loads(json.dumps(DEPLOYED))
    before_push["resources"] = [r for r in before_push["resources"] if r["resource_type"] != "websocket_api"]
    assert websocket.websocket_api_id(json.dumps(before_push)) is None  # a stage from before the WebSocket handlers


def _ws(d):
    return next(r for r in d["resources"] if r["resource_type"] == "websocket_api")


@pytest.mark.parametrize("change, message", [
    (lambda d: _ws(d).pop("websocket_api_id"), "no single websocket_api"),
    (lambda d: _ws(d).update(websocket_api_id="../x"), "no single websocket_api"),
    (lambda d: d["resources"].append(dict(_ws(d))), "no single websocket_api"),
    (lambda d: d.update(schema_version="1.0"), "schema_version 2.0"),
])
def test_a_deployed_file_with_a_broken_websocket_api_is_refused(change, message):
    deployed = json.loads(json.dumps(DEPLOYED))
    change(deployed)
    with pytest.raises(plan.DeployError, match=message):
        websocket.websocket_api_id(json.dumps(deployed))


def test_the_render_gets_the_websocket_api_id_once_known():
    render = [sys.executable, "-m", "scripts.deploy.render"]
    assert configure.render_command("prod", None) == [*render, "-", "--stage", "prod"]
    assert configure.render_command("dev", "f6g7h8i9j0") == [
        *render, "-", "--stage", "dev", "--websocket-api-id", "f6g7h8i9j0"]


def test_the_render_command_is_one_the_renderer_accepts():
    # The flag the deploy passes is the renderer's own.
    assert '"--websocket-api-id"' in Path(render_cli.__file__).read_text()
    args = render_cli.parser().parse_args(configure.render_command("dev", "f6g7h8i9j0")[3:])
    assert (args.outputs, args.stage, args.websocket_api_id) == ("-", "dev", "f6g7h8i9j0")


@pytest.mark.parametrize("rendered_with, recorded, again", [
    (None, "f6g7h8i9j0", True),          # first deploy with push: Chalice just made the API
    ("f6g7h8i9j0", "f6g7h8i9j0", False),  # every later deploy: rendered with it already
    ("a1b2c3d4e5", "f6g7h8i9j0", True),  # the API was gone and Chalice made a new one
    (None, None, False),                  # no WebSocket API at all: nothing to render
])
def test_chalice_deploy_runs_once_more_only_for_a_new_websocket_api(rendered_with, recorded, again):
    assert websocket.redeploy_for_websocket(rendered_with, recorded) is again


def test_api_gateway_stage_is_looked_up_as_chalice_does():
    config = {"app_name": "messaging", "stages": {"prod": {"api_gateway_stage": "v1"}, "dev": {}}}
    assert throttle.api_gateway_stage(json.dumps(config), "prod") == "v1"
    assert throttle.api_gateway_stage(json.dumps(config), "dev") == "api"
    assert throttle.api_gateway_stage(json.dumps({**config, "api_gateway_stage": "top"}), "dev") == "top"
    assert throttle.api_gateway_stage(json.dumps(config), "staging") == "api"
    # The repository's own config: dev says "api"; the renderer writes "api" into prod unless set.
    assert throttle.api_gateway_stage((ROOT / ".chalice" / "config.json").read_text(), "dev") == "api"


# --------------------------------------------------------------------------- the migrate log group


def test_the_migrate_log_group_is_the_one_terraform_creates():
    assert functions.log_group_name("messaging", "prod", functions.MIGRATE) == "/aws/lambda/messaging-prod-migrate"
    assert functions.log_group_name("messaging", "prod") == "/aws/lambda/messaging-prod"
    lambda_tf = (ROOT / "infra" / "lambda.tf").read_text()
    resource_type, name = terraform.MIGRATE_LOG_GROUP.split(".")
    block = lambda_tf[lambda_tf.index(f'resource "{resource_type}" "{name}"'):]
    assert 'name              = "/aws/lambda/${local.name}-${local.functions.migrate}"' in block[:block.index("\n}\n")]
    # local.functions is chalicelib/functions.json's list, the deploy's too.
    assert 'functions = jsondecode(file("${path.module}/../chalicelib/functions.json")).functions' in (
        ROOT / "infra" / "locals.tf").read_text()


def test_every_function_log_group_has_its_terraform_address():
    # infra/lambda.tf: migrate's own resource, the rest in the for_each over
    # local.extra_functions: every function of chalicelib/functions.json but
    # the API handler and migrate (what Terraform makes of it:
    # test_terraform_computes_the_deploys_function_lists).
    lambda_tf = (ROOT / "infra" / "lambda.tf").read_text()
    locals_tf = (ROOT / "infra" / "locals.tf").read_text()
    assert ("extra_functions = setsubtract(keys(local.lambda_functions), "
            "[local.functions.api_handler, local.functions.migrate])") in locals_tf
    assert "  for_each = toset(local.extra_functions)\n" in lambda_tf
    listed = json.loads(functions.FUNCTIONS_FILE.read_text())["functions"]
    every = [name for value in listed.values() for name in (value if isinstance(value, list) else [value])]
    assert sorted(set(every) - {listed["api_handler"], listed["migrate"]}) == sorted(functions.EXTRA_FUNCTIONS)
    assert 'resource "aws_cloudwatch_log_group" "function"' in lambda_tf
    assert 'name              = "/aws/lambda/${local.name}-${each.key}"' in lambda_tf
    assert terraform.LOG_GROUP_ADDRESSES == {
        "migrate": "aws_cloudwatch_log_group.migrate",
        **{f: f'aws_cloudwatch_log_group.function["{f}"]' for f in functions.EXTRA_FUNCTIONS}}
    assert functions.log_group_name("messaging", "prod", "websocket_connect") == "/aws/lambda/messaging-prod-websocket_connect"
    assert not terraform.needs_import(True, ['aws_cloudwatch_log_group.function["push"]'],
                                   terraform.LOG_GROUP_ADDRESSES["push"])
    assert terraform.needs_import(True, [terraform.MIGRATE_LOG_GROUP], terraform.LOG_GROUP_ADDRESSES["push"])


@pytest.mark.skipif(not terraform_eval.available(), reason=terraform_eval.SKIP_REASON)
def test_terraform_computes_the_deploys_function_lists(tmp_path: Path):
    # infra/locals.tf's own lines, evaluated by Terraform beside a copy of
    # chalicelib/functions.json: the log groups it makes (and imports) and the
    # function names it alarms on are the deploy's.
    locals_tf = (ROOT / "infra" / "locals.tf").read_text()
    lines = [re.search(rf"^  {name} += .*$", locals_tf, re.MULTILINE).group(0)
             for name in ("functions", "lambda_functions", "extra_functions", "push_function_name")]
    main = ('locals {\n  name = "messaging-prod"\n' + "\n".join(lines) + "\n}\n"
            + "".join(f'output "{n}" {{\n  value = local.{n}\n}}\n'
                      for n in ("lambda_functions", "extra_functions", "push_function_name")))
    values = terraform_eval.evaluate(tmp_path, {"infra/main.tf": main,
                                                "chalicelib/functions.json": functions.FUNCTIONS_FILE.read_text()},
                                     module="infra")
    assert values["extra_functions"] == sorted(functions.EXTRA_FUNCTIONS)
    assert values["lambda_functions"] == {f: functions.function_name("messaging", "prod", f)
                                          for f in functions.FUNCTIONS}
    assert values["push_function_name"] == functions.function_name("messaging", "prod", functions.PUSH)


def test_the_functions_are_those_of_app_py():
    from chalicelib import functions as registered  # the names app.py registers them under

    app_py = (ROOT / "app.py").read_text()
    for constant, function in (("MIGRATE", "migrate"), ("PUSH", "push"), ("FORGET_CONNECTIONS", "forget_connections")):
        assert f"@app.lambda_function(name=functions.{constant})" in app_py
        assert getattr(registered, constant) == function and function in functions.FUNCTIONS
    assert registered.WEBSOCKET_HANDLERS == functions.WEBSOCKET_HANDLERS
    for event in ("connect", "message", "disconnect"):
        assert f"app.on_ws_{event}()" in app_py and f"websocket_{event}" in functions.EXTRA_FUNCTIONS
    # Scheduled: Chalice names the function (and its rule) after `name`.
    assert re.search(r'^@app\.schedule\(.*, name=functions\.PURGE\)$', app_py, re.MULTILINE)
    assert registered.PURGE == "purge" and "purge" in functions.EXTRA_FUNCTIONS
    assert set(functions.FUNCTIONS) == {"api_handler", "migrate", "push", "forget_connections", "purge",
                                        "websocket_connect", "websocket_message", "websocket_disconnect"}


def test_an_existing_unmanaged_migrate_log_group_is_imported():
    managed = ["aws_cloudwatch_log_group.lambda", "aws_cloudwatch_log_group.migrate", "aws_vpc.this"]
    assert terraform.needs_import(True, managed[:1] + managed[2:])  # a stage from before infra/lambda.tf had it
    assert terraform.needs_import(True, [])                           # re-created stage, group left by a destroy
    assert not terraform.needs_import(True, managed)                  # already Terraform's
    assert not terraform.needs_import(False, [])                      # new stage: the apply creates it


def test_state_list_output():
    assert terraform.parse_state_list(0, "aws_vpc.this\naws_cloudwatch_log_group.migrate\n", "") == [
        "aws_vpc.this", "aws_cloudwatch_log_group.migrate"]
    assert terraform.parse_state_list(1, "", "\nNo state file was found!\n\nState management commands ...") == []
    with pytest.raises(plan.DeployError, match="Error loading state"):
        terraform.parse_state_list(1, "", "Error loading state: AccessDenied")
