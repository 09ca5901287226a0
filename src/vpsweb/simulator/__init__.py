"""The offline LLM simulator: a separate program speaking the OpenAI chat API.

`vpsweb simulate-llm` (or ``python -m vpsweb.simulator``) runs it. Demos, tests
and benchmarks talk to it through the real `openai` SDK over HTTP.
"""
