"""The deployment package ships compiled bytecode (scripts/deploy/bytecode.py):
`chalice package` as the deploy runs it (chalice_command), of a copy of the
project whose chalicelib/__pycache__ holds a stale .pyc; then the zip's
files, and a fresh interpreter importing from them as a Lambda would.
Builds the real package (pip's cache makes it a few seconds)."""
from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Dict

import pytest

from scripts.deploy import bytecode, chalice_deploy, preflight
from scripts.deploy.plan import ROOT

APP_CODE = ("app.py", "chalicelib/")
STALE = f"chalicelib/__pycache__/settings.{sys.implementation.cache_tag}.pyc"


@pytest.fixture(scope="module")
def package(tmp_path_factory) -> Dict[str, Path]:
    tmp = tmp_path_factory.mktemp("bytecode")
    project = tmp / "project"
    (project / ".chalice").mkdir(parents=True)
    shutil.copy(ROOT / "app.py", project)
    shutil.copy(ROOT / "requirements.txt", project)
    shutil.copy(ROOT / ".chalice" / "config.json", project / ".chalice")
    shutil.copytree(ROOT / "chalicelib", project / "chalicelib", ignore=shutil.ignore_patterns("__pycache__"))
    # A timestamp-based .pyc as a developer's tree has them (never valid in a
    # zip stamped 1980-01-01): the packager must not ship it.
    (project / STALE).parent.mkdir()
    (project / STALE).write_bytes(importlib.util.MAGIC_NUMBER + b"\0" * 12 + b"stale")
    out = tmp / "out"
    cmd = chalice_deploy.chalice_command(preflight.find_chalice(), "package", "dev", str(out))
    cmd[cmd.index(str(ROOT))] = str(project)
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1"}
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return {"zip": out / "deployment.zip", "project": project, "tmp": tmp}


def test_package_and_deploy_run_chalice_through_the_bytecode_wrapper():
    chalice = preflight.find_chalice()
    for command in ("package", "deploy"):
        python, *rest = chalice_deploy.chalice_command(chalice, command, "prod", "out")
        assert Path(python).samefile(Path(chalice).parent / "python")  # the .venv's, beside its chalice
        assert rest == ["-m", "scripts.deploy.bytecode", "--project-dir", str(ROOT), command, "--stage", "prod", "out"]
    # Nothing to package: chalice itself, as before.
    assert chalice_deploy.chalice_command(chalice, "delete", "prod") == [
        chalice, "--project-dir", str(ROOT), "delete", "--stage", "prod"]
    assert chalice_deploy.chalice_command("chalice", "deploy", "prod")[:3] == [sys.executable, "-m", bytecode.__name__]


def test_every_module_has_its_hash_based_pyc(package):
    with zipfile.ZipFile(package["zip"]) as z:
        names = z.namelist()
        assert len(names) == len(set(names)), "duplicate entries"
        sources = [n for n in names if n.endswith(".py")]
        expected = {importlib.util.cache_from_source(n, optimization=""): n for n in sources}
        compiled = {n for n in names if n.endswith(".pyc")}
        assert compiled == set(expected), (sorted(set(expected) - compiled)[:5], sorted(compiled - set(expected))[:5])
        for pyc, source in expected.items():
            data = z.read(pyc)
            flags = int.from_bytes(data[4:8], "little")
            assert data[:4] == importlib.util.MAGIC_NUMBER, pyc
            # 0b01 hash-based, 0b10 checked against the source (PEP 552).
            assert flags == (0b11 if source.startswith(APP_CODE) else 0b01), (pyc, flags)
            assert data[8:16] == importlib.util.source_hash(z.read(source)), pyc
    for package_name in ("app.py", "chalicelib/", "chalice/", "redis/", "pymysql/", "argon2/"):
        assert any(s.startswith(package_name) for s in sources), package_name
    assert STALE in compiled and b"stale" not in zipfile.ZipFile(package["zip"]).read(STALE)


def test_the_cached_zip_is_not_one_without_bytecode(package):
    cached = [p.name for p in (package["project"] / ".chalice" / "deployments").iterdir()]
    assert len(cached) == 1 and cached[0].endswith(f"-{bytecode.this_runtime()}{bytecode.CACHE_SUFFIX}.zip"), cached


def test_a_fresh_interpreter_imports_the_app_and_its_dependencies_from_the_pyc(package):
    task = package["tmp"] / "task"  # as /var/task: the zip's files, read-only to the runtime
    with zipfile.ZipFile(package["zip"]) as z:
        z.extractall(task)
    child = ("import sys; sys.path[:] = [sys.argv[1]] + [p for p in sys.path if 'site-packages' not in p]\n"
             "import app, redis, redis.client, pymysql, argon2")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    done = subprocess.run([sys.executable, "-S", "-v", "-c", child, str(task)], cwd=task, capture_output=True,
                          text=True, timeout=60, check=True, env={**env, "PYTHONDONTWRITEBYTECODE": "1"})
    loaded = [m.strip("'") for m in re.findall(r"^# code object from (.+)$", done.stderr, re.M)]
    own = [path for path in loaded if path.startswith(str(task))]
    assert [p for p in own if not p.endswith(".pyc")] == [], "compiled from source"
    for module in ("__pycache__/app", "chalicelib/__pycache__/wiring", "chalice/__pycache__/app",
                   "redis/__pycache__/client", "pymysql/__pycache__/connections", "argon2/__pycache__/__init__"):
        assert f"{task}/{module}.{sys.implementation.cache_tag}.pyc" in own, module


def test_bytecode_of_another_python_is_refused():
    named = bytecode._named(lambda self, project_dir, version: f"/p/.chalice/deployments/abc-{version}.zip")
    runtime = bytecode.this_runtime()
    assert named(None, "/p", runtime) == f"/p/.chalice/deployments/abc-{runtime}{bytecode.CACHE_SUFFIX}.zip"
    with pytest.raises(SystemExit, match="would deploy to the python3.99 runtime but runs on Python"):
        named(None, "/p", "python3.99")
