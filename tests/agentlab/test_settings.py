"""Settings precedence (flag > env > litlab.toml > default) and `litlab config show`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from agentlab.errors import ConfigError
from agentlab.settings import load_settings
from litlab.cli import main


def write_toml(home: Path, text: str) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "litlab.toml").write_text(text)


def test_each_layer_overrides_the_one_below(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    write_toml(home, 'port = 9001\nmodel = "gemma-3-270m"\ntemperature = 0.9\n')
    monkeypatch.setenv("LITLAB_PORT", "9002")
    monkeypatch.setenv("LITLAB_TEMPERATURE", "0.5")

    loaded = load_settings(home=str(home), temperature=0.1)
    s = loaded.settings

    assert s.temperature == 0.1 and loaded.origins["temperature"] == "command line"
    assert s.port == 9002 and loaded.origins["port"] == "env LITLAB_PORT"
    assert s.model == "gemma-3-270m" and loaded.origins["model"] == str(home / "litlab.toml")
    assert s.max_tokens == 256 and loaded.origins["max_tokens"] == "default"


def test_environment_strings_become_typed_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LITLAB_COMPILE_MODEL", "true")
    monkeypatch.setenv("litlab_cpu_threads", "2")  # any case, as shells allow
    monkeypatch.setenv("LITLAB_KV_CACHE_GIB", "0.5")
    monkeypatch.setenv("LITLAB_STORE", "chroma")
    s = load_settings().settings
    assert s.compile_model is True and s.cpu_threads == 2 and s.kv_cache_gib == 0.5
    assert s.store == "chroma"


def test_home_comes_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LITLAB_HOME", str(tmp_path / "elsewhere"))
    write_toml(tmp_path / "elsewhere", "max_tokens = 77\n")
    assert load_settings().settings.max_tokens == 77


def test_unknown_key_in_toml_is_an_error_naming_it(tmp_path: Path) -> None:
    write_toml(tmp_path / "home", "temprature = 0.3\n")
    with pytest.raises(ConfigError, match="temprature"):
        load_settings(home=str(tmp_path / "home"))


def test_bad_value_names_setting_and_source(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LITLAB_PORT", "not-a-port")
    with pytest.raises(ConfigError, match=r"'port' from env LITLAB_PORT"):
        load_settings()


def test_broken_toml_is_one_clear_error(tmp_path: Path) -> None:
    write_toml(tmp_path / "home", "port = [\n")
    with pytest.raises(ConfigError, match="cannot read .*litlab.toml"):
        load_settings(home=str(tmp_path / "home"))


def test_config_show_prints_values_and_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LITLAB_MAX_TOKENS", "64")
    result = CliRunner().invoke(main, ["--model", "gemma-3-270m", "config", "show", "--json"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert shown["max_tokens"] == {"value": 64, "source": "env LITLAB_MAX_TOKENS"}
    assert shown["model"] == {"value": "gemma-3-270m", "source": "command line"}
    assert shown["port"]["source"] == "default"


def test_config_show_bad_setting_is_one_line_without_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LITLAB_TEMPERATURE", "hot")
    result = CliRunner().invoke(main, ["config", "show"])
    assert result.exit_code == 1
    assert "error: setting 'temperature'" in result.output
    assert "Traceback" not in result.output


def test_unknown_env_variable_warns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LITLAB_MODLE", "x")
    loaded = load_settings()
    assert any("LITLAB_MODLE" in w for w in loaded.warnings)


def test_config_set_checks_saves_and_resets(tmp_path: Path) -> None:
    home = tmp_path / "home"
    write_toml(home, "# mine\ntemperature = 0.9\n")
    runner = CliRunner()
    r = runner.invoke(main, ["--home", str(home), "config", "set", "keep_alive", "abc"])
    assert r.exit_code == 1 and "setting 'keep_alive'" in r.output
    r = runner.invoke(main, ["--home", str(home), "config", "set", "nope", "1"])
    assert "litlab has no setting 'nope'" in r.output
    assert (home / "litlab.toml").read_text() == "# mine\ntemperature = 0.9\n"  # untouched
    runner.invoke(main, ["--home", str(home), "config", "set", "keep_alive", "120"])
    runner.invoke(main, ["--home", str(home), "config", "set", "model", "gemma-3-270m"])
    s = load_settings(home=str(home)).settings
    assert (s.keep_alive, s.model, s.temperature) == (120.0, "gemma-3-270m", 0.9)
    runner.invoke(main, ["--home", str(home), "config", "set", "model", "default"])
    assert load_settings(home=str(home)).settings.model == "smollm2-135m-instruct"
    assert "# mine" in (home / "litlab.toml").read_text()
