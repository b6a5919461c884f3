"""Editor key bindings as a table (OHIF/Slicer defaults), rebindable and saved as JSON.

Keys are written as Qt writes them in ``QKeySequence.toString()`` ("Ctrl+Z", "[", "B") plus
"Shift+Wheel" for the mouse wheel with Shift held; ``Ctrl held`` (erase while held) is a
modifier, not a key, and is listed as ``erase_modifier``. The UI looks a key up here and calls
``dispatch``; nothing else knows which key does what.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path

from app.editing.editor import LabelEditor, Tool

DEFAULT_BINDINGS: dict[str, tuple[str, ...]] = {
    "brush_smaller": ("[",),
    "brush_larger": ("]",),
    "brush_size_wheel": ("Shift+Wheel",),
    "undo": ("Ctrl+Z",),
    "redo": ("Ctrl+Y", "Ctrl+Shift+Z"),
    "tool_brush": ("B",),
    "tool_eraser": ("E",),
    "tool_fill": ("F",),
}
DEFAULT_ERASE_MODIFIER = "Ctrl"
ACTION_TITLES = {
    "brush_smaller": "Smaller brush",
    "brush_larger": "Larger brush",
    "brush_size_wheel": "Brush size (wheel)",
    "undo": "Undo",
    "redo": "Redo",
    "tool_brush": "Brush",
    "tool_eraser": "Eraser",
    "tool_fill": "Fill",
}


def _norm(key: str) -> str:
    """'ctrl+z' and 'Ctrl+Z' are one key; single letters compare upper-case."""
    parts = [p.strip() for p in key.split("+") if p.strip()] or ["+"]
    mods = sorted(p.capitalize() for p in parts[:-1])
    last = parts[-1]
    last = last.upper() if len(last) == 1 else last.capitalize()
    return "+".join([*mods, last])


class KeyMap:
    def __init__(self, bindings: Mapping[str, tuple[str, ...]] | None = None,
                 erase_modifier: str = DEFAULT_ERASE_MODIFIER) -> None:  # fmt: skip
        self.bindings: dict[str, tuple[str, ...]] = dict(DEFAULT_BINDINGS)
        for action, keys in (bindings or {}).items():
            self.rebind(action, keys)
        self.erase_modifier = erase_modifier

    def rebind(self, action: str, keys) -> None:
        """Give ``action`` these keys; a key taken from another action leaves that action."""
        if action not in DEFAULT_BINDINGS:
            raise KeyError(f"no editor action '{action}' (actions: {', '.join(DEFAULT_BINDINGS)})")
        keys = tuple(_norm(k) for k in ([keys] if isinstance(keys, str) else keys))
        for other, bound in self.bindings.items():
            if other != action:
                self.bindings[other] = tuple(k for k in bound if _norm(k) not in keys)
        self.bindings[action] = keys

    def action_for(self, key: str) -> str | None:
        key = _norm(key)
        for action, keys in self.bindings.items():
            if key in (_norm(k) for k in keys):
                return action
        return None

    def keys_for(self, action: str) -> tuple[str, ...]:
        return self.bindings.get(action, ())

    def to_json(self) -> dict:
        return {"bindings": {a: list(k) for a, k in self.bindings.items()},
                "erase_modifier": self.erase_modifier}  # fmt: skip

    @classmethod
    def from_json(cls, data: Mapping) -> KeyMap:
        bindings = {a: tuple(k) for a, k in dict(data.get("bindings", {})).items()}
        return cls(bindings, str(data.get("erase_modifier", DEFAULT_ERASE_MODIFIER)))

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), indent=1))

    @classmethod
    def load(cls, path: Path) -> KeyMap:
        return cls.from_json(json.loads(Path(path).read_text()))


def _set_tool(tool: Tool) -> Callable[[LabelEditor, int], None]:
    def run(editor: LabelEditor, _steps: int) -> None:
        editor.tool = tool

    return run


ACTIONS: dict[str, Callable[[LabelEditor, int], object]] = {
    "brush_smaller": lambda ed, n: ed.grow(-max(n, 1)),
    "brush_larger": lambda ed, n: ed.grow(max(n, 1)),
    "brush_size_wheel": lambda ed, n: ed.grow(n),  # n: wheel notches, signed
    "undo": lambda ed, _n: ed.undo(),
    "redo": lambda ed, _n: ed.redo(),
    "tool_brush": _set_tool(Tool.BRUSH),
    "tool_eraser": _set_tool(Tool.ERASER),
    "tool_fill": _set_tool(Tool.FILL),
}


def dispatch(editor: LabelEditor, action: str, steps: int = 1) -> None:
    ACTIONS[action](editor, steps)
