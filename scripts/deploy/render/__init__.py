"""Turn the outputs of the infra/ Terraform root into a Chalice stage
(default `prod`):

    terraform -chdir=infra output -json | python3 -m scripts.deploy.render -
    python3 -m scripts.deploy.render outputs.json [--project-dir DIR] [--stage prod]
    ... --websocket-api-id a1b2c3d4e5   (the deploy passes it once Chalice made that API)

Writes seven files of the project's .chalice directory: config.json, whose
stage gets the VPC, environment, policies and per-function settings
(stage.py; every other key of the file and of the stage is kept, so `dev`
and hand-made settings survive), and six least-privilege IAM policies with
the real ARNs (policies.py), one per kind of function (roles.py). The
outputs are checked first (outputs.py), and nothing is written unless all
of them fit; a second run with the same outputs changes nothing (files.py).
Standard library only, run from the repository root.
"""
from .files import render
from .outputs import OutputError

__all__ = ["OutputError", "render"]
