"""``osteoview tasks``: every task this build declares, its inputs and its state.

A task whose declaration or model code fails to import is listed with the reason.
"""

from __future__ import annotations

import argparse
import json


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "tasks",
        help="list the analysis tasks, their inputs and whether their model is available",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def describe() -> list[dict]:
    from app.analysis.tasks import adapter_error, all_entries

    rows = []
    for entry in all_entries():
        spec = entry.spec
        if spec is None:
            rows.append(
                {
                    "id": entry.id,
                    "available": False,
                    "state": f"broken: {entry.error}",
                    "inputs": [],
                }
            )
            continue
        error = adapter_error(spec.id)
        rows.append(
            {
                "id": spec.id,
                "title": spec.title,
                "available": not error,
                "state": spec.state if not error else f"not available: {error}",
                "inputs": [
                    {
                        "slot": s.name,
                        "description": s.description,
                        "required": s.required,
                    }
                    for s in spec.slots
                ],
            }
        )
    return rows


def run(args: argparse.Namespace) -> int:
    rows = describe()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        mark = "ready" if row["available"] else "unavailable"
        print(f"{row['id']}  [{mark}]  {row.get('title', '')}")
        for s in row["inputs"]:
            optional = "" if s["required"] else " (optional)"
            print(f"    input {s['slot']}: {s['description']}{optional}")
        print(f"    {row['state']}")
    return 0
