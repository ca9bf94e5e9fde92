"""Answer text with the model (WECOM_LLM_BASE_URL) on every endpoint that names no handlers.

:class:`LlmAnswerer` puts the system prompt and the conversation's history before the question,
streams or collects the answer, records the turn, and turns a model error or timeout into the
fallback text (WECOM_FORWARD_FALLBACK) and one log line. The routers below put it in front of
the demo: text goes to the model, everything else keeps the demo's answer.

* bot: the answer streams (a generator, see :mod:`app.routing.bot_router`);
* app: the handler returns the whole answer, so the deadline path replies passively when the
  model is fast and through ``message/send`` otherwise;
* 微信客服: the answer goes out with ``kf/send_msg``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

from app.infra import metrics
from app.infra.llm import ChatHistory, LlmClient, LlmError, LlmTimeout
from app.routing.app_router import NEXT, Router
from app.routing.bot_router import BotRouter
from app.routing.endpoints import Endpoint
from app.routing.kf_router import KfRouter
from app.wecom.aibot import conversation_id, text_of

log = logging.getLogger(__name__)


class LlmAnswerer:
    """The model as a handler's helper; import it in your own handlers through
    :func:`app.llm.answerer`."""

    def __init__(
        self, client: LlmClient, history: ChatHistory, system_prompt: str, fallback: str
    ) -> None:
        self.client = client
        self.history = history
        self.system_prompt = system_prompt
        self.fallback = fallback

    def messages(self, conversation: str, question: str) -> list[dict[str, str]]:
        messages = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
        messages += self.history.load(conversation)
        messages.append({"role": "user", "content": question})
        return messages

    def stream(self, conversation: str, question: str, label: str = "-") -> Iterator[str]:
        """The answer's pieces; on failure the fallback text ends it (after what came)."""
        pieces: list[str] = []
        started = time.monotonic()
        try:
            for piece in self.client.stream(self.messages(conversation, question)):
                pieces.append(piece)
                yield piece
        except LlmError as exc:
            metrics.backend_call(
                "llm", "timeout" if isinstance(exc, LlmTimeout) else "error", started
            )
            log.warning("model answer for %s failed, sent the fallback: %s", label, exc)
            yield ("\n\n" if pieces else "") + self.fallback
            return
        metrics.backend_call("llm", "ok", started)
        try:
            self.history.record(conversation, question, "".join(pieces))
        except Exception as exc:  # the answer is out; losing one turn of context is tolerable
            log.warning("could not record the conversation turn of %s: %s", label, exc)

    def answer(self, conversation: str, question: str, label: str = "-") -> str:
        return "".join(self.stream(conversation, question, label))


def llm_app_router(answerer: LlmAnswerer, endpoint_name: str, others: Router) -> Router:
    router = Router()

    @router.text()
    def ask_model(message: dict[str, Any]) -> Any:
        question = str(message.get("Content") or "").strip()
        if not question:
            return NEXT
        user = str(message.get("FromUserName", ""))
        return answerer.answer(
            f"{endpoint_name}:user:{user}", question, f"MsgId={message.get('MsgId', '-')}"
        )

    router.default(others.dispatch)
    return router


def llm_kf_router(answerer: LlmAnswerer, endpoint_name: str, others: KfRouter) -> KfRouter:
    router = KfRouter()

    @router.text()
    def ask_model(message: dict[str, Any]) -> Any:
        text = message.get("text")
        question = str(text.get("content") or "").strip() if isinstance(text, dict) else ""
        if not question:
            return NEXT
        customer = f"{message.get('open_kfid', '')}:{message.get('external_userid', '')}"
        return answerer.answer(
            f"{endpoint_name}:kf:{customer}", question, f"kf msgid={message.get('msgid', '-')}"
        )

    router.default(others.dispatch)
    return router


def llm_bot_router(answerer: LlmAnswerer, bot_name: str, others: BotRouter) -> BotRouter:
    router = BotRouter()

    @router.msgtype("text", "voice")
    def ask_model(message: dict[str, Any]) -> Any:
        question = text_of(message)
        if not question:
            return NEXT
        return answerer.stream(
            f"{bot_name}:{conversation_id(message)}", question, f"msgid={message.get('msgid', '-')}"
        )

    router.rules.extend(others.rules)  # the demo's events (welcome, cards) stay
    router.default_handler = others.default_handler
    return router


def use_llm(endpoint: Endpoint, answerer: LlmAnswerer) -> list[str]:
    """Put the model in front of an app or kf endpoint's routers where the demo answers (no
    handler module named; with WECOM_FORWARD_URL the forwarder answers instead). Returns which
    routers changed, for the start-up log."""
    settings = endpoint.settings
    changed = []
    if settings.demo_answers_messages:
        endpoint.router = llm_app_router(answerer, endpoint.name, endpoint.router)
        changed.append("messages")
    if settings.demo_answers_kf:
        endpoint.kf_router = llm_kf_router(answerer, endpoint.name, endpoint.kf_router)
        changed.append("微信客服")
    return changed


__all__ = [
    "LlmAnswerer",
    "llm_app_router",
    "llm_bot_router",
    "llm_kf_router",
    "use_llm",
]
