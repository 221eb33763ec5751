"""The checked-in JSON Schemas match the pydantic models and are valid draft 2020-12 schemas."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from novelcraft.models import Block, Book, BookMeta, Chapter, ReferenceSection, Scene
from novelcraft.schemas import (
    JSON_SCHEMA_DIALECT,
    SCHEMA_MODELS,
    check_schemas,
    generate_schemas,
    main,
    render_schema,
    write_schemas,
)

SCHEMA_DIR = Path(__file__).resolve().parents[1] / "schemas"
REGENERATE = "python -m novelcraft.schemas"


def _load(stem: str) -> dict:
    return json.loads((SCHEMA_DIR / f"{stem}.schema.json").read_text(encoding="utf-8"))


def sample_book() -> Book:
    text = "# Chapter 1: The Start\n\nIt was a dark night. The wind howled."
    return Book(
        meta=BookMeta(
            book_id="sample_book",
            title="Sample",
            author="Anon",
            word_count=12,
            total_chapters=1,
            total_scenes=2,
            world_context="# Novel World Context",
        ),
        chapters=[
            Chapter(
                index=1,
                title="The Start",
                heading="# Chapter 1: The Start",
                source_heading="CHAPTER I. THE START",
                text=text,
                word_count=12,
                tokens=20,
                blocks=[Block(index=0, text=text, tokens=20)],
            )
        ],
        reference=[
            ReferenceSection(index=1, kind="foreword", title="Foreword", text="A note.", word_count=2, tokens=3)
        ],
        scenes=[
            Scene(scene_id=1, chapter_index=0, text="A note.", is_reference=True),
            Scene(
                scene_id=2, chapter_index=1, chapter_title="The Start", text=text, tokens=20, block_start=0, block_end=0
            ),
        ],
    )


def test_checked_in_schemas_match_models() -> None:
    drift = check_schemas(SCHEMA_DIR)
    assert not drift, f"JSON Schemas out of date: {', '.join(drift)}; regenerate with `{REGENERATE}`"


def test_every_model_has_a_schema_file() -> None:
    files = sorted(p.name for p in SCHEMA_DIR.glob("*.schema.json"))
    assert files == sorted(f"{stem}.schema.json" for stem in SCHEMA_MODELS)


@pytest.mark.parametrize("stem", list(SCHEMA_MODELS))
def test_schema_file_is_valid_json_schema(stem: str) -> None:
    schema = _load(stem)
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == JSON_SCHEMA_DIALECT
    assert schema["$id"] == f"novelcraft/{stem}.schema.json"


def test_generation_is_deterministic() -> None:
    a, b = generate_schemas(), generate_schemas()
    assert [render_schema(s) for s in a.values()] == [render_schema(s) for s in b.values()]
    assert list(a) == list(SCHEMA_MODELS)


def test_sample_book_validates_against_schema() -> None:
    validator = Draft202012Validator(_load("book"))
    data = sample_book().model_dump(mode="json")
    errors = sorted(validator.iter_errors(data), key=str)
    assert not errors, [e.message for e in errors]


def test_schema_rejects_what_the_model_rejects() -> None:
    validator = Draft202012Validator(_load("book"))
    data = sample_book().model_dump(mode="json")
    data["scenes"][0]["unexpected"] = 1
    data["meta"]["book_id"] = "Not Valid"
    messages = [e.message for e in validator.iter_errors(data)]
    assert any("unexpected" in m for m in messages)
    assert any("does not match" in m for m in messages)


def test_write_then_check_and_drift(tmp_path: Path) -> None:
    paths = write_schemas(tmp_path)
    assert [p.name for p in paths] == [f"{s}.schema.json" for s in SCHEMA_MODELS]
    assert all(p.read_text(encoding="utf-8").endswith("}\n") for p in paths)
    assert check_schemas(tmp_path) == []
    (tmp_path / "scene.schema.json").write_text("{}\n", encoding="utf-8")
    (tmp_path / "book.schema.json").unlink()
    assert check_schemas(tmp_path) == ["book.schema.json", "scene.schema.json"]


def test_cli_check_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--check", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "book.schema.json (missing)" in err and REGENERATE in err
    assert main([str(tmp_path)]) == 0
    assert main(["--check", str(tmp_path)]) == 0
