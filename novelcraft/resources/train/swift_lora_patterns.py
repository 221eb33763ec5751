"""MS-SWIFT plugin (``external_plugins``): LoRA whose target parameters (MoE experts) have their own rank.

``swift sft`` has one ``--lora_rank`` / ``--lora_alpha`` for every target. This file registers the
``tuner_type: novelcraft_lora``, which builds the LoRA exactly as swift's built-in ``lora`` tuner does
(``swift.tuners.LoraConfig`` from the same arguments, then ``Swift.prepare_model``) and adds PEFT's
``rank_pattern`` / ``alpha_pattern`` below. novelcraft renders a copy of this file into the run
directory with the recipe's patterns filled in; it runs inside the swift virtualenv.
"""

from swift.tuner_plugin import PeftTuner, tuners_map

TUNER_NAME = "novelcraft_lora"
RANK_PATTERN: dict = {}  # filled in when rendered
ALPHA_PATTERN: dict = {}  # filled in when rendered


class PatternLoraTuner(PeftTuner):
    """swift's LoRA plus per-target ranks (saved in adapter_config.json as PEFT rank/alpha patterns)."""

    @staticmethod
    def prepare_model(args, model):
        from swift.pipelines.train.tuner import get_modules_to_save, get_target_modules
        from swift.tuners import LoraConfig, Swift

        # swift freezes the base before its built-in tuners; plugin tuners must do it themselves.
        model.requires_grad_(False)
        task_type = args.task_type.upper()
        config = LoraConfig(
            task_type=task_type,
            lora_dtype=args.lora_dtype,
            r=args.lora_rank,
            lora_alpha=args.lora_alpha,
            lora_dropout=args.lora_dropout,
            bias=args.lora_bias,
            target_modules=get_target_modules(args, model),
            target_parameters=args.target_parameters,
            modules_to_save=get_modules_to_save(args, model, task_type),
            use_rslora=args.use_rslora,
            use_dora=args.use_dora,
            lorap_lr_ratio=args.lorap_lr_ratio,
            init_lora_weights=args.init_weights,
            rank_pattern=dict(RANK_PATTERN),
            alpha_pattern=dict(ALPHA_PATTERN),
        )
        return Swift.prepare_model(model, config)


tuners_map[TUNER_NAME] = PatternLoraTuner
