"""The one schema of a weights manifest (``models/<task>/weights/manifest.json``).

Every task's manifest has the same core, so provenance, the model card and the runtime read any
of them the same way::

    {
      "model_name": "femur-ao-demo",            non-empty text
      "version": "0.1.0",                       non-empty text
      "trained_on": "synthetic AP pelvis ...",  non-empty text: what the weights learnt from
      "files": {"femur_ao.onnx": {"sha256": "<64 lowercase hex>", "bytes": 1615431}},
      "config": {"name": "demo", ...},          the network configuration; "name" required
      "metrics": {...}                          held-out metrics ({} when none were measured)
    }

``bytes`` is optional. Optional keys with a fixed meaning are type-checked (``OPTIONAL``); other
task-specific keys (a femur's ``groups``, a lumbar model's ``objects``) may be added freely. The
names the two earlier schemas used for the same things are refused with the name to use, so a
manifest written by an old exporter fails loudly instead of losing its metrics.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

REQUIRED: dict[str, type] = {
    "model_name": str,
    "version": str,
    "trained_on": str,
    "files": dict,
    "config": dict,
    "metrics": dict,
}
OPTIONAL: dict[str, type | tuple[type, ...]] = {
    "task_id": str,
    "paper": str,
    "disclaimer": str,
    "training_command": str,
    "seed": int,
    "trained": bool,
    "parameters": int,
    "preprocessing": dict,
    "export_check_max_abs_diff": dict,  # weights file or graph output -> max |onnx - torch|
    "training_phases": list,
}
# Earlier names -> the name this schema uses for the same thing.
RENAMED = {
    "held_out": "metrics",
    "validation": "metrics",
    "train_command": "training_command",
    "config_name": "config.name",
    "onnx_vs_torch_max_abs_diff": "export_check_max_abs_diff",
}
FILE_KEYS = frozenset({"sha256", "bytes"})
SHA256 = re.compile(r"[0-9a-f]{64}")


def _fail(path: Path | str, problem: str) -> None:
    # Imported here: runtime.py may import this module at its top, and this must not import it
    # back while it is half-initialised.
    from app.engine.runtime import WeightsError

    raise WeightsError(f"{path}: manifest {problem}")


def _type_name(expected: type | tuple[type, ...]) -> str:
    names = {str: "text", int: "an integer", bool: "true/false", dict: "an object", list: "a list"}
    kinds = expected if isinstance(expected, tuple) else (expected,)
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def _is(value: object, expected: type | tuple[type, ...]) -> bool:
    kinds = expected if isinstance(expected, tuple) else (expected,)
    if isinstance(value, bool) and bool not in kinds:
        return False  # JSON true is a Python int subclass; never accept it as a count
    return isinstance(value, kinds)


def _check_files(files: Mapping, path: Path | str) -> None:
    if not files:
        _fail(path, "lists no weights files under 'files'")
    for name, entry in files.items():
        if not name or "/" in name or "\\" in name or name in (".", ".."):
            _fail(path, f"file name {name!r} is not a plain file name beside the manifest")
        if not isinstance(entry, dict):
            _fail(path, f"entry for {name} is not an object with a 'sha256'")
        unknown = sorted(set(entry) - FILE_KEYS)
        if unknown:
            _fail(path, f"entry for {name} has unknown key(s) {unknown}; allowed: sha256, bytes")
        digest = entry.get("sha256")
        if not isinstance(digest, str) or not SHA256.fullmatch(digest):
            _fail(path, f"sha256 of {name} is {digest!r}, not 64 lowercase hexadecimal digits")
        size = entry.get("bytes", 0)
        if not _is(size, int) or size < 0:
            _fail(path, f"bytes of {name} is {size!r}, not a non-negative integer")


def validate_manifest(data: dict, path: Path | str) -> None:
    """Raise ``WeightsError`` naming ``path`` and the first problem when ``data`` (a parsed
    manifest) does not follow the schema above; return None when it does."""
    if not isinstance(data, dict):
        _fail(path, f"is not a JSON object (it is a {type(data).__name__})")
    for old, new in RENAMED.items():
        if old in data:
            _fail(path, f"uses the old key '{old}'; the schema calls it '{new}'")
    missing = [key for key in REQUIRED if key not in data]
    if missing:
        _fail(
            path, f"lacks {', '.join(repr(k) for k in missing)} (required: {', '.join(REQUIRED)})"
        )
    for key, expected in {**REQUIRED, **OPTIONAL}.items():
        if key in data and not _is(data[key], expected):
            _fail(path, f"'{key}' is {data[key]!r:.60}, not {_type_name(expected)}")
    for key in ("model_name", "version", "trained_on"):
        if not data[key].strip():
            _fail(path, f"'{key}' is empty")
    name = data["config"].get("name")
    if not isinstance(name, str) or not name.strip():
        _fail(path, "'config' has no 'name' (the configuration's name, e.g. \"demo\")")
    _check_files(data["files"], path)
    for key, value in data.get("export_check_max_abs_diff", {}).items():
        if not _is(value, (int, float)):
            _fail(path, f"'export_check_max_abs_diff.{key}' is {value!r}, not a number")
