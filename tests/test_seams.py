"""The seams between the kiosk and sync (issue 7): the kiosk uses only `sync`'s package API, sync
writes kiosk tables only through `kiosk.changes`, and modules import each other in one direction."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHANGE_LOG_SQL = re.compile(r"\b(from|into|update|join)\s+(changes|vectors|row_clocks|tombstones|conflicts)\b", re.I)


def _modules(package: str) -> dict[str, Path]:
    found = {}
    for path in (ROOT / package).rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _known() -> set[str]:
    return set(_modules("kiosk")) | set(_modules("sync"))


def _imports(path: Path, top_level_only: bool) -> set[str]:
    """Modules a file imports (`from a import b` counts as `a.b` when that is a module)."""
    known = _known()
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else ast.walk(tree)
    names = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names |= {node.module} | {f"{node.module}.{a.name}" for a in node.names} & known
    return names


def test_the_kiosk_imports_only_the_sync_package_itself():
    offenders = {name: sorted(i for i in _imports(path, False) if i.startswith("sync."))
                 for name, path in _modules("kiosk").items()}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_sync_uses_no_private_name_of_the_kiosk():
    used = {name: sorted(i for i in _imports(path, False) if i.startswith("kiosk.") and "._" in i)
            for name, path in _modules("sync").items()}
    assert {k: v for k, v in used.items() if v} == {}
    for path in _modules("sync").values():
        assert not re.search(r"\b(changes|auth|db)\._[a-z]", path.read_text()), path


def test_only_kiosk_changes_holds_sql_on_a_kiosk_change_log():
    """sync/central keeps its own tables of the same names through SQLAlchemy, not SQL text."""
    offenders = [str(path.relative_to(ROOT)) for name, path in {**_modules("sync"), **_modules("kiosk")}.items()
                 if name != "kiosk.changes" and not name.startswith("sync.central")
                 and CHANGE_LOG_SQL.search(path.read_text())]
    assert offenders == []


def test_no_import_cycle_through_sync_at_import_time():
    modules = {**_modules("kiosk"), **_modules("sync")}
    graph = {name: {i for i in _imports(path, True) if i in modules and i != name} for name, path in modules.items()}
    cycles = [c for c in _strongly_connected(graph) if len(c) > 1 and any(m.startswith("sync") for m in c)]
    assert cycles == []


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
    templates = Path(__file__).resolve().parents[1] / "templates"
    for path in templates.rglob("*.html"):
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"\sstyle=\"", text), f"{path.name}: inline style attribute"
        assert not re.search(r"<script>(?!\s*</script>)", text), f"{path.name}: inline script"
        assert not re.search(r"\son(click|load|submit|change)=", text), f"{path.name}: inline event handler"
