"""Ollama ``Modelfile``: FROM, ADAPTER, a TEMPLATE that renders what the model's chat template renders, SYSTEM,
PARAMETER (pure).

The TEMPLATE is Go ``text/template`` over Ollama's ``.Messages`` (Ollama puts the Modelfile's SYSTEM in front
as a system message when a request has none). For the plain ChatML the novelcraft recipes train with (the
Qwen3-Instruct-2507 template, also what Qwen2.5's template renders whenever a system turn is given) it
renders ``<|im_start|>ROLE\\nCONTENT<|im_end|>\\n`` per message and the assistant header after a final user
turn — the test suite renders both templates with Go and Jinja and compares them byte for byte.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

#: the Go template of plain ChatML over ``.Messages`` (no trailing newline: Ollama appends none).
CHATML_TEMPLATE = (
    "{{- range $i, $_ := .Messages }}\n"
    "{{- $last := eq (len (slice $.Messages $i)) 1 -}}\n"
    "<|im_start|>{{ .Role }}\n"
    '{{ .Content }}{{ if or (ne .Role "assistant") (not $last) }}<|im_end|>\n'
    "{{ end }}\n"
    '{{- if and (ne .Role "assistant") $last }}<|im_start|>assistant\n'
    "{{ end }}\n"
    "{{- end }}"
)
#: Ollama PARAMETER names a Modelfile may set (``ollama`` docs: Modelfile reference).
PARAMETERS = frozenset(
    {
        "num_ctx", "repeat_last_n", "repeat_penalty", "temperature", "seed", "stop", "num_predict", "top_k",
        "top_p", "min_p", "num_keep", "typical_p", "presence_penalty", "frequency_penalty", "mirostat",
        "mirostat_eta", "mirostat_tau", "num_batch", "num_gpu", "num_thread",
    }
)  # fmt: skip


def _quote(text: str) -> str:
    if '"""' in text:
        raise ValueError('a Modelfile block cannot contain """')
    return f'"""{text}"""'


def _value(value: object) -> str:
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def render_modelfile(
    model: str,
    *,
    adapter: str | None = None,
    template: str = CHATML_TEMPLATE,
    system: str | None = None,
    parameters: Mapping[str, object | Sequence[object]] | None = None,
    license_text: str | None = None,
) -> str:
    """The Modelfile text: ``FROM model`` (a GGUF path, relative to the Modelfile, or an Ollama model name),
    ``ADAPTER`` (a GGUF LoRA), ``TEMPLATE``, ``SYSTEM`` and one ``PARAMETER`` line per value (a list repeats
    the name, as Ollama wants for ``stop``)."""
    lines = [f"FROM {model}"]
    if adapter:
        lines.append(f"ADAPTER {adapter}")
    lines.append(f"TEMPLATE {_quote(template)}")
    if system:
        lines.append(f"SYSTEM {_quote(system)}")
    for name, value in (parameters or {}).items():
        if name not in PARAMETERS:
            raise ValueError(f"unknown Ollama parameter {name!r}")
        values = value if isinstance(value, (list, tuple)) else [value]
        lines += [f"PARAMETER {name} {_value(v)}" for v in values]
    if license_text:
        lines.append(f"LICENSE {_quote(license_text)}")
    return "\n".join(lines) + "\n"
