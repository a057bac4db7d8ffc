"""The training program: ``python -m train ...`` (the engine is ``adain.training``; recipes in ``configs/``)."""
