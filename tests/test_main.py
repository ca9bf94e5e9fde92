"""The guide's command line: ``python -m app -p=8000 -t=TOKEN -c=CORPID -a=AESKEY``."""

import subprocess
import sys

import pytest

from app.__main__ import PROJECT_ROOT, parse_serve_args
from tests.conftest import AES_KEY, CORP_ID, TOKEN


@pytest.mark.parametrize(
    "argv",
    [
        ["-p=8000", f"-t={TOKEN}", f"-c={CORP_ID}", f"-a={AES_KEY}"],
        ["-p", "8000", "-t", TOKEN, "-c", CORP_ID, "-a", AES_KEY],
        ["--port", "8000", "--token", TOKEN, "--corp-id", CORP_ID, "--aes-key", AES_KEY],
    ],
)
def test_guide_flags_with_equals_or_space(argv):
    args = parse_serve_args(argv)
    assert (args.port, args.token, args.corp_id, args.aes_key) == (8000, TOKEN, CORP_ID, AES_KEY)


def test_bad_key_on_the_command_line_names_the_setting():
    result = subprocess.run(
        [sys.executable, "-m", "app", "-p=8000", f"-t={TOKEN}", f"-c={CORP_ID}", "-a=tooshort"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=PROJECT_ROOT,
    )
    assert result.returncode == 2
    assert "WECOM_AES_KEY" in result.stderr
