"""A deterministic engine for tests of code built on the engine interface (gates, retries, scheduling).

It runs no model: a ``responder`` function answers each request. Use it to test stage logic and failure
handling; use a real backend (the embedded model) to test that prompts and schemas work with a model.
"""

from __future__ import annotations

from typing import Callable, Sequence

from .engine import LLMRequest, LLMResponse

Responder = Callable[[LLMRequest], "str | LLMResponse | Exception"]


class ScriptedEngine:
    """Answers with ``responder(request)``: a text, a full :class:`LLMResponse`, or an exception
    (turned into a transport error response). Records every request and batch it saw."""

    def __init__(self, responder: Responder, name: str = "scripted") -> None:
        self.responder = responder
        self.name = name
        self.requests: list[LLMRequest] = []
        self.batches: list[int] = []

    def generate(self, requests: Sequence[LLMRequest]) -> list[LLMResponse]:
        self.batches.append(len(requests))
        out = []
        for req in requests:
            self.requests.append(req)
            answer = self.responder(req)
            if isinstance(answer, LLMResponse):
                out.append(answer)
            elif isinstance(answer, Exception):
                out.append(LLMResponse(key=req.key, text="", error=f"{type(answer).__name__}: {answer}"))
            else:
                n_prompt = sum(len(m["content"].split()) for m in req.messages)
                out.append(LLMResponse(key=req.key, text=answer, prompt_tokens=n_prompt, completion_tokens=len(answer.split()), finish_reason="stop"))
        return out

    def close(self) -> None:
        pass
