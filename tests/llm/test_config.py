"""``novelcraft.llm.config``: the ``llm:`` section every recipe that calls a model shares."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from novelcraft.llm.config import LLMConfig


def test_identity_names_backend_model_and_adapter() -> None:
    assert LLMConfig().identity() == "transformers:embedded"
    assert LLMConfig(backend="vllm", model="/m", adapter="/a").identity() == "vllm:/m+/a"
    served = LLMConfig(backend="openai", served_model_name="smollm2", openai={"base_url": "http://h:1/v1"})
    assert served.identity() == "openai:smollm2"


def test_checks() -> None:
    with pytest.raises(ValidationError, match="backend openai needs served_model_name"):
        LLMConfig(backend="openai")
    with pytest.raises(ValidationError, match="extra"):
        LLMConfig.model_validate({"sampling": {"temprature": 0.5}})
    with pytest.raises(ValidationError):
        LLMConfig(context_window=100)
