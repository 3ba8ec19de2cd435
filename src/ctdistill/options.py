"""The flags of ``ctdistill run``, declared once: (flag, config key, type, help).

A flag that is not given leaves the config file's (or the default) value alone; ``bool`` keys get
``--flag`` / ``--no-flag``. The help texts carry no defaults: :func:`help_text` appends each one
from :class:`ctdistill.config.Config` itself, so the help can never disagree with the behaviour
(``tests/test_cli.py`` checks every flag).
"""

from __future__ import annotations

import dataclasses

from ctdistill.choices import AUGMENTATIONS, QUANT_MODES

RUN_OPTIONS = (
    ("--data", "data", str, "dataset folder: split tree (train/valid|val/test), class-folder tree, or the seed's "
                            "numpy layout (X_train.npy ...)"),
    ("--class-map", "class_map", str, "TOML or JSON file mapping class folder names to class names, for folders "
                                      "the automatic reconciliation across splits cannot settle"),
    ("--teachers", "teachers", str, "comma-separated teachers: vgg16, vgg19, resnet50 (resnet), densenet121 "
                                    "(densenet), efficientnetb3 (efficientnet), nasnetmobile, xception"),
    ("--weights", "weights", str, "teacher weights: imagenet, none, or a folder/file of Keras weight files "
                                  "(offline use)"),
    ("--image-size", "image_size", int, "input height and width in pixels"),
    ("--channels", "channels", int, "1 (grey) or 3"),
    ("--crop", "crop", str, "body: crop every image to the body (drops the scanner table and black margins) before "
                            "resizing, in training and predict alike; none: resize the whole image (the seed's)"),
    ("--temperature", "temperature", float, "distillation temperature T > 0"),
    ("--alpha", "alpha", float, "weight of the hard-label loss in [0, 1]; 1 - alpha weighs the soft loss"),
    ("--batch-size", "batch_size", int, "training batch size"),
    ("--epochs", "epochs", int, "maximum epochs per training stage; early stopping may end sooner"),
    ("--patience", "patience", int, "epochs without validation improvement before stopping"),
    ("--monitor", "monitor", str, "validation metric for early stopping and model selection: val_accuracy "
                                  "or val_loss"),
    ("--lr", "learning_rate", float, "peak learning rate of the students and the teacher head (AdamW, or Adam "
                                     "with --weight-decay 0)"),
    ("--finetune-lr", "finetune_learning_rate", float, "learning rate whenever the teacher base trains: after "
                                                       "unfreezing it, or throughout with --weights none"),
    ("--teacher-epochs", "teacher_epochs", int, "maximum epochs of teacher training"),
    ("--frozen-epochs", "frozen_epochs", int, "max epochs of the frozen-base teacher phase (pretrained weights "
                                              "only)"),
    ("--unfreeze-layers", "unfreeze_layers", int, "base layers to unfreeze from the top; -1 = all"),
    ("--quant-modes", "quant_modes", str, f"comma-separated PTQ modes: {', '.join(QUANT_MODES)} (16x8 = int16 "
                                          "activations, int8 weights)"),
    ("--bootstrap-resamples", "bootstrap_resamples", int, "bootstrap resamples of the 95%% intervals; 0 = none"),
    ("--ci-method", "ci_method", str, "bootstrap interval method: percentile or BCa"),
    ("--ece-bins", "ece_bins", int, "equal-width bins of the expected calibration error"),
    ("--max-quant-drop", "max_quant_drop", float, "quantization safety gate: most validation-accuracy points full "
                                                  "int8 may lose before int8-mixed, 16x8, float16 are tried "
                                                  "(negative = off)"),
    ("--split", "split", str, "given: keep the dataset's splits; grouped: re-split so that no group of exact or "
                              "near copies straddles two splits (stratified, seeded); auto: given when the data "
                              "has splits, grouped otherwise"),
    ("--seed", "seed", int, "random seed; the same seed, data and config repeat a run"),
    ("--seeds", "seeds", str, "comma-separated seeds: also repeat the student stages (scratch, distilled, int8) "
                              "with these, from the same teachers, and report mean ± std (e.g. 0,1,2)"),
    ("--preset", "preset", str, "named training recipe: ctdistill (measured in BENCHMARKS.md) or seed (the seed "
                                "script's: no augmentation, constant Adam, stop on val_loss, given valid)"),
    ("--augment", "augment", str, f"comma-separated training augmentations: {', '.join(AUGMENTATIONS)}, or none"),
    ("--lr-schedule", "lr_schedule", str, "cosine (warm-up, then cosine decay) or constant"),
    ("--warmup-epochs", "warmup_epochs", int, "linear warm-up epochs; model selection starts after them"),
    ("--weight-decay", "weight_decay", float, "decoupled weight decay (AdamW); 0 = Adam"),
    ("--label-smoothing", "label_smoothing", float, "label smoothing of the hard labels"),
    ("--class-balance", "class_balance", str, "balanced: resample train to equal class counts; or none"),
    ("--validation", "validation", str, "carved: a validation split carved from train+valid by copy groups; "
                                        "given: the dataset's own valid split"),
    ("--valid-fraction", "valid_fraction", float, "share of train+valid carved out for validation"),
    ("--bn-momentum", "bn_momentum", float, "BatchNorm moving-average momentum of every model"),
    ("--student", "student", str, "student head: seed (Flatten, as the seed) or gap (global average pooling)"),
    ("--teacher-views", "teacher_views", int, "with augmentation: compute the teacher's logits once on this many "
                                              "augmented copies of the training images and sample batches from "
                                              "them; 0 runs the teacher on every batch"),
    ("--strict", "strict", bool, "stop at the first unreadable image (otherwise it is skipped, listed at the end "
                                 "and in manifest.json)"),
    ("--deterministic", "deterministic", bool, "deterministic TensorFlow ops: the same data, config and seed give "
                                               "identical predictions (off is ~10%% faster per epoch, BENCHMARKS.md)"),
    ("--ensemble", "ensemble", str, "also distil one student from all teachers' mean logits: mean, weighted "
                                    "(by validation accuracy), or none"),
)

# Defaults that read better in words than as a value.
DEFAULT_WORDS = {"data": "the built-in synthetic CT phantoms", "class_map": "none", "teacher_epochs": "same as --epochs",
                 "teachers": "all seven"}


def default_of(key: str):
    """The default of config key ``key``, read from the dataclass (the one source)."""
    from ctdistill.config import Config

    field = Config.__dataclass_fields__[key]
    return field.default if field.default is not dataclasses.MISSING else field.default_factory()


def format_default(key: str) -> str:
    """The default of ``key`` as the help shows it: ``True`` -> on, tuples comma-separated, numbers as %g."""
    if key in DEFAULT_WORDS:
        return DEFAULT_WORDS[key]
    value = default_of(key)
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value) or "none"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def help_text(key: str, text: str) -> str:
    """``text`` with the configured default appended: ``... (default: 32)``."""
    return f"{text} (default: {format_default(key)})"
