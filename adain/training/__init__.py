"""Training a decoder: ``config`` (``TrainConfig`` and the recipes), ``data`` (resumable image streams),
``badfiles`` (unusable images: the tolerance rule and ``--check-data``), ``step`` (the loss and one
optimisation step), ``checkpoint``, ``report`` (logs, samples, loss curve), ``setup`` (the process, and
weights in and out), ``lock`` (one run per run directory) and ``loop`` (``train``). The command line is
``adain.cli.train``."""
