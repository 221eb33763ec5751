"""The LLM layer: one engine interface over Outlines for the transformers, vLLM and OpenAI backends."""

from .config import LLMConfig, SamplingConfig
from .engine import Engine, LLMError, LLMRequest, LLMResponse, make_engine
from .server import VLLMServer

__all__ = ["Engine", "LLMConfig", "LLMError", "LLMRequest", "LLMResponse", "SamplingConfig", "VLLMServer", "make_engine"]
