"""Structured output from pydantic models: the model's JSON schema as a request's
``response_format`` (strict where it can be), and the parser behind ``Result.parsed``.

pydantic is never imported here: a model is recognised by its ``model_json_schema`` and
``model_validate_json`` methods, so the package works (and imports fast) without it.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

#: OpenAI's limit on a json_schema's name (^[a-zA-Z0-9_-]{1,64}$).
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


def is_model(value: Any) -> bool:
    """A pydantic model class (v2)."""
    return isinstance(value, type) and hasattr(value, "model_json_schema") and hasattr(value, "model_validate_json")


def _strict(schema: Any, root: Mapping[str, Any]) -> bool:
    """Makes ``schema`` strict in place, as OpenAI's strict mode wants it (every object
    closed with ``additionalProperties: false`` and all its properties required; a
    ``default`` of None dropped, as openai-python does). False when it cannot be: an open
    object (a dict field) has no strict form."""
    if isinstance(schema, list):
        return all(_strict(s, root) for s in schema)
    if not isinstance(schema, dict):
        return True
    ok = True
    if schema.get("type") == "object" or "properties" in schema:
        extra = schema.get("additionalProperties")
        if extra not in (None, False):
            return False
        schema["additionalProperties"] = False
        props = schema.get("properties") or {}
        schema["properties"] = props
        schema["required"] = list(props)
    if "default" in schema and schema["default"] is None:
        del schema["default"]
    for key in ("properties", "$defs", "definitions"):
        for sub in (schema.get(key) or {}).values():
            ok = _strict(sub, root) and ok
    for key in ("items", "anyOf", "oneOf", "allOf", "prefixItems"):
        if key in schema:
            ok = _strict(schema[key], root) and ok
    return ok


def response_format(model: type) -> dict[str, Any]:
    """The ``response_format`` for a pydantic model: ``{"type": "json_schema",
    "json_schema": {"name", "schema", "strict"}}``. Strict (the schema closed and every
    field required, as OpenAI's strict mode needs) unless the model has an open object
    such as a ``dict`` field; the Anthropic translation carries the schema as
    ``output_config.format``."""
    schema = model.model_json_schema()  # type: ignore[attr-defined]
    strict = copy.deepcopy(schema)
    is_strict = _strict(strict, strict)
    name = "".join(c if c in _NAME_CHARS else "_" for c in model.__name__)[:64] or "response"
    return {
        "type": "json_schema",
        "json_schema": {"name": name, "schema": strict if is_strict else schema, "strict": is_strict},
    }


def as_response_format(value: Any, what: str = "response_format") -> tuple[Any, type | None]:
    """``(the body's response_format, the model to parse with)`` for a pydantic model, a
    dict (written as given, nothing to parse with) or None."""
    if value is None:
        return None, None
    if is_model(value):
        return response_format(value), value
    if isinstance(value, Mapping):
        return dict(value), None
    raise TypeError(
        f"{what} must be a pydantic model class or a response_format dict, got {type(value).__name__}"
        + (" (pass the class, not an instance)" if hasattr(value, "model_dump") else "")
    )


class Parser:
    """``parser(custom_id, text) -> (instance, None)`` or ``(None, error)``: the answer
    validated by its request's model. Never raises for an answer; a request without a
    model gives ``(None, None)``."""

    __slots__ = ("by_id", "default")

    def __init__(self, default: type | None = None, by_id: dict[str, type] | None = None) -> None:
        self.default = default
        self.by_id: dict[str, type] = by_id or {}

    def model_for(self, custom_id: str) -> type | None:
        return self.by_id.get(custom_id, self.default)

    def models(self) -> list[type]:
        """Every model, the default first."""
        out = [] if self.default is None else [self.default]
        for m in self.by_id.values():
            if m not in out:
                out.append(m)
        return out

    def __bool__(self) -> bool:
        return self.default is not None or bool(self.by_id)

    def __call__(self, custom_id: str, text: str) -> tuple[Any, str | None]:
        model = self.model_for(custom_id)
        if model is None:
            return None, None
        try:
            return model.model_validate_json(text), None  # type: ignore[attr-defined]
        except ValueError as e:  # pydantic's ValidationError is a ValueError
            return None, f"the answer does not fit {model.__name__}: {e}"
