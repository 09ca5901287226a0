"""The single path to LLMs (openai SDK) and the offline simulator."""

from vpsweb.llm.client import Completion, LLMClient, OpenAICompatibleClient
from vpsweb.llm.errors import (
    Cancelled,
    LLMError,
    LLMTimeout,
    MissingAPIKey,
    PermanentLLMError,
    TransientLLMError,
)

__all__ = [
    "Cancelled",
    "Completion",
    "LLMClient",
    "LLMError",
    "LLMTimeout",
    "MissingAPIKey",
    "OpenAICompatibleClient",
    "PermanentLLMError",
    "TransientLLMError",
]
