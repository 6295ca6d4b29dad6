from pathlib import Path

import pytest

from fakewatch.config import Settings, load_settings, setting_fields
from fakewatch.errors import ConfigError

README = Path(__file__).resolve().parents[2] / "README.md"


def test_defaults_need_no_servers(tmp_path: Path) -> None:
    settings = load_settings({"home": str(tmp_path)}, env={})
    assert settings.embedded
    assert settings.resolved_database_url == f"sqlite:///{tmp_path / 'fakewatch.db'}"
    assert settings.registry_path == tmp_path / "classifiers"


def test_precedence_default_file_env_flag(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('batch_size = 64\nstability_delay = 5.0\nexclude = ["*.raw"]\n')
    env = {"FAKEWATCH_CONFIG": str(config), "FAKEWATCH_STABILITY_DELAY": "3.5"}
    settings = load_settings({"stability_delay": None}, env=env)
    assert settings.batch_size == 64            # from the file
    assert settings.stability_delay == 3.5      # environment beats the file
    assert settings.exclude == ("*.raw",)
    assert load_settings({"batch_size": 8}, env=env).batch_size == 8  # a flag beats everything


def test_environment_values_are_coerced() -> None:
    settings = load_settings(env={"FAKEWATCH_POLLING": "yes", "FAKEWATCH_INCLUDE": "*.jpg, *.png",
                                  "FAKEWATCH_MAX_PIXELS": "1000"})
    assert settings.polling is True
    assert settings.include == ("*.jpg", "*.png")
    assert settings.max_pixels == 1000


@pytest.mark.parametrize("env", [{"FAKEWATCH_BATCH_SIZE": "many"}, {"FAKEWATCH_BATCH_SIZE": "0"},
                                 {"FAKEWATCH_POLLING": "perhaps"}, {"FAKEWATCH_LOG_LEVEL": "LOUD"},
                                 {"FAKEWATCH_RUNTIME_THREADS": "-1"}])
def test_bad_values_raise_config_error(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        load_settings(env=env)


def test_folder_settings_name_one_folder_or_one_per_domain() -> None:
    plain = load_settings(env={"FAKEWATCH_BENCHMARK_DIR": "/data/bench"})
    assert plain.for_domain("benchmark_dir", "photo") == plain.for_domain("benchmark_dir", "thumbnail") == "/data/bench"
    split = load_settings(env={"FAKEWATCH_BENCHMARK_DIR": "thumbnail=/data/cifake; photo=/data/photo-bench;",
                               "FAKEWATCH_BASE_DATA": "photo=/data/photo"})
    assert split.for_domain("benchmark_dir", "thumbnail") == "/data/cifake"
    assert split.for_domain("benchmark_dir", "photo") == "/data/photo-bench"
    assert split.for_domain("base_data", "photo") == "/data/photo" and split.for_domain("base_data", "thumbnail") == ""
    with pytest.raises(ConfigError, match="DOMAIN=FOLDER"):
        load_settings(env={"FAKEWATCH_BASE_DATA": "photo=/data/photo;/data/other"})


def test_unknown_key_in_config_file_is_reported(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("batch_sise = 3\n")
    with pytest.raises(ConfigError, match="batch_sise"):
        load_settings(env={"FAKEWATCH_CONFIG": str(config)})


def test_settings_are_frozen() -> None:
    with pytest.raises(AttributeError):
        Settings().batch_size = 3  # type: ignore[misc]


def test_every_setting_is_documented_in_readme() -> None:
    text = README.read_text(encoding="utf-8")
    for field in setting_fields():
        assert f"FAKEWATCH_{field.name.upper()}" in text, f"FAKEWATCH_{field.name.upper()} missing from README"
        assert field.metadata.get("help"), f"{field.name} has no help text"


def test_schema_head_constant_matches_the_migrations() -> None:
    from fakewatch.db.session import SCHEMA_HEAD, migration_head

    assert SCHEMA_HEAD == migration_head()


def test_settings_command_shows_resolved_values_and_masks_secrets(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from fakewatch.cli import cli

    env = {"XDG_DATA_HOME": str(tmp_path / "data"), "FAKEWATCH_HOME": "", "FAKEWATCH_DATABASE_URL": "",
           "FAKEWATCH_REGISTRY_DIR": "", "FAKEWATCH_CONFIG": "", "FAKEWATCH_BROKER_URL": "",
           "FAKEWATCH_API_TOKEN": "planted-token"}
    output = CliRunner().invoke(cli, ["settings"], env=env, obj={}).output
    home = tmp_path / "data" / "fakewatch"
    assert f"home = '{home}'" in output
    assert f"database_url = 'sqlite:///{home / 'fakewatch.db'}'" in output
    assert f"registry_dir = '{home / 'classifiers'}'" in output
    assert "api_token = '***'" in output and "planted-token" not in output
    secret = CliRunner().invoke(cli, ["settings"], env={**env, "FAKEWATCH_DATABASE_URL":
                                                        "postgresql://fw:hunter2@db.example/fw"}, obj={}).output
    assert "database_url = 'postgresql://fw:***@db.example/fw'" in secret and "hunter2" not in secret
