"""Echo bot that appends every handler run (MsgId, pid) to BENCH_RECORD, so a benchmark can count
handler runs across worker processes. ``WECOM_HANDLERS=bench.recording_handlers``."""

from __future__ import annotations

import os

from app.routing import Router

router = Router()


@router.default
def record(message: dict) -> str | None:
    path = os.environ.get("BENCH_RECORD")
    if path:
        with open(path, "a", encoding="utf-8") as runs:
            runs.write(f"{message.get('MsgId', '-')} {os.getpid()}\n")
    content = message.get("Content")
    return content if isinstance(content, str) and content else None
