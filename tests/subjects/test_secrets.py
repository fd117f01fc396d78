"""The encrypted secret store, its CLI, and redaction."""

from __future__ import annotations

import logging
import stat

import pytest
from cryptography.fernet import Fernet
from operator_core.cli.secrets import app
from operator_core.errors import ConfigError
from operator_core.secrets import (
    Redactor,
    SecretResolver,
    SecretStore,
    check_name,
    default_key_file,
    default_secrets_file,
    install_log_filter,
)
from typer.testing import CliRunner

VALUE = "correct-horse-battery-staple"


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_default_locations_follow_xdg_state_home(tmp_path, monkeypatch) -> None:
    assert default_secrets_file() == tmp_path / "state" / "operator" / "secrets.enc"
    assert default_key_file() == tmp_path / "state" / "operator" / "secret.key"
    monkeypatch.setenv("OPERATOR_SECRETS_FILE", str(tmp_path / "elsewhere.enc"))
    monkeypatch.setenv("OPERATOR_SECRET_KEY_FILE", str(tmp_path / "elsewhere.key"))
    assert default_secrets_file() == tmp_path / "elsewhere.enc"
    assert default_key_file() == tmp_path / "elsewhere.key"


def test_set_get_delete_round_trip_with_private_files(tmp_path) -> None:
    store = SecretStore()
    store.set("DB_PASSWORD", VALUE)
    store.set("API_TOKEN", "t0k3n")
    assert store.names() == ["API_TOKEN", "DB_PASSWORD"]
    assert store.get("DB_PASSWORD") == VALUE
    assert mode(store.key_file) == 0o600 and mode(store.path) == 0o600
    assert VALUE.encode() not in store.path.read_bytes()
    assert store.delete("DB_PASSWORD") is True
    assert store.delete("DB_PASSWORD") is False
    assert store.names() == ["API_TOKEN"]


def test_key_from_the_environment(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("OPERATOR_SECRET_KEY", Fernet.generate_key().decode())
    store = SecretStore()
    store.set("X", VALUE)
    assert not store.key_file.exists()
    assert SecretStore().get("X") == VALUE


def test_a_key_file_readable_by_others_is_refused(tmp_path) -> None:
    store = SecretStore()
    store.set("X", VALUE)
    store.key_file.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        store.get("X")


def test_a_wrong_key_says_so(monkeypatch) -> None:
    SecretStore().set("X", VALUE)
    monkeypatch.setenv("OPERATOR_SECRET_KEY", Fernet.generate_key().decode())
    with pytest.raises(ConfigError, match="cannot decrypt"):
        SecretStore().get("X")


def test_setting_a_secret_without_the_key_of_an_existing_file_is_refused(tmp_path) -> None:
    store = SecretStore()
    store.set("X", VALUE)
    store.key_file.rename(tmp_path / "moved.key")
    with pytest.raises(ConfigError, match="no key was found"):
        store.set("Y", "other")
    assert not store.key_file.exists()  # no new key that could not read the file


def test_environment_wins_over_the_file(monkeypatch) -> None:
    SecretStore().set("API_TOKEN", "from-file")
    assert SecretResolver().get("API_TOKEN") == "from-file"
    monkeypatch.setenv("OPERATOR_SECRET_API_TOKEN", "from-env")
    assert SecretResolver().get("API_TOKEN") == "from-env"


def test_an_unknown_secret_names_the_fix() -> None:
    with pytest.raises(ConfigError, match="operator secrets set NOPE"):
        SecretResolver().get("NOPE")


@pytest.mark.parametrize("name", ["", "1ABC", "A-B", "KEY", "key_file", "a b"])
def test_bad_secret_names_are_refused(name: str) -> None:
    with pytest.raises(ConfigError):
        check_name(name)


def test_redactor_hides_values_and_their_encoded_forms() -> None:
    r = Redactor({"TOKEN": 'a/b+c "d"'})
    assert r.redact('x a/b+c "d" y') == "x {secret:TOKEN} y"
    assert r.redact("a%2Fb%2Bc%20%22d%22") == "{secret:TOKEN}"
    assert r.redact('a/b+c \\"d\\"') == "{secret:TOKEN}"
    r2 = Redactor({"T": "abcdefgh"})
    assert r2.redact("efgh and more", cut_start=True) == "*** and more"
    assert r2.redact("start abcde", cut_end=True) == "start ***"
    assert r2.redact_data({"k abcdefgh": ["abcdefgh", 3]}) == {"k {secret:T}": ["{secret:T}", 3]}


def test_log_records_of_http_libraries_are_redacted(caplog, monkeypatch) -> None:
    monkeypatch.setenv("OPERATOR_SECRET_LOGGED", "zz-logged-value-zz")
    SecretResolver().get("LOGGED")
    install_log_filter()
    caplog.set_level(logging.DEBUG)
    logging.getLogger("httpx").info("HTTP Request: GET http://h/?k=%s", "zz-logged-value-zz")
    assert "zz-logged-value-zz" not in caplog.text
    assert "{secret:LOGGED}" in caplog.text


# ---------------------------------------------------------------- CLI


def test_cli_set_reads_stdin_list_shows_names_delete_removes() -> None:
    cli = CliRunner()
    result = cli.invoke(app, ["set", "PAGER_TOKEN"], input=VALUE + "\n")
    assert result.exit_code == 0, result.output
    assert VALUE not in result.output
    assert SecretStore().get("PAGER_TOKEN") == VALUE
    result = cli.invoke(app, ["list"])
    assert result.exit_code == 0 and result.output.strip() == "PAGER_TOKEN"
    result = cli.invoke(app, ["delete", "PAGER_TOKEN"])
    assert result.exit_code == 0
    assert SecretStore().names() == []


def test_cli_never_takes_the_value_from_the_command_line() -> None:
    result = CliRunner().invoke(app, ["set", "PAGER_TOKEN", VALUE], input="")
    assert result.exit_code != 0
    assert SecretStore().names() == []


def test_cli_errors_are_operator_errors() -> None:
    cli = CliRunner()
    result = cli.invoke(app, ["delete", "NOT_THERE"])
    assert isinstance(result.exception, ConfigError)
    assert "no secret named NOT_THERE" in str(result.exception)
    result = cli.invoke(app, ["set", "EMPTY"], input="")
    assert isinstance(result.exception, ConfigError)
    result = cli.invoke(app, ["set", "bad-name"], input="x")
    assert isinstance(result.exception, ConfigError)
