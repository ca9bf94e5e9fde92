"""The model (WECOM_LLM_BASE_URL) for your own handlers::

    from app.llm import answerer

    @router.text()
    def ask(message):
        model = answerer()
        if model is None:
            return "没有配置模型"
        return model.stream("my-bot:" + message["from"]["userid"], message["text"]["content"])

``stream`` yields the answer's pieces (return it from a bot handler to stream it), ``answer``
returns it whole (for app and 微信客服 handlers). Both put the system prompt and the
conversation's history first, record the new turn, and end with WECOM_FORWARD_FALLBACK when
the model fails. :class:`app.infra.llm.LlmClient` is the bare client.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.routing.llm_routes import LlmAnswerer

_current: LlmAnswerer | None = None


def register(answerer_: LlmAnswerer | None) -> None:
    """Called by the app factory: the model of the app built last in this process."""
    global _current
    _current = answerer_


def answerer() -> LlmAnswerer | None:
    """The configured model, or None when WECOM_LLM_BASE_URL is not set."""
    return _current


__all__ = ["answerer", "register"]
