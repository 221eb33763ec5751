"""Run inside the axolotl venv: check the labels of an `axolotl preprocess` output.

    python inspect_labels.py PREPARED_DIR TOKENIZER_DIR DATA.jsonl... [--counts COUNTS.json]

For every prepared row, the positions with a label (not -100) must be one contiguous span whose
labels equal its input ids and whose decoded text is exactly one record's (last) assistant content followed
by <|im_end|>. With ``--counts`` (a JSON list of [assistant content, tokens] as novelcraft's compile counts
each record), every matched row's length must equal that count: what the trainer tokenizes is what compile
budgeted. Prints one JSON summary line.
"""

import json
import sys
from pathlib import Path

from datasets import load_from_disk
from transformers import AutoTokenizer


def main(prepared: str, tokenizer_dir: str, *data: str) -> int:
    counts: dict[str, int] = {}
    if "--counts" in data:
        k = data.index("--counts")
        counts = {content + "<|im_end|>": n for content, n in json.loads(Path(data[k + 1]).read_text(encoding="utf-8"))}
        data = data[:k] + data[k + 2 :]
    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    expected = {}
    for path in data:
        for line in Path(path).read_text(encoding="utf-8").splitlines():
            if line.strip():
                rec = json.loads(line)
                expected[rec["messages"][-1]["content"] + "<|im_end|>"] = rec
    rows, problems, matched, checked = 0, [], set(), 0
    for ds_dir in sorted(p.parent for p in Path(prepared).rglob("dataset_info.json")):
        ds = load_from_disk(str(ds_dir))
        for i, row in enumerate(ds):
            rows += 1
            ids, labels = row["input_ids"], row["labels"]
            span = [j for j, lab in enumerate(labels) if lab != -100]
            if not span or span != list(range(span[0], span[-1] + 1)):
                problems.append(f"{ds_dir.name}[{i}]: labelled positions are not one span")
                continue
            if [labels[j] for j in span] != [ids[j] for j in span]:
                problems.append(f"{ds_dir.name}[{i}]: labels differ from input ids")
            text = tok.decode([ids[j] for j in span], skip_special_tokens=False)
            if text not in expected:
                problems.append(
                    f"{ds_dir.name}[{i}]: labelled text is not an assistant turn + <|im_end|>: {text[:60]!r}...{text[-30:]!r}"
                )
            else:
                matched.add(text)
                if text in counts:
                    checked += 1
                    if len(ids) != counts[text]:
                        problems.append(
                            f"{ds_dir.name}[{i}]: the trainer has {len(ids)} tokens, compile counted {counts[text]}"
                        )
                # Everything before the span is system + user + the assistant header: never trained.
                prefix = tok.decode(ids[: span[0]], skip_special_tokens=False)
                if not prefix.endswith("<|im_start|>assistant\n") or "<think>" in prefix + text:
                    problems.append(f"{ds_dir.name}[{i}]: unexpected prompt end {prefix[-40:]!r}")
    print(
        json.dumps(
            {
                "rows": rows,
                "matched_records": len(matched),
                "records": len(expected),
                "counts_checked": checked,
                "problems": problems[:10],
            }
        )
    )
    return 0 if not problems and rows else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
