"""A handler module that keeps every message it is given and answers with what it saw."""

from app.routing import Router

router = Router()
SEEN: list[dict] = []


@router.default
def record(message: dict) -> str:
    SEEN.append(message)
    return f"got {message.get('MsgType')}/{message.get('Event', '-')}"
