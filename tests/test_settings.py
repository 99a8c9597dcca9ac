"""Settings are checked at start: a wrong value stops create_app with a message naming it."""

from __future__ import annotations

from pathlib import Path

import pytest

from kb import create_app
from kb.config import SettingsError
from tests import conftest


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("KB_TIMEZONE", "Mars/Olympus", "KB_TIMEZONE=Mars/Olympus: 不是已知的时区"),
        ("KB_SIGNAL_BUBBLE_RATIO", "ten", "KB_SIGNAL_BUBBLE_RATIO=ten: 须为数字"),
        ("KB_SIGNAL_COST_RISE_PCT", "-5", "KB_SIGNAL_COST_RISE_PCT=-5: 须不小于 0"),
        ("KB_PER_PAGE", "twenty", "KB_PER_PAGE=twenty: 须为整数"),
        ("KB_PER_PAGE", "2.5", "KB_PER_PAGE=2.5: 须为整数，不能带小数"),
        ("KB_PER_PAGE", "0", "KB_PER_PAGE=0: 须不小于 1"),
        ("KB_INDEX_SYNC", "maybe", "KB_INDEX_SYNC=maybe: 须为 true 或 false"),
        ("KB_RATELIMIT_API", "lots", "KB_RATELIMIT_API=lots: 不是有效的限流写法"),
        ("KB_RATELIMIT_LOGIN", "10 per fortnight", "KB_RATELIMIT_LOGIN=10 per fortnight: 不是"),
        ("KB_DATABASE_URL", "mysql://kb@db/kb", "KB_DATABASE_URL=mysql://kb@db/kb: 不支持的数据库"),
        ("KB_DATABASE_URL", "not a url", "KB_DATABASE_URL=not a url: 不是数据库地址"),
        (
            "KB_EMBEDDING_MODELS",
            "e5,/no/such/model",
            "KB_EMBEDDING_MODELS=e5,/no/such/model: 第 2 项“/no/such/model”：“/no/such/model”既不是",
        ),
        (
            "KB_EMBEDDING_MODELS",
            "e5:heavy",
            "KB_EMBEDDING_MODELS=e5:heavy: 第 1 项“e5:heavy”：冒号后",
        ),
        ("KB_EMBEDDING_MODELS", "e5,use,e5", "KB_EMBEDDING_MODELS=e5,use,e5: 模型名“e5”出现了两次"),
    ],
)
def test_a_wrong_variable_stops_the_app_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, says: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match="设置有误") as raised:
        create_app({"DATA_DIR": str(tmp_path)})
    assert says in str(raised.value)
    assert not (tmp_path / "kb.sqlite3").exists()  # stopped before touching the database


def test_every_wrong_setting_is_listed_and_no_password_shown(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as raised:
        create_app(
            {
                "DATA_DIR": str(tmp_path),
                "TIMEZONE": "Asia/Nowhere",
                "MAX_PER_PAGE": "many",
                "DATABASE_URL": "oracle://kb:hunter2@db/kb",
            }
        )
    lines = str(raised.value).splitlines()[1:]
    assert [line.split("=")[0] for line in lines] == [
        "KB_DATABASE_URL",
        "KB_TIMEZONE",
        "KB_MAX_PER_PAGE",
    ]
    assert "hunter2" not in str(raised.value)
    assert "oracle://kb:***@db/kb" in lines[0]


def test_good_values_are_read_as_their_types(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KB_TIMEZONE", "Europe/Paris")
    monkeypatch.setenv("KB_SIGNAL_BUBBLE_RATIO", "12.5")
    monkeypatch.setenv("KB_PER_PAGE", "30")
    monkeypatch.setenv("KB_PUBLIC_READ", "yes")
    monkeypatch.setenv("KB_SECRET_KEY", "1234")  # parsed as a JSON number: still a key
    app = create_app(
        {
            "DATA_DIR": str(tmp_path),
            "SQLITE_BUSY_TIMEOUT_S": 0.5,
            "DATABASE_URL": f"sqlite:///{tmp_path / 'kb.sqlite3'}",
            "RATELIMIT_API": "100 per minute; 5 per second",
        }
    )
    try:
        assert app.config["TIMEZONE"] == "Europe/Paris"
        assert app.config["SIGNAL_BUBBLE_RATIO"] == 12.5
        assert app.config["PER_PAGE"] == 30
        assert app.config["PUBLIC_READ"] is True
        assert app.config["SECRET_KEY"] == "1234"  # noqa: S105  # a test value
        assert app.config["SQLITE_BUSY_TIMEOUT_S"] == 0.5
    finally:
        conftest.release(app)
