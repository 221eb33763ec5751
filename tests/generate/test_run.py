"""``novelcraft.generate.run``: the generation loop with a scripted engine: lockstep batches, stop conditions,
resume, branch, outputs."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest

from novelcraft.bench.novel import load_novel
from novelcraft.errors import NovelcraftError
from novelcraft.generate import generate_novels, read_outline
from novelcraft.generate.run import GenerateError
from novelcraft.generate.state import load_state
from novelcraft.llm.testing import ScriptedEngine
from novelcraft.llm.types import LLMResponse
from novelcraft.models import WorldContext
from novelcraft.stats import read_stats

ROOT = Path(__file__).resolve().parents[2]


SEEDS = ROOT / "data" / "seeds"


ALL_SEEDS = [str(SEEDS / n) for n in ("clockwork-harbour.yaml", "iron-dawn.yaml", "the-drowned-abbey.yaml")]


def scene_batches(engine: ScriptedEngine) -> list[list[str]]:
    """Keys of the free-text (scene) requests, per engine call."""
    out, i = [], 0
    for size in engine.batches:
        reqs = engine.requests[i : i + size]
        i += size
        if all(r.schema is None for r in reqs):
            out.append([r.key for r in reqs])
    return out


def short_seeds(tmp_path, lengths: dict[str, int | None]) -> list[str]:
    """Copies of the shipped seeds with their target_scenes replaced (None: the recipe's)."""
    import yaml

    out = []
    for name, n in lengths.items():
        data = yaml.safe_load((SEEDS / f"{name}.yaml").read_text())
        data.pop("target_scenes", None)
        if n is not None:
            data["target_scenes"] = n
        path = tmp_path / "seeds" / f"{name}.yaml"
        path.parent.mkdir(exist_ok=True)
        path.write_text(yaml.safe_dump(data))
        out.append(str(path))
    return out


def test_lockstep_one_batch_per_scene_step(recipe_for, engine, counter, tmp_path):
    seeds = short_seeds(tmp_path, {"clockwork-harbour": None, "iron-dawn": 4, "the-drowned-abbey": 2})
    recipe = recipe_for(seeds=seeds, samples_per_seed=2, llm={"sampling": {"temperature": 0.7, "seed": None}})
    result = generate_novels(None, recipe, engine, counter=counter)
    assert [n.novel_id for n in result.novels] == [
        "clockwork-harbour-01",
        "clockwork-harbour-02",
        "iron-dawn-01",
        "iron-dawn-02",
        "the-drowned-abbey-01",
        "the-drowned-abbey-02",
    ]
    assert [len(n.scenes) for n in result.novels] == [3, 3, 4, 4, 2, 2] and all(n.finished for n in result.novels)
    batches = scene_batches(engine)
    assert [len(b) for b in batches] == [6, 6, 4, 2]  # one call per scene step over the novels still running
    assert all(k.endswith(f"/scene{i + 1}") for i, b in enumerate(batches) for k in b)
    # samples of one seed sit next to each other (shared prefix: persona + world context)
    seeds_in_order = [k.rsplit("-", 1)[0] for k in batches[0]]
    assert seeds_in_order == sorted(seeds_in_order, key=seeds_in_order.index) and len(set(seeds_in_order)) == 3
    # one world-context task per seed without one (samples share it); the abbey brings its own
    wc = [r for r in engine.requests if r.schema and r.schema.__name__ == "WorldContext"]
    assert len(wc) == 2
    summary_batches = [
        size
        for size, start in _spans(engine)
        if all(r.schema and r.schema.__name__ == "RunningSummary" for r in engine.requests[start : start + size])
    ]
    assert summary_batches == [6, 6, 4, 2]
    assert result.novels[0].scenes[0].text != result.novels[2].scenes[0].text


def _spans(engine):
    start = 0
    for size in engine.batches:
        yield size, start
        start += size


def test_seed_target_scenes_and_prompts(recipe_for, engine, counter):
    recipe = recipe_for(seeds=[str(SEEDS / "clockwork-harbour.yaml")])
    result = generate_novels(None, recipe, engine, counter=counter)
    [novel] = result.novels
    assert novel.total == 3
    scene_reqs = [r for r in engine.requests if r.schema is None]
    assert len(scene_reqs) == 3
    user2 = scene_reqs[1].messages[1]["content"]
    assert "NOVEL PROGRESS: 33%" in user2 and "<world_context>" in user2 and "after: Sentence 0 of" in user2
    assert "The novel opens with this scene" in scene_reqs[0].messages[1]["content"]
    assert scene_reqs[0].messages[0]["content"].startswith("You are a novelist")
    assert "<scene_instruction>\n# Scene Instruction" in user2


def test_outputs_are_readable(recipe_for, engine, counter):
    recipe = recipe_for(output={"epub": True})
    result = generate_novels(None, recipe, engine, counter=counter)
    d = result.run_dir / "novels" / "clockwork-harbour"
    for name in ("state.json", "outline.json", "outline.yaml", "novel.md", "novel.epub", "novel.json", "trace.json"):
        assert (d / name).is_file(), name
    novel = load_novel(d / "novel.json")
    assert [s.index for s in novel.scenes] == [1, 2, 3] and all(
        s.summary and s.goal and s.target_words for s in novel.scenes
    )
    md = load_novel(d / "novel.md")
    assert md.title == "The Clockwork Harbour" and [s.text for s in md.scenes] == [s.text for s in novel.scenes]
    assert [s.chapter for s in md.scenes] == [1, 1, 2]
    trace = json.loads((d / "trace.json").read_text())
    assert trace["scenes"][1]["prompt"]["running_summary"].startswith("NOVEL PROGRESS: 33%")
    assert trace["scenes"][0]["tokens"]["completion"] > 0 and trace["scenes"][0]["tokens"]["summary_completion"] > 0
    import ebooklib
    from ebooklib import epub

    book = epub.read_epub(str(d / "novel.epub"))
    assert book.get_metadata("DC", "title")[0][0] == "The Clockwork Harbour"
    html = b"".join(i.get_content() for i in book.get_items_of_type(ebooklib.ITEM_DOCUMENT)).decode()
    assert "Chapter 2" in html and "Sentence 0 of clockwork-harbour scene 3" in html
    stats = json.loads((result.run_dir / "stats.json").read_text())
    assert stats["details"]["novels"][0]["scenes"] == 3 and stats["stages"]["scenes"]["calls"] == 3
    assert (result.run_dir / "recipe.resolved.yaml").is_file()


def test_short_and_repetitive_scenes_are_retried_with_a_note(recipe_for, engine, writer, counter):
    writer.overrides[("clockwork-harbour", 2)] = ["Too short.", "The bell rings. " * 40]
    result = generate_novels(None, recipe_for(scenes={"attempts": 3}), engine, counter=counter)
    sc = result.novels[0].scenes[1]
    assert sc.attempts == 3 and not sc.flagged and sc.notes and "repeated itself" in sc.notes[0]
    prompts = [r for r in engine.requests if r.key == "clockwork-harbour/scene2"]
    assert len(prompts) == 3
    assert "Note: the previous attempt had only 2 words" in prompts[1].messages[1]["content"]
    assert prompts[0].messages[1]["content"] in prompts[1].messages[1]["content"]  # the note is appended


def test_cut_off_scene_is_trimmed(recipe_for, engine, writer, counter):
    body = " ".join(f"The keeper climbs stair {i} and counts the gears of wheel {i}." for i in range(8))
    writer.overrides[("clockwork-harbour", 1)] = [
        LLMResponse(
            key="clockwork-harbour/scene1",
            text=body + " Then the tide turned and",
            completion_tokens=200,
            finish_reason="length",
        )
    ]
    result = generate_novels(None, recipe_for(), engine, counter=counter)
    sc = result.novels[0].scenes[0]
    assert sc.trimmed and sc.text == body and sc.attempts == 1 and not sc.flagged


def test_scene_failing_every_attempt_is_flagged_or_fails(recipe_for, engine, writer, counter):
    writer.overrides[("clockwork-harbour", 1)] = ["Short one.", "Short two here."]
    result = generate_novels(None, recipe_for(), engine, counter=counter)
    sc = result.novels[0].scenes[0]
    assert sc.flagged and "too_short" in sc.flag_reason and sc.text == "Short two here." and sc.attempts == 2
    writer.overrides[("clockwork-harbour", 1)] = ["Short one.", "Short two here."]
    with pytest.raises(GenerateError) as err:
        generate_novels(None, recipe_for(name="strict", on_failure="error"), ScriptedEngine(writer), counter=counter)
    assert "clockwork-harbour.yaml: scene 1: " in str(err.value) and "too_short" in str(err.value)


def test_resume_after_crash_mid_novel(recipe_for, writer, counter, tmp_path):
    recipe = recipe_for(seeds=short_seeds(tmp_path, {"clockwork-harbour": None, "iron-dawn": None}))
    writer.fail_scene = 3
    with pytest.raises(GenerateError) as err:
        generate_novels(None, recipe, ScriptedEngine(writer), counter=counter)
    msg = str(err.value)
    assert "scene 3" in msg and "clockwork-harbour.yaml" in msg and "--resume" in msg and "server down" in msg
    run = recipe.run_dir
    before = {p.parent.name: load_state(p) for p in run.glob("novels/*/state.json")}
    assert {k: len(v.scenes) for k, v in before.items()} == {"clockwork-harbour": 2, "iron-dawn": 2}
    with pytest.raises(GenerateError, match="pass --resume"):
        generate_novels(None, recipe, ScriptedEngine(writer), counter=counter)
    writer.fail_scene = None
    healthy = ScriptedEngine(writer)
    result = generate_novels(None, recipe, healthy, counter=counter, resume=True)
    assert [len(n.scenes) for n in result.novels] == [3, 3]
    for n in result.novels:
        assert [s.index for s in n.scenes] == [1, 2, 3]
        assert [s.text for s in n.scenes[:2]] == [s.text for s in before[n.novel_id].scenes]
    # only scene 3 and its summaries were asked again; outline and world context came from the stores
    assert sorted({r.key for r in healthy.requests}) == sorted(
        [f"{n}/scene3" for n in ("clockwork-harbour", "iron-dawn")]
        + [f"{n}/summary/scene3" for n in ("clockwork-harbour", "iron-dawn")]
    )


def test_resume_after_crash_in_summary_step(recipe_for, writer, counter):
    recipe = recipe_for()
    writer.fail_summary = 2
    with pytest.raises(GenerateError, match=r"summary after scene 2"):
        generate_novels(None, recipe, ScriptedEngine(writer), counter=counter)
    state = load_state(recipe.run_dir / "novels" / "clockwork-harbour" / "state.json")
    assert len(state.scenes) == 2 and not state.scenes[1].summary_done
    writer.fail_summary = None
    healthy = ScriptedEngine(writer)
    result = generate_novels(None, recipe, healthy, counter=counter, resume=True)
    assert len(result.novels[0].scenes) == 3 and result.novels[0].scenes[1].text == state.scenes[1].text
    assert "clockwork-harbour/scene2" not in {r.key for r in healthy.requests}


def test_resume_with_other_settings_is_refused(recipe_for, engine, counter):
    generate_novels(None, recipe_for(), engine, counter=counter)
    with pytest.raises(GenerateError) as err:
        generate_novels(None, recipe_for(scenes={"max_tokens": 300}), engine, counter=counter, resume=True)
    assert "scenes.max_tokens" in str(err.value) and "--branch-from" in str(err.value)


def test_branch_from_scene_keeps_the_source(recipe_for, writer, counter):
    source = recipe_for()
    first = generate_novels(None, source, ScriptedEngine(writer), counter=counter)
    src_state = (source.run_dir / "novels" / "clockwork-harbour" / "state.json").read_bytes()
    branch = recipe_for(name="branch", llm={"sampling": {"temperature": 0.9, "seed": 3}})
    writer.overrides[("clockwork-harbour", 2)] = [
        "A different second scene. " + " ".join(f"Fresh line {i} of the branch." for i in range(10))
    ]
    engine = ScriptedEngine(writer)
    result = generate_novels(None, branch, engine, counter=counter, branch_from=(source.run_dir, 1))
    [novel] = result.novels
    assert len(novel.scenes) == 3 and novel.branched_from["scene"] == 1
    assert novel.scenes[0].text == first.novels[0].scenes[0].text
    assert novel.scenes[1].text.startswith("A different second scene.")
    assert novel.key != first.novels[0].key
    assert (source.run_dir / "novels" / "clockwork-harbour" / "state.json").read_bytes() == src_state
    assert {r.key for r in engine.requests if r.schema is None} == {
        "clockwork-harbour/scene2",
        "clockwork-harbour/scene3",
    }
    with pytest.raises(GenerateError, match="cannot branch from scene 9"):
        generate_novels(None, recipe_for(name="b2"), engine, counter=counter, branch_from=(source.run_dir, 9))


def test_hand_edited_outline_is_used(recipe_for, engine, writer, counter, tmp_path):
    first = generate_novels(None, recipe_for(), engine, counter=counter)
    outline = read_outline(first.run_dir / "novels" / "clockwork-harbour" / "outline.yaml")
    text = (first.run_dir / "novels" / "clockwork-harbour" / "outline.yaml").read_text()
    edited = tmp_path / "edited.yaml"
    edited.write_text(text.replace("Scene 2 moves the plot.", "Pim finds the reversed spring."))
    engine2 = ScriptedEngine(writer)
    result = generate_novels(None, recipe_for(name="edited"), engine2, counter=counter, outline=edited)
    assert result.novels[0].outline.scenes[1].instruction.scene_goal == "Pim finds the reversed spring."
    assert not [r for r in engine2.requests if r.schema and r.schema.__name__ in ("ActPlan", "ActScenes")]
    scene2 = next(r for r in engine2.requests if r.key.endswith("/scene2"))
    assert "## SCENE GOAL: Pim finds the reversed spring." in scene2.messages[1]["content"]
    assert len(outline.scenes) == 3


def test_outline_the_model_cannot_produce(recipe_for, counter):
    def responder(req):
        if req.schema is not None and req.schema.__name__ == "ActPlan":
            return '{"acts": []}'  # never the required number of acts
        return json.dumps({k: "x" for k in WorldContext.model_fields})

    engine = ScriptedEngine(responder)
    with pytest.raises(GenerateError) as err:
        generate_novels(None, recipe_for(attempts=2), engine, counter=counter)
    msg = str(err.value)
    assert msg.startswith(f"{SEEDS / 'clockwork-harbour.yaml'}: outline: ") and "no valid act plan" in msg
    assert sum(1 for r in engine.requests if r.schema.__name__ == "ActPlan") == 2


def test_server_down_names_seed_and_scene(recipe_for, writer, counter):
    """An engine that raises (the openai backend after its retries) stops the run; the checkpoint resumes."""

    class DownAfter:
        name = "down"

        def __init__(self, inner, scene):
            self.inner, self.scene = inner, scene

        def generate(self, requests):
            if any(r.key.endswith(f"/scene{self.scene}") for r in requests):
                from novelcraft.llm.types import LLMError

                raise LLMError(
                    "request failed 3 times, the server is down or failing: Connection refused",
                    path="http://127.0.0.1:8000/v1",
                    step="llm openai",
                )
            return self.inner.generate(requests)

        def close(self):
            pass

    recipe = recipe_for()
    with pytest.raises(NovelcraftError) as err:
        generate_novels(None, recipe, DownAfter(ScriptedEngine(writer), 2), counter=counter)
    msg = str(err.value)
    assert msg.startswith(f"{SEEDS / 'clockwork-harbour.yaml'}: scene 2: ") and "server is down" in msg
    # stats.json says the run stopped, why, and what the checkpoint holds
    stopped = read_stats(recipe.run_dir)
    assert stopped.error == msg and stopped.items[0].counts["scenes"] == 1
    result = generate_novels(None, recipe, ScriptedEngine(writer), counter=counter, resume=True)
    assert len(result.novels[0].scenes) == 3
    assert read_stats(recipe.run_dir).error is None and read_stats(recipe.run_dir).items[0].counts["scenes"] == 3


def test_make_outline_in_memory(recipe_for, engine, counter, tmp_path):
    from novelcraft.generate import load_seed, make_outline

    seed = load_seed(SEEDS / "iron-dawn.yaml").model_copy(update={"target_scenes": 5})
    outline = make_outline(seed, recipe_for(outline={"acts": 2, "scenes_per_chapter": 2}), engine, counter=counter)
    assert [s.act for s in outline.scenes] == [1, 1, 1, 2, 2]
    assert [s.chapter for s in outline.scenes] == [1, 1, 2, 3, 3]
    assert outline.scenes[0].target_words == 90  # 60000 words / 5 scenes, kept within the recipe's 60..90
    batches = [[r.schema.__name__ for r in engine.requests[i : i + n]] for i, n in _starts(engine)]
    assert batches == [["WorldContext"], ["ActPlan"], ["ActScenes", "ActScenes"]]  # both acts in one call
    assert not list(tmp_path.glob("runs/*"))


def _starts(engine):
    i = 0
    for n in engine.batches:
        yield i, n
        i += n


def _novel_bytes(run_dir: Path) -> dict[str, bytes]:
    """Every novel file but the trace (which holds timings)."""
    return {
        str(p.relative_to(run_dir)): p.read_bytes()
        for p in sorted(run_dir.glob("novels/*/*"))
        if p.name != "trace.json"
    }


def test_worker_processes_generate_the_same_novels(recipe_for, writer, counter, tmp_path):
    """Three novels dealt over two worker processes (each answering with its own copy of the engine): the
    same novel files as in-process; the run's manifest holds every novel; a re-run resumes with no call."""
    inline = generate_novels(ALL_SEEDS, recipe_for(name="inline"), ScriptedEngine(writer), counter=counter)
    two = recipe_for(name="two", executor={"workers": 2, "threads": 1})
    result = generate_novels(ALL_SEEDS, two, ScriptedEngine(writer), counter=counter)
    a, b = inline.run_dir, result.run_dir
    assert _novel_bytes(a).keys() == _novel_bytes(b).keys() and len(_novel_bytes(a)) >= 9
    assert _novel_bytes(a) == _novel_bytes(b)
    ex = result.stats.executor
    assert (ex.type, ex.units, ex.lost) == ("local", 2, [])  # two groups: novels 1 and 3, novel 2
    assert [i.id for i in result.stats.items] == [i.id for i in inline.stats.items]
    assert result.stats.stages["scenes"].calls == inline.stats.stages["scenes"].calls
    manifest = json.loads((b / "manifest.json").read_text(encoding="utf-8"))["entries"]
    assert sorted(manifest) == sorted(f"novels/{i.id}" for i in inline.stats.items)
    from scripted import refuse

    again = generate_novels(ALL_SEEDS, two, ScriptedEngine(refuse), counter=counter, resume=True)
    assert sum(s.calls for s in again.stats.stages.values()) == 0
    assert _novel_bytes(b) == _novel_bytes(a)


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="needs the ray package (extra ray)")
def test_ray_generates_the_same_novels(recipe_for, writer, counter, tmp_path, monkeypatch):
    here = Path(__file__).resolve().parent
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(here), str(ROOT), os.environ.get("PYTHONPATH", "")]))
    inline = generate_novels(ALL_SEEDS, recipe_for(name="inline"), ScriptedEngine(writer), counter=counter)
    on_ray = recipe_for(name="ray", executor={"type": "ray", "workers": 2, "threads": 1})
    result = generate_novels(ALL_SEEDS, on_ray, ScriptedEngine(writer), counter=counter)
    assert _novel_bytes(result.run_dir) == _novel_bytes(inline.run_dir)
    assert (result.stats.executor.type, result.stats.executor.units) == ("ray", 2)
