"""Settings come from TIDINGS_* variables and ./.env, the environment winning."""

import pytest

from tidings.config import load_settings


def test_defaults_are_the_embedded_service():
    settings = load_settings({}, dotenv=None)
    assert settings.database_url == "sqlite:///./tidings.db"
    assert settings.effective_queue_url == "sqlite:///./tidings.db"
    assert settings.port == 8000


def test_environment_overrides_dotenv(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("# comment\nTIDINGS_PORT=9000\nexport TIDINGS_HOST='0.0.0.0'\n")
    settings = load_settings({"TIDINGS_PORT": "9100"}, dotenv=env_file)
    assert (settings.host, settings.port) == ("0.0.0.0", 9100)


def test_bad_number_names_the_variable():
    with pytest.raises(ValueError, match="TIDINGS_PORT='eighty'"):
        load_settings({"TIDINGS_PORT": "eighty"}, dotenv=None)


def test_postgres_needs_an_explicit_queue():
    settings = load_settings({"TIDINGS_DATABASE_URL": "postgresql://db/x"}, dotenv=None)
    with pytest.raises(ValueError, match="TIDINGS_QUEUE_URL"):
        _ = settings.effective_queue_url


def test_masked_hides_secrets():
    settings = load_settings({"TIDINGS_SUBSCRIBER_SECRET": "s3cret"}, dotenv=None)
    assert settings.masked()["subscriber_secret"] == "***"


def test_masked_hides_the_api_key_tidings_send_uses():
    settings = load_settings({"TIDINGS_API_KEY": "tk_secret"}, dotenv=None)
    assert settings.api_key == "tk_secret"
    assert settings.masked()["api_key"] == "***"
