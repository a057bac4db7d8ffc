"""Training a decoder: ``config`` (``TrainConfig`` and the recipes), ``data`` (resumable image streams),
``step`` (the loss and one optimisation step), ``checkpoint``, ``report`` (logs, samples, loss curve),
``setup`` (the process, and weights in and out) and ``loop`` (``train``). The command line is ``adain.cli.train``."""
