"""Rows in: per-row model and provider from templates or functions, body parameters from
columns (``col()``), ``response_format`` from a pydantic model (strict unless it cannot be),
``extend(builder)``; the columnar fast path writes exactly what the row-by-row path writes;
and the cache's key scope and default location."""

from __future__ import annotations

import json
import math

import pytest
from pydantic import BaseModel

import fastrouter_batch as fb
from fastrouter_batch._cache import default_path, scope

pd = pytest.importorskip("pandas")
pl = pytest.importorskip("polars")

NANO = "openai/gpt-4.1-nano"
HAIKU = "anthropic/claude-4.5-haiku"


class Tagged(BaseModel):
    label: str
    extra: dict[str, int]


class Plain(BaseModel):
    label: str


def lines(b: fb.BatchBuilder) -> list[dict]:
    return [json.loads(x) for x in b]


def frame(lib):
    data = {
        "id": [10.0, 11.0, 12.0],
        "text": ["a", 'b "q"', "c\nd"],
        "m": ["gpt-4.1-nano", "claude-4.5-haiku", "gpt-4.1-nano"],
        "p": ["openai", "anthropic", "openai"],
        "budget": [5.0, math.nan, 7.0],
    }
    return pd.DataFrame(data) if lib == "pandas" else pl.DataFrame(data)


@pytest.mark.parametrize("lib", ["pandas", "polars"])
def test_columnar_and_row_by_row_paths_write_the_same_lines(lib):
    df = frame(lib)
    kw = {
        "model": "{p}/{m}",
        "provider": "{p}",
        "custom_id": "id",
        "system": "Be brief.",
        "response_format": Plain,
        "max_tokens": fb.col("budget"),
        "temperature": 0.5,
    }
    fast = fb.BatchBuilder.from_dataframe(df, prompt="Say {text}!", **kw)
    slow = fb.BatchBuilder.from_dataframe(df, prompt=lambda r: f"Say {r['text']}!", **kw)
    assert fast.to_bytes() == slow.to_bytes()
    got = lines(fast)
    assert [x["custom_id"] for x in got] == ["10", "11", "12"]
    assert [x["provider"] for x in got] == ["openai", "anthropic", "openai"]
    assert [x["body"]["model"] for x in got] == [NANO, HAIKU, NANO]
    # The budget column: 5 and 7; the NaN row leaves it out, so Anthropic's default applies.
    assert [x["body"]["max_tokens"] for x in got] == [5, 1024, 7]
    assert got[1]["body"]["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": 'Say b "q"!'},
    ]
    assert fast.validate().ok


def test_a_missing_model_value_names_the_row_and_column():
    df = pd.DataFrame({"text": ["a", "b"], "model": [NANO, None]})
    with pytest.raises(ValueError, match=r"row 1: column 'model' has a missing value.*model template"):
        fb.BatchBuilder.from_dataframe(df, prompt="{text}", model="{model}")
    with pytest.raises(KeyError, match=r"row 0: the model template '\{mdl\}' names the field 'mdl'"):
        fb.BatchBuilder.from_records([{"text": "a"}], prompt="{text}", model="{mdl}")
    with pytest.raises(KeyError, match=r"parameter 'max_tokens' is col\('nope'\)"):
        fb.BatchBuilder.from_records([{"text": "a"}], prompt="{text}", model=NANO, max_tokens=fb.col("nope"))


def test_model_and_response_format_from_functions_of_the_row():
    rows = [{"t": "x", "kind": "plain"}, {"t": "y", "kind": "tagged"}]
    b = fb.BatchBuilder.from_records(
        rows,
        prompt="{t}",
        model=lambda r: HAIKU if r["kind"] == "tagged" else NANO,
        response_format=lambda r: Tagged if r["kind"] == "tagged" else Plain,
    )
    got = lines(b)
    assert [x["body"]["model"] for x in got] == [NANO, HAIKU]
    assert got[0]["body"]["response_format"]["json_schema"]["strict"] is True
    # A dict field is an open object: no strict form, so it is sent non-strict.
    assert got[1]["body"]["response_format"]["json_schema"]["strict"] is False
    assert b.response_parser.model_for("row-0") is Plain and b.response_parser.model_for("row-1") is Tagged


def test_extend_takes_builders_and_refuses_strings_clearly():
    a = fb.BatchBuilder()
    a.add_chat("a", NANO, [{"role": "user", "content": "x"}], response_format=Plain)
    b = fb.BatchBuilder()
    b.add_chat("b", NANO, [{"role": "user", "content": "y"}], response_format=Tagged)
    a.extend(b)
    assert [x["custom_id"] for x in lines(a)] == ["a", "b"]
    assert a.response_parser.model_for("a") is Plain and a.response_parser.model_for("b") is Tagged
    with pytest.raises(TypeError, match="item 0 is a str"):
        a.extend(["not a request"])
    with pytest.raises(TypeError, match="use extend\\(builder\\)"):
        a.add(b)
    with pytest.raises(TypeError, match=r"pydantic model class or a response_format dict.*not an instance"):
        a.add_chat("c", NANO, [], response_format=Plain(label="x"))


def test_cache_scope_and_default_location(monkeypatch, tmp_path):
    assert scope("http://127.0.0.1:5555/v1") == scope("http://localhost:80/v1") == "local"
    assert scope(None) == "hosted" and scope("https://api.example.com/v1/") == "https://api.example.com/v1"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    if default_path().parts[-3:] == (tmp_path.name, "fastrouter-batch", "results.sqlite3"):
        cache = fb.ResultCache()
        assert cache.path == tmp_path / "fastrouter-batch" / "results.sqlite3" and cache.path.exists()
    with pytest.raises(ValueError, match="max_bytes"):
        fb.ResultCache(tmp_path / "x.sqlite3", max_bytes=0)


def test_extend_with_itself_copies_its_lines_once():
    b = fb.BatchBuilder()
    b.add_chat("a", NANO, [{"role": "user", "content": "x"}])
    b.extend(b)
    assert [x["custom_id"] for x in lines(b)] == ["a", "a"]
