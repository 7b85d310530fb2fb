"""The pure logic of scripts/deploy.py: names, the state key, the backend
settings it accepts, the order of the code steps (migrations before new
code), the stage throttling it sets and where it finds the REST API. Nothing
here talks to AWS, Terraform or Chalice."""
from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("deploy_script", ROOT / "scripts" / "deploy.py")
deploy = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = deploy  # dataclasses look their module up there
_spec.loader.exec_module(deploy)

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
    app = deploy.app_name((ROOT / ".chalice" / "config.json").read_text())
    assert app == "messaging"
    assert deploy.function_name(app, "prod") == "messaging-prod"
    assert deploy.function_name(app, "prod", "migrate") == "messaging-prod-migrate"


def test_the_migrate_function_is_the_one_app_py_declares():
    assert f'@app.lambda_function(name="{deploy.MIGRATE}")' in (ROOT / "app.py").read_text()


def test_app_name_must_be_there():
    with pytest.raises(deploy.DeployError, match="no app_name"):
        deploy.app_name(json.dumps({"version": "2.0"}))


@pytest.mark.parametrize("stage", ["prod", "dev", "s2", "staging123"])
def test_valid_stages(stage):
    assert deploy.check_stage(stage) == stage


@pytest.mark.parametrize("stage", ["", "p", "Prod", "2prod", "pro-d", "prod_1", "stagingxxxx", "../prod"])
def test_invalid_stages(stage):
    with pytest.raises(deploy.DeployError):
        deploy.check_stage(stage)


def test_stage_rule_is_the_terraform_one():
    variables = (ROOT / "infra" / "variables.tf").read_text()
    block = variables[variables.index('variable "stage"'):]
    assert deploy._STAGE.pattern in block[:block.index("\n}\n")].replace("\\\\", "\\")


# --------------------------------------------------------------------------- state


def test_every_stage_has_its_own_state_key():
    keys = {deploy.state_key("messaging", s) for s in ("prod", "dev", "staging")}
    assert keys == {"messaging/prod/terraform.tfstate", "messaging/dev/terraform.tfstate",
                    "messaging/staging/terraform.tfstate"}
    assert deploy.state_key("team/messaging", "prod") == "team/messaging/prod/terraform.tfstate"


@pytest.mark.parametrize("prefix", ["", "/abs", "a//b", "a/", "a b", "../x"])
def test_bad_state_prefixes(prefix):
    with pytest.raises(deploy.DeployError):
        deploy.state_key(prefix, "prod")


def test_init_is_per_stage_and_reconfigures():
    cmd = deploy.init_command(Path("/x/infra/backend.hcl"), "messaging/dev/terraform.tfstate")
    assert cmd[:3] == ["terraform", f"-chdir={deploy.INFRA}", "init"]
    assert "-reconfigure" in cmd and "-input=false" in cmd
    # The key comes after the file, so it wins even over a key in the file.
    assert cmd.index("-backend-config=/x/infra/backend.hcl") < cmd.index(
        "-backend-config=key=messaging/dev/terraform.tfstate")


def test_the_example_backend_is_accepted():
    settings = deploy.parse_backend_config((ROOT / "infra" / "backend.hcl.example").read_text())
    assert deploy.backend_problems(settings) == []
    assert settings["use_lockfile"] == "true" and settings["encrypt"] == "true" and "key" not in settings


def test_backend_settings_are_parsed_without_comments():
    assert deploy.parse_backend_config(GOOD_BACKEND) == {
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
    assert any(problem in p for p in deploy.backend_problems(deploy.parse_backend_config(text)))


def test_dynamodb_locking_is_the_accepted_alternative():
    text = GOOD_BACKEND.replace("use_lockfile = true", 'dynamodb_table = "terraform-locks"')
    assert deploy.backend_problems(deploy.parse_backend_config(text)) == []


# --------------------------------------------------------------------------- region and terraform arguments


def test_region_order():
    assert deploy.resolve_region("eu-west-1", {"AWS_REGION": "us-east-1"}, "us-west-2") == "eu-west-1"
    assert deploy.resolve_region(None, {"AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "x"}, None) == "us-east-1"
    assert deploy.resolve_region(None, {"AWS_DEFAULT_REGION": "us-east-2"}, "us-west-2") == "us-east-2"
    assert deploy.resolve_region(None, {}, "us-west-2") == "us-west-2"
    with pytest.raises(deploy.DeployError, match="no AWS region"):
        deploy.resolve_region(None, {}, None)
    with pytest.raises(deploy.DeployError, match="does not look like"):
        deploy.resolve_region("useast1", {}, None)


def test_tfvars_region():
    assert deploy.tfvars_region((ROOT / "infra" / "terraform.tfvars.example").read_text()) == "us-east-1"
    assert deploy.tfvars_region('# region = "eu-west-1"\nstage = "prod"\n') is None
    assert deploy.tfvars_region('region = "eu-west-1" # the stack\n') == "eu-west-1"


def test_stage_and_region_go_to_the_commands_that_take_variables():
    apply = deploy.terraform_command(["apply", "-var", "deletion_protection=false"], "dev", "eu-west-1")
    assert apply == ["terraform", f"-chdir={deploy.INFRA}", "apply", "-var", "stage=dev", "-var",
                     "region=eu-west-1", "-var", "deletion_protection=false"]
    assert deploy.terraform_command(["output", "-json"], "dev", "eu-west-1")[2:] == ["output", "-json"]
    assert deploy.terraform_command(["state", "list"], "dev", "eu-west-1")[2:] == ["state", "list"]
    with pytest.raises(deploy.DeployError):
        deploy.terraform_command([], "dev", "eu-west-1")


def test_outputs_region():
    sample = (ROOT / "infra" / "testdata" / "terraform-output.sample.json").read_text()
    assert deploy.outputs_region(sample) == "us-east-1"
    with pytest.raises(deploy.DeployError):
        deploy.outputs_region("{}")


# --------------------------------------------------------------------------- step order


def names(steps):
    return [s.name for s in steps]


def test_existing_stage_migrates_with_the_new_code_before_it_serves():
    steps = names(deploy.plan_code_steps(migrate_exists=True))
    assert steps == ["package", "update_migrate", "invoke_migrate", "chalice_deploy", "throttle", "websocket"]
    assert steps.index("update_migrate") < steps.index("invoke_migrate") < steps.index("chalice_deploy")


def test_first_deploy_creates_the_functions_throttles_then_migrates():
    # Throttled right after the stage comes into existence, before the
    # (possibly long) migration.
    assert names(deploy.plan_code_steps(migrate_exists=False)) == [
        "chalice_deploy", "throttle", "websocket", "invoke_migrate"]


@pytest.mark.parametrize("migrate_exists", [True, False])
def test_the_websocket_step_comes_after_the_deploy_that_records_the_api(migrate_exists):
    steps = names(deploy.plan_code_steps(migrate_exists))
    assert steps.index("chalice_deploy") < steps.index("websocket")


@pytest.mark.parametrize("migrate_exists", [True, False])
def test_throttling_follows_chalice_deploy_at_once(migrate_exists):
    # chalice deploy creates the stage (first deploy) and records the REST API id.
    steps = names(deploy.plan_code_steps(migrate_exists))
    assert steps.index("throttle") == steps.index("chalice_deploy") + 1


def test_every_step_is_handled_by_the_runner():
    source = (ROOT / "scripts" / "deploy.py").read_text()
    for step in {*deploy.plan_code_steps(True), *deploy.plan_code_steps(False)}:
        constant = next(k for k, v in vars(deploy).items() if v is step)
        assert re.search(rf"step is {constant}\b", source), constant


# --------------------------------------------------------------------------- what migrate runs with


def rendered_config(tmp_path: Path) -> str:
    """.chalice/config.json as the renderer writes it from the recorded sample."""
    shutil.copytree(ROOT / ".chalice", tmp_path / ".chalice",
                    ignore=shutil.ignore_patterns("deployments", "deployed", "venv", "policy-*.json"))
    ca = tmp_path / "chalicelib" / "certs" / "rds-ca-bundle.pem"
    ca.parent.mkdir(parents=True)
    ca.write_text("placeholder\n")
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "render_chalice_config.py"), str(SAMPLE),
                           "--project-dir", str(tmp_path)], capture_output=True, text=True, timeout=60, check=False)
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
        assert deploy.function_environment(text, "prod", function) == chalice.environment_variables, function
        assert deploy.function_policy_file(text, "prod", function) == chalice.iam_policy_file, function
    env = deploy.function_environment(text, "prod", deploy.MIGRATE)
    assert (env["DB_SECRET_ARN"], env["APP_DB_SECRET_ARN"]) == (outputs["db_secret_arn"], outputs["db_app_secret_arn"])
    assert deploy.function_policy_file(text, "prod", deploy.MIGRATE) == "policy-prod-migrate.json"
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
        assert deploy.function_policy_file(json.dumps(layers), "prod", "migrate") == (
            chalice.iam_policy_file or "policy-prod.json"), drop


def test_the_migrate_role_is_the_one_chalice_makes():
    # autogen_policy false: "<app>-<stage>-<function>" (chalice/deploy/appgraph.py).
    assert deploy.role_name("messaging", "prod", "migrate") == "messaging-prod-migrate"


# --------------------------------------------------------------------------- results


def test_migrate_result():
    assert deploy.migrate_result(b'{"applied": ["0001_initial"]}', None) == {"applied": ["0001_initial"]}
    assert deploy.migrate_result(b"", None) is None
    with pytest.raises(deploy.DeployError, match="(?s)migrate failed \\(Unhandled\\).*boom.*RequestId"):
        deploy.migrate_result(b'{"errorMessage": "boom"}', "Unhandled", "START RequestId ...")


def test_a_failed_migration_says_which_code_serves():
    assert "old code still serves" in deploy.after_failed_migration(deploy.plan_code_steps(True))
    assert "schema is not applied" in deploy.after_failed_migration(deploy.plan_code_steps(False))


def test_package_size_limit():
    deploy.check_package_size(deploy.MAX_DIRECT_UPLOAD)
    with pytest.raises(deploy.DeployError, match="50 MiB"):
        deploy.check_package_size(deploy.MAX_DIRECT_UPLOAD + 1)


def test_left_behind_names_the_stage():
    notes = deploy.left_behind("messaging", "dev")
    assert any("messaging-dev-final-" in n for n in notes)
    # Terraform owns the migrate log group now (infra/lambda.tf): the destroy deletes it.
    assert not any("log group" in n for n in notes)


# --------------------------------------------------------------------------- API Gateway stage throttling


def test_throttle_values_come_from_the_outputs():
    assert deploy.api_throttle(SAMPLE.read_text()) == (100, 200)


def test_patch_operations_set_the_stage_wide_method_settings():
    assert deploy.throttle_patch_operations(100, 200) == [
        {"op": "replace", "path": "/*/*/throttling/rateLimit", "value": "100"},
        {"op": "replace", "path": "/*/*/throttling/burstLimit", "value": "200"},
    ]
    # UpdateStage takes string values; a fractional rate (a Double) stays one.
    ops = deploy.throttle_patch_operations(12.5, 20.0)
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
    with pytest.raises(deploy.DeployError, match=message):
        deploy.api_throttle(json.dumps(outputs))


def test_throttle_outputs_must_be_there():
    outputs = json.loads(SAMPLE.read_text())
    del outputs["api_throttle_burst_limit"]
    with pytest.raises(deploy.DeployError, match="did the apply finish"):
        deploy.api_throttle(json.dumps(outputs))


def test_the_rest_api_id_is_the_one_chalice_recorded():
    assert deploy.rest_api_id(json.dumps(DEPLOYED)) == "a1b2c3d4e5"


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
    with pytest.raises(deploy.DeployError, match=message):
        deploy.rest_api_id(json.dumps(deployed))


def test_a_deployed_file_that_is_not_json_is_refused():
    with pytest.raises(deploy.DeployError, match="not JSON"):
        deploy.rest_api_id("{")


# --------------------------------------------------------------------------- the WebSocket API


def test_the_websocket_api_id_is_the_one_chalice_recorded():
    assert deploy.websocket_api_id(json.dumps(DEPLOYED)) == "f6g7h8i9j0"
    # The REST API's lookup is not confused by it.
    assert deploy.rest_api_id(json.dumps(DEPLOYED)) == "a1b2c3d4e5"


def test_no_websocket_api_yet():
    assert deploy.websocket_api_id(None) is None  # no deployed file: first deploy
    before_push = json.loads(json.dumps(DEPLOYED))
    before_push["resources"] = [r for r in before_push["resources"] if r["resource_type"] != "websocket_api"]
    assert deploy.websocket_api_id(json.dumps(before_push)) is None  # a stage from before the WebSocket handlers


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
    with pytest.raises(deploy.DeployError, match=message):
        deploy.websocket_api_id(json.dumps(deployed))


def test_the_render_gets_the_websocket_api_id_once_known():
    assert deploy.render_command("prod", None) == [sys.executable, str(deploy.RENDER), "-", "--stage", "prod"]
    assert deploy.render_command("dev", "f6g7h8i9j0") == [
        sys.executable, str(deploy.RENDER), "-", "--stage", "dev", "--websocket-api-id", "f6g7h8i9j0"]


def test_the_render_command_is_one_the_renderer_accepts():
    # The flag deploy.py passes is the renderer's own.
    assert '"--websocket-api-id"' in deploy.RENDER.read_text()


@pytest.mark.parametrize("rendered_with, recorded, again", [
    (None, "f6g7h8i9j0", True),          # first deploy with push: Chalice just made the API
    ("f6g7h8i9j0", "f6g7h8i9j0", False),  # every later deploy: rendered with it already
    ("a1b2c3d4e5", "f6g7h8i9j0", True),  # the API was gone and Chalice made a new one
    (None, None, False),                  # no WebSocket API at all: nothing to render
])
def test_chalice_deploy_runs_once_more_only_for_a_new_websocket_api(rendered_with, recorded, again):
    assert deploy.redeploy_for_websocket(rendered_with, recorded) is again


def test_api_gateway_stage_is_looked_up_as_chalice_does():
    config = {"app_name": "messaging", "stages": {"prod": {"api_gateway_stage": "v1"}, "dev": {}}}
    assert deploy.api_gateway_stage(json.dumps(config), "prod") == "v1"
    assert deploy.api_gateway_stage(json.dumps(config), "dev") == "api"
    assert deploy.api_gateway_stage(json.dumps({**config, "api_gateway_stage": "top"}), "dev") == "top"
    assert deploy.api_gateway_stage(json.dumps(config), "staging") == "api"
    # The repository's own config: dev says "api"; the renderer writes "api" into prod unless set.
    assert deploy.api_gateway_stage((ROOT / ".chalice" / "config.json").read_text(), "dev") == "api"


# --------------------------------------------------------------------------- the migrate log group


def test_the_migrate_log_group_is_the_one_terraform_creates():
    assert deploy.log_group_name("messaging", "prod", deploy.MIGRATE) == "/aws/lambda/messaging-prod-migrate"
    assert deploy.log_group_name("messaging", "prod") == "/aws/lambda/messaging-prod"
    lambda_tf = (ROOT / "infra" / "lambda.tf").read_text()
    resource_type, name = deploy.MIGRATE_LOG_GROUP.split(".")
    block = lambda_tf[lambda_tf.index(f'resource "{resource_type}" "{name}"'):]
    assert 'name              = "/aws/lambda/${local.name}-migrate"' in block[:block.index("\n}\n")]


def test_every_function_log_group_has_its_terraform_address():
    # infra/lambda.tf: migrate's own resource, the rest in the for_each over local.extra_functions.
    lambda_tf = (ROOT / "infra" / "lambda.tf").read_text()
    locals_tf = (ROOT / "infra" / "locals.tf").read_text()
    listed = re.search(r"^  extra_functions = \[(.*)\]$", locals_tf, re.MULTILINE).group(1)
    assert sorted(json.loads(f"[{listed}]")) == sorted(deploy.EXTRA_FUNCTIONS)
    assert 'resource "aws_cloudwatch_log_group" "function"' in lambda_tf
    assert 'name              = "/aws/lambda/${local.name}-${each.key}"' in lambda_tf
    assert deploy.LOG_GROUP_ADDRESSES == {
        "migrate": "aws_cloudwatch_log_group.migrate",
        **{f: f'aws_cloudwatch_log_group.function["{f}"]' for f in deploy.EXTRA_FUNCTIONS}}
    assert deploy.log_group_name("messaging", "prod", "websocket_connect") == "/aws/lambda/messaging-prod-websocket_connect"
    assert not deploy.needs_import(True, ['aws_cloudwatch_log_group.function["push"]'],
                                   deploy.LOG_GROUP_ADDRESSES["push"])
    assert deploy.needs_import(True, [deploy.MIGRATE_LOG_GROUP], deploy.LOG_GROUP_ADDRESSES["push"])


def test_the_functions_are_those_of_app_py():
    app_py = (ROOT / "app.py").read_text()
    for function in ("migrate", "push", "forget_connections"):
        assert f'@app.lambda_function(name="{function}")' in app_py
    for event in ("connect", "message", "disconnect"):
        assert f"app.on_ws_{event}()" in app_py and f"websocket_{event}" in deploy.EXTRA_FUNCTIONS
    # Scheduled: Chalice names the function (and its rule) after `name`.
    assert re.search(r'^@app\.schedule\(.*, name="purge"\)$', app_py, re.MULTILINE) and "purge" in deploy.EXTRA_FUNCTIONS
    assert set(deploy.FUNCTIONS) == {"migrate", "push", "forget_connections", "purge",
                                     "websocket_connect", "websocket_message", "websocket_disconnect"}


def test_an_existing_unmanaged_migrate_log_group_is_imported():
    managed = ["aws_cloudwatch_log_group.lambda", "aws_cloudwatch_log_group.migrate", "aws_vpc.this"]
    assert deploy.needs_import(True, managed[:1] + managed[2:])  # a stage from before infra/lambda.tf had it
    assert deploy.needs_import(True, [])                           # re-created stage, group left by a destroy
    assert not deploy.needs_import(True, managed)                  # already Terraform's
    assert not deploy.needs_import(False, [])                      # new stage: the apply creates it


def test_state_list_output():
    assert deploy.parse_state_list(0, "aws_vpc.this\naws_cloudwatch_log_group.migrate\n", "") == [
        "aws_vpc.this", "aws_cloudwatch_log_group.migrate"]
    assert deploy.parse_state_list(1, "", "\nNo state file was found!\n\nState management commands ...") == []
    with pytest.raises(deploy.DeployError, match="Error loading state"):
        deploy.parse_state_list(1, "", "Error loading state: AccessDenied")
