"""The single path to LLMs: an OpenAI-compatible client on the ``openai`` SDK."""

from vpsweb.llm.client import Completion, LLMClient, OpenAICompatibleClient

__all__ = ["Completion", "LLMClient", "OpenAICompatibleClient"]
