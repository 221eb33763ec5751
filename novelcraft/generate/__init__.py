"""Novel generation: story seed -> world context -> outline (acts, scene goals) -> scene loop with running
summaries, many novels in lockstep, checkpointed after every step.

::

    from novelcraft.generate import generate_novels, load_seed
    from novelcraft.recipes import load_recipe

    recipe = load_recipe("recipes/generate/cpu-smoke.yaml")
    result = generate_novels(None, recipe)          # engine from recipe.llm
    print(result.summary())

Only the recipe and seed schemas are imported with this package; the runner loads on first use.
"""

from __future__ import annotations

from .._lazy import lazy_exports
from .recipe import GenerateRecipe
from .seed import SeedCharacter, StorySeed, load_seed

_LAZY = {
    "generate_novels": "run",
    "make_outline": "run",
    "GenerateError": "run",
    "GenerateResult": "run",
    "Outline": "outline",
    "OutlineScene": "outline",
    "OutlineAct": "outline",
    "read_outline": "outline",
    "write_outline": "outline",
    "NovelState": "state",
    "SceneRecord": "state",
    "load_state": "state",
    "check_scene": "scene",
    "render_markdown": "output",
    "write_epub": "output",
    "Trace": "output",
}

__all__ = ["GenerateRecipe", "SeedCharacter", "StorySeed", "load_seed", *_LAZY]

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals(), __all__)
