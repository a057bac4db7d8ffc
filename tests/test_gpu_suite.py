"""``benchmarks/gpu_suite.py`` runs every section at toy sizes on the CPU (``--tiny``), so that the script the
first GPU session runs cannot rot unnoticed. Figures are not checked (no timing asserts), only that each
section ran and reached the table."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.mark.slow
def test_the_gpu_suite_runs_every_section_at_tiny_sizes(tmp_path, monkeypatch):
    pytest.importorskip("av", reason="the video section needs PyAV (the video extra)")
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    # benchmarks/reference_port.py, not the tests' module of the same name (restored after the test).
    monkeypatch.delitem(sys.modules, "reference_port", raising=False)
    for name in ("gpu_suite", "bench_stylize", "bench_train", "bench_gatys", "bench_video", "bench_onnx"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    import gpu_suite

    assert gpu_suite.main(["--tiny", "--budget", "1e9", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "gpu_suite.json").read_text())
    sections = report["sections"]
    assert set(sections) == {"stylize", "sizes", "batched", "tiled", "training", "gatys", "video"}
    failed = {
        name: s.get("error") or s.get("skipped") for name, s in sections.items() if "error" in s or "skipped" in s
    }
    assert not failed, failed
    table = (tmp_path / "gpu_suite.md").read_text()
    for figure in (
        "stylize 32x32 float32 cached",
        "48x27 ours cached",
        "batched",
        "tiled",
        "training step",
        "gatys",
        "video",
    ):
        assert figure in table, figure
    with pytest.raises(SystemExit):  # an earlier run's figures are never replaced
        gpu_suite.main(["--tiny", "--out", str(tmp_path)])
