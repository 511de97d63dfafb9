"""Training: one epoch engine for a single model and for many in lockstep, with hooks.

    engine.py      the loop (batches, traces, the doctor's checks, epoch records, Ctrl-C)
    hooks.py       what plugs into its moments: progress, live doctor, early stopping,
                   checkpoints, pruning, your own
    single.py      one model: `train(config) -> RunResult`
    cohort.py      many small MLPs stacked and trained in lockstep: `train_cohort`
    evaluation.py  scoring a model in eval mode
    finish.py      the end of a run: scores, summary, diagnoses, the run folder
"""

from .cohort import train_cohort
from .engine import EARLY_STEPS, Run, epoch_order
from .evaluation import Evaluation, evaluate
from .hooks import Hook
from .single import train

__all__ = ["EARLY_STEPS", "Evaluation", "Hook", "Run", "epoch_order", "evaluate", "train",
           "train_cohort"]
