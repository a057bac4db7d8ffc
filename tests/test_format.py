"""``config.json`` is checked field by field; a hostile one is a ``CorruptWeightsError`` naming the file and field."""

from __future__ import annotations

import json
import math

import pytest

import adain
from adain.weights._format import config_from_dict

GOOD = {
    "architecture": "adain-vgg19",
    "encoder_last_layer": "relu5_1",
    "eps": 1e-5,
    "format_version": 1,
    "description": "mine",
}


@pytest.fixture
def folder(tmp_path):
    """A model folder whose config.json each test writes (the config is checked before the weights are read)."""
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "model.safetensors").write_bytes(b"")
    return tmp_path / "m"


@pytest.mark.parametrize(
    "field, value",
    [
        ("eps", -1),
        ("eps", 0),
        ("eps", math.nan),
        ("eps", math.inf),
        ("eps", "1e-5"),
        ("eps", None),
        ("eps", True),
        ("eps", [1e-5]),
        ("encoder_last_layer", "relu3_1"),
        ("encoder_last_layer", "conv4_1"),
        ("encoder_last_layer", "relu9_9"),
        ("encoder_last_layer", 5),
        ("encoder_last_layer", None),
        ("format_version", 1.0),
        ("format_version", "1"),
        ("format_version", True),
        ("format_version", 0),
        ("format_version", None),
        ("architecture", "resnet"),
        ("architecture", None),
        ("description", 3),
        ("description", None),
    ],
)
def test_bad_field_is_refused_naming_file_and_field(field, value, folder):
    config = folder / "config.json"
    config.write_text(json.dumps({**GOOD, field: value}))  # json writes NaN and Infinity as Python reads them
    with pytest.raises(adain.CorruptWeightsError, match=f"^{config}: field '{field}' must be ") as info:
        adain.load_pretrained(folder)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("text", ['"eps": NaN', '"eps": -Infinity', '"eps": 1e400'])
def test_non_finite_json_spellings_are_refused(text, folder):
    (folder / "config.json").write_text('{"encoder_last_layer": "relu5_1", ' + text + "}")
    with pytest.raises(adain.CorruptWeightsError, match="field 'eps' must be a finite number > 0"):
        adain.load_pretrained(folder)


def test_good_fields_load_and_integer_eps_is_a_number():
    assert config_from_dict({**GOOD, "eps": 1}).eps == 1
    assert config_from_dict({**GOOD, "encoder_last_layer": "relu4_1"}).encoder_last_layer == "relu4_1"
    assert config_from_dict({}) == adain.ModelConfig()  # every field has a default


def test_newer_format_version_says_upgrade():
    with pytest.raises(adain.CorruptWeightsError, match="upgrade adain"):
        config_from_dict({**GOOD, "format_version": 99})


@pytest.mark.parametrize(
    "text",
    ["[" * 100_000 + "]" * 100_000, '{"a":' * 100_000 + "1" + "}" * 100_000, "[" * 100_000],
    ids=["arrays", "objects", "unclosed"],
)
def test_deeply_nested_json_is_corrupt_not_a_recursion_error(text, folder):
    (folder / "config.json").write_text(text)
    with pytest.raises(adain.CorruptWeightsError, match="config.json"):
        adain.load_pretrained(folder)


def test_huge_config_is_refused_unread(folder):
    (folder / "config.json").write_text(json.dumps({**GOOD, "description": "x" * (2 << 20)}))
    with pytest.raises(adain.CorruptWeightsError, match="too large for a config"):
        adain.load_pretrained(folder)


def test_saving_a_config_that_would_not_load_is_an_input_error(tmp_path):
    model = adain.AdaINModel(adain.ModelConfig(encoder_last_layer="relu4_1", eps=-1.0))
    with pytest.raises(adain.InputError, match="field 'eps' must be a finite number > 0"):
        model.save_pretrained(tmp_path / "m")
    assert not (tmp_path / "m").exists()
