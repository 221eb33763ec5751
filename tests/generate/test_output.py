"""``novelcraft.generate.output``: Markdown safety of scene text and reproducible EPUBs."""

from __future__ import annotations


def test_scene_text_cleaning_and_markdown_safety():
    from novelcraft.bench.novel import parse_markdown_novel
    from novelcraft.generate.output import markdown_safe
    from novelcraft.generate.scene import clean_scene_text

    assert clean_scene_text("# Chapter 3: Ash\n## Scene\n\nThe door opened.<|im_end|>junk") == "The door opened."
    text = "She wrote:\n# not a heading\n---\nThe end."
    md = "# T\n\n## Chapter 1: A\n\n" + markdown_safe(text) + "\n"
    novel = parse_markdown_novel(md)
    assert len(novel.scenes) == 1 and novel.scenes[0].chapter == 1


def test_epub_is_reproducible(tmp_path):
    from novelcraft.generate.output import write_epub

    md = "# Chapter 1: The Tide\n\nThe harbour woke.\n"
    a = write_epub(md, tmp_path / "a.epub", title="The Tide", author="A. Writer")
    b = write_epub(md, tmp_path / "b.epub", title="The Tide", author="A. Writer")
    c = write_epub(md + "\nMore.\n", tmp_path / "c.epub", title="The Tide", author="A. Writer")
    assert a.read_bytes() == b.read_bytes() and a.read_bytes() != c.read_bytes()
