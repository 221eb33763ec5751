"""``novelcraft.validate.kinds``: what a file holds, told from its content."""

from __future__ import annotations

from pathlib import Path

from novelcraft.validate import detect_kind, validate_file


def test_single_objects_are_detected(tmp_path: Path, counter, write_json, reasons, scene) -> None:
    instruction = {
        "scene_goal": "Avis meets Ernest at dinner.",
        "characters_present": ["Avis", "Ernest"],
        "emotional_beat": "curiosity",
        "constraints": "first person",
    }
    path = write_json(tmp_path / "instruction.json", instruction)
    assert detect_kind(path, instruction) == "instruction"
    assert validate_file(path, counter=counter) == []

    broken = dict(instruction, characters_present="Avis")
    issues = validate_file(write_json(tmp_path / "broken_instruction.json", broken))
    assert [i.field for i in issues] == ["characters_present"], reasons(issues)

    one_scene = scene(7, running_summary="So far.")
    assert detect_kind(tmp_path / "s.json", one_scene) == "scene"
    assert validate_file(write_json(tmp_path / "s.json", one_scene), counter=counter) == []
