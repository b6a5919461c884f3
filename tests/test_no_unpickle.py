"""The viewer never unpickles: no module in app/ imports pickle (or a relative of it), uses a
pickling multiprocessing API, or calls ``send``/``recv`` on a connection; only ``app/ipc.py``
touches ``send_bytes``/``recv_bytes``. Read from the source (AST), so a regression fails here
even where no test drives the code path."""

from __future__ import annotations

import ast
from pathlib import Path

APP = Path(__file__).resolve().parents[1] / "app"
PICKLERS = {"pickle", "_pickle", "cPickle", "dill", "cloudpickle", "shelve", "marshal"}
PICKLING_CALLS = {"recv", "send", "loads", "load", "Queue", "SimpleQueue", "Pool", "Manager"}
RAW_CALLS = {"send_bytes", "recv_bytes", "recv_bytes_into"}
IPC = APP / "ipc.py"


def offences(path: Path, tree: ast.AST) -> list[str]:
    found = []
    names = {}  # local name -> what it imports: "import pickle as p", "from app import ipc"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                names[alias.asname or alias.name.split(".")[0]] = alias.name
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                top = alias.name.split(".")[0]
                if top in PICKLERS or alias.name == "multiprocessing":
                    found.append(f"imports {alias.name}")
        elif isinstance(node, ast.ImportFrom) and node.module:
            top = node.module.split(".")[0]
            for alias in node.names:
                if top in PICKLERS or (top == "multiprocessing" and alias.name != "Connection"):
                    found.append(f"imports {alias.name} from {node.module}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            attr, owner = node.func.attr, node.func.value
            if attr in RAW_CALLS and path != IPC:
                found.append(f"calls .{attr}() outside app/ipc.py")
            if attr in ("recv", "send"):
                # requests' transport adapter (app/pacs/client.py) overrides send: super().send
                # and app.ipc's own send/recv are the frames that replace pickle
                is_super = isinstance(owner, ast.Call) and getattr(owner.func, "id", "") == "super"
                is_ipc = isinstance(owner, ast.Name) and names.get(owner.id) == "app.ipc"
                if not (is_super or is_ipc):
                    found.append(f"calls .{attr}() (pickles over a Connection)")
            elif attr in PICKLING_CALLS and isinstance(owner, ast.Name):
                if names.get(owner.id, "").split(".")[0] in PICKLERS | {"multiprocessing"}:
                    found.append(f"calls {owner.id}.{attr}()")
    return [f"{path.relative_to(APP.parent)}:{n}" for n in found]


def test_no_module_in_app_can_unpickle():
    found = []
    for path in sorted(APP.rglob("*.py")):
        found += offences(path, ast.parse(path.read_text(), str(path)))
    assert not found, found


def test_the_check_sees_what_it_forbids(tmp_path):
    """Each spelling the check forbids is found in a sample (the test above can fail)."""
    bad = {
        "rx.recv()": "calls .recv()",
        "self.tx.send(('ok', a))": "calls .send()",
        "import pickle\npickle.loads(b)": "imports pickle",
        "from pickle import loads": "imports loads from pickle",
        "import dill as d\nd.loads(b)": "calls d.loads()",
        "from other import ipc\nipc.recv(rx)": "calls .recv()",  # not the module app.ipc
        "from multiprocessing import Queue": "imports Queue from multiprocessing",
        "conn.recv_bytes()": "outside app/ipc.py",
    }
    for source, says in bad.items():
        got = offences(APP / "study" / "x.py", ast.parse(source))
        assert any(says in g for g in got), (source, got)
    fine = (
        "from app import ipc\nfrom multiprocessing.connection import Connection\n"
        "super().send(request)\nipc.recv(rx)\nipc.send(tx, 'ok')"
    )
    assert offences(APP / "pacs" / "client.py", ast.parse(fine)) == []
    assert offences(IPC, ast.parse("conn.recv_bytes(10)")) == []
