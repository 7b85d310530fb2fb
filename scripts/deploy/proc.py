"""Running terraform, chalice and the renderer, and showing progress.

Commands that are safe to kill get a timeout (each step says how long).
terraform apply / destroy and chalice deploy / delete run without one on
purpose: killing them half-way leaves a held state lock or a half-made
deployment; their AWS calls time out on their own.
"""
from __future__ import annotations

import subprocess
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

from .plan import ROOT, DeployError


def banner(number: int, total: int, text: str) -> None:
    print(f"\n== {number}/{total} {text}", flush=True)


def say(text: str) -> None:
    print(text, flush=True)


def _run(cmd: Sequence[str], timeout: Optional[int], env: Optional[Dict[str, str]],
         **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Show the command and run it in the project root; DeployError when it
    cannot start or outlives its timeout, whatever its exit status."""
    print("$ " + " ".join(cmd), flush=True)
    try:
        return subprocess.run(list(cmd), cwd=ROOT, env=env, timeout=timeout, check=False, text=True, **kwargs)
    except subprocess.TimeoutExpired:
        raise DeployError(f"{cmd[0]} did not finish within {timeout} s") from None
    except OSError as exc:
        raise DeployError(f"cannot run {cmd[0]}: {exc}") from None


def run(cmd: Sequence[str], *, timeout: Optional[int], env: Optional[Mapping[str, str]] = None,
        capture: bool = False, input_text: Optional[str] = None) -> str:
    """Run in the project root; DeployError unless it exits with 0. Its
    stdout when capture, else it goes to the terminal."""
    done = _run(cmd, timeout, dict(env) if env else None, input=input_text,
                stdout=subprocess.PIPE if capture else None)
    if done.returncode != 0:
        raise DeployError(f"{' '.join(cmd[:3])} ... exited with {done.returncode}")
    return done.stdout or ""


def run_unchecked(cmd: Sequence[str], *, timeout: int, env: Mapping[str, str]) -> Tuple[int, str, str]:
    """(exit status, stdout, stderr), for a command whose failure the caller reads."""
    done = _run(cmd, timeout, dict(env), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return done.returncode, done.stdout, done.stderr
