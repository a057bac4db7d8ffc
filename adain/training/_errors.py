"""The trainer's exceptions, whose messages name ``TrainConfig`` fields without choosing how they are spelled.

A message that tells the user which option to change is built from parts: plain text and ``Setting``s
(a field's name, optionally with a value). ``str(exc)`` spells them the Python way (``batch_size``,
``resume=True``), as a library user writes them; ``exc.render(spell)`` spells them any other way, which is
how the command line shows ``--batch-size`` and ``--resume`` without the library knowing about flags.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import AdaINError, InputError

Spelling = Callable[[str, Any], str]
"""``spell(field, value)`` -> how a message shows field ``field`` set to ``value`` (``None``: the field alone;
no ``TrainConfig`` field takes ``None``)."""


@dataclass(frozen=True)
class Setting:
    """A ``TrainConfig`` field named in a message: ``Setting("lr")``, or with a value, ``Setting("resume", True)``."""

    name: str
    value: Any = None


def python_spelling(name: str, value: Any = None) -> str:
    """``batch_size``, or with a value ``resume=True`` / ``lr=0.0001``: the keyword argument a library user writes."""
    return name if value is None else f"{name}={value!r}"


class NamesSettings(Exception):
    """Mixin for an exception whose message is ``parts`` (text and ``Setting``s); see the module docstring.

    ``settings`` lists the field names the message mentions, in order; ``render(spell)`` is the message with
    each ``Setting`` spelled by ``spell(name, value)``; ``str(exc)`` is ``render(python_spelling)``.
    """

    parts: tuple[str | Setting, ...]

    def __init__(self, *parts: str | Setting) -> None:
        self.parts = parts
        super().__init__(self.render())

    @property
    def settings(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(p.name for p in self.parts if isinstance(p, Setting)))

    def render(self, spell: Spelling = python_spelling) -> str:
        """The message with every ``Setting`` written as ``spell(name, value)``."""
        return "".join(p if isinstance(p, str) else spell(p.name, p.value) for p in self.parts)

    def __str__(self) -> str:  # OSError subclasses would otherwise format their own arguments
        return self.render()


class ConfigError(NamesSettings, InputError):
    """A ``TrainConfig`` value that cannot be used; ``field`` is the field at fault.

    ``str(exc)`` reads ``"batch_size: must be an integer, at least 1, got 0"``. ``exc.render(spell)`` spells the
    fields it names another way: ``spell(name, value)`` returns the text for field ``name``, mentioned alone
    (``value`` is ``None``) or set to ``value``; the command line renders ``--batch-size: ...`` this way.

    Attributes:
        field: the name of the ``TrainConfig`` field at fault, e.g. ``"batch_size"``.
        settings: every field the message names, in order (a tuple of names).
    """

    def __init__(self, field: str, *problem: str | Setting) -> None:
        self.field = field
        super().__init__(Setting(field), ": ", *problem)


class RunExistsError(ConfigError):
    """``train`` was asked to start a new run (``resume=False``) in a directory that already holds one.

    Nothing in the directory was changed. Continue the run with ``resume=True`` or choose another ``out``.

    Attributes:
        run_dir: that directory.
        entries: what of an earlier run it holds, e.g. ``["checkpoints", "log.csv"]``.
    """

    def __init__(self, run_dir: Path, entries: list[str]) -> None:
        self.run_dir, self.entries = run_dir, list(entries)
        super().__init__(
            "out",
            f"{run_dir} already holds a run ({', '.join(entries)}): continue it with ",
            Setting("resume", True),
            ", or choose another ",
            Setting("out"),
        )


class TrainingError(NamesSettings, AdaINError, RuntimeError):
    """Training cannot go on (too many bad images, the loss keeps being non-finite), or its model could not be
    published (``push_to_hub``; the model is kept in ``RUN_DIR/final``)."""


class BadImagesError(TrainingError):
    """A folder holds more unusable images than a run tolerates (``adain.training._badfiles``)."""


class Interrupted(NamesSettings, AdaINError):
    """The run was stopped (the callback returned ``True``) after a checkpoint was written at ``step``.

    Train again with ``resume=True`` to continue from it.

    Attributes:
        step: the step the checkpoint holds.
        path: that checkpoint; ``None`` on the ranks of a data-parallel run that write none.
    """

    def __init__(self, step: int, path: Path | None) -> None:
        self.step, self.path = step, path
        super().__init__(f"interrupted at step {step}; checkpoint {path}; continue with ", Setting("resume", True))
