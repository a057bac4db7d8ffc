"""``adain evaluate`` on a 2x2 toy set with a random-weight model: pairs, per-pair metrics, JSON and table."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from adain.cli import main


def _write(folder, names, seed):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for name in names:
        Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(folder / f"{name}.png")
    return folder


@pytest.fixture
def toy(tmp_path, model):
    return (
        _write(tmp_path / "contents", ["c1", "c2"], 0),
        _write(tmp_path / "styles", ["s1", "s2"], 1),
        model.save_pretrained(tmp_path / "model"),
    )


def _mean_std(f):
    flat = f.flatten(2)
    return flat.mean(2), (flat.var(2, unbiased=True) + 1e-5).sqrt()


def _read(path, size=32):
    """The protocol's preparation, done here with Pillow: shorter side to ``size``, centre square."""
    img = Image.open(path).convert("RGB")
    w, h = img.size
    img = img.resize((round(w * size / min(w, h)), size), Image.Resampling.BILINEAR)
    left = int(round((img.width - size) / 2.0))
    img = img.crop((left, 0, left + size, size))
    return torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1).float().div(255)[None]


def test_a_folder_of_outputs_is_scored_pair_by_pair_and_reported(toy, tmp_path, model, capsys):
    contents, styles, weights = toy
    outputs = tmp_path / "outputs"
    outputs.mkdir()
    for c in ("c1", "c2"):  # an "identity" method: each output is its prepared content, as any tool could write it
        pixels = (_read(contents / f"{c}.png")[0] * 255).round().byte().permute(1, 2, 0).numpy()
        for s in ("s1", "s2"):
            Image.fromarray(pixels).save(outputs / f"{c}_stylized_{s}.png")
    report = tmp_path / "r.json"
    code = main(["evaluate", str(contents), str(styles), "--method", str(outputs), "--protocol", "adain-paper",
                 "--metrics", "content,style,ssim", "--weights", str(weights), "--size", "32",
                 "--report", str(report)])  # fmt: skip
    assert code == 0
    data = json.loads(report.read_text())
    assert data["protocol"]["name"] == "adain-paper" and data["standard"] is False and data["complete"] is False
    assert [p["name"] for p in data["pairs"]] == [
        "c1_stylized_s1",
        "c1_stylized_s2",
        "c2_stylized_s1",
        "c2_stylized_s2",
    ]
    row = data["per_pair"][1]  # c1 with s2, recomputed here
    out = (
        torch.from_numpy(np.asarray(Image.open(outputs / "c1_stylized_s2.png")).copy()).permute(2, 0, 1).float()[None]
        / 255
    )
    style = _read(styles / "s2.png")
    with torch.no_grad():
        enc = model.encoder
        fo, fc, fs = enc(out)["relu4_1"], enc(_read(contents / "c1.png"))["relu4_1"], enc(style)["relu4_1"]
        (mc, sc), (ms, ss) = _mean_std(fc), _mean_std(fs)
        t = (fc - mc[..., None, None]) / sc[..., None, None] * ss[..., None, None] + ms[..., None, None]
    assert row["content"] == pytest.approx(F.mse_loss(fo, t).item(), rel=1e-4)
    assert data["summary"]["content"] == pytest.approx(np.mean([r["content"] for r in data["per_pair"]]))
    assert data["summary"]["ssim"] == pytest.approx(1.0, abs=1e-5)  # the outputs are the contents
    table = capsys.readouterr().out
    assert "protocol adain-paper: 4 pairs" in table and "content" in table and "style" in table


def test_adain_outputs_are_made_and_scored(toy, tmp_path):
    contents, styles, weights = toy
    report = tmp_path / "r.json"
    assert main(["evaluate", str(contents), str(styles), "--protocol", "styleid", "--metrics", "content,style,gram",
                 "--weights", str(weights), "--size", "32", "--report", str(report)]) == 0  # fmt: skip
    data = json.loads(report.read_text())
    assert len(data["per_pair"]) == 4 and data["expected"]["artfid"] == pytest.approx(30.933)
    assert all(np.isfinite(r[k]) for r in data["per_pair"] for k in ("content", "style", "gram"))


def test_a_missing_output_is_named_and_an_existing_report_is_kept(toy, tmp_path, capsys):
    contents, styles, weights = toy
    (tmp_path / "empty").mkdir()
    args = ["evaluate", str(contents), str(styles), "--weights", str(weights), "--metrics", "content", "--size", "32"]
    # 1 here; 2 once the usage-error statuses (issue 21) land: either way a failure naming the pair
    assert main([*args, "--method", str(tmp_path / "empty"), "--report", str(tmp_path / "r.json")]) != 0
    assert "c1_stylized_s1" in capsys.readouterr().err
    (tmp_path / "r.json").write_text("mine")
    assert main([*args, "--report", str(tmp_path / "r.json")]) != 0
    assert (tmp_path / "r.json").read_text() == "mine"
