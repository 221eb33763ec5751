"""Continuous batching on the offline vLLM engine (:class:`VLLMStream`, opened by
:meth:`~novelcraft.llm.backends.vllm_offline.VLLMEngine.open_stream`).

``LLM.generate`` returns when the whole batch is done, so a pipeline whose next request depends on an answer
waits for the slowest answer of every batch, and the batch drains while it waits. Here requests are added to
vLLM's running batch (``LLMEngine.add_request``, as ``LLM.enqueue`` does) whenever they are ready, and each
answer comes back the step its request finishes (``LLMEngine.step``).
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..types import LLMError, LLMRequest, LLMResponse
from .vllm_offline import STEP

if TYPE_CHECKING:  # pragma: no cover
    from .vllm_offline import VLLMEngine

log = logging.getLogger(__name__)

#: request ids of every stream in this process (vLLM's own requests are numbered without a prefix)
_IDS = itertools.count(1)


class VLLMStream:
    """Continuous batching on a :class:`VLLMEngine` (a :class:`~novelcraft.llm.types.RequestStream`): requests
    join vLLM's running batch when added (``LLMEngine.add_request``) and each answer is returned when its request
    finishes (``LLMEngine.step``), while the others go on decoding."""

    def __init__(self, engine: VLLMEngine) -> None:
        self.engine = engine
        self._keys: dict[str, tuple[str, float]] = {}  # vLLM request id -> (request key, time added)
        self._ready: list[LLMResponse] = []

    @property
    def in_flight(self) -> int:
        """Requests added and not yet returned."""
        return len(self._keys) + len(self._ready)

    def add(self, requests: Sequence[LLMRequest]) -> None:
        """Add ``requests`` to the running batch (one that cannot run is answered with ``error`` set)."""
        runnable, refused = self.engine._prepare(requests)
        self._ready.extend(refused.values())
        if not runnable:
            return
        llm = self.engine.llm
        if llm is None:
            raise LLMError("the engine is closed", path=self.engine.model_path, step=STEP)
        from vllm.sampling_params import RequestOutputKind

        now = time.perf_counter()
        added: list[str] = []
        try:
            for i, prompt, params in runnable:
                params.output_kind = RequestOutputKind.FINAL_ONLY  # one output per request, when it finishes
                rid = f"novelcraft-{next(_IDS)}"  # vLLM's outputs carry the id given here
                llm.llm_engine.add_request(rid, prompt, params, lora_request=self.engine.lora_request)
                added.append(rid)
                self._keys[rid] = (requests[i].key, now)
        except Exception as exc:
            for rid in added:
                self._keys.pop(rid, None)
            if added:
                llm.llm_engine.abort_request(added)
            cause = f"generation failed: {type(exc).__name__}: {exc}"
            raise LLMError(cause, path=self.engine.model_path, step=STEP) from exc

    def wait(self) -> list[LLMResponse]:
        """Step the engine until at least one request finishes; return the finished ones."""
        if self._ready:
            ready, self._ready = self._ready, []
            return ready
        llm = self.engine.llm
        if not self._keys or llm is None:
            return []
        t0 = time.perf_counter()
        done: list[LLMResponse] = []
        try:
            while not done:
                for output in llm.llm_engine.step():
                    finished = getattr(output, "finished", False)
                    entry = self._keys.pop(str(output.request_id), None) if finished else None
                    if entry is not None:
                        done.append(self.engine._response(entry[0], output, time.perf_counter() - entry[1]))
                if not done and not llm.llm_engine.has_unfinished_requests():
                    cause = f"vLLM finished with {len(self._keys)} requests unanswered"
                    raise LLMError(cause, path=self.engine.model_path, step=STEP)
        except LLMError:
            raise
        except Exception as exc:
            cause = f"generation failed: {type(exc).__name__}: {exc}"
            raise LLMError(cause, path=self.engine.model_path, step=STEP) from exc
        finally:
            self.engine.stats["seconds"] += time.perf_counter() - t0
        return done

    def close(self) -> None:
        """Abort the requests in flight (vLLM frees their cache blocks)."""
        llm = self.engine.llm
        if self._keys and llm is not None:
            try:
                llm.llm_engine.abort_request(list(self._keys))
            except Exception:  # closing must not mask the caller's own error
                log.debug("vLLM abort raised", exc_info=True)
        self._keys, self._ready = {}, []
        if self.engine._stream is self:
            self.engine._stream = None
