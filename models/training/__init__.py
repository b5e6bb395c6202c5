"""Trainer and Trainee training (docs/algorithms.md#training): one training loop for both.

The package holds one concept per module: :mod:`.data` (image sets as model input,
splits), :mod:`.loop` (:func:`train_run`: strategy, augmentation, the training loop; its
docstring describes the loop, reproducibility and scale), :mod:`.backup` (per-epoch
backup and resume), :mod:`.results` (:class:`RunResult` and a run's files),
:mod:`.experiment` (the Trainee experiment and its summary) and :mod:`.config` (run
configuration files). Import from here: ``from gazelab.models.training import train_run``.

TensorFlow is imported inside the functions.
"""

from __future__ import annotations

from gazelab.models.training.config import RunConfig, load_run_config, masked_training_images
from gazelab.models.training.data import (
    LabelledImages,
    TrainData,
    load_labelled,
    load_training_data,
    split_indices,
    train_data,
)
from gazelab.models.training.errors import TrainingError
from gazelab.models.training.experiment import (
    LEVEL_F1,
    experiment_runs,
    f1_at_step,
    reading_note,
    run_experiment,
    steps_to_reach,
    summarise,
    write_summary,
)
from gazelab.models.training.loop import (
    TrainPlan,
    accuracy,
    augmenter,
    make_strategy,
    train_run,
    worker_role,
)
from gazelab.models.training.results import RunResult, write_run

__all__ = [
    "LEVEL_F1",
    "LabelledImages",
    "RunConfig",
    "RunResult",
    "TrainData",
    "TrainPlan",
    "TrainingError",
    "accuracy",
    "augmenter",
    "experiment_runs",
    "f1_at_step",
    "load_labelled",
    "load_run_config",
    "load_training_data",
    "make_strategy",
    "masked_training_images",
    "reading_note",
    "run_experiment",
    "split_indices",
    "steps_to_reach",
    "summarise",
    "train_data",
    "train_run",
    "worker_role",
    "write_run",
    "write_summary",
]
