"""The run directory, data checks, the tools' own validation and real 2-step runs of both tools (slow)."""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import pytest
import yaml

from novelcraft.recipes import load_recipe
from novelcraft.train import tool_keys
from novelcraft.train.run import (
    TrainError,
    count_records,
    prepare_run,
    target_of,
    validate_with_tool,
)
from novelcraft.train.toolenv import tool_env, tool_python

ROOT = Path(__file__).resolve().parents[2]
RECIPES = sorted((ROOT / "recipes" / "train").glob("*.yaml"))
SMOKE = {"axolotl": ROOT / "recipes/train/axolotl-cpu-smoke.yaml", "swift": ROOT / "recipes/train/swift-cpu-smoke.yaml"}
PEER = ROOT / "tests" / "data" / "peer_sample.jsonl"
#: Scripts run inside the tool venvs (not tests themselves).
TOOLS = Path(__file__).resolve().parent / "tools"


# --------------------------------------------------------------------------- run directory, data


def test_prepare_run_writes_resolved_recipe_and_runnable_config(train_recipe):
    r = train_recipe(SMOKE["swift"], "base_model=/models/tiny")
    prepared = prepare_run(r)
    assert prepared.n_train == 5 and prepared.n_validation == 5
    text = prepared.config_path.read_text(encoding="utf-8")
    assert text.startswith("# Rendered by novelcraft") and f"swift sft {prepared.config_path}" in text
    assert yaml.safe_load(text)["model"] == "/models/tiny"
    resolved = yaml.safe_load((prepared.run_dir / "recipe.resolved.yaml").read_text(encoding="utf-8"))
    assert resolved["kind"] == "train" and resolved["lora"]["r"] == 8 and resolved["training"]["max_steps"] == 2
    # The expert rank's plugin tuner is written next to swift.yaml, where the config points.
    plugin = Path(yaml.safe_load(text)["external_plugins"][0])
    assert plugin.parent == prepared.config_path.parent and "RANK_PATTERN: dict = {" in plugin.read_text(
        encoding="utf-8"
    )


def test_bad_data_is_rejected_with_line(tmp_path, train_recipe):
    bad = tmp_path / "bad.jsonl"
    good = PEER.read_text(encoding="utf-8").splitlines()[0]
    row = json.loads(good)
    row["messages"] = row["messages"][::-1]
    bad.write_text(good + "\n" + json.dumps(row) + "\n", encoding="utf-8")
    with pytest.raises(TrainError, match="line 2: record: roles must be system, user, assistant"):
        count_records(bad)
    with pytest.raises(TrainError, match="data file not found"):
        prepare_run(train_recipe(SMOKE["axolotl"], f"data.train={tmp_path / 'missing.jsonl'}"))


# --------------------------------------------------------------------------- real tools (slow)


@pytest.mark.slow
@pytest.mark.parametrize("tool", ["axolotl", "swift"])
def test_shipped_key_list_matches_installed_tool(tool, venv_or_skip):
    venv = venv_or_skip(tool)
    proc = subprocess.run(
        [tool_python(venv), ROOT / "novelcraft/resources/train/tool_check.py", "keys", tool],
        env=tool_env(venv, cpu=True),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert set(proc.stdout.split()) == set(tool_keys(tool)), f"regenerate novelcraft/resources/train/{tool}_keys.txt"


def _bad_configs(tool: str, tmp_path: Path, tiny_model: Path) -> list[tuple[Path, str, bool]]:
    """Configs the tool's own validation must reject: (config, expected error, swift post-parse checks)."""
    if tool == "axolotl":
        bad = load_recipe(
            ROOT / "recipes/train/axolotl-qlora-r64.yaml",
            [f"output_dir={tmp_path}", "name=bad", "tool_config.lora_target_linear=true"],
        )
        # A rank pattern axolotl itself refuses (its schema: ranks > 0).
        rank = prepare_run(
            load_recipe(ROOT / "recipes/train/axolotl-qlora-r64.yaml", [f"output_dir={tmp_path}", "name=bad-rank"]),
            require_data=False,
        )
        cfg = yaml.safe_load(rank.config_path.read_text(encoding="utf-8"))
        cfg["lora_rank_pattern"] = {k: 0 for k in cfg["lora_rank_pattern"]}
        rank.config_path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
        return [
            (
                prepare_run(bad, require_data=False).config_path,
                "lora_target_linear is not compatible with quantize_moe_experts",
                False,
            ),
            (rank.config_path, "lora_rank_pattern", False),
        ]
    bad = load_recipe(
        SMOKE["swift"],
        [f"output_dir={tmp_path}", "name=bad", f"base_model={tiny_model}", "tool_config.max_pixels=many"],
    )
    # The plugin tuner without the plugin that registers it: swift's parser alone would accept it.
    tuner = prepare_run(
        load_recipe(ROOT / "recipes/train/swift-qlora-r64.yaml", [f"output_dir={tmp_path}", "name=bad-tuner"]),
        require_data=False,
    )
    cfg = yaml.safe_load(tuner.config_path.read_text(encoding="utf-8"))
    del cfg["external_plugins"]
    tuner.config_path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return [
        (prepare_run(bad, require_data=False).config_path, "argument parser exited", True),
        (tuner.config_path, "tuner_type 'novelcraft_lora' is neither a swift tuner nor registered", False),
    ]


@pytest.mark.slow
@pytest.mark.parametrize("tool", ["axolotl", "swift"])
def test_every_recipe_validates_with_the_tool(tool, tmp_path, tiny_model, venv_or_skip):
    venv = venv_or_skip(tool)
    configs, targets, local = [], [], []
    for path in RECIPES:
        smoke = "smoke" in path.name
        r = load_recipe(path, [f"output_dir={tmp_path}"] + ([f"base_model={tiny_model}"] if smoke else []))
        if r.tool == tool:
            assert r.lora.separate_expert_rank  # every shipped recipe renders the expert rank
            configs.append(prepare_run(r, require_data=False).config_path)
            targets.append(target_of(r))
            local.append(smoke)  # swift's post-parse checks read the model: only the tiny one is here
    assert any(local) and not all(local)
    # ...and configs the tool's own validation must reject (in the same process: tool start-up is slow)
    bad = _bad_configs(tool, tmp_path, tiny_model)
    configs += [b[0] for b in bad]
    targets += ["cuda:1"] * len(bad)
    local += [b[2] for b in bad]
    results = validate_with_tool(tool, configs, venv, post_init=local, targets=targets)
    n_good = len(configs) - len(bad)
    assert [(res.config_path.name, res.ok, res.error) for res in results[:n_good]] == [
        (c.name, True, None) for c in configs[:n_good]
    ]
    for res, (_, needle, _) in zip(results[n_good:], bad):
        assert not res.ok and needle in res.error, res


def _inspect_adapter(venv: Path, base: Path, adapter: Path) -> dict:
    proc = subprocess.run(
        [tool_python(venv), TOOLS / "inspect_adapter.py", base, adapter],
        env=tool_env(venv, cpu=True),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _assert_trained(result, venv: Path, tiny_model: Path) -> None:
    stats = json.loads((result.run_dir / "stats.json").read_text(encoding="utf-8"))
    assert stats["returncode"] == 0 and stats["global_step"] == 2
    assert math.isfinite(stats["train_loss"]) and math.isfinite(stats["eval_loss"])
    assert stats["grad_norm"] > 0 and stats["peak_rss_mib"] > 100
    assert (result.run_dir / "recipe.resolved.yaml").is_file() and (result.run_dir / "train.log").stat().st_size > 0
    info = _inspect_adapter(venv, tiny_model, result.adapter_dir)
    # 2 layers x (q, k, v, o) attention LoRA + 2 layers x (gate_up_proj, down_proj) expert LoRA, A and B each
    assert info["attention_lora"] == 8 and info["expert_lora"] == 8 and info["lora_B"] == 12
    assert info["zero_lora_B"] == [], "LoRA matrices that got no gradient"
    assert info["router_lora"] == []
    assert info["adapter_effect"] > 0 and info["merge_error"] < 1e-4
    # The smoke recipes' ranks: r=8 on attention, expert_r=4 on each expert (the tool's own adapter).
    assert info["ranks"] == {
        "q_proj": [8],
        "k_proj": [8],
        "v_proj": [8],
        "o_proj": [8],
        "gate_up_proj": [4],
        "down_proj": [4],
    }
    config = json.loads((Path(result.adapter_dir) / "adapter_config.json").read_text(encoding="utf-8"))
    assert config["rank_pattern"] == {"mlp.experts.gate_up_proj": 4, "mlp.experts.down_proj": 4}
    assert config["alpha_pattern"] == {"mlp.experts.gate_up_proj": 8, "mlp.experts.down_proj": 8}


@pytest.mark.slow
def test_axolotl_preprocess_labels_and_two_step_train(
    tmp_path, tiny_model, train_recipe, book_jsonl, venv_or_skip, counter
):
    venv = venv_or_skip("axolotl")
    from novelcraft.train import run_train

    book = book_jsonl(tmp_path / "alice.jsonl")
    train = tmp_path / "train.jsonl"
    train.write_text(PEER.read_text(encoding="utf-8") + book.read_text(encoding="utf-8"), encoding="utf-8")
    r = train_recipe(SMOKE["axolotl"], f"base_model={tiny_model}", f"data.train={train}")
    prepared = prepare_run(r)
    assert prepared.n_train == 11
    proc = subprocess.run(
        [venv / "bin" / "axolotl", "preprocess", prepared.config_path],
        env=tool_env(venv, cpu=True, extra={"HF_HUB_OFFLINE": "1"}),
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    # compile's count of every record (its chat template, the Qwen3 tokenizer) must be what axolotl tokenizes
    from novelcraft.chat_format import load_chat_template

    template = load_chat_template(r.chat_template)
    records = [json.loads(ln) for f in (train, PEER) for ln in f.read_text(encoding="utf-8").splitlines() if ln.strip()]
    counts = [[rec["messages"][2]["content"], counter.count(template.render(rec["messages"]))] for rec in records]
    counts_file = tmp_path / "counts.json"
    counts_file.write_text(json.dumps(counts), encoding="utf-8")
    proc = subprocess.run(
        [
            tool_python(venv),
            TOOLS / "inspect_labels.py",
            r.run_dir / "prepared",
            tiny_model,
            train,
            PEER,
            "--counts",
            counts_file,
        ],
        env=tool_env(venv, cpu=True),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    labels = json.loads(proc.stdout.strip().splitlines()[-1])
    # 11 train rows + 5 validation rows, each labelled exactly on one assistant turn + <|im_end|>
    assert labels["rows"] == 16 and labels["matched_records"] == 11 and labels["problems"] == []
    assert labels["counts_checked"] == 16  # every row's length equals compile's count of its record

    result = run_train(r, check=False, echo=None)  # the tool check is covered above; axolotl starts slowly
    _assert_trained(result, venv, tiny_model)


@pytest.mark.slow
def test_swift_template_labels_and_counts(tmp_path, tiny_model, train_recipe, book_jsonl, venv_or_skip, counter):
    """swift's own template, as `swift sft` encodes: labels on the assistant turn only, and as many tokens as
    compile counts for each record (the recipe's chat template, the Qwen3 tokenizer)."""
    venv = venv_or_skip("swift")
    from novelcraft.chat_format import load_chat_template
    from novelcraft.train.common import SWIFT_INSTRUCT_TEMPLATE

    book = book_jsonl(tmp_path / "alice.jsonl", n=4)
    r = train_recipe(SMOKE["swift"], f"base_model={tiny_model}", f"data.train={book}")
    template = load_chat_template(r.chat_template)
    records = [json.loads(ln) for f in (book, PEER) for ln in f.read_text(encoding="utf-8").splitlines() if ln.strip()]
    counts_file = tmp_path / "counts.json"
    counts = [[rec["messages"][2]["content"], counter.count(template.render(rec["messages"]))] for rec in records]
    counts_file.write_text(json.dumps(counts), encoding="utf-8")
    proc = subprocess.run(
        [tool_python(venv), TOOLS / "swift_labels.py", tiny_model, SWIFT_INSTRUCT_TEMPLATE, counts_file, book, PEER],
        env=tool_env(venv, cpu=True, extra={"HF_HUB_OFFLINE": "1"}),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["rows"] == len(records) and out["counts_checked"] == len(records) and out["problems"] == []


@pytest.mark.slow
def test_swift_two_step_train_and_merge(tmp_path, tiny_model, train_recipe, book_jsonl, venv_or_skip):
    venv = venv_or_skip("swift")
    from novelcraft.train import merge_adapter, run_train

    book = book_jsonl(tmp_path / "alice.jsonl", n=4)
    r = train_recipe(SMOKE["swift"], f"base_model={tiny_model}", f"data.train={book}")
    result = run_train(r, echo=None)
    _assert_trained(result, venv, tiny_model)

    report = merge_adapter(result.adapter_dir, tmp_path / "merged", python=venv)
    merged = Path(report["out"])
    cfg = json.loads((merged / "config.json").read_text(encoding="utf-8"))
    assert cfg["model_type"] == "qwen3_moe" and cfg.get("dtype", cfg.get("torch_dtype")) == "bfloat16"
    assert (merged / "model.safetensors").is_file() and (merged / "tokenizer_config.json").is_file()
    assert not any(p.name.startswith("adapter_") for p in merged.iterdir())


@pytest.mark.slow
def test_smoke_trained_adapter_changes_generation(tmp_path, tiny_model, train_recipe, book_jsonl, venv_or_skip):
    """The adapter the swift smoke recipe trains is applied by the generation engine (greedy outputs differ)."""
    venv_or_skip("swift")
    pytest.importorskip("outlines")
    from novelcraft.llm import LLMConfig, LLMRequest, make_engine
    from novelcraft.train import run_train

    book = book_jsonl(tmp_path / "alice.jsonl", n=4)
    r = train_recipe(SMOKE["swift"], f"base_model={tiny_model}", f"data.train={book}", "training.learning_rate=0.05")
    result = run_train(r, echo=None)
    assert json.loads((result.run_dir / "stats.json").read_text(encoding="utf-8"))["returncode"] == 0
    request = [LLMRequest(key="s", messages=({"role": "user", "content": "Write the first scene."},), max_tokens=24)]
    texts = {}
    for name, adapter in (("base", None), ("adapter", str(result.adapter_dir))):
        engine = make_engine(LLMConfig(model=str(tiny_model), adapter=adapter))
        texts[name] = engine.generate(request)[0].text
        engine.close()
    assert texts["base"] != texts["adapter"]
