"""The LLM layer: one engine interface over Outlines for the transformers, vLLM and OpenAI backends."""

from .config import LLMConfig, SamplingConfig
from .engine import Engine, LLMError, LLMRequest, LLMResponse, make_engine

__all__ = ["Engine", "LLMConfig", "LLMError", "LLMRequest", "LLMResponse", "SamplingConfig", "make_engine"]
