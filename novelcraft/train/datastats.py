"""Token counts of a compiled training set, as the tools see it (chat template, length filter)."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, Field

from ..errors import NovelcraftError
from ..tokens import TokenCounter


def chatml(messages: list[dict], *, generation_prompt: bool = False) -> str:
    """The ChatML text of ``messages`` as the Instruct-2507 template writes it (no think blocks)."""
    text = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
    return text + ("<|im_start|>assistant\n" if generation_prompt else "")


class DataStats(BaseModel):
    """A JSONL of chat records in tokens. Records longer than ``sequence_len`` are dropped by both
    tools (axolotl filters them, swift's ``truncation_strategy: delete``), so they are not counted."""

    path: str
    sequence_len: int
    records: int
    kept_records: int
    tokens: int
    supervised_tokens: int
    longest: int
    longest_supervised: int = Field(0, description="most trained tokens of one record")
    dropped_longest: int = 0

    @property
    def dropped(self) -> int:
        """Records over the sequence length, which the trainer drops."""
        return self.records - self.kept_records


def record_lengths(path: str | Path, counter: TokenCounter) -> list[tuple[int, int]]:
    """(tokens of the whole chat, supervised tokens) of each record of a ``{"messages": [...]}`` JSONL."""
    messages: list[list[dict]] = []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise NovelcraftError(f"cannot read data ({exc.strerror or exc})", path=path, step="estimate") from None
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            msgs = json.loads(line)["messages"]
            messages.append([{"role": str(m["role"]), "content": str(m["content"])} for m in msgs])
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise NovelcraftError(
                f'line {lineno}: not a {{"messages": [...]}} record ({type(exc).__name__}: {exc})',
                path=path,
                step="estimate",
            ) from None
    # The whole chat and its prompt (up to the assistant header), tokenized as the tools do: the special
    # tokens are matched in the text, and a newline next to the markup merges as in the real template.
    texts = []
    for msgs in messages:
        texts += [chatml(msgs), chatml(msgs[:-1], generation_prompt=True)]
    counts = counter.count_batch(texts)
    out = []
    for i, msgs in enumerate(messages):
        total, prompt = counts[2 * i], counts[2 * i + 1]
        # The last assistant turn and its <|im_end|> are trained; the newline after it is not (axolotl).
        supervised = total - prompt - 1 if msgs and msgs[-1]["role"] == "assistant" else 0
        out.append((total, supervised))
    return out


def data_stats(path: str | Path, counter: TokenCounter, sequence_len: int) -> DataStats:
    """Token statistics of a compiled data set for a run with ``sequence_len``."""
    lengths = record_lengths(path, counter)
    kept = [(t, s) for t, s in lengths if t <= sequence_len]
    dropped = [t for t, _ in lengths if t > sequence_len]
    return DataStats(
        path=str(path),
        sequence_len=sequence_len,
        records=len(lengths),
        kept_records=len(kept),
        tokens=sum(t for t, _ in kept),
        supervised_tokens=sum(s for _, s in kept),
        longest=max((t for t, _ in kept), default=0),
        longest_supervised=max((s for _, s in kept), default=0),
        dropped_longest=max(dropped, default=0),
    )
