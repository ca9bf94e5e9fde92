"""The protocol package stays free of Flask and exports its public API."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import app.wecom

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "app" / "wecom"

# A plain import, as a user's script would do it: the parent package ``app`` defers its Flask
# import to create_app(), so nothing web-related may load.
PLAIN_IMPORT = """
import sys
import app.wecom
import app.wecom.compat, app.wecom.xmlsafe
leaked = sorted(m for m in sys.modules if m.split(".")[0] in ("flask", "werkzeug", "gevent"))
assert not leaked, leaked
"""


def test_importing_app_wecom_does_not_import_flask() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PLAIN_IMPORT],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_no_module_in_the_package_imports_flask() -> None:
    for path in PACKAGE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert name.split(".")[0] not in ("flask", "werkzeug"), f"{path.name}: {name}"


def test_public_api_is_exported() -> None:
    for name in app.wecom.__all__:
        assert getattr(app.wecom, name) is not None
    assert {
        "CallbackCrypto",
        "WXBizMsgCrypt",
        "MessageCrypto",
        "parse_message",
        "dedup_key",
        "TextReply",
        "NewsReply",
        "to_reply",
        "split_utf8",
        "truncate_utf8",
        "WeComError",
    } <= set(app.wecom.__all__)
