"""``python -m app``: start the production server, the guide's way, or run a ``flask`` command.

python -m app -p=8000 -t=TOKEN -c=CORPID -a=ENCODING_AES_KEY   # gunicorn with gevent workers
python -m app --check                                           # check the settings, then exit
python -m app simulate text 你好                                # any `flask` command
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# The guide's flags and the settings they fill. The guide labels -a "AgentId", but the value it
# passes is the 43-character EncodingAESKey; -a keeps that meaning here.
FLAG_SETTINGS = {"token": "WECOM_TOKEN", "corp_id": "WECOM_CORP_ID", "aes_key": "WECOM_AES_KEY"}


#: What the service imports; an interpreter without one of these cannot run it.
REQUIRED_MODULES = (
    "flask",
    "gunicorn",
    "gevent",
    "Crypto",
    "xmltodict",
    "requests",
    "tenacity",
    "prometheus_client",
    "pythonjsonlogger",
)
REEXEC_MARK = "WECOM_REEXECUTED"


def ensure_dependencies(argv: list[str]) -> None:
    """The guide runs ``python web.py …`` with whichever python3 comes first on PATH. When that
    interpreter lacks the service's packages, continue in the project's .venv instead, creating
    it first (scripts/bootstrap.sh) when it does not exist yet."""
    missing = [name for name in REQUIRED_MODULES if importlib.util.find_spec(name) is None]
    if not missing:
        return
    venv_python = PROJECT_ROOT / ".venv" / "bin" / "python"
    if os.environ.get(REEXEC_MARK) or not (PROJECT_ROOT / "scripts" / "bootstrap.sh").exists():
        sys.exit(
            f"error: this Python ({sys.executable}) lacks {', '.join(missing)}; "
            "install requirements.txt, or run scripts/run.sh"
        )
    if not venv_python.exists():
        print("installing the service's packages into .venv (first run only)…", file=sys.stderr)
    # Quick when .venv is up to date: bootstrap.sh installs only when requirements.txt changed.
    subprocess.run(
        [str(PROJECT_ROOT / "scripts" / "bootstrap.sh")],
        env={**os.environ, "PYTHON": sys.executable},
        stdout=sys.stderr,
        check=True,
    )
    os.environ[REEXEC_MARK] = "1"
    path = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([str(PROJECT_ROOT), *([path] if path else [])])
    os.execv(str(venv_python), [str(venv_python), "-m", "app", *argv])


def parse_serve_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m app",
        description="Start the WeCom callback service under gunicorn with gevent workers.",
    )
    parser.add_argument("-p", "--port", type=int, default=None, help="port (default 8000)")
    parser.add_argument("-t", "--token", help="Token from the WeCom admin console")
    parser.add_argument("-c", "--corp-id", dest="corp_id", help="CorpID (the receiveid)")
    parser.add_argument(
        "-a",
        "--aes-key",
        dest="aes_key",
        help="EncodingAESKey, 43 characters (the guide calls it -a)",
    )
    parser.add_argument(
        "--host",
        default=None,
        help="address to bind (default 0.0.0.0; 127.0.0.1 for the development profile)",
    )
    parser.add_argument("-w", "--workers", type=int, help="gunicorn worker processes")
    args = parser.parse_args(argv)
    if args.port is not None and not 0 < args.port < 65536:
        parser.error(f"--port must be between 1 and 65535, got {args.port}")
    return args


def serve(argv: list[str]) -> int:
    args = parse_serve_args(argv)
    env = dict(os.environ)
    for attr, setting in FLAG_SETTINGS.items():
        value = getattr(args, attr)
        if value is not None:
            env[setting] = value
    if args.port is not None:
        env["PORT"] = str(args.port)
    if args.host is not None:
        env["GUNICORN_BIND"] = f"{args.host}:{env.get('PORT', '8000')}"
    if args.workers:
        env["WEB_CONCURRENCY"] = str(args.workers)
    # gunicorn.conf.py checks the settings before forking (a bad one exits 2, naming it).
    command = [
        sys.executable, "-m", "gunicorn",
        "--chdir", str(PROJECT_ROOT),
        "-c", str(PROJECT_ROOT / "gunicorn.conf.py"),
        "wsgi:app",
    ]  # fmt: skip
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvpe(command[0], command, env)
    return 0  # not reached


def check() -> int:
    """Build the app once: log the start-up summary and print ``{"development_profile": …}``,
    or print the one line that names a bad setting and return 2 (gunicorn's preflight)."""
    from . import SettingError, create_app, load_settings
    from .web.startup import log_summary

    try:
        settings = load_settings()
        create_app(settings)
    except SettingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    log_summary(settings, loud=True)
    print(json.dumps({"development_profile": settings.development_profile}))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ensure_dependencies(argv)
    if argv == ["--check"]:
        return check()
    if not argv or (argv[0].startswith("-") and argv[0] not in ("--help", "-h", "--version")):
        return serve(argv)
    if argv[0] in ("-h", "--help") and len(argv) == 1:
        parse_serve_args(["--help"])
    from flask.cli import FlaskGroup

    from . import create_app

    FlaskGroup(create_app=create_app).main(args=argv, prog_name="python -m app")
    return 0


if __name__ == "__main__":
    sys.exit(main())
