"""The training program: `python -m train ...`, the same as `adain train` (the engine is `adain.training`; recipes
ship in `adain/training/recipes/`)."""
