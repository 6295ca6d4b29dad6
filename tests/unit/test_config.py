import re
from pathlib import Path

import pytest

from fakewatch.config import Settings, load_settings, setting_fields
from fakewatch.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
SETTINGS_PAGE = ROOT / "docs" / "settings.md"


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


def test_every_setting_is_documented_and_nothing_else() -> None:
    documented = {}
    for line in SETTINGS_PAGE.read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]]
        if len(cells) == 4 and cells[1].startswith("`FAKEWATCH_"):
            documented[cells[0].strip("`")] = (cells[1].strip("`"), cells[2], cells[3])
    fields = {field.name: field for field in setting_fields()}
    assert sorted(documented) == sorted(fields), "docs/settings.md: run python scripts/gen_docs.py settings.md"
    for name, field in fields.items():
        variable, default, text = documented[name]
        assert variable == f"FAKEWATCH_{name.upper()}"
        assert field.metadata.get("help"), f"{name} has no help text"
        assert " ".join(field.metadata["help"].split()).split(" (")[0][:40] in text.replace("\\", "")


def test_settings_page_is_current() -> None:
    from tests.unit.test_docs import gen_docs

    assert gen_docs().stale(["settings.md"]) == [], "docs/settings.md: run python scripts/gen_docs.py settings.md"


def test_docs_name_no_variable_that_does_not_exist() -> None:
    known = {f"FAKEWATCH_{field.name.upper()}" for field in setting_fields()} | {"FAKEWATCH_CONFIG"}
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        for variable in set(re.findall(r"FAKEWATCH_[A-Z][A-Z0-9_]*[A-Z0-9]", page.read_text(encoding="utf-8"))):
            if variable.startswith(("FAKEWATCH_VERDICT", "FAKEWATCH_TEST_")):
                continue  # what an action command receives; the test suite's service URLs
            assert variable in known, f"{page.relative_to(ROOT)} names {variable}, which is no setting"


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
