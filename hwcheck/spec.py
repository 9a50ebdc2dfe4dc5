"""What the caller tells the runner (the spec, on its command line) and what the
runner answers (the report, through :mod:`hwcheck.reportfd`): JSON, so nothing is
unpickled across the two. Parameters may hold bytes (hw3's invalid UTF-8 lines):
written as ``{"$bytes": hex}``."""

from __future__ import annotations

import json

_BYTES = "$bytes"


def _encode(obj):
    if isinstance(obj, (bytes, bytearray)):
        return {_BYTES: bytes(obj).hex()}
    if isinstance(obj, dict):
        return {k: _encode(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_encode(v) for v in obj]
    return obj


def _decode(obj):
    if isinstance(obj, dict):
        if set(obj) == {_BYTES}:
            return bytes.fromhex(obj[_BYTES])
        return {k: _decode(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_decode(v) for v in obj]
    return obj


def dumps(obj) -> str:
    return json.dumps(_encode(obj), sort_keys=True, default=repr)


def loads(text: str):
    return _decode(json.loads(text))
