"""The ``executor:`` section of the prep, compile and generate recipes: where the units of work run."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from ..strict import Strict


class ExecutorConfig(Strict):
    """Where a command's units of work (books, novels) run.

    ``local`` with ``workers: 1`` runs them one after another in this process (the default); with more
    workers each runs in a worker process of this machine. ``ray`` sends them to a Ray cluster as tasks:
    the one at ``address``, or a local one started with ``workers`` CPUs and stopped at the end. A unit
    whose worker dies (killed, out of memory, node lost) is redone on another worker, ``max_retries`` times.
    """

    type: Literal["local", "ray"] = "local"
    workers: int = Field(
        1, ge=1, le=4096, description="units run at once: worker processes (local; 1 = in this process) or Ray tasks"
    )
    address: str | None = Field(
        None,
        description="ray: the cluster to join ('auto': the one `ray start` runs on this machine, HOST:PORT, or "
        "ray://HOST:PORT); unset: start a local Ray instance with `workers` CPUs, stopped at the end",
    )
    max_retries: int = Field(
        2, ge=0, le=20, description="times a unit whose worker died (killed, out of memory, node lost) is redone"
    )
    threads: int | None = Field(
        None,
        ge=1,
        description="CPU threads per worker for the tokenizer and torch (default: local, the machine's cores / "
        "workers; ray, the CPUs a task reserves); unset with workers: 1, the libraries' own defaults",
    )
    cpus_per_worker: float = Field(1.0, gt=0, description="ray: CPUs one unit reserves on its node")
    gpus_per_worker: float = Field(
        0.0, ge=0, description="ray: GPUs one unit reserves (generate with an in-process vllm engine per worker)"
    )

    @model_validator(mode="after")
    def _ray_only(self) -> ExecutorConfig:
        if self.type == "local":
            given = [
                name
                for name, default in (("address", None), ("cpus_per_worker", 1.0), ("gpus_per_worker", 0.0))
                if getattr(self, name) != default
            ]
            if given:
                raise ValueError(f"{', '.join(given)}: only for type ray")
        return self

    @property
    def inline(self) -> bool:
        """Whether units run in this process, one after another (``local`` with one worker)."""
        return self.type == "local" and self.workers == 1

    def label(self) -> str:
        """``local``, ``local x4``, ``ray x8`` or ``ray x8 @ADDRESS``: what the stats summary prints."""
        if self.inline:
            return "local"
        return f"{self.type} x{self.workers}" + (f" @{self.address}" if self.address else "")
