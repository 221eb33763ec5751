"""``novelcraft.commands``: a command imports its handler by name; ``report`` gives the exit status."""

from __future__ import annotations

from novelcraft.commands import Command, report
from novelcraft.stats import ItemStats, RunStats


def test_command_runs_its_handler_by_name() -> None:
    command = Command("echo", "help", lambda p: None, "novelcraft.commands:report")
    stats = RunStats(command="echo", name="n", run_dir="r", items=[ItemStats(id="a")])
    assert command.run(stats) == 0  # report() is the handler here: it takes the stats and prints them
    stats.items.append(ItemStats(id="b", status="failed", error="boom"))
    assert report(stats) == 1
