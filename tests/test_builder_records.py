"""``BatchBuilder.from_records`` / ``from_dataframe``: one chat request per row, prompts
from ``str.format`` templates or callables, custom_ids from a field, a callable or the row
number, the system prompt, Anthropic's ``max_tokens`` default, extra parameters in every
body, and clear errors for a missing field or a row that is not a mapping."""

from __future__ import annotations

import json
from collections import OrderedDict
from types import MappingProxyType

import pytest

import fastrouter_batch as fb

NANO = "openai/gpt-4.1-nano"
SONNET = "anthropic/claude-4.5-sonnet"

RECORDS = [
    {"id": "a1", "text": "the cat sat", "lang": "English", "score": 0.5},
    {"id": "b2", "text": "le chat", "lang": "French", "score": 1.25},
    {"id": "c3", "text": "die Katze", "lang": "German", "score": 2.0},
]


def lines(builder: fb.BatchBuilder) -> list[dict]:
    """The builder's requests as dicts, from its bytes (what would be uploaded)."""
    return [json.loads(x) for x in builder.to_bytes().decode().splitlines()]


def messages(line: dict) -> list[dict]:
    return line["body"]["messages"]


def assert_valid(builder: fb.BatchBuilder) -> None:
    report = builder.validate()
    assert report.ok, report.summary()
    assert report.num_requests == len(builder)
    again = fb.validate(builder.to_bytes())
    assert again.ok, again.summary()


# --- prompts, custom_ids, system ---------------------------------------------------------


def test_template_prompt_with_field_custom_id():
    b = fb.BatchBuilder.from_records(RECORDS, prompt="Translate from {lang}: {text}", model=NANO, custom_id="id")
    assert isinstance(b, fb.BatchBuilder)
    assert len(b) == 3
    got = lines(b)
    assert [x["custom_id"] for x in got] == ["a1", "b2", "c3"]
    for line, row in zip(got, RECORDS, strict=True):
        assert line["provider"] == "openai"
        assert line["method"] == "POST"
        assert line["url"] == "/v1/chat/completions"
        assert line["body"]["model"] == NANO
        assert messages(line) == [{"role": "user", "content": f"Translate from {row['lang']}: {row['text']}"}]
        assert "max_tokens" not in line["body"]  # only Anthropic gets a default
    assert_valid(b)


def test_format_specs_and_escaped_braces_in_templates():
    b = fb.BatchBuilder.from_records(RECORDS[:2], prompt="{{score}} = {score:.2f} for {id!r}", model=NANO)
    assert [messages(x)[0]["content"] for x in lines(b)] == ["{score} = 0.50 for 'a1'", "{score} = 1.25 for 'b2'"]


def test_callable_prompt_and_custom_id():
    seen = []

    def prompt(row):
        seen.append(row)
        return f"Summarise ({len(row['text'])} chars): {row['text']}"

    b = fb.BatchBuilder.from_records(RECORDS, prompt=prompt, model=NANO, custom_id=lambda row: f"doc_{row['id']}")
    got = lines(b)
    assert [x["custom_id"] for x in got] == ["doc_a1", "doc_b2", "doc_c3"]
    assert messages(got[0])[0]["content"] == "Summarise (11 chars): the cat sat"
    assert [dict(r) for r in seen] == RECORDS
    assert_valid(b)


def test_callable_results_are_made_strings():
    b = fb.BatchBuilder.from_records(
        [{"n": 1}, {"n": 2}], prompt=lambda r: r["n"] * 10, model=NANO, custom_id=lambda r: r["n"] + 100
    )
    got = lines(b)
    assert [x["custom_id"] for x in got] == ["101", "102"]
    assert [messages(x)[0]["content"] for x in got] == ["10", "20"]


def test_default_custom_ids_are_row_numbers():
    b = fb.BatchBuilder.from_records(RECORDS, prompt="{text}", model=NANO)
    assert [x["custom_id"] for x in lines(b)] == ["row-0", "row-1", "row-2"]
    assert_valid(b)


def test_field_custom_id_that_is_not_a_string():
    rows = [{"pk": 10, "t": "x"}, {"pk": 11, "t": "y"}]
    b = fb.BatchBuilder.from_records(rows, prompt="{t}", model=NANO, custom_id="pk")
    assert [x["custom_id"] for x in lines(b)] == ["10", "11"]


def test_system_prompt_template_and_callable():
    b = fb.BatchBuilder.from_records(RECORDS[:2], prompt="{text}", system="Answer in {lang}.", model=NANO)
    assert [messages(x) for x in lines(b)] == [
        [{"role": "system", "content": "Answer in English."}, {"role": "user", "content": "the cat sat"}],
        [{"role": "system", "content": "Answer in French."}, {"role": "user", "content": "le chat"}],
    ]
    b = fb.BatchBuilder.from_records(RECORDS[:1], prompt="{text}", system=lambda r: "Be terse.", model=NANO)
    assert messages(lines(b)[0])[0] == {"role": "system", "content": "Be terse."}
    assert_valid(b)


def test_any_mapping_and_any_iterable_of_rows():
    rows = (r for r in [OrderedDict(t="one"), MappingProxyType({"t": "two"})])
    b = fb.BatchBuilder.from_records(rows, prompt="say {t}", model=NANO)
    assert [messages(x)[0]["content"] for x in lines(b)] == ["say one", "say two"]


def test_no_records_gives_an_empty_builder():
    b = fb.BatchBuilder.from_records([], prompt="{t}", model=NANO)
    assert len(b) == 0
    assert b.to_bytes() == b""


# --- errors ------------------------------------------------------------------------------


def test_missing_template_field_names_the_row_and_field():
    rows = [{"text": "ok"}, {"txt": "typo"}]
    with pytest.raises(KeyError) as info:
        fb.BatchBuilder.from_records(rows, prompt="Summarise: {text}", model=NANO)
    message = str(info.value)
    assert "row 1" in message
    assert "'text'" in message
    assert "prompt" in message
    assert "txt" in message  # the columns the row does have


def test_missing_system_template_field_names_the_row_and_field():
    with pytest.raises(KeyError, match=r"row 0.*system.*'persona'"):
        fb.BatchBuilder.from_records([{"text": "x"}], prompt="{text}", system="You are {persona}", model=NANO)


def test_missing_custom_id_field_names_the_row_and_field():
    with pytest.raises(KeyError, match=r"row 2.*'id'"):
        fb.BatchBuilder.from_records(
            [{"id": "x", "t": 1}, {"id": "y", "t": 2}, {"t": 3}], prompt="{t}", model=NANO, custom_id="id"
        )


@pytest.mark.parametrize("bad", [("text", "tuple"), "a string", 42, None, ["text"]])
def test_a_row_that_is_not_a_mapping_is_a_type_error(bad):
    with pytest.raises(TypeError, match=rf"row 1: expected a mapping.*{type(bad).__name__}"):
        fb.BatchBuilder.from_records([{"text": "fine"}, bad], prompt="{text}", model=NANO)


def test_duplicate_custom_ids_are_reported_by_validation():
    b = fb.BatchBuilder.from_records([{"k": "same"}, {"k": "same"}], prompt="{k}", model=NANO, custom_id="k")
    report = b.validate()
    assert not report.ok
    assert [i.code for i in report.issues] == ["duplicate_custom_id"]


# --- Anthropic, extra parameters ---------------------------------------------------------


def test_anthropic_models_get_max_tokens_by_default():
    b = fb.BatchBuilder.from_records(RECORDS, prompt="{text}", model=SONNET, custom_id="id")
    got = lines(b)
    assert all(x["provider"] == "anthropic" for x in got)
    assert all(x["body"]["max_tokens"] == 1024 for x in got)
    assert_valid(b)


def test_anthropic_max_tokens_override():
    b = fb.BatchBuilder.from_records(RECORDS, prompt="{text}", model=SONNET, max_tokens=77)
    assert [x["body"]["max_tokens"] for x in lines(b)] == [77, 77, 77]
    assert_valid(b)


def test_explicit_anthropic_provider_gets_max_tokens_too():
    b = fb.BatchBuilder.from_records(
        RECORDS[:1], prompt="{text}", model="anthropic/claude-4.5-haiku", provider="anthropic"
    )
    (line,) = lines(b)
    assert line["provider"] == "anthropic"
    assert line["body"]["max_tokens"] == 1024


def test_extra_params_land_in_every_body():
    fmt = {"type": "json_object"}
    b = fb.BatchBuilder.from_records(
        RECORDS,
        prompt="{text}",
        model=NANO,
        temperature=0.3,
        top_p=0.9,
        max_tokens=64,
        response_format=fmt,
        stop=["\n"],
        seed=7,
    )
    for line in lines(b):
        body = line["body"]
        assert body["temperature"] == 0.3
        assert body["top_p"] == 0.9
        assert body["max_tokens"] == 64
        assert body["response_format"] == fmt
        assert body["stop"] == ["\n"]
        assert body["seed"] == 7
        assert body["model"] == NANO
    assert_valid(b)


def test_calls_do_not_share_state():
    """The Anthropic default set on one call does not leak into the next."""
    fb.BatchBuilder.from_records(RECORDS[:1], prompt="{text}", model=SONNET)
    b = fb.BatchBuilder.from_records(RECORDS[:1], prompt="{text}", model=NANO)
    assert "max_tokens" not in lines(b)[0]["body"]


def test_mixed_with_ordinary_adds_and_written(tmp_path):
    b = fb.BatchBuilder.from_records(RECORDS, prompt="{text}", model=NANO, custom_id="id")
    b.add_chat("extra", SONNET, [{"role": "user", "content": "hi"}], max_tokens=10)
    assert len(b) == 4
    path = tmp_path / "out.jsonl"
    b.write(path)
    assert fb.validate(path).ok
    assert [r.custom_id for r in fb.read_requests(path)] == ["a1", "b2", "c3", "extra"]


def test_records_run_end_to_end():
    with fb.LocalServer() as s:
        client = fb.Client(s.api_key, s.url, timeout=10, max_retries=0)
        b = fb.BatchBuilder.from_records(RECORDS, prompt="Q {id}", model=SONNET, custom_id="id")
        results = client.run(b, progress=False, timeout=30)
    assert results.custom_ids == ["a1", "b2", "c3"]
    assert all(r.ok for r in results)
    assert "Q b2" in results["b2"].text


# --- DataFrames ---------------------------------------------------------------------------


def test_from_dataframe_pandas():
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame(RECORDS)
    b = fb.BatchBuilder.from_dataframe(
        df, prompt="Translate from {lang}: {text}", model=SONNET, system="Be brief.", custom_id="id", temperature=0.1
    )
    got = lines(b)
    assert [x["custom_id"] for x in got] == ["a1", "b2", "c3"]
    assert messages(got[1]) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Translate from French: le chat"},
    ]
    assert all(x["body"]["max_tokens"] == 1024 and x["body"]["temperature"] == 0.1 for x in got)
    assert_valid(b)


def test_from_dataframe_pandas_numeric_ids_and_default_ids():
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"pk": [7, 8], "t": ["x", "y"], "w": [1.5, 2.5]})
    b = fb.BatchBuilder.from_dataframe(df, prompt=lambda r: f"{r['t']} weighs {r['w']}", model=NANO, custom_id="pk")
    got = lines(b)
    assert [x["custom_id"] for x in got] == ["7", "8"]
    assert [messages(x)[0]["content"] for x in got] == ["x weighs 1.5", "y weighs 2.5"]
    b = fb.BatchBuilder.from_dataframe(df, prompt="{t}", model=NANO)
    assert [x["custom_id"] for x in lines(b)] == ["row-0", "row-1"]
    assert_valid(b)


def test_from_dataframe_pandas_missing_column():
    pd = pytest.importorskip("pandas")
    with pytest.raises(KeyError, match=r"row 0.*'body'"):
        fb.BatchBuilder.from_dataframe(pd.DataFrame({"text": ["a"]}), prompt="{body}", model=NANO)


def test_from_dataframe_polars():
    pl = pytest.importorskip("polars")
    df = pl.DataFrame(RECORDS)
    b = fb.BatchBuilder.from_dataframe(
        df, prompt="Translate from {lang}: {text}", model=NANO, custom_id=lambda r: f"pl-{r['id']}", max_tokens=32
    )
    got = lines(b)
    assert [x["custom_id"] for x in got] == ["pl-a1", "pl-b2", "pl-c3"]
    assert messages(got[2]) == [{"role": "user", "content": "Translate from German: die Katze"}]
    assert all(x["body"]["max_tokens"] == 32 for x in got)
    assert_valid(b)


def test_from_dataframe_polars_and_pandas_agree():
    pd = pytest.importorskip("pandas")
    pl = pytest.importorskip("polars")
    options = {"prompt": "{text} ({score})", "model": SONNET, "custom_id": "id", "system": "In {lang}."}
    assert (
        fb.BatchBuilder.from_dataframe(pd.DataFrame(RECORDS), **options).to_bytes()
        == fb.BatchBuilder.from_dataframe(pl.DataFrame(RECORDS), **options).to_bytes()
        == fb.BatchBuilder.from_records(RECORDS, **options).to_bytes()
    )


def test_from_dataframe_rejects_other_objects():
    with pytest.raises(TypeError, match="pandas or polars DataFrame"):
        fb.BatchBuilder.from_dataframe(RECORDS, prompt="{text}", model=NANO)


# --- missing values, ids, numpy parameters, template mistakes ------------------------------


REVIEWS = {"review_id": [10, None], "review": ["good", float("nan")]}


def test_from_dataframe_missing_values_name_the_row_and_column():
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame(REVIEWS)
    with pytest.raises(ValueError, match=r"row 1: column 'review_id' \(the custom_id\) has a missing value"):
        fb.BatchBuilder.from_dataframe(df, prompt="Summarise: {review}", model=NANO, custom_id="review_id")
    with pytest.raises(ValueError, match=r"row 1: column 'review' has a missing value.*prompt"):
        fb.BatchBuilder.from_dataframe(df, prompt="Summarise: {review}", model=NANO)
    with pytest.raises(ValueError, match=r"row 1: column 'review' has a missing value.*system"):
        fb.BatchBuilder.from_dataframe(df, prompt="Hi", system="About {review}", model=NANO)
    # pandas' own NA, None in an object column, NaT.
    for column in (pd.array(["a", None], dtype="string"), ["a", None], [pd.Timestamp("2024-01-01"), pd.NaT]):
        with pytest.raises(ValueError, match=r"row 1: column 'x' has a missing value"):
            fb.BatchBuilder.from_dataframe(pd.DataFrame({"x": column}), prompt="{x}", model=NANO)
    with pytest.raises(ValueError, match=r"row 1: column 'pk' \(the custom_id\)"):
        fb.BatchBuilder.from_dataframe(
            pd.DataFrame({"pk": pd.array([1, None], dtype="Int64"), "t": ["a", "b"]}),
            prompt="{t}",
            model=NANO,
            custom_id="pk",
        )
    # A column the template does not use may have gaps.
    b = fb.BatchBuilder.from_dataframe(pd.DataFrame({"t": ["a", "b"], "note": [None, 1.0]}), prompt="{t}", model=NANO)
    assert [messages(x)[0]["content"] for x in lines(b)] == ["a", "b"]


def test_from_records_and_polars_missing_values():
    with pytest.raises(ValueError, match=r"row 0: column 'text' has a missing value \(None\)"):
        fb.BatchBuilder.from_records([{"text": None}], prompt="{text}", model=NANO)
    with pytest.raises(ValueError, match=r"row 1: column 'id' \(the custom_id\).*nan"):
        fb.BatchBuilder.from_records(
            [{"id": "a", "t": 1}, {"id": float("nan"), "t": 2}], prompt="{t}", model=NANO, custom_id="id"
        )
    pl = pytest.importorskip("polars")
    df = pl.DataFrame({"id": [1, None], "t": ["x", "y"]})
    with pytest.raises(ValueError, match=r"row 1: column 'id' \(the custom_id\)"):
        fb.BatchBuilder.from_dataframe(df, prompt="{t}", model=NANO, custom_id="id")


def test_from_dataframe_whole_number_ids_stay_whole():
    pd = pytest.importorskip("pandas")
    # Dropping the gaps leaves pandas' float column: the ids are still 10 and 12.
    df = pd.DataFrame({"review_id": [10, None, 12], "review": ["good", "meh", "bad"]}).dropna()
    assert df["review_id"].dtype.kind == "f"
    b = fb.BatchBuilder.from_dataframe(df, prompt="Summarise: {review}", model=NANO, custom_id="review_id")
    assert [x["custom_id"] for x in lines(b)] == ["10", "12"]
    b = fb.BatchBuilder.from_dataframe(
        pd.DataFrame({"pk": [10, 11], "t": ["a", "b"]}), prompt="{t}", model=NANO, custom_id="pk"
    )
    assert [x["custom_id"] for x in lines(b)] == ["10", "11"]
    # Real fractions are left as they are.
    b = fb.BatchBuilder.from_dataframe(
        pd.DataFrame({"pk": [1.5, 2.0], "t": ["a", "b"]}), prompt="{t}", model=NANO, custom_id="pk"
    )
    assert [x["custom_id"] for x in lines(b)] == ["1.5", "2.0"]


def test_numpy_scalars_as_parameters():
    np = pytest.importorskip("numpy")
    b = fb.BatchBuilder.from_records(
        RECORDS[:1],
        prompt="{text}",
        model=NANO,
        seed=np.int64(1),
        temperature=np.float32(0.5),
        max_tokens=np.int32(64),
        stop=np.array(["\n", "END"]),
        logit_bias={"50256": np.int16(-100)},
    )
    body = lines(b)[0]["body"]
    assert body["seed"] == 1 and type(body["seed"]) is int
    assert body["temperature"] == 0.5
    assert body["max_tokens"] == 64
    assert body["stop"] == ["\n", "END"]
    assert body["logit_bias"] == {"50256": -100}
    assert_valid(b)


def test_literal_braces_in_a_template_give_a_clear_error():
    template = '{"a": 1} {text}'
    with pytest.raises(KeyError) as info:
        fb.BatchBuilder.from_records(RECORDS, prompt=template, model=NANO)
    message = str(info.value)
    assert template in message
    assert "'\"a\"'" in message  # the unknown field
    assert "{{" in message and "}}" in message
    assert message.startswith("row 0: the prompt template")
    # Doubled, they are literal.
    b = fb.BatchBuilder.from_records(RECORDS[:1], prompt='{{"a": 1}} {text}', model=NANO)
    assert messages(lines(b)[0])[0]["content"] == '{"a": 1} the cat sat'


@pytest.mark.parametrize("template", ["{text", "text}", "{} {text}", "{0}"])
def test_malformed_templates_name_the_template(template):
    with pytest.raises(ValueError) as info:
        fb.BatchBuilder.from_records(RECORDS, prompt=template, model=NANO)
    assert repr(template) in str(info.value)
    assert "{{" in str(info.value)


def test_a_template_that_cannot_format_a_value_names_the_row():
    with pytest.raises(ValueError, match=r"row 0: the prompt template '\{text:\.2f\}' cannot be filled"):
        fb.BatchBuilder.from_records(RECORDS, prompt="{text:.2f}", model=NANO)


def test_from_dataframe_of_a_series_is_a_clear_type_error():
    pd = pytest.importorskip("pandas")
    with pytest.raises(TypeError, match=r"pandas or polars DataFrame, got Series \(for a Series, use series.to_frame"):
        fb.BatchBuilder.from_dataframe(pd.Series(["a", "b"], name="t"), prompt="{t}", model=NANO)
    pl = pytest.importorskip("polars")
    with pytest.raises(TypeError, match="pandas or polars DataFrame, got Series"):
        fb.BatchBuilder.from_dataframe(pl.Series("t", ["a", "b"]), prompt="{t}", model=NANO)
