"""The project's command-line entry points run as a user runs them: a fresh interpreter in
the repository's root, its output captured."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping

from bench.harness import ROOT


def run_module(
    module: str, *args, env: Mapping[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess:
    """`python -m module args...`; args may be paths or numbers."""
    return subprocess.run(
        [sys.executable, "-m", module, *map(str, args)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def assert_ran(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, result.stderr[-3000:]


def assert_usage_error(result: subprocess.CompletedProcess, message: str, status: int = 2) -> None:
    """A user's mistake ends with a message saying what was wrong, never a traceback; status 2
    for what argparse checks, 1 for what only the run itself can find (SystemExit's)."""
    assert result.returncode == status, result.stderr[-3000:]
    assert message in result.stderr and "Traceback" not in result.stderr, result.stderr[-3000:]
