"""The dev tools ship in the Docker image: with only what the Dockerfile copies, the fake runs
and the `flask` commands load, and nothing imports the tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from app.devtools.fakewecom import FakeControl
from tests.devtools.conftest import first_output, stop

ROOT = Path(__file__).resolve().parents[2]


def dockerfile_copies() -> list[tuple[list[str], str]]:
    """(sources, destination) of each COPY line of the Dockerfile."""
    copies = []
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        words = line.split()
        if words[:1] == ["COPY"]:
            args = [w for w in words[1:] if not w.startswith("--")]
            copies.append((args[:-1], args[-1]))
    return copies


@pytest.fixture(scope="module")
def image_tree(tmp_path_factory) -> Path:
    tree = tmp_path_factory.mktemp("image")
    for sources, destination in dockerfile_copies():
        for source in sources:
            target = tree / destination
            if (ROOT / source).is_dir():
                ignore = shutil.ignore_patterns("__pycache__")
                shutil.copytree(ROOT / source, target, ignore=ignore, dirs_exist_ok=True)
            else:
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy(ROOT / source, target / Path(source).name)
    return tree


def image_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WECOM_")}
    env.pop("PYTHONPATH", None)
    return env | {"WECOM_STORE": "memory://", "WECOM_LOG_LEVEL": "WARNING"}


def test_the_image_holds_the_dev_tools(image_tree):
    assert (image_tree / "app/devtools/fakewecom/__main__.py").is_file()
    assert not (image_tree / "tests").exists()
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, app.devtools.fakewecom, app.devtools.kf_conversation, "
         "app.web.cli; print(sorted(m for m in sys.modules if m.split('.')[0] == 'tests'))"],
        cwd=image_tree, env=image_env(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert (loaded.returncode, loaded.stdout.strip()) == (0, "[]"), loaded.stderr
    for command in (["fake-wecom", "--help"], ["simulate", "kf", "text", "--help"]):
        shown = subprocess.run(
            [sys.executable, "-m", "flask", "--app", "wsgi", *command],
            cwd=image_tree, env=image_env(), capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert shown.returncode == 0, shown.stderr


def test_the_fake_runs_from_the_image(image_tree):
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.devtools.fakewecom", "--port", "0", "--max-lifetime", "60"],
        cwd=image_tree, env=image_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        start_new_session=True,
    )  # fmt: skip
    try:
        base_url = first_output(proc).splitlines()[0]
        control = FakeControl(base_url)
        control.wait_ready(10)
        assert control.stats()["sent"] == 0
    finally:
        code, _, stderr = stop(proc)
    assert code == 0, stderr
