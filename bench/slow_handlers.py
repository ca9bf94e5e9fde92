"""A handler module whose every answer takes BENCH_HANDLER_SECONDS (default 2) to come.

``WECOM_HANDLERS=bench.slow_handlers``. The handler blocks with ``time.sleep``, which gevent's
monkey-patching makes cooperative in the gunicorn gevent workers: it stands for a handler that
waits on a business API or an LLM.
"""

from __future__ import annotations

import os
import time

from app.routing import Router

router = Router()

SECONDS = float(os.environ.get("BENCH_HANDLER_SECONDS", "2") or 2)


@router.default
def slow(message: dict) -> str:
    time.sleep(SECONDS)
    return f"慢速回答({SECONDS:g} 秒):{message.get('Content') or message.get('MsgType', '')}"
