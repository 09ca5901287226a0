"""The single path to LLMs: an OpenAI-compatible client on the ``openai`` SDK.

The package itself imports nothing: ``vpsweb.llm.backoff`` (used in planning) and the
other light modules must not load the SDK (~0.65 s), or every `vpsweb` command and
every client would pay for it. Import the client from ``vpsweb.llm.client``.
"""
