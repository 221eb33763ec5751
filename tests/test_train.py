"""Train recipes, their rendering for Axolotl / MS-SWIFT, and real runs of both tools.

The fast tests need nothing beyond the main venv. Tests marked slow run the real tools from the venvs
that ``scripts/toolenv.sh`` creates and are skipped, with the command to run, when a venv is missing.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from novelcraft.errors import NovelcraftError, RecipeError
from novelcraft.recipes import load_recipe
from novelcraft.train import TrainRecipe, tool_keys
from novelcraft.cli import build_parser
from novelcraft.train.recipe import QWEN3_MOE_EXPERT_PARAMETERS
from novelcraft.train.render import SWIFT_INSTRUCT_TEMPLATE, instruct_2507_template, render_tool_config
from novelcraft.train.run import TrainError, count_records, prepare_run, target_of, validate_with_tool
from novelcraft.train.toolenv import ToolEnvError, find_toolenv, tool_env, tool_python

ROOT = Path(__file__).resolve().parents[1]
RECIPES = sorted((ROOT / "recipes" / "train").glob("*.yaml"))
GPU_RECIPES = [p for p in RECIPES if "smoke" not in p.name]
SMOKE = {"axolotl": ROOT / "recipes/train/axolotl-cpu-smoke.yaml", "swift": ROOT / "recipes/train/swift-cpu-smoke.yaml"}
PEER = ROOT / "tests" / "data" / "peer_sample.jsonl"
HELPERS = Path(__file__).resolve().parent / "train"


def _venv_or_skip(tool: str) -> Path:
    try:
        return find_toolenv(tool)
    except ToolEnvError as exc:
        pytest.skip(f"{tool} virtualenv missing (run `bash scripts/toolenv.sh {tool}`): {exc.cause}")


def _recipe(path: Path, tmp_path: Path, *overrides: str) -> TrainRecipe:
    r = load_recipe(path, [f"output_dir={tmp_path / 'runs'}", *overrides])
    assert isinstance(r, TrainRecipe)
    return r


# --------------------------------------------------------------------------- shipped recipes


def test_shipped_recipes_cover_the_matrix():
    names = {p.stem for p in RECIPES}
    assert {"axolotl-qlora-r64", "axolotl-qlora-r128", "swift-qlora-r64", "axolotl-cpu-smoke", "swift-cpu-smoke"} <= names
    strategies = {load_recipe(p).distributed.strategy for p in GPU_RECIPES}
    assert {"fsdp", "deepspeed_zero3"} <= strategies


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.name)
def test_every_recipe_opens_with_its_command_and_loads(path: Path):
    first = path.read_text(encoding="utf-8").splitlines()[:4]
    assert first[0].startswith("#")
    assert any(f"novelcraft train recipes/train/{path.name}" in line for line in first), first
    r = load_recipe(path)
    assert isinstance(r, TrainRecipe) and r.kind == "train" and r.version == 1
    assert r.lora.dropout == 0.0
    assert set(r.lora.target_parameters) == set(QWEN3_MOE_EXPERT_PARAMETERS)
    assert "gate" not in r.lora.target_modules and r.data.sequence_len == 4096
    assert r.chat_template == "qwen3_instruct_2507"


@pytest.mark.parametrize("path", GPU_RECIPES, ids=lambda p: p.name)
def test_gpu_recipes_train_3_to_5_epochs_with_validation(path: Path):
    r = load_recipe(path)
    assert 3 <= r.training.epochs <= 5 and r.training.max_steps is None
    assert r.data.validation and r.device == "cuda" and r.training.precision == "bf16"
    assert r.base_model == "Qwen/Qwen3-30B-A3B-Instruct-2507"
    assert r.lora.r == (128 if "r128" in path.name else 64) and r.lora.alpha == 2 * r.lora.r
    if r.distributed.strategy == "none":
        assert r.quantization == "nf4"
        assert r.quantize_moe_experts == (r.tool == "axolotl")


# --------------------------------------------------------------------------- strict schema


@pytest.mark.parametrize(
    "override, needle",
    [
        ("lora.rank=8", "lora.rank: unknown key"),
        ("training.epoch=3", "training.epoch: unknown key"),
        ("tool_config.lora_rr=4", "unknown axolotl key(s) lora_rr"),
        ("tool_config.lora_r=4", "lora_r already set by the recipe"),
        ("lora.target_modules=[q_proj, gate]", "router"),
        ("lora.target_modules=[all-linear]", "router"),
        ("lora.dropout=0.05", "dropout must be 0"),
        ("tool=swift", "quantize_moe_experts is an axolotl option"),
        ("device=cpu", "needs CUDA"),
        ("distributed.num_gpus=4", "num_gpus > 1 needs strategy"),
        ("quantization=none", "quantize_moe_experts needs quantization: nf4"),
    ],
)
def test_recipe_rejects_unknown_keys_and_bad_combinations(override, needle):
    with pytest.raises(RecipeError) as err:
        load_recipe(ROOT / "recipes/train/axolotl-qlora-r64.yaml", [override])
    assert needle in str(err.value), str(err.value)


def test_tool_config_passthrough_accepts_a_real_key(tmp_path):
    r = _recipe(ROOT / "recipes/train/axolotl-qlora-r64.yaml", tmp_path, "tool_config.neftune_noise_alpha=5")
    assert render_tool_config(r, tmp_path).config["neftune_noise_alpha"] == 5
    with pytest.raises(RecipeError, match="unknown swift key"):
        load_recipe(ROOT / "recipes/train/swift-qlora-r64.yaml", ["tool_config.neftune_noise_alpa=5"])


def test_key_lists_are_real_tool_keys():
    ax, sw = tool_keys("axolotl"), tool_keys("swift")
    assert {"lora_target_parameters", "quantize_moe_experts", "chat_template_jinja", "eot_tokens"} <= ax
    assert {"target_parameters", "tuner_type", "loss_scale", "template", "check_model"} <= sw
    assert "tuner_type" not in ax and "quantize_moe_experts" not in sw


# --------------------------------------------------------------------------- rendering


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.name)
def test_rendered_config_uses_only_tool_keys(path: Path, tmp_path):
    r = _recipe(path, tmp_path)
    rendered = render_tool_config(r, r.run_dir, n_train=53)
    unknown = sorted(set(rendered.config) - tool_keys(r.tool))
    assert not unknown, unknown


def test_axolotl_render_for_qwen3_moe(tmp_path):
    r = _recipe(ROOT / "recipes/train/axolotl-qlora-r64.yaml", tmp_path)
    cfg = render_tool_config(r, r.run_dir).config
    assert cfg["adapter"] == "qlora" and cfg["load_in_4bit"] is True and cfg["quantize_moe_experts"] is True
    assert cfg["lora_target_parameters"] == QWEN3_MOE_EXPERT_PARAMETERS and cfg["lora_dropout"] == 0.0
    assert (cfg["lora_r"], cfg["lora_alpha"]) == (64, 128) and "lora_target_linear" not in cfg
    assert cfg["chat_template"] == "jinja" and "<think>" not in cfg["chat_template_jinja"]
    ds = cfg["datasets"][0]
    assert ds["type"] == "chat_template" and ds["roles_to_train"] == ["assistant"] and ds["train_on_eos"] == "turn"
    assert Path(ds["path"]).is_absolute() and cfg["test_datasets"][0]["split"] == "train"
    assert cfg["sequence_len"] == 4096 and cfg["num_epochs"] == 3 and cfg["evals_per_epoch"] == 4
    assert cfg["output_dir"] == str((r.run_dir / "output").resolve())


def test_swift_render_for_qwen3_moe(tmp_path):
    r = _recipe(ROOT / "recipes/train/swift-qlora-r64.yaml", tmp_path)
    cfg = render_tool_config(r, r.run_dir, n_train=53).config
    assert cfg["template"] == SWIFT_INSTRUCT_TEMPLATE == "qwen3_nothinking"
    assert cfg["model_type"] == "qwen3_moe" and cfg["tuner_type"] == "lora" and cfg["loss_scale"] == "default"
    assert cfg["quant_bits"] == 4 and cfg["bnb_4bit_quant_type"] == "nf4"
    assert cfg["target_parameters"] == QWEN3_MOE_EXPERT_PARAMETERS and cfg["lora_rank"] == 64
    assert cfg["split_dataset_ratio"] == 0.0 and len(cfg["val_dataset"]) == 1
    # 53 records / (1 x 8) = 7 steps per epoch, 4 evaluations per epoch -> every 1 step (7 // 4)
    assert cfg["eval_steps"] == 1 and cfg["save_steps"] == 7 and cfg["max_length"] == 4096


def test_multi_gpu_renders(tmp_path):
    r = _recipe(ROOT / "recipes/train/axolotl-lora-r64-zero3.yaml", tmp_path)
    rendered = render_tool_config(r, r.run_dir)
    ds = json.loads(rendered.side_files["deepspeed_zero3.json"])
    assert ds["zero_optimization"]["stage"] == 3 and rendered.config["deepspeed"].endswith("deepspeed_zero3.json")
    assert rendered.config["adapter"] == "lora" and "load_in_4bit" not in rendered.config
    fsdp = render_tool_config(_recipe(ROOT / "recipes/train/axolotl-lora-r64-fsdp.yaml", tmp_path), tmp_path).config
    assert fsdp["fsdp_version"] == 2 and fsdp["fsdp_config"]["transformer_layer_cls_to_wrap"] == "Qwen3MoeDecoderLayer"
    sw = render_tool_config(_recipe(ROOT / "recipes/train/swift-lora-r64-zero3.yaml", tmp_path), tmp_path).config
    assert sw["deepspeed"] == "zero3"


def test_instruct_template_is_plain_chatml():
    jinja2 = pytest.importorskip("jinja2")
    template = jinja2.Environment().from_string(instruct_2507_template())
    msgs = [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}, {"role": "assistant", "content": "A"}]
    assert template.render(messages=msgs) == (
        "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\nA<|im_end|>\n"
    )
    assert template.render(messages=msgs[:2], add_generation_prompt=True).endswith("<|im_start|>assistant\n")


# --------------------------------------------------------------------------- run directory, data, tool envs


def test_prepare_run_writes_resolved_recipe_and_runnable_config(tmp_path):
    r = _recipe(SMOKE["swift"], tmp_path, "base_model=/models/tiny")
    prepared = prepare_run(r)
    assert prepared.n_train == 5 and prepared.n_validation == 5
    text = prepared.config_path.read_text(encoding="utf-8")
    assert text.startswith("# Rendered by novelcraft") and f"swift sft {prepared.config_path}" in text
    assert yaml.safe_load(text)["model"] == "/models/tiny"
    resolved = yaml.safe_load((prepared.run_dir / "recipe.resolved.yaml").read_text(encoding="utf-8"))
    assert resolved["kind"] == "train" and resolved["lora"]["r"] == 8 and resolved["training"]["max_steps"] == 2


def test_bad_data_is_rejected_with_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    good = PEER.read_text(encoding="utf-8").splitlines()[0]
    row = json.loads(good)
    row["messages"] = row["messages"][::-1]
    bad.write_text(good + "\n" + json.dumps(row) + "\n", encoding="utf-8")
    with pytest.raises(TrainError, match="line 2: record: roles must be system, user, assistant"):
        count_records(bad)
    with pytest.raises(TrainError, match="data file not found"):
        prepare_run(_recipe(SMOKE["axolotl"], tmp_path, f"data.train={tmp_path / 'missing.jsonl'}"))


def test_missing_tool_venv_says_how_to_create_it(tmp_path, monkeypatch):
    monkeypatch.setenv("NOVELCRAFT_TOOLENV_DIR", str(tmp_path / "none"))
    monkeypatch.delenv("NOVELCRAFT_AXOLOTL_VENV", raising=False)
    with pytest.raises(ToolEnvError, match=r"bash scripts/toolenv.sh axolotl"):
        find_toolenv("axolotl")
    half = tmp_path / "none" / "axolotl-0123"
    (half / "bin").mkdir(parents=True)
    with pytest.raises(ToolEnvError):  # no completion marker: an interrupted install is not used
        find_toolenv("axolotl")


def test_cli_register_parses_train_and_merge(tmp_path, monkeypatch):
    parser = build_parser()
    args = parser.parse_args(["train", str(SMOKE["axolotl"]), "lora.r=4", "--check"])
    assert args.check and args.overrides == ["lora.r=4"]
    args = parser.parse_args(["merge", "runs/x/output", "runs/x/merged", "--gguf", "x.gguf"])
    assert args.dtype == "bfloat16"
    monkeypatch.setenv("NOVELCRAFT_TOOLENV_DIR", str(tmp_path / "none"))
    monkeypatch.delenv("NOVELCRAFT_SWIFT_VENV", raising=False)
    args = parser.parse_args(["train", str(SMOKE["swift"]), f"output_dir={tmp_path}", "--check"])
    with pytest.raises(NovelcraftError, match="no swift virtualenv"):
        args.command_obj.run(args)
    args = parser.parse_args(["merge", str(tmp_path), str(tmp_path / "m"), "--gguf", str(tmp_path / "m.gguf")])
    monkeypatch.delenv("LLAMA_CPP_CONVERT", raising=False)
    with pytest.raises(NovelcraftError, match="convert_hf_to_gguf.py"):
        args.command_obj.run(args)


# --------------------------------------------------------------------------- tiny model


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    if not hasattr(transformers, "Qwen3MoeConfig"):
        pytest.skip("transformers without Qwen3-MoE")
    from novelcraft.train import make_tiny_qwen3_moe

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    return make_tiny_qwen3_moe(tmp_path_factory.mktemp("tiny") / "tiny-qwen3-moe")


def test_tiny_model_is_a_qwen3_moe_with_the_instruct_template(tiny_model: Path, counter):
    from transformers import AutoConfig, AutoTokenizer

    cfg = AutoConfig.from_pretrained(tiny_model)
    assert cfg.model_type == "qwen3_moe" and cfg.num_experts_per_tok == 2
    tok = AutoTokenizer.from_pretrained(tiny_model)
    assert tok.eos_token == "<|im_end|>"
    text = "It was a bright cold day in April."
    assert tok.encode(text, add_special_tokens=False) == counter.encode(text)
    msgs = [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}, {"role": "assistant", "content": "A"}]
    rendered = tok.apply_chat_template(msgs, tokenize=False)
    assert rendered.endswith("<|im_start|>assistant\nA<|im_end|>\n") and "<think>" not in rendered


# --------------------------------------------------------------------------- real tools (slow)


def _book_jsonl(path: Path, counter, n: int = 6) -> Path:
    """Training records in the compiled shape from real scenes of Alice in Wonderland."""
    from novelcraft.book import prep_book
    from novelcraft.recipes import PrepRecipe

    recipe = PrepRecipe.model_validate({"name": "t", "books": [str(ROOT / "data/books/alice-in-wonderland.epub")]})
    book = prep_book(ROOT / "data/books/alice-in-wonderland.epub", recipe, counter)
    scenes = [s for s in book.scenes if not s.is_reference][:n]
    assert len(scenes) == n
    rows = []
    for s in scenes:
        rows.append(
            {
                "messages": [
                    {"role": "system", "content": f"You are the author of {book.meta.title}. Write in its style."},
                    {"role": "user", "content": f"Write scene {s.scene_id} of chapter {s.chapter_index}: {s.chapter_title}."},
                    {"role": "assistant", "content": s.text},
                ]
            }
        )
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.mark.slow
@pytest.mark.parametrize("tool", ["axolotl", "swift"])
def test_shipped_key_list_matches_installed_tool(tool):
    venv = _venv_or_skip(tool)
    proc = subprocess.run(
        [tool_python(venv), ROOT / "novelcraft/resources/train/tool_check.py", "keys", tool],
        env=tool_env(venv, cpu=True), capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert set(proc.stdout.split()) == set(tool_keys(tool)), "regenerate novelcraft/resources/train/%s_keys.txt" % tool


@pytest.mark.slow
@pytest.mark.parametrize("tool", ["axolotl", "swift"])
def test_every_recipe_validates_with_the_tool(tool, tmp_path, tiny_model):
    venv = _venv_or_skip(tool)
    configs, targets, local = [], [], []
    for path in RECIPES:
        smoke = "smoke" in path.name
        r = load_recipe(path, [f"output_dir={tmp_path}"] + ([f"base_model={tiny_model}"] if smoke else []))
        if r.tool == tool:
            configs.append(prepare_run(r, require_data=False).config_path)
            targets.append(target_of(r))
            local.append(smoke)  # swift's post-parse checks read the model: only the tiny one is here
    assert any(local) and not all(local)
    # ...and configs the tool's own validation must reject (in the same process: tool start-up is slow)
    if tool == "axolotl":
        bad = load_recipe(ROOT / "recipes/train/axolotl-qlora-r64.yaml", [f"output_dir={tmp_path}", "name=bad", "tool_config.lora_target_linear=true"])
        needle = "lora_target_linear is not compatible with quantize_moe_experts"
    else:
        bad = load_recipe(SMOKE["swift"], [f"output_dir={tmp_path}", "name=bad", f"base_model={tiny_model}", "tool_config.max_pixels=many"])
        needle = "argument parser exited"
    configs.append(prepare_run(bad, require_data=False).config_path)
    targets.append(target_of(bad))
    local.append(tool == "swift")
    results = validate_with_tool(tool, configs, venv, post_init=local, targets=targets)
    assert [(res.config_path.name, res.ok, res.error) for res in results[:-1]] == [
        (c.name, True, None) for c in configs[:-1]
    ]
    assert not results[-1].ok and needle in results[-1].error, results[-1]


def _check_adapter(venv: Path, base: Path, adapter: Path) -> dict:
    proc = subprocess.run(
        [tool_python(venv), HELPERS / "check_adapter.py", base, adapter],
        env=tool_env(venv, cpu=True), capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _assert_trained(result, venv: Path, tiny_model: Path) -> None:
    stats = json.loads((result.run_dir / "stats.json").read_text(encoding="utf-8"))
    assert stats["returncode"] == 0 and stats["global_step"] == 2
    assert math.isfinite(stats["train_loss"]) and math.isfinite(stats["eval_loss"])
    assert stats["grad_norm"] > 0
    assert (result.run_dir / "recipe.resolved.yaml").is_file() and (result.run_dir / "train.log").stat().st_size > 0
    info = _check_adapter(venv, tiny_model, result.adapter_dir)
    # 2 layers x (q, k, v, o) attention LoRA + 2 layers x (gate_up_proj, down_proj) expert LoRA, A and B each
    assert info["attention_lora"] == 8 and info["expert_lora"] == 8 and info["lora_B"] == 12
    assert info["zero_lora_B"] == [], "LoRA matrices that got no gradient"
    assert info["router_lora"] == []
    assert info["adapter_effect"] > 0 and info["merge_error"] < 1e-4


@pytest.mark.slow
def test_axolotl_preprocess_labels_and_two_step_train(tmp_path, tiny_model, counter):
    venv = _venv_or_skip("axolotl")
    from novelcraft.train import run_train

    book = _book_jsonl(tmp_path / "alice.jsonl", counter)
    train = tmp_path / "train.jsonl"
    train.write_text(PEER.read_text(encoding="utf-8") + book.read_text(encoding="utf-8"), encoding="utf-8")
    r = _recipe(SMOKE["axolotl"], tmp_path, f"base_model={tiny_model}", f"data.train={train}")
    prepared = prepare_run(r)
    assert prepared.n_train == 11
    proc = subprocess.run(
        [venv / "bin" / "axolotl", "preprocess", prepared.config_path],
        env=tool_env(venv, cpu=True, extra={"HF_HUB_OFFLINE": "1"}), capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    proc = subprocess.run(
        [tool_python(venv), HELPERS / "check_labels.py", r.run_dir / "prepared", tiny_model, train, PEER],
        env=tool_env(venv, cpu=True), capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    labels = json.loads(proc.stdout.strip().splitlines()[-1])
    # 11 train rows + 5 validation rows, each labelled exactly on one assistant turn + <|im_end|>
    assert labels["rows"] == 16 and labels["matched_records"] == 11 and labels["problems"] == []

    result = run_train(r, check=False, echo=None)  # the tool check is covered above; axolotl starts slowly
    _assert_trained(result, venv, tiny_model)


@pytest.mark.slow
def test_swift_two_step_train_and_merge(tmp_path, tiny_model, counter):
    venv = _venv_or_skip("swift")
    from novelcraft.train import merge_adapter, run_train

    book = _book_jsonl(tmp_path / "alice.jsonl", counter, n=4)
    r = _recipe(SMOKE["swift"], tmp_path, f"base_model={tiny_model}", f"data.train={book}")
    result = run_train(r, echo=None)
    _assert_trained(result, venv, tiny_model)

    report = merge_adapter(result.adapter_dir, tmp_path / "merged", python=venv)
    merged = Path(report["out"])
    cfg = json.loads((merged / "config.json").read_text(encoding="utf-8"))
    assert cfg["model_type"] == "qwen3_moe" and cfg.get("dtype", cfg.get("torch_dtype")) == "bfloat16"
    assert (merged / "model.safetensors").is_file() and (merged / "tokenizer_config.json").is_file()
    assert not any(p.name.startswith("adapter_") for p in merged.iterdir())


@pytest.mark.slow
def test_smoke_trained_adapter_changes_generation(tmp_path, tiny_model, counter):
    """The adapter the swift smoke recipe trains is applied by the generation engine (greedy outputs differ)."""
    _venv_or_skip("swift")
    pytest.importorskip("outlines")
    from novelcraft.llm import LLMConfig, LLMRequest, make_engine
    from novelcraft.train import run_train

    book = _book_jsonl(tmp_path / "alice.jsonl", counter, n=4)
    r = _recipe(SMOKE["swift"], tmp_path, f"base_model={tiny_model}", f"data.train={book}", "training.learning_rate=0.05")
    result = run_train(r, echo=None)
    assert json.loads((result.run_dir / "stats.json").read_text(encoding="utf-8"))["returncode"] == 0
    request = [LLMRequest(key="s", messages=({"role": "user", "content": "Write the first scene."},), max_tokens=24)]
    texts = {}
    for name, adapter in (("base", None), ("adapter", str(result.adapter_dir))):
        engine = make_engine(LLMConfig(model=str(tiny_model), adapter=adapter))
        texts[name] = engine.generate(request)[0].text
        engine.close()
    assert texts["base"] != texts["adapter"]
