"""An OpenAI-compatible chat model (``WECOM_LLM_BASE_URL``): a streaming client and the
conversation history kept in the store."""

from app.infra.llm.client import ChatHistory, LlmClient, LlmError, LlmTimeout

__all__ = ["ChatHistory", "LlmClient", "LlmError", "LlmTimeout"]
