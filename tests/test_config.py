import json
from pathlib import Path

import pytest

from ctdistill.config import SEED_TEACHERS, Config
from ctdistill.core.errors import ConfigError


def test_preset_seed_reproduces_the_seeds_values():
    cfg = Config.from_mapping({"preset": "seed"})
    assert (cfg.temperature, cfg.alpha, cfg.batch_size, cfg.epochs) == (2.0, 0.5, 256, 300)
    assert (cfg.image_size, cfg.channels, cfg.crop, cfg.augment) == (32, 3, "none", ())
    assert cfg.teachers == SEED_TEACHERS and len(SEED_TEACHERS) == 7


def test_defaults_are_the_recipe_benchmarks_show_winning():
    """BENCHMARKS.md: the crop to the body (scratch student 92.5% against 74.8% test, 3 seeds) and
    batch 32 (78.7% against 72.1%); the distillation values stay the seed's."""
    cfg = Config()
    assert (cfg.crop, cfg.batch_size) == ("body", 32)
    assert (cfg.temperature, cfg.alpha, cfg.epochs, cfg.image_size) == (2.0, 0.5, 300, 32)
    assert "| scratch, crop to body, batch 32 |" in (Path(__file__).parents[1] / "BENCHMARKS.md").read_text()


def test_seed_aliases_map_to_canonical_names():
    cfg = Config.from_mapping({"teachers": "resnet,densenet,efficientnet,vgg16"})
    assert cfg.teachers == ("resnet50", "densenet121", "efficientnetb3", "vgg16")


@pytest.mark.parametrize("values,fragment", [
    ({"temperature": 0}, "temperature"),
    ({"temperature": -1.5}, "temperature"),
    ({"alpha": 1.5}, "alpha"),
    ({"alpha": -0.1}, "alpha"),
    ({"teachers": "resnet50,alexnet"}, "alexnet"),
    ({"quant_modes": "int4"}, "int4"),
    ({"epochs": "many"}, "epochs must be an integer"),
    ({"epochs": 2.5}, "epochs must be an integer"),
    ({"batch_size": True}, "batch_size"),
    ({"colour": "blue"}, "unknown key"),
    ({"channels": 1}, "ImageNet"),
    ({"monitor": "test_accuracy"}, "monitor"),
])
def test_bad_values_are_refused_by_name(values, fragment):
    with pytest.raises(ConfigError, match=fragment):
        Config.from_mapping(values)


def test_file_then_flag_overrides(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('teachers = ["vgg16"]\nepochs = 7\ntemperature = 4.0\n')
    cfg = Config.from_file(path, {"epochs": 3})
    assert (cfg.teachers, cfg.epochs, cfg.temperature) == (("vgg16",), 3, 4.0)
    jpath = tmp_path / "c.json"
    jpath.write_text(json.dumps(cfg.to_dict()))
    assert Config.from_file(jpath) == cfg


def test_bad_file_names_the_file(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("epochs = = 3")
    with pytest.raises(ConfigError, match="broken.toml"):
        Config.from_file(path)
    path.write_text('epochs = "x"')
    with pytest.raises(ConfigError, match="broken.toml: epochs must be an integer"):
        Config.from_file(path)


def test_teacher_epochs_is_optional_and_checked():
    assert Config().teacher_epochs is None
    assert Config.from_mapping({"teacher_epochs": 4}).teacher_epochs == 4
    with pytest.raises(ConfigError, match="teacher_epochs"):
        Config.from_mapping({"teacher_epochs": 0})


def test_direct_construction_resolves_and_checks_teachers():
    assert Config(teachers=("resnet", "xception")).teachers == ("resnet50", "xception")
    with pytest.raises(ConfigError, match="unknown teacher"):
        Config(teachers=("lenet",))


def test_one_weights_file_cannot_serve_several_teachers(tmp_path):
    weights = tmp_path / "w.h5"
    weights.write_bytes(b"x")
    with pytest.raises(ConfigError, match="one file"):
        Config(teachers=("vgg16", "resnet50"), weights=str(weights))
    assert Config(teachers=("vgg16",), weights=str(weights)).weights == str(weights)


def test_choice_lists_match_the_tables_that_implement_them():
    """``ctdistill.core.choices`` lets validation skip Keras; each list must name exactly its table's rows."""
    from ctdistill.core import choices
    from ctdistill.models.student import STUDENT_HEADS
    from ctdistill.models.teachers import TEACHERS
    from ctdistill.quantize import convert as quantize
    from ctdistill.training import recipe

    assert tuple(quantize.QUANT_MODES) == choices.QUANT_MODES
    assert tuple(recipe.AUGMENTATIONS) == choices.AUGMENTATIONS
    assert tuple(STUDENT_HEADS) == choices.STUDENT_HEADS
    built_in = [name for name in TEACHERS if not name.startswith("tiny")]  # the tests register tiny teachers
    assert tuple(built_in) == choices.TEACHERS


def test_the_documented_option_table_is_the_generated_one():
    """docs/options.md's table is `python -m ctdistill.cli.options`'s output, so it cannot drift."""
    from pathlib import Path

    from ctdistill.cli.options import markdown_table

    readme = (Path(__file__).resolve().parents[1] / "docs" / "options.md").read_text(encoding="utf-8")
    shown = readme.split("<!-- options:begin -->")[1].split("<!-- options:end -->")[0].strip()
    assert shown == markdown_table(), "regenerate it: python -m ctdistill.cli.options"


def test_every_field_declares_its_help_and_its_default_obeys_its_rule():
    """One declaration per option: a help text for each field; no default breaks its own declared rule."""
    import dataclasses

    from ctdistill.config import Config, _rules

    assert all(Config.help(f.name) for f in dataclasses.fields(Config))
    for key, ok, _ in _rules():
        assert ok(getattr(Config(), key)), f"{key}: the default breaks its own rule"
