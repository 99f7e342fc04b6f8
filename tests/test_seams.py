"""The seams of the code: the kiosk uses only `sync`'s package API, central depends one way on the
kiosk's shared pieces, sync writes kiosk tables only through the change log, the domain needs no
web framework, no module imports another in a circle (function-level imports included), and no
module but kiosk.errors keeps a table of messages."""

import ast
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHANGE_LOG_SQL = re.compile(r"\b(from|into|update|join)\s+(changes|vectors|row_clocks|tombstones|conflicts)\b", re.I)
# What the central server may not import of the kiosk: its blueprints, its command line, its serving.
KIOSK_ONLY = ("kiosk.web", "kiosk.cli.main", "kiosk.cli.documents", "kiosk.cli.context", "kiosk.ops.serve")
DOMAIN = ("kiosk.store", "kiosk.trust", "kiosk.program", "kiosk.door", "kiosk.badges", "kiosk.people",
          "kiosk.documents", "kiosk.reports", "kiosk.thai", "kiosk.errors", "kiosk.clock")


def _modules() -> dict[str, Path]:
    found = {}
    for package in ("kiosk", "sync"):
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


MODULES = _modules()


def _imports(path: Path) -> set[str]:
    """The project modules a file imports anywhere in it: `from a import b` counts as `a.b` when
    that is a module, else as `a`."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            subs = {f"{node.module}.{a.name}" for a in node.names} & MODULES.keys()
            names |= subs | ({node.module} if len(subs) < len(node.names) else set())
    return {n for n in names if n in MODULES}


GRAPH = {name: _imports(path) - {name} for name, path in MODULES.items()}


def _within(name: str, prefixes) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def test_no_module_imports_another_in_a_circle():
    cycles = [c for c in _strongly_connected(GRAPH) if len(c) > 1]
    assert cycles == []


def test_the_kiosk_imports_only_the_sync_package_itself():
    offenders = {name: sorted(i for i in GRAPH[name] if i.startswith("sync."))
                 for name in MODULES if name.startswith("kiosk")}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_nothing_outside_central_imports_central():
    offenders = {name: sorted(i for i in GRAPH[name] if _within(i, ["sync.central"]))
                 for name in MODULES if not _within(name, ["sync.central"])}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_central_imports_only_the_kiosks_shared_pieces():
    offenders = {name: sorted(i for i in GRAPH[name] if _within(i, KIOSK_ONLY))
                 for name in MODULES if _within(name, ["sync.central"])}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_sync_uses_no_private_name_of_the_kiosk():
    for name, path in MODULES.items():
        if name.startswith("sync"):
            tree = ast.parse(path.read_text())
            private = [f"{n.module}.{a.name}" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
                       and (n.module or "").startswith("kiosk") for a in n.names if a.name.startswith("_")]
            assert private == [], name
            assert not re.search(r"\b(changes|accounts|db)\._[a-z]", path.read_text()), path


def test_only_the_store_holds_sql_on_a_kiosk_change_log():
    """sync/central keeps its own tables of the same names through SQLAlchemy, not SQL text."""
    offenders = [str(path.relative_to(ROOT)) for name, path in MODULES.items()
                 if name not in ("kiosk.store.changes", "kiosk.store.schema") and not name.startswith("sync.central")
                 and CHANGE_LOG_SQL.search(path.read_text())]
    assert offenders == []


def test_the_domain_imports_no_web_framework():
    domain = sorted(name for name in MODULES if _within(name, DOMAIN))
    probe = ("import importlib, sys\n"
             f"for name in {domain!r}: importlib.import_module(name)\n"
             "print(sorted(m for m in sys.modules if m.split('.')[0] in ('flask', 'flask_babel', 'jinja2')))")
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT)
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    assert loaded.stdout.strip() == "[]"


def test_no_module_but_errors_keeps_a_table_of_messages():
    """Reasons and their messages live in kiosk.errors alone (REASONS); elsewhere a reason is raised
    by its code, never mapped to a text of its own."""
    offenders = []
    for name, path in MODULES.items():
        if name == "kiosk.errors":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Dict) and len(node.keys) >= 3 and all(
                    isinstance(k, ast.Constant) and isinstance(k.value, str) and re.fullmatch(r"[a-z]+(_[a-z]+)+", k.value)
                    for k in node.keys) and all(
                    isinstance(v, ast.Constant) and isinstance(v.value, str) and " " in v.value for v in node.values):
                offenders.append(f"{name}:{node.lineno}")
    assert offenders == []


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    index, low, stack, on_stack, out, counter = {}, {}, [], set(), [], [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            out.append(sorted(component))
    for node in graph:
        if node not in index:
            visit(node)
    return out


def test_no_template_carries_an_inline_style_or_script_that_the_pages_csp_would_block():
    templates = ROOT / "templates"
    for path in templates.rglob("*.html"):
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"\sstyle=\"", text), f"{path.name}: inline style attribute"
        assert not re.search(r"<script>(?!\s*</script>)", text), f"{path.name}: inline script"
        assert not re.search(r"\son(click|load|submit|change)=", text), f"{path.name}: inline event handler"


def test_no_fault_injection_lives_in_the_product():
    """Fault tests inject their faults from tests/faulty_central.py, never through product code."""
    offenders = [name for name, path in MODULES.items() if re.search(r"SYNC_TEST_|test hook", path.read_text())]
    assert offenders == []
