"""The LLM layer: one engine interface over Outlines for the transformers, vLLM and OpenAI backends.

* :mod:`~novelcraft.llm.types` — :class:`LLMRequest`, :class:`LLMResponse`, the :class:`Engine` protocol;
* :mod:`~novelcraft.llm.factory` — :func:`make_engine` and :class:`LazyEngine` (backends load here);
* :mod:`~novelcraft.llm.tasks` — :func:`run_tasks`: validation, feedback retries, compression, resume;
  :mod:`~novelcraft.llm.attempts` — one task's answers judged; :mod:`~novelcraft.llm.scheduler` — rounds of
  engine calls, and :func:`run_flows`, which feeds them from many dependent chains at once;
  :mod:`~novelcraft.llm.answers` — parsing an answer, verdicts, budgets; :mod:`~novelcraft.llm.debug` — the log;
* :mod:`~novelcraft.llm.config` — :class:`LLMConfig`, the ``llm:`` section of every recipe that calls a model.
"""

from __future__ import annotations

from .._lazy import lazy_exports

_EXPORTS = {
    "LLMConfig": "config",
    "SamplingConfig": "config",
    "Engine": "types",
    "LLMError": "types",
    "LLMRequest": "types",
    "LLMResponse": "types",
    "make_engine": "factory",
    "LazyEngine": "factory",
    "Task": "tasks",
    "Verdict": "answers",
    "Outcome": "tasks",
    "run_tasks": "tasks",
    "run_flows": "scheduler",
    "TaskScheduler": "scheduler",
    "engine_judge": "tasks",
    "VLLMServer": "server",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals(), __all__)
