"""Run inside a training tool's virtualenv (not part of the novelcraft import tree).

    python tool_check.py validate axolotl CONFIG.yaml[@cpu|@cuda:N]...   # axolotl's own validation
    python tool_check.py validate swift CONFIG.yaml[@parse]...          # MS-SWIFT's own argument parsing
    python tool_check.py keys axolotl|swift             # top-level keys the tool accepts, one a line

``validate`` prints one JSON line per config {"ok": bool, "error": str|null, "dropped": [keys], "config": path}; keys
the tool would silently drop are reported as "dropped". The tool's own logging goes to stderr.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sys


def _axolotl_input_model():
    from axolotl.integrations.base import get_builtin_plugins
    from axolotl.utils.config import merge_input_args
    from axolotl.utils.schemas.config import AxolotlInputConfig

    if get_builtin_plugins():
        return merge_input_args()[1]
    return AxolotlInputConfig


def axolotl_keys() -> list[str]:
    names = set()
    for name, info in _axolotl_input_model().model_fields.items():
        names.add(name)
        if info.alias:
            names.add(info.alias)
    return sorted(names)


def _capabilities(target: str) -> tuple[dict, dict]:
    """What ``axolotl train`` would detect on the target machine: ``cpu`` or ``cuda:N`` (N GPUs of
    the Hopper class, like an 80 GB H100). Some checks (e.g. quantize_moe_experts) run only with them."""
    import torch

    env = {"torch_version": str(torch.__version__).split("+", maxsplit=1)[0]}
    if target.startswith("cuda"):
        n_gpu = int(target.partition(":")[2] or 1)
        return {"bf16": True, "fp8": False, "tf32": True, "n_gpu": n_gpu, "compute_capability": "sm_90"}, env
    return {"bf16": False, "fp8": False, "tf32": False, "n_gpu": 1, "compute_capability": None}, env


def axolotl_validate(path: str, target: str = "cuda:1") -> dict:
    import yaml
    from axolotl.utils.config import prepare_plugins, validate_config
    from axolotl.utils.dict import DictDefault

    with open(path, encoding="utf-8") as fh:
        cfg = yaml.safe_load(fh)
    given = {k for k, v in cfg.items() if v is not None}
    known = set(axolotl_keys())
    dropped = sorted(k for k in given if k not in known)
    if dropped:
        return {"ok": False, "error": f"unknown keys axolotl would drop: {dropped}", "dropped": dropped}
    dd = DictDefault(dict(cfg))
    # As `axolotl train` does: plugins first, then validation with the machine's capabilities.
    prepare_plugins(dd)
    capabilities, env_capabilities = _capabilities(target)
    validate_config(dd, capabilities=capabilities, env_capabilities=env_capabilities)
    return {"ok": True, "error": None, "dropped": []}


def _swift_sft_arguments():
    from swift.arguments import SftArguments

    return SftArguments


def swift_keys() -> list[str]:
    return sorted(f.name for f in dataclasses.fields(_swift_sft_arguments()) if f.init)


def swift_validate(path: str, post_init: bool = True) -> dict:
    """Turn the YAML into arguments with ``swift sft``'s own code and parse them with its parser.

    With ``post_init`` (the default) swift's ``SftArguments.__post_init__`` checks run too; they need
    the base model's files (config and tokenizer), so a model that is not available locally can only
    be checked with ``post_init=False`` (parser only).
    """
    from swift.cli.main import parse_yaml_args
    from swift.utils.utils import _patch_get_type_hints
    from transformers import HfArgumentParser

    argv = [path]
    parse_yaml_args(argv)
    cls = _swift_sft_arguments()
    with _patch_get_type_hints():
        parser = HfArgumentParser([cls])
    if post_init:
        args, remaining = parser.parse_args_into_dataclasses(argv, return_remaining_strings=True)
    else:
        args, remaining = parser.parse_known_args(argv)
    if remaining:
        return {"ok": False, "error": f"unknown arguments: {remaining}", "dropped": remaining}
    return _swift_tuner_check(args.tuner_type, args.external_plugins or [])


def _swift_tuner_check(tuner_type: str, plugins: list) -> dict:
    """swift parses any tuner_type and fails only once training starts: the tuner must be built in or
    registered by one of *this* config's external plugins (imported here as swift does). Several
    configs are checked in one process, so a tuner counts only if its class comes from such a plugin."""
    import hashlib
    import os

    from swift.tuner_plugin import tuners_map
    from swift.utils import import_external_file

    builtin = {
        "lora",
        "full",
        "longlora",
        "adalora",
        "llamapro",
        "adapter",
        "vera",
        "boft",
        "fourierft",
        "reft",
        "bone",
    }
    builtin |= {k for k, cls in tuners_map.items() if cls.__module__.startswith("swift.")}
    own = set()
    for plugin in [plugins] if isinstance(plugins, str) else plugins:
        import_external_file(plugin)
        # swift imports a plugin file as module _swift_external_<sha256 of its absolute path>.
        module = "_swift_external_" + hashlib.sha256(os.path.abspath(os.path.expanduser(plugin)).encode()).hexdigest()
        own |= {k for k, cls in tuners_map.items() if cls.__module__ == module}
    if tuner_type not in builtin | own:
        return {
            "ok": False,
            "error": f"tuner_type {tuner_type!r} is neither a swift tuner nor registered by the config's "
            "external_plugins",
            "dropped": [],
        }
    return {"ok": True, "error": None, "dropped": []}


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[0] == "keys":
        print("\n".join(axolotl_keys() if argv[1] == "axolotl" else swift_keys()))
        return 0
    if len(argv) >= 3 and argv[0] == "validate":
        tool, items = argv[1], argv[2:]
        failed = 0
        for item in items:
            # CONFIG or CONFIG@TARGET: axolotl: the machine its checks assume (cpu, cuda:N);
            # swift: "parse" = parser only (swift's post-parse checks need the model's files)
            path, _, target = item.rpartition("@") if "@" in item else (item, "", "")
            target = target or ("cuda:1" if tool == "axolotl" else "full")
            try:
                # The tools log to stdout; keep stdout for the JSON lines.
                with contextlib.redirect_stdout(sys.stderr):
                    if tool == "axolotl":
                        result = axolotl_validate(path, target)
                    else:
                        result = swift_validate(path, post_init=target != "parse")
            except SystemExit as exc:  # argparse errors exit
                result = {"ok": False, "error": f"argument parser exited ({exc.code})", "dropped": []}
            except Exception as exc:  # noqa: BLE001 - the tool's own validation error is the message we report
                msg = " ".join(str(exc).split())
                result = {"ok": False, "error": f"{type(exc).__name__}: {msg}", "dropped": []}
            result["config"] = path
            failed += not result["ok"]
            print(json.dumps(result), flush=True)
        return 1 if failed else 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
