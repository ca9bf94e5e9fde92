"""The benchmarks' user handler module (``WECOM_HANDLERS=bench.echo_handlers``): a text is
answered with itself, as the two reference servers do, so all three do the same work."""

from __future__ import annotations

from app.routing import Router

router = Router()


@router.text()
def echo(message: dict) -> str:
    return message.get("Content") or ""
