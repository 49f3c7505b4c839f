from pathlib import Path

import pytest

from hub.settings import load_settings


def test_defaults_work_on_the_embedded_broker() -> None:
    s = load_settings(environ={})
    assert s.embedded and s.session_timeout_s == 10.0 and s.rules.cross_agency_window_days == 90


def test_file_then_env_then_overrides(tmp_path: Path) -> None:
    config = tmp_path / "hub.toml"
    config.write_text('broker_url = "kafka1:9092"\ntopic_partitions = 12\n[rules]\nrepeat_offender_window_days = 120\n')
    s = load_settings(config, environ={"HUB_TOPIC_PARTITIONS": "24", "HUB_RULES_CROSS_AGENCY_WINDOW_DAYS": "60"})
    assert s.broker_url == "kafka1:9092" and not s.embedded
    assert s.topic_partitions == 24
    assert s.rules.repeat_offender_window_days == 120 and s.rules.cross_agency_window_days == 60
    assert s.with_overrides(broker_url="other:9092", topic_partitions=None).broker_url == "other:9092"


def test_unknown_setting_is_an_error(tmp_path: Path) -> None:
    config = tmp_path / "hub.toml"
    config.write_text("brokr_url = 'x'\n")
    with pytest.raises(ValueError, match="brokr_url"):
        load_settings(config, environ={})


def test_the_http_servers_bounds_come_from_the_environment() -> None:
    s = load_settings(environ={"HUB_HTTP_IDLE_TIMEOUT_S": "2.5", "HUB_HTTP_MAX_CONNECTIONS": "8"})
    assert (s.http.idle_timeout_s, s.http.max_connections) == (2.5, 8)
    assert load_settings(environ={}).http.max_connections == 64


def test_the_pii_key_comes_from_a_secret_file(tmp_path) -> None:
    """Issue 33: compose mounts it as a secret (HUB_PII_KEY_FILE), in no environment."""
    import pytest

    from hub.settings import load_settings

    key = tmp_path / "pii-key"
    key.write_text("a-secret-from-a-file\n")
    assert load_settings(environ={"HUB_PII_KEY_FILE": str(key)}).pii_key == "a-secret-from-a-file"
    with pytest.raises(ValueError, match="both set"):
        load_settings(environ={"HUB_PII_KEY_FILE": str(key), "HUB_PII_KEY": "another"})
    key.write_text("\n")
    with pytest.raises(ValueError, match="is empty"):
        load_settings(environ={"HUB_PII_KEY_FILE": str(key)})


def test_the_processing_guarantee_is_one_faust_knows() -> None:
    import pytest

    from hub.settings import ProcessingGuarantee, load_settings

    assert load_settings(environ={}).processing_guarantee is ProcessingGuarantee.AT_LEAST_ONCE
    chosen = load_settings(environ={"HUB_PROCESSING_GUARANTEE": "exactly_once"}).processing_guarantee
    assert chosen is ProcessingGuarantee.EXACTLY_ONCE
    with pytest.raises(ValueError, match="exactly-once"):
        load_settings(environ={"HUB_PROCESSING_GUARANTEE": "exactly-once"})
