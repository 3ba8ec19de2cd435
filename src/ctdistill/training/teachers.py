"""Teacher fine-tuning: the seed's two phases (a new head on a frozen base, then the top layers
unfrozen) for a pretrained teacher, one phase for a teacher trained from scratch.

The architectures and their weights are ``models.teachers``; each phase is the one fit loop of
``training.fit``, so teachers, distillers and students share the budget and the selection rule.
"""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd

from ctdistill.config import PRETRAINED_TEACHER_EPOCHS, Config
from ctdistill.data import Dataset
from ctdistill.models.teachers import build_teacher, resolve_weights, set_base_trainable
from ctdistill.training.fit import compile_classifier, fit


def train_teacher(name: str, data: Dataset, cfg: Config) -> tuple[keras.Model, pd.DataFrame]:
    """Fine-tune teacher ``name`` as the seed does, for at most ``teacher_epochs`` (default ``epochs``, or
    ``config.PRETRAINED_TEACHER_EPOCHS`` for a pretrained teacher).

    With pretrained weights: phase ``head`` trains the new head on a frozen base (at most
    ``frozen_epochs``), then phase ``finetune`` unfreezes the top ``unfreeze_layers`` base layers at
    ``finetune_learning_rate``. With ``--weights none`` a frozen random base is useless, so there is
    one phase, ``scratch``, training everything at ``finetune_learning_rate``: the rate for any
    training of the big base network (at the students' 1e-3, VGG16 from scratch stays at chance on
    the phantoms and ResNet50's loss diverges; at 1e-4 VGG16 reached 61% in 12 epochs).
    """
    weights = resolve_weights(name, cfg.weights)
    epochs = cfg.teacher_epochs or (cfg.epochs if weights is None else min(cfg.epochs, PRETRAINED_TEACHER_EPOCHS))
    teacher = build_teacher(name, data.input_shape, data.n_classes, weights)
    if weights is None:
        trainer = compile_classifier(teacher, cfg, cfg.finetune_learning_rate, data.train.y, epochs)
        return teacher, fit(trainer, data, cfg, f"{name} teacher", epochs).assign(phase="scratch")
    phases = []
    if cfg.frozen_epochs > 0:
        set_base_trainable(teacher, False)
        head_epochs = min(cfg.frozen_epochs, epochs)
        trainer = compile_classifier(teacher, cfg, cfg.learning_rate, data.train.y, head_epochs)
        phases.append(fit(trainer, data, cfg, f"{name} teacher head", head_epochs)
                      .assign(phase="head"))
    set_base_trainable(teacher, True, cfg.unfreeze_layers)
    trainer = compile_classifier(teacher, cfg, cfg.finetune_learning_rate, data.train.y, epochs)
    phases.append(fit(trainer, data, cfg, f"{name} teacher finetune", epochs).assign(phase="finetune"))
    history = pd.concat(phases, ignore_index=True)
    history["epoch"] = np.arange(1, len(history) + 1)
    return teacher, history
