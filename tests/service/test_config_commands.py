"""`baton config init|show|validate`, and the problems load_settings reports (each naming key and line)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from daemon.commands.config import flatten, render_default_config, source_of
from daemon.config import Settings, load_settings, toml_line
from daemon.errors import ConfigError
from daemon.paths import BatonPaths


def _baton(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "daemon", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=False,
        timeout=60,
    )


def _problems(baton_home: Path, text: str) -> list[str]:
    (baton_home / "config.toml").write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_settings(BatonPaths.from_env())
    assert caught.value.exit_code == 78
    return caught.value.problems


# --- config init ---


def test_init_writes_a_private_file_that_loads_to_exactly_the_defaults(baton_home: Path) -> None:
    done = _baton("config", "init")
    assert done.returncode == 0, done.stderr
    file = baton_home / "config.toml"
    assert stat.S_IMODE(file.stat().st_mode) == 0o600
    assert load_settings(BatonPaths.from_env()).model_dump() == Settings().model_dump()


def test_init_names_every_setting_of_the_model(baton_home: Path) -> None:
    text = render_default_config()
    data = tomllib.loads(text)
    for section, key, value in flatten(Settings()):
        if value is None:
            assert f"# {key} =   (unset by default;" in text, key
        else:
            assert key in data[section], f"{section}.{key}"
    assert "# one of: pro, max5, max20, custom, auto" in text
    assert "# rotate the log file past this size; range >= 10000" in text


def test_init_does_not_overwrite_without_force(baton_home: Path) -> None:
    (baton_home / "config.toml").write_text("[quota]\nplan = 'max20'\n")
    done = _baton("config", "init")
    assert done.returncode == 1 and "already exists" in done.stderr and "--force" in done.stderr
    assert "max20" in (baton_home / "config.toml").read_text()
    assert _baton("config", "init", "--force").returncode == 0
    assert 'plan = "auto"' in (baton_home / "config.toml").read_text()


# --- config show ---


def test_show_says_where_each_value_comes_from(baton_home: Path) -> None:
    (baton_home / "config.toml").write_text("[scheduler]\noffset_minutes = 12\n[quota]\nplan = 'pro'\n")
    done = _baton("config", "show", env={"BATON_QUOTA__PLAN": "max20"})
    assert done.returncode == 0, done.stderr
    lines = {line.split("=")[0].strip(): line for line in done.stdout.splitlines() if "=" in line}
    assert lines["offset_minutes"].endswith("12   # file")
    assert lines["plan"].endswith('"max20"   # env $BATON_QUOTA__PLAN')
    assert lines["grace_minutes"].endswith("60   # default")


def test_source_of_prefers_env_over_file_over_default() -> None:
    data = {"alerts": {"thresholds": [50]}}
    assert source_of("alerts", "thresholds", data, {}) == "file"
    assert source_of("alerts", "thresholds", data, {"baton_alerts__thresholds": "[1]"}).startswith("env $")
    assert source_of("alerts", "reset_notice", data, {}) == "default"


def test_show_json_is_machine_readable(baton_home: Path) -> None:
    import json

    done = _baton("config", "show", "--json")
    data = json.loads(done.stdout)
    assert data["alerts"]["thresholds"] == {"value": [80, 90, 95], "source": "default"}


# --- config validate: one test per error class, each naming the key and where it is ---


def test_bad_type_names_the_key_and_line(baton_home: Path) -> None:
    problems = _problems(baton_home, "[scheduler]\n\noffset_minutes = 'soon'\n")
    assert problems == [
        "At 'scheduler.offset_minutes' (config.toml line 3): Input should be a valid integer, "
        "unable to parse string as an integer"
    ]


def test_unknown_key_at_the_top_level_is_named(baton_home: Path) -> None:
    assert _problems(baton_home, "plann = 'max5'\n") == ["At 'plann' (config.toml line 1): unknown setting"]


def test_unknown_key_in_a_section_is_named(baton_home: Path) -> None:
    problems = _problems(baton_home, "[quota]\nplan = 'max5'\ntoken_limt = 5\n")
    assert problems == ["At 'quota.token_limt' (config.toml line 3): unknown setting"]


def test_out_of_range_threshold_is_named_with_its_index(baton_home: Path) -> None:
    problems = _problems(baton_home, "[alerts]\nthresholds = [80, 90, 105]\n")
    assert problems == [
        "At 'alerts.thresholds[2]' (config.toml line 2): 105 is out of range: must be between 1 and 100"
    ]


def test_every_out_of_range_threshold_is_named_not_only_the_first(baton_home: Path) -> None:
    problems = _problems(baton_home, "[alerts]\nthresholds = [80, 150, -5]\nweekly_thresholds = [0]\n")
    assert problems == [
        "At 'alerts.thresholds[1]' (config.toml line 2): 150 is out of range: must be between 1 and 100",
        "At 'alerts.thresholds[2]' (config.toml line 2): -5 is out of range: must be between 1 and 100",
        "At 'alerts.weekly_thresholds[0]' (config.toml line 3): 0 is out of range: must be between 1 and 100",
    ]


def test_thresholds_are_still_sorted_without_repeats() -> None:
    assert Settings(alerts={"thresholds": [95, 80, 80]}).alerts.thresholds == [80, 95]  # type: ignore[arg-type]


def test_bad_time_zone_is_named(baton_home: Path) -> None:
    problems = _problems(baton_home, "general.timezone = 'Europe/Pariss'\n")
    assert problems == [
        "At 'general.timezone' (config.toml line 1): unknown time zone 'Europe/Pariss' "
        "(use an IANA name such as Europe/Paris)"
    ]


def test_bad_path_is_named(baton_home: Path, tmp_path: Path) -> None:
    missing = tmp_path / "prices.json"
    problems = _problems(baton_home, f"[pricing]\nfile = '{missing}'\n")
    assert problems == [f"At 'pricing.file' (config.toml line 2): price file not found: {missing}"]


def test_a_bad_value_in_the_environment_names_the_variable(
    baton_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BATON_SCHEDULER__MAX_RETRIES", "1000")
    with pytest.raises(ConfigError) as caught:
        load_settings(BatonPaths.from_env())
    assert caught.value.problems == [
        "At 'scheduler.max_retries' (from $BATON_SCHEDULER__MAX_RETRIES): "
        "Input should be less than or equal to 100"
    ]
    monkeypatch.delenv("BATON_SCHEDULER__MAX_RETRIES")
    monkeypatch.setenv("BATON_ALERTS__THRESHOLDS", "80,90")
    with pytest.raises(ConfigError, match=r"\$BATON_ALERTS__THRESHOLDS\): not valid JSON"):
        load_settings(BatonPaths.from_env())


def test_a_variable_that_is_not_json_is_named_at_its_key_with_every_other_bad_variable(
    baton_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BATON_ALERTS__THRESHOLDS", "[80,")
    monkeypatch.setenv("BATON_QUOTA__PLAN", "maxx")
    monkeypatch.setenv("BATON_SCHEDULER__MAX_RETRIES", "1000")
    with pytest.raises(ConfigError) as caught:
        load_settings(BatonPaths.from_env())
    problems = caught.value.problems
    assert len(problems) == 3, problems
    assert problems[0].startswith(
        "At 'alerts.thresholds' (from $BATON_ALERTS__THRESHOLDS): not valid JSON (Expecting value"
    )
    assert any(p.startswith("At 'quota.plan' (from $BATON_QUOTA__PLAN): Input should be") for p in problems)
    assert any(
        p.startswith("At 'scheduler.max_retries' (from $BATON_SCHEDULER__MAX_RETRIES)") for p in problems
    )


def test_a_variable_that_is_not_json_is_reported_even_when_all_else_is_valid(
    baton_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BATON_ALERTS__WEEKLY_THRESHOLDS", "80, 90")
    monkeypatch.setenv("BATON_QUOTA__PLAN", "max5")
    with pytest.raises(ConfigError) as caught:
        load_settings(BatonPaths.from_env())
    assert [p.split(": not valid JSON")[0] for p in caught.value.problems] == [
        "At 'alerts.weekly_thresholds' (from $BATON_ALERTS__WEEKLY_THRESHOLDS)"
    ]


def test_a_whole_section_that_is_not_json_is_named_with_the_other_problems(
    baton_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The file's own mistake is still found at its line: the variable left out sets nothing.
    (baton_home / "config.toml").write_text("[alerts]\nthresholds = [0]\n")
    monkeypatch.setenv("BATON_ALERTS", "{thresholds: [80]}")
    monkeypatch.setenv("baton_general__log_level", "loud")
    with pytest.raises(ConfigError) as caught:
        load_settings(BatonPaths.from_env())
    problems = caught.value.problems
    assert problems[0].startswith("At 'alerts' (from $BATON_ALERTS): not valid JSON")
    assert problems[1:] == [
        "At 'general.log_level' (from $baton_general__log_level): "
        "Input should be 'debug', 'info', 'warning' or 'error'",
        "At 'alerts.thresholds[0]' (config.toml line 2): 0 is out of range: must be between 1 and 100",
    ]


def test_json_variables_still_set_lists_and_sections(
    baton_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BATON_ALERTS", '{"thresholds": [50], "reset_notice": false}')
    monkeypatch.setenv("BATON_ALERTS__WEEKLY_THRESHOLDS", "[60, 70]")
    monkeypatch.setenv("BATON_LAUNCH__EXTRA_ARGS", '["--verbose"]')
    settings = load_settings(BatonPaths.from_env())
    assert settings.alerts.thresholds == [50] and settings.alerts.reset_notice is False
    assert settings.alerts.weekly_thresholds == [60, 70]
    assert settings.launch.extra_args == ["--verbose"]


def test_validate_lists_every_problem_at_once_and_exits_78(baton_home: Path) -> None:
    (baton_home / "config.toml").write_text(
        "bogus = 1\n[general]\nlog_backups = 'many'\ntimezone = 'Mars/Olympus'\n[alerts]\nthresholds = [0]\n"
    )
    done = _baton("config", "validate")
    assert done.returncode == 78
    assert "Traceback" not in done.stderr
    for fragment in (
        "At 'bogus' (config.toml line 1): unknown setting",
        "At 'general.log_backups' (config.toml line 3)",
        "At 'general.timezone' (config.toml line 4)",
        "At 'alerts.thresholds[0]' (config.toml line 6): 0 is out of range",
    ):
        assert fragment in done.stderr


def test_validate_reports_toml_syntax_errors_with_their_line(baton_home: Path) -> None:
    (baton_home / "config.toml").write_text("[quota]\nplan = max5\n")
    done = _baton("config", "validate")
    assert done.returncode == 78 and "TOML syntax" in done.stderr and "line 2" in done.stderr


def test_validate_accepts_no_file_and_a_good_file(baton_home: Path) -> None:
    done = _baton("config", "validate")
    assert done.returncode == 0 and "every setting is at its default" in done.stdout
    (baton_home / "config.toml").write_text("[quota]\nplan = 'custom'\ntoken_limit = 200000\n")
    done = _baton("config", "validate")
    assert done.returncode == 0 and "valid" in done.stdout


@pytest.mark.parametrize(
    ("text", "keys", "line"),
    [
        ("[a]\nx = 1\n[b]\nx = 2\n", ["b", "x"], 4),
        ("a.x = 1\n", ["a", "x"], 1),
        ('[ "a" ]\n"x" = 1\n', ["a", "x"], 2),
        ("[a]\ny = 1\n", ["a", "x"], 1),  # the key is missing: point at its table
        ("[[sessions.categories]]\npattern = 'x'\n", ["sessions", "pattern"], None),
        ("", ["a"], None),
    ],
)
def test_toml_line_finds_keys_in_tables_and_dotted_keys(text: str, keys: list[str], line: int | None) -> None:
    assert toml_line(text, keys) == line


ODD_VALUES: list[object] = ['a"b\\c', "tab\there\nnewline", "del\x7f", "emoji 😀 é", "\x00"]


@pytest.mark.parametrize("value", [*ODD_VALUES, 3, 2.5, True, [1, 2], {"a b": {"c": "d"}}])
def test_values_are_written_as_toml_that_reads_back_the_same(value: object) -> None:
    from daemon.commands.config import toml_value

    assert tomllib.loads(f"x = {toml_value(value)}")["x"] == value
