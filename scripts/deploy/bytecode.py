"""chalice, with compiled bytecode in every zip its packager writes:
`python -m scripts.deploy.bytecode <chalice arguments>` (what
chalice_deploy.chalice_command runs for package and deploy), in the project
root, with the Python of the chalice executable.

A Lambda's /var/task is read-only: from a zip without .pyc every new
container compiles whatever it imports (redis-py alone 230-250 ms here), a
cold start of about 0.4 s instead of 0.15 s (bench/startup.py). So, in the
chalice process:
  * every .py the packager writes into a zip gets its
    __pycache__/<module>.<cache tag>.pyc beside it, hash-based (PEP 552), as
    Chalice stamps every entry 1980-01-01 and a timestamp-based .pyc would
    never match its source: unchecked for the dependencies (pinned wheels and
    the chalice runtime, which cannot change under a given zip), checked for
    the app's own code (app.py, chalicelib/: a stale .pyc is never run, and
    the check costs a hash of a small source);
  * __pycache__ entries it would copy (the working tree's chalicelib/
    __pycache__, stale and timestamp-based; any a wheel ships) are dropped,
    and left out of the hash that names the cached zip;
  * the cached zip, .chalice/deployments/<hash>-python3.X.zip, which chalice
    deploy and package reuse while the requirements and the app are
    unchanged, is named <hash>-python3.X-pyc1.zip instead: one built without
    bytecode is never reused;
  * bytecode is for the interpreter that compiled it alone, and Chalice takes
    the Lambda runtime from the Python it runs on (Config.lambda_python_version:
    its own version from 3.10 to 3.14, the nearest otherwise), so it refuses
    to build when that runtime is not this Python's version.
Standard library and chalice only.
"""
from __future__ import annotations

import importlib.util
import marshal
import os
import sys
import zipfile
from typing import Any, Callable, Iterator, Optional, Tuple

from chalice.deploy import packager
from chalice.utils import ChaliceZipFile, OSUtils

CACHE_SUFFIX = "-pyc1"  # bump whenever what goes into the zips changes: the cached ones are then rebuilt
APP_CODE = ("app.py", "chalicelib/")  # checked-hash; everything else unchecked
_HASH_BASED, _CHECK_SOURCE = 0b01, 0b10  # the .pyc header's flags (PEP 552)


def this_runtime() -> str:
    return f"python{sys.version_info.major}.{sys.version_info.minor}"


def is_cache(zip_path: str) -> bool:
    return "/__pycache__/" in "/" + zip_path


def pyc_path(zip_path: str) -> str:
    """redis/client.py -> redis/__pycache__/client.cpython-311.pyc (no
    optimization tag: Lambda runs without -O)."""
    folder, _, name = zip_path.rpartition("/")
    return f"{folder}/" * bool(folder) + f"__pycache__/{name[:-3]}.{sys.implementation.cache_tag}.pyc"


def bytecode(source: bytes, zip_path: str) -> bytes:
    """What py_compile writes with PycInvalidationMode.CHECKED_HASH (app
    code) or UNCHECKED_HASH (the rest), without a file of its own."""
    code = compile(source, zip_path, "exec", dont_inherit=True, optimize=0)
    flags = _HASH_BASED | (_CHECK_SOURCE if zip_path.startswith(APP_CODE) else 0)
    return (importlib.util.MAGIC_NUMBER + flags.to_bytes(4, "little") + importlib.util.source_hash(source)
            + marshal.dumps(code))


class BytecodeZipFile(ChaliceZipFile):
    """The packager's zip: a .py and its .pyc, no __pycache__ of the files
    it copies (it writes every file through write(); only inject_latest_app,
    which no command of chalice 1.34 calls, copies entries with writestr)."""

    def write(self, filename: Any, arcname: Any = None, compress_type: Optional[int] = None,
              compresslevel: Optional[int] = None) -> None:
        zip_path = self._osutils.normalized_filename(str(arcname or filename)).lstrip(os.sep)
        if is_cache(zip_path):
            return
        super().write(filename, arcname, compress_type, compresslevel)
        if not zip_path.endswith(".py"):
            return
        with open(filename, "rb") as f:
            source = f.read()
        try:
            data = bytecode(source, zip_path)
        except (SyntaxError, ValueError):
            return  # does not compile on this Python: not importable on the runtime either
        info = zipfile.ZipInfo(pyc_path(zip_path), ChaliceZipFile._default_time_time)
        info.external_attr = 0o644 << 16
        info.compress_type = compress_type or self.compression
        self.writestr(info, data)


def _open_zip(self: OSUtils, filename: str, mode: str, compression: int = zipfile.ZIP_DEFLATED) -> zipfile.ZipFile:
    return BytecodeZipFile(filename, mode, compression=compression, osutils=self)


_iter_app_filenames = packager.BaseLambdaDeploymentPackager._iter_app_filenames


def _app_files(self: packager.BaseLambdaDeploymentPackager, project_dir: str) -> Iterator[Tuple[str, str]]:
    return ((path, zip_path) for path, zip_path in _iter_app_filenames(self, project_dir) if not is_cache(zip_path))


def _named(original: Callable[[Any, str, str], str]) -> Callable[[Any, str, str], str]:
    def deployment_package_filename(self: Any, project_dir: str, python_version: str) -> str:
        if python_version != this_runtime():
            raise SystemExit(f"chalice would deploy to the {python_version} runtime but runs on Python "
                             f"{sys.version_info.major}.{sys.version_info.minor}: the bytecode compiled into the "
                             f"package would not be used; run chalice with Python {python_version[6:]}")
        base, ext = os.path.splitext(original(self, project_dir, python_version))
        return base + CACHE_SUFFIX + ext
    return deployment_package_filename


def install() -> None:
    """Patch chalice's packager, in this process (once)."""
    if OSUtils.open_zip is _open_zip:
        return
    OSUtils.open_zip = _open_zip  # type: ignore[method-assign]
    packager.BaseLambdaDeploymentPackager._iter_app_filenames = _app_files  # type: ignore[method-assign]
    for cls in (packager.LambdaDeploymentPackager, packager.AppOnlyDeploymentPackager,
                packager.LayerDeploymentPackager):
        cls.deployment_package_filename = _named(  # type: ignore[method-assign,assignment]
            cls.deployment_package_filename)


if __name__ == "__main__":
    from chalice.cli import main

    install()
    sys.argv[0] = "chalice"
    sys.exit(main())
