"""The end of a training run, on rank 0: the final export (``RUN_DIR/final``), the loss curve and the upload
to the Hub."""

from __future__ import annotations

from pathlib import Path

from ..weights._hub import push_to_hub
from ._errors import TrainingError
from ._events import DoneEvent, PushedEvent
from ._report import draw_loss_curve
from ._run import Run
from ._rundir import FINAL_DIR, LOSS_CURVE_NAME
from ._setup import export_final


def finish(run: Run) -> Path:
    """On rank 0: export ``RUN_DIR/final``, draw the loss curve, push to the Hub if asked. Returns ``final``."""
    config = run.config
    final = run.run_dir / FINAL_DIR
    if run.is_main:
        assert run.log is not None, "rank 0 has a log"
        run.log.close()
        export_final(
            run.encoder,
            run.decoder,
            final,
            description=(
                f"Decoder trained with adain.training.train: {config.max_iter} steps, batch {config.batch_size}, "
                f"content {config.content_dir}, style {config.style_dir}, style weight {config.style_weight}."
            ),
        )
        draw_loss_curve(run.log.path, run.run_dir / LOSS_CURVE_NAME)
        run.emit(DoneEvent(final=final, nonfinite_skipped=run.nonfinite, bad_images=len(run.bad)))
        if config.push_to_hub:
            run.emit(PushedEvent(repo=config.push_to_hub, url=_push(final, config.push_to_hub)))
    return final


def _push(final: Path, repo_id: str) -> str:
    """Upload ``final`` to ``repo_id``; any failure is one ``TrainingError`` line saying where the model is."""
    try:
        return push_to_hub(final, repo_id, commit_message="adain.training.train: final decoder")
    except Exception as exc:  # noqa: BLE001 -- HTTP, transport and verification errors alike: the model is safe
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise TrainingError(
            f"training finished but the push to {repo_id} failed ({type(exc).__name__}: {reason}); the final model "
            f"is in {final}: push it later with adain.weights.push_to_hub({str(final)!r}, {repo_id!r})"
        ) from None
