"""Deploy, destroy or run Terraform for one stage of the cloud side
(`make deploy STAGE=x`, `make destroy STAGE=x`; docs/deploy.md).

    python -m scripts.deploy deploy  --stage prod [--region us-east-1] [--state-prefix messaging]
    python -m scripts.deploy destroy --stage prod [...]
    python -m scripts.deploy tf      --stage prod [...] -- apply -var deletion_protection=false

Every command first shows the AWS account, caller and region it is about to
change, and points infra/ at the stage's own state
(s3://<bucket from infra/backend.hcl>/<prefix>/<stage>/terraform.tfstate).

deploy: terraform apply, render the Chalice stage from its outputs, then the
migrations before new code serves, and the throttling of both API Gateway
stages (REST and WebSocket) right after chalice deploy (plan.py has the
order and why); on a first deploy, one more apply for the attachments
bucket's CORS origin, the REST API Chalice just made (cors.py).
destroy: refuses while Aurora deletion protection is on, asks for the stage
name, chalice delete, then terraform destroy (which asks again).
tf: any terraform command against the stage's state.

One module per step. Each holds the step's pure logic (unit-tested in
tests/infra, no AWS, no subprocess) beside the few lines that act; the
acting goes through proc.py (subprocesses) and aws.py (boto3), imported
lazily, so that the pure parts load with the standard library alone:

    __main__.py        the command line
    plan.py            paths, DeployError, the Context, the code steps and their order
    functions.py       the functions' names (chalicelib/functions.py), every one, Chalice's naming rules
    preflight.py       stage, backend.hcl, region, identity: the Context
    terraform.py       init, log group import, apply, output; the tf command
    configure.py       render the Chalice stage (runs render/)
    package.py         chalice package
    migrate.py         the new code, environment and policy into migrate only; invoke it
    chalice_deploy.py  chalice deploy and what it records in .chalice/deployed/<stage>.json
    throttle.py        the API Gateway stage throttling, of the REST and of the WebSocket API
    websocket.py       the WebSocket API id, and the one more chalice deploy it may need
    cors.py            the REST API id as -var rest_api_id (the attachments' CORS origin), and the one
                       more terraform apply a first deploy needs for it
    pipeline.py        the deploy command: the steps in order
    destroy.py         the destroy command
    proc.py, aws.py    the transport
    render/            the config renderer, also on its own:
                       terraform -chdir=infra output -json | python3 -m scripts.deploy.render -
"""
