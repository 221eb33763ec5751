"""Run inside the MS-SWIFT venv: encode records with swift's own template, as `swift sft` does, and check them.

    python swift_labels.py [--model-type=TYPE] MODEL_DIR TEMPLATE_TYPE COUNTS.json DATA.jsonl...

(``--model-type``: swift's model type where the folder alone is ambiguous, e.g. ``qwen2`` vs ``qwen2_gte``.)

For every record the positions with a label (not -100) must be one contiguous span whose decoded text is the
record's assistant content followed by <|im_end|>, and the encoded length must equal novelcraft's compile
count of the record (COUNTS.json: a JSON list of [assistant content, tokens]). Prints one JSON summary line.
"""

import json
import sys
from pathlib import Path

from swift.model import get_processor
from swift.template import get_template


def main(model_dir: str, template_type: str, counts_file: str, *data: str, model_type: str | None = None) -> int:
    counts = {content: n for content, n in json.loads(Path(counts_file).read_text(encoding="utf-8"))}
    processor = get_processor(model_dir, model_type=model_type)
    template = get_template(processor, template_type=template_type, max_length=1 << 16)
    template.set_mode("train")
    rows, problems, checked = 0, [], 0
    for path in data:
        for line in Path(path).read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            rec = json.loads(line)
            rows += 1
            encoded = template.encode({"messages": rec["messages"]})
            ids, labels = encoded["input_ids"], encoded["labels"]
            span = [j for j, lab in enumerate(labels) if lab != -100]
            answer = rec["messages"][-1]["content"]
            if not span or span != list(range(span[0], span[-1] + 1)):
                problems.append(f"{Path(path).name}:{rows}: labelled positions are not one span")
                continue
            text = processor.decode([ids[j] for j in span], skip_special_tokens=False)
            if text.rstrip("\n") != answer + "<|im_end|>":
                problems.append(f"{Path(path).name}:{rows}: labelled text is {text[:40]!r}...{text[-30:]!r}")
            if answer in counts:
                checked += 1
                if len(ids) != counts[answer]:
                    problems.append(
                        f"{Path(path).name}:{rows}: swift has {len(ids)} tokens, compile counted {counts[answer]}"
                    )
    print(json.dumps({"rows": rows, "counts_checked": checked, "problems": problems[:10]}))
    return 0 if not problems and rows else 1


if __name__ == "__main__":
    args = sys.argv[1:]
    kind = next((a.split("=", 1)[1] for a in args if a.startswith("--model-type=")), None)
    sys.exit(main(*[a for a in args if not a.startswith("--model-type=")], model_type=kind))
