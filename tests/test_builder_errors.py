"""BatchBuilder refusing what it cannot build or write: unserialisable values (the builder
is left unchanged) and invalid batches (the target file is left untouched)."""

from __future__ import annotations

import pytest

import fastrouter_batch as fb


def user(text) -> dict:
    return {"role": "user", "content": text}


# --- unserialisable values ------------------------------------------------------------


def started() -> fb.BatchBuilder:
    b = fb.BatchBuilder()
    b.add_chat("first", "openai/gpt-4.1", [user("ok")])
    return b


class Opaque:
    pass


BAD_ADDS = [
    (
        "set_in_content",
        lambda b: b.add_chat("bad-1", "openai/gpt-4.1", [user({1, 2})]),
        TypeError,
        'request 2 (custom_id "bad-1"): body.messages[0].content: object of type set is not JSON serializable',
    ),
    (
        "nan_param",
        lambda b: b.add_chat("bad-2", "openai/gpt-4.1", [user("x")], temperature=float("nan")),
        ValueError,
        'request 2 (custom_id "bad-2"): body.temperature: NaN is not valid JSON',
    ),
    (
        "inf_in_input",
        lambda b: b.add_embedding("bad-3", "openai/te", [1.0, float("inf")]),
        ValueError,
        'request 2 (custom_id "bad-3"): body.input[1]: inf is not valid JSON',
    ),
    (
        "object_nested_in_param",
        lambda b: b.add_chat("bad-4", "openai/gpt-4.1", [user("x")], response_format={"schema": {"a": [1, Opaque()]}}),
        TypeError,
        'request 2 (custom_id "bad-4"): body.response_format.schema.a[1]: object of type Opaque is not JSON',
    ),
    (
        "object_in_dict",
        lambda b: b.add({"custom_id": "bad-5", "body": {"model": "openai/x", "messages": [Opaque()]}}),
        TypeError,
        'request 2 (custom_id "bad-5"): body.messages[0]: object of type Opaque is not JSON',
    ),
    (
        "lone_surrogate",
        lambda b: b.add_chat("bad-6", "openai/gpt-4.1", [user("\ud800")]),
        ValueError,
        'request 2 (custom_id "bad-6"): body.messages[0].content: ',
    ),
    (
        "int_key",
        lambda b: b.add_chat("bad-7", "openai/gpt-4.1", [{1: "x"}]),
        TypeError,
        'request 2 (custom_id "bad-7"): body.messages[0]: dict keys must be str, not int',
    ),
    (
        "int_key_in_dict",
        lambda b: b.add({"custom_id": "bad-8", "body": {"model": "openai/x", "meta": {None: 1}}}),
        TypeError,
        'request 2 (custom_id "bad-8"): body.meta: dict keys must be str, not NoneType',
    ),
    (
        "set_in_request",
        lambda b: b.add(fb.BatchRequest.chat("bad-9", "openai/gpt-4.1", [user({1})])),
        TypeError,
        'request 2 (custom_id "bad-9"): body.messages[0].content: object of type set is not JSON serializable',
    ),
]


@pytest.mark.parametrize(("add", "exc", "message"), [c[1:] for c in BAD_ADDS], ids=[c[0] for c in BAD_ADDS])
def test_unserialisable_values_name_request_custom_id_and_path_and_change_nothing(add, exc, message):
    b = started()
    before = (len(b), b.to_bytes(), list(b))
    with pytest.raises(exc) as info:
        add(b)
    assert str(info.value).startswith(message), str(info.value)
    assert (len(b), b.to_bytes(), list(b)) == before
    b.add_chat("after", "openai/gpt-4.1", [user("still usable")])
    assert len(b) == 2 and fb.validate(b.to_bytes()).ok


def test_circular_values_raise_instead_of_recursing_forever():
    loop: list = []
    loop.append(loop)
    b = started()
    with pytest.raises(ValueError, match=r'request 2 \(custom_id "x"\): body\.messages\[0\]\.content.*circular'):
        b.add_chat("x", "openai/gpt-4.1", [user(loop)])
    assert len(b) == 1


def test_add_rejects_other_types():
    b = fb.BatchBuilder()
    with pytest.raises(TypeError, match="add\\(\\) takes a BatchRequest or a dict, not str"):
        b.add("{}")
    assert len(b) == 0


# --- write() ----------------------------------------------------------------------------


def duplicate_ids() -> fb.BatchBuilder:
    b = fb.BatchBuilder()
    b.add_chat("same", "openai/gpt-4.1", [user("1")])
    b.add_chat("same", "openai/gpt-4.1", [user("2")])
    return b


def test_write_of_an_invalid_batch_raises_and_leaves_the_old_file(tmp_path):
    path = tmp_path / "batch.jsonl"
    path.write_bytes(b"old content\n")
    with pytest.raises(fb.BatchValidationError) as info:
        duplicate_ids().write(path)
    assert [(i.line, i.code, i.path) for i in info.value.report.issues] == [(2, "duplicate_custom_id", "custom_id")]
    assert path.read_bytes() == b"old content\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["batch.jsonl"]


def test_write_of_an_invalid_batch_creates_no_file(tmp_path):
    path = tmp_path / "new.jsonl"
    with pytest.raises(fb.BatchValidationError):
        duplicate_ids().write(path)
    assert list(tmp_path.iterdir()) == []


def test_write_without_validation_writes_it_over_the_old_file(tmp_path):
    path = tmp_path / "batch.jsonl"
    path.write_bytes(b"old content\n")
    b = duplicate_ids()
    b.write(str(path), validate=False)
    assert path.read_bytes() == b.to_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["batch.jsonl"]


def test_write_passes_limits_and_providers_to_validation(tmp_path):
    b = fb.BatchBuilder()
    for i in range(3):
        b.add_chat(f"g{i}", "gemini/flash", [user("x")])
    with pytest.raises(fb.BatchValidationError):
        b.write(tmp_path / "a.jsonl")
    with pytest.raises(fb.BatchValidationError, match="too_many_requests"):
        b.write(tmp_path / "a.jsonl", providers=["gemini"], limits=fb.Limits(max_requests=2))
    b.write(tmp_path / "a.jsonl", providers=["gemini"])
    assert (tmp_path / "a.jsonl").read_bytes() == b.to_bytes()


def test_write_into_a_missing_directory_names_the_path(tmp_path):
    path = tmp_path / "no" / "such" / "dir.jsonl"
    with pytest.raises(FileNotFoundError) as info:
        started().write(path)
    assert info.value.filename == str(path)
