"""Checks against the official SDKs' own types, for the translation tests.

`check_anthropic_request` validates a Messages request with the `anthropic` SDK's
`MessageCreateParamsNonStreaming` through pydantic's `TypeAdapter`, then walks every message
and block (pydantic validates `Iterable[...]` fields lazily: nothing inside `messages` is
checked until iterated), and finally walks the value against the SDK's TypedDicts for keys
they do not declare (pydantic ignores unknown keys of a TypedDict, and so would hide a field
the translation forgot to remove).

`parse_chat_completion` parses a body with `openai`'s `ChatCompletion`, warnings as errors.
"""

from __future__ import annotations

import collections.abc
import types
import typing
import warnings
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from anthropic.types import ContentBlockParam, MessageParam
from anthropic.types.message_create_params import MessageCreateParamsNonStreaming
from openai.types.chat import ChatCompletion
from pydantic import TypeAdapter
from typing_extensions import NotRequired, Required, is_typeddict

REQUEST = TypeAdapter(MessageCreateParamsNonStreaming)
MESSAGE = TypeAdapter(MessageParam)
BLOCKS = TypeAdapter(list[ContentBlockParam])

#: Sampling parameters newer SDKs dropped from their request type (Anthropic deprecated them);
#: the translation sends them only to models that take them, checked by the tests themselves.
SAMPLING = ("temperature", "top_p", "top_k")


class Unknown(AssertionError):
    pass


def _walk_lazy(value: Any) -> None:
    """Iterates every lazily validated iterable pydantic returned, recursively."""
    if isinstance(value, dict):
        for v in value.values():
            _walk_lazy(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            _walk_lazy(v)
    elif isinstance(value, collections.abc.Iterator) and not isinstance(value, (str, bytes)):
        for v in value:
            _walk_lazy(v)


def _strip(tp: Any) -> Any:
    while get_origin(tp) in (Required, NotRequired, typing.Annotated):
        tp = get_args(tp)[0]
    return tp


def _strict(value: Any, tp: Any, path: str) -> None:
    """Raises `Unknown` if `value` does not fit `tp` or holds keys its TypedDicts do not declare."""
    tp = _strip(tp)
    origin = get_origin(tp)
    if tp in (Any, object):
        return
    if origin in (Union, types.UnionType):
        errors = []
        for arg in get_args(tp):
            try:
                _strict(value, arg, path)
                return
            except Unknown as e:
                errors.append(str(e))
        raise Unknown(f"{path}: fits none of the union: {errors}")
    if is_typeddict(tp):
        if not isinstance(value, dict):
            raise Unknown(f"{path}: expected an object for {tp.__name__}")
        hints = get_type_hints(tp, include_extras=True)
        extra = set(value) - set(hints)
        if extra:
            raise Unknown(f"{path}: {tp.__name__} has no {sorted(extra)}")
        missing = set(tp.__required_keys__) - set(value)
        if missing:
            raise Unknown(f"{path}: {tp.__name__} needs {sorted(missing)}")
        for k, v in value.items():
            _strict(v, hints[k], f"{path}.{k}")
        return
    if origin is Literal:
        if value not in get_args(tp):
            raise Unknown(f"{path}: {value!r} not in {get_args(tp)}")
        return
    if origin in (dict, collections.abc.Mapping):
        if not isinstance(value, dict):
            raise Unknown(f"{path}: expected an object")
        return
    if (
        origin in (list, collections.abc.Iterable, collections.abc.Sequence)
        or getattr(tp, "__name__", "") == "SequenceNotStr"
    ):
        if not isinstance(value, list):
            raise Unknown(f"{path}: expected a list")
        (item,) = get_args(tp) or (Any,)
        for i, v in enumerate(value):
            _strict(v, item, f"{path}[{i}]")
        return
    if tp is type(None):
        if value is not None:
            raise Unknown(f"{path}: expected null")
        return
    if tp in (str, int, float, bool):
        ok = isinstance(value, tp) and not (tp is int and isinstance(value, bool))
        if tp is float:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not ok:
            raise Unknown(f"{path}: expected {tp.__name__}, not {value!r}")
        return
    # Anything else (IO inputs, path-likes) is not what JSON carries.
    raise Unknown(f"{path}: {value!r} cannot be {tp!r}")


def check_anthropic_request(request: dict[str, Any]) -> None:
    """Asserts `request` (as sent on the wire) is a valid non-streaming Messages request."""
    declared = get_type_hints(MessageCreateParamsNonStreaming)
    body = {k: v for k, v in request.items() if k in declared or k not in SAMPLING}
    validated = REQUEST.validate_python(body)
    _walk_lazy(validated)
    for _i, message in enumerate(body["messages"]):
        _walk_lazy(MESSAGE.validate_python(message))
        if isinstance(message["content"], list):
            _walk_lazy(BLOCKS.validate_python(message["content"]))
    _strict(body, MessageCreateParamsNonStreaming, "request")


def parse_chat_completion(body: dict[str, Any]) -> ChatCompletion:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        completion = ChatCompletion.model_validate(body)
        completion.model_dump()  # serialising warns about values that do not fit the fields
    return completion
