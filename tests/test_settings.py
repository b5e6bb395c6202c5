"""Settings: reference defaults, TOML round trip, and errors that name key and range."""

from __future__ import annotations

import pytest

from gazelab.settings import Settings, SettingsError, load_settings, save_settings


def test_defaults_are_the_reference_set_up():
    s = Settings()
    assert s.display.resolution_px == (2560, 1440)
    assert s.display.distance_mm == 700.0
    assert s.display.pixel_pitch_mm == pytest.approx(0.2335, abs=5e-4)
    assert s.stimulus.square_px == 1200
    assert (s.protocol.blank1_ms, s.protocol.cross_ms, s.protocol.blank2_ms) == (500, 200, 500)
    assert s.heatmap.span_deg == 5.0 and s.heatmap.fwhm_fraction == 0.4
    assert s.fixations.dispersion_deg == 1.0 and s.fixations.min_duration_ms == 100.0
    assert s.fixations.velocity_deg_s == 30.0
    assert s.masks.negative_fraction == 0.1
    assert s.training.masked_epochs == 9


def test_toml_round_trip(tmp_path):
    s = Settings().replace(
        protocol=Settings().protocol.__class__(seed=42, cross_ms=250.0),
    )
    path = tmp_path / "s.toml"
    save_settings(s, path)
    back = load_settings(path)
    assert back == s
    assert back.protocol.seed == 42


def test_display_in_inches_and_centimetres():
    s = Settings.from_toml(
        "[display]\ndiagonal_in = 24\nresolution_px = [1920, 1080]\ndistance_cm = 60\n"
    )
    assert s.display.distance_mm == 600.0
    assert s.display.pixel_pitch_mm == pytest.approx(24 * 25.4 / (1920**2 + 1080**2) ** 0.5)


@pytest.mark.parametrize(
    ("toml", "words"),
    [
        ("[protocol]\ncross_ms = -5\n", ["protocol.cross_ms", "-5", "[0, 10000]"]),
        ("[protocol]\ncalibration_points = 7\n", ["protocol.calibration_points", "5", "16"]),
        ("[protocol]\ncros_ms = 5\n", ["protocol.cros_ms", "accepts"]),
        ("[heatmap]\nspan_deg = 'five'\n", ["heatmap.span_deg", "must be a number"]),
        ("[tracker]\nkind = 'tobii'\n", ["tracker.kind", "eyetribe"]),
        ("[nonsense]\na = 1\n", ["unknown section", "nonsense"]),
        ("[display]\nresolution_px = [0, 5]\n", ["display.resolution_px"]),
        ("[display]\nwidth_mm = 500\n", ["width_mm and display.height_mm"]),
        ("not toml = = =", ["not valid TOML"]),
    ],
)
def test_bad_values_name_the_key_and_what_is_allowed(toml, words):
    with pytest.raises(SettingsError) as err:
        Settings.from_toml(toml)
    for w in words:
        assert w in str(err.value)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(SettingsError, match="cannot read settings file"):
        load_settings(tmp_path / "nope.toml")


@pytest.mark.parametrize(
    "module, section, toml, words",
    [
        ("esr_protocols", "esr", 'branches = "x"', "branches = 'x' must be a whole number"),
        ("esr_protocols", "esr", "width = true", "width = True must be a number"),
        ("transfer", "transfer", 'fractions = "all"', "fractions = 'all' must be a list"),
        ("transfer", "transfer", 'fractions = ["half"]', "fractions = ['half'] must be a list"),
    ],
)
def test_config_sections_name_a_value_of_the_wrong_type(tmp_path, module, section, toml, words):
    import importlib

    mod = importlib.import_module(f"gazelab.models.{module}")
    load = mod.load_esr_config if section == "esr" else mod.load_transfer_config
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[data]\nimages = "synthetic:8:0"\n[{section}]\n{toml}\n')
    with pytest.raises(SettingsError) as err:
        load(cfg)
    assert str(err.value).startswith(f"{cfg}: {section}.")
    assert words in str(err.value), str(err.value)


def test_a_bad_value_names_the_file_it_came_from(tmp_path):
    cfg = tmp_path / "lab.toml"
    cfg.write_text('[protocol]\nblank1_ms = "abc"\n')
    with pytest.raises(SettingsError) as err:
        load_settings(cfg)
    assert str(err.value) == f"{cfg}: protocol.blank1_ms = 'abc' must be a number"


@pytest.mark.parametrize(
    ("settings_line", "esr_line", "message"),
    [
        ('[protocol]\nseed = "x"', 'branches = "x"', "= 'x' must be a whole number"),
        ("[protocol]\nseed = 1.5", "branches = 1.5", "= 1.5 must be a whole number"),
        ("[heatmap]\nspan_deg = true", "width = true", "= True must be a number"),
        ("[heatmap]\nduration_weighting = 1", "baselines = 1", "= 1 must be true or false"),
    ],
)
def test_one_validator_the_same_mistake_the_same_message(tmp_path, settings_line, esr_line,
                                                         message):  # fmt: skip
    """The project settings and a run config's own section ([esr]) go through one validator:
    the same wrong kind of value gets the same words, naming the file and section.key."""
    from gazelab.models.esr_protocols import load_esr_config

    a, b = tmp_path / "a.toml", tmp_path / "b.toml"
    a.write_text(settings_line + "\n")
    b.write_text(f'[data]\nimages = "synthetic:8:0"\n[esr]\n{esr_line}\n')
    with pytest.raises(SettingsError) as one:
        load_settings(a)
    with pytest.raises(SettingsError) as two:
        load_esr_config(b)
    key_a = settings_line.split("\n")[0].strip("[]") + "." + settings_line.split("\n")[1].split()[0]
    key_b = "esr." + esr_line.split()[0]
    assert str(one.value) == f"{a}: {key_a} {message}"
    assert str(two.value) == f"{b}: {key_b} {message}"


def test_one_validator_the_same_coercion(tmp_path):
    """A whole number where a number is wanted is a float, a list where a tuple is wanted a
    tuple, in the settings and in a run config's section alike."""
    from gazelab.models.esr_protocols import load_esr_config
    from gazelab.models.transfer import load_transfer_config

    s = Settings.from_toml("[heatmap]\nspan_deg = 4\n")
    assert s.heatmap.span_deg == 4.0 and type(s.heatmap.span_deg) is float
    cfg = tmp_path / "e.toml"
    cfg.write_text('[data]\nimages = "synthetic:8:0"\n[esr]\nwidth = 2\n')
    width = load_esr_config(cfg).esr.width
    assert width == 2.0 and type(width) is float
    cfg = tmp_path / "t.toml"
    cfg.write_text('[transfer]\nsource = "synthetic:8:0"\ntarget = "synthetic:8:1"\n'
                   "fractions = [1, 0.25]\n")  # fmt: skip
    fractions = load_transfer_config(cfg).transfer.fractions
    assert fractions == (1.0, 0.25) and all(type(f) is float for f in fractions)
