"""Every test that starts processes is marked e2e, so `make test-unit` (-m "not e2e") stays fast.

Checked statically, by reading the test sources with ast (no test is collected or run): a
test starts processes when its body, or a fixture or helper it uses (transitively), names one
of the process starters below, or calls subprocess / os.fork. A test is marked when it, its
class, or its module (``pytestmark``) carries ``pytest.mark.e2e``.

Fixtures are looked up as pytest does: the test module's own, those it imports, and those of
the conftest.py files of its directory and the directories above; so a ``client`` fixture
that is an in-process registry in tests/master/ and a subprocess master in tests/cli/ is
judged by where the test lives.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

TESTS = Path(__file__).resolve().parent

# Names that start a process when used: the suite's launchers and the runtimes that start shims.
STARTERS = frozenset({
    "MasterProcess",  # sigma.bench.masterproc, tests/harness.py: `sigma master`
    "AgentProcess",  # tests/agent/agent_process.py: `sigma agent`
    "EtcdServer",  # sigma.store.etcd_server: an etcd
    "ProcessRuntime", "RuncRuntime",  # the agent's runtimes: a shim per container
    "Network",  # tests/netns.py, sigma.lab.netlab: network namespaces
    "start_auth_master",  # tests/api/auth_fixtures.py
})
# module.function calls that start a process.
STARTING_CALLS = frozenset({
    ("subprocess", "run"), ("subprocess", "Popen"), ("subprocess", "call"), ("subprocess", "check_call"),
    ("subprocess", "check_output"), ("os", "fork"), ("asyncio", "create_subprocess_exec"),
    ("asyncio", "create_subprocess_shell"),
})
# Modules whose subprocesses are the code's own checkers (ruff, mypy, lint-imports, a bare
# interpreter that imports the CLI, bash reading the completion script), not Sigma's processes.
NOT_E2E = frozenset({"test_lint.py", "test_layers.py", "cli/test_main.py", "cli/test_completion.py",
                     "test_markers.py"})

FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef


def _starts_directly(node: ast.AST) -> set[str]:
    """The names this code uses (to resolve helpers and fixtures later), plus "*" when it
    starts a process itself."""
    used: set[str] = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name):
            used.add(sub.id)
        elif isinstance(sub, ast.Attribute):
            used.add(sub.attr)
            if isinstance(sub.value, ast.Name) and (sub.value.id, sub.attr) in STARTING_CALLS:
                used.add("*")
    if used & STARTERS:
        used.add("*")
    return used


def _is_e2e_mark(node: ast.AST) -> bool:
    """pytest.mark.e2e, a list/tuple holding it, or pytest.mark.e2e(...)."""
    if isinstance(node, ast.Call):
        return _is_e2e_mark(node.func)
    if isinstance(node, ast.List | ast.Tuple):
        return any(_is_e2e_mark(elt) for elt in node.elts)
    return isinstance(node, ast.Attribute) and node.attr == "e2e" and ast.unparse(node).endswith("mark.e2e")


def _fixture_decorator(fn: FunctionNode) -> ast.expr | None:
    for dec in fn.decorator_list:
        target = dec.func if isinstance(dec, ast.Call) else dec
        if ast.unparse(target).endswith("fixture"):
            return dec
    return None


def _params(fn: FunctionNode) -> set[str]:
    args = fn.args
    return {a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs]}


@dataclass
class Module:
    """What one test source defines: helpers (top-level functions and classes), fixtures and tests."""
    path: Path
    tree: ast.Module
    helpers: dict[str, set[str]] = field(default_factory=dict)  # name -> names it uses
    fixtures: dict[str, set[str]] = field(default_factory=dict)  # name -> names and params it uses
    autouse: set[str] = field(default_factory=set)
    imported: dict[str, str] = field(default_factory=dict)  # local name -> "tests/x.py:name"
    marked_module: bool = False

    @classmethod
    def read(cls, path: Path) -> Module:
        mod = cls(path, ast.parse(path.read_text(), str(path)))
        for node in mod.tree.body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                dec = _fixture_decorator(node)
                if dec is None:
                    mod.helpers[node.name] = _starts_directly(node)
                else:
                    mod.fixtures[node.name] = _starts_directly(node) | _params(node)
                    if isinstance(dec, ast.Call) and any(k.arg == "autouse" and ast.unparse(k.value) == "True"
                                                         for k in dec.keywords):
                        mod.autouse.add(node.name)
            elif isinstance(node, ast.ClassDef):
                mod.helpers[node.name] = _starts_directly(node)
            elif isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "pytestmark"
                                                      for t in node.targets):
                mod.marked_module = _is_e2e_mark(node.value)
            elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tests"):
                source = TESTS.parent / (node.module.replace(".", "/") + ".py")
                for alias in node.names:
                    mod.imported[alias.asname or alias.name] = f"{source}:{alias.name}"
        return mod

    def tests(self) -> list[tuple[str, FunctionNode, bool]]:
        """(name, function, marked by its class) of every test function."""
        found: list[tuple[str, FunctionNode, bool]] = []
        for node in self.tree.body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test"):
                found.append((node.name, node, False))
            elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
                class_marked = any(_is_e2e_mark(d) for d in node.decorator_list)
                found.extend((f"{node.name}.{fn.name}", fn, class_marked) for fn in node.body
                             if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef) and fn.name.startswith("test"))
        return found


class Suite:
    """Every test source, read once; answers whether a name starts processes where it is used."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.modules = {p: Module.read(p) for p in sorted(root.rglob("*.py"))}
        self._memo: dict[tuple[Path, str, str], bool] = {}

    def conftests(self, path: Path) -> list[Module]:
        """The conftest.py files that apply to a module, nearest first."""
        out = []
        for d in [path.parent, *path.parent.parents]:
            conftest = d / "conftest.py"
            if conftest in self.modules and conftest != path:
                out.append(self.modules[conftest])
            if d == self.root:
                break
        return out

    def starts(self, mod: Module, name: str, kind: str) -> bool:
        """Does ``name`` (a "helper" called, or a "fixture" requested, from ``mod``) start processes?"""
        key = (mod.path, name, kind)
        if key in self._memo:
            return self._memo[key]
        self._memo[key] = False  # a cycle (a fixture named like the helper it calls) starts nothing by itself
        self._memo[key] = self._starts(mod, name, kind)
        return self._memo[key]

    def _starts(self, mod: Module, name: str, kind: str) -> bool:
        if kind == "helper":
            if name in mod.helpers:
                return self.uses_start(mod, mod.helpers[name], fixtures=False)
            if name in mod.imported:
                source, _, original = mod.imported[name].rpartition(":")
                other = self.modules.get(Path(source))
                return other is not None and self.starts(other, original, "helper")
            return False
        for scope in [mod, *self.conftests(mod.path)]:
            if name in scope.fixtures:
                return self.uses_start(scope, scope.fixtures[name], fixtures=True)
            if name in scope.imported:
                source, _, original = scope.imported[name].rpartition(":")
                other = self.modules.get(Path(source))
                if other is not None and original in other.fixtures:
                    return self.starts(other, original, "fixture")
        return False

    def uses_start(self, mod: Module, used: set[str], fixtures: bool) -> bool:
        if "*" in used:
            return True
        if any(self.starts(mod, n, "helper") for n in used):
            return True
        return fixtures and any(self.starts(mod, n, "fixture") for n in used)

    def unmarked(self) -> list[str]:
        """Tests that start processes and are not marked e2e, as path::test."""
        found = []
        for path, mod in self.modules.items():
            rel = path.relative_to(self.root).as_posix()
            if not path.name.startswith("test_") or rel in NOT_E2E or mod.marked_module:
                continue
            autouse = {n for scope in [mod, *self.conftests(path)] for n in scope.autouse}
            for name, fn, class_marked in mod.tests():
                if class_marked or any(_is_e2e_mark(d) for d in fn.decorator_list):
                    continue
                used = _starts_directly(fn)
                if self.uses_start(mod, used - _params(fn), fixtures=False) or any(
                        self.starts(mod, p, "fixture") for p in _params(fn) | autouse):
                    found.append(f"{rel}::{name}")
        return found


def test_every_test_that_starts_processes_is_marked_e2e() -> None:
    unmarked = Suite(TESTS).unmarked()
    assert unmarked == [], "start processes but are not marked @pytest.mark.e2e:\n" + "\n".join(unmarked)


def test_the_check_finds_an_unmarked_test_and_accepts_the_marks(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text(
        "import pytest, subprocess\n"
        "@pytest.fixture\ndef server():\n    yield subprocess.Popen(['sleep', '1'])\n"
        "@pytest.fixture\ndef client(server):\n    return server\n")
    (tmp_path / "test_plain.py").write_text(
        "from tests.harness import MasterProcess\n"
        "def start(p):\n    return MasterProcess(p)\n"
        "def test_helper(tmp_path):\n    start(tmp_path)\n"
        "def test_fixture(client):\n    assert client\n"
        "def test_pure():\n    assert 1 + 1 == 2\n"
        "class TestGroup:\n    def test_in_class(self, server):\n        assert server\n")
    (tmp_path / "test_marked.py").write_text(
        "import pytest, subprocess\n"
        "@pytest.mark.e2e\ndef test_one(client):\n    assert client\n"
        "@pytest.mark.e2e\nclass TestGroup:\n    def test_two(self, server):\n        assert server\n")
    (tmp_path / "test_module_marked.py").write_text(
        "import pytest, subprocess\npytestmark = [pytest.mark.e2e, pytest.mark.root]\n"
        "def test_three():\n    subprocess.run(['true'])\n")
    assert Suite(tmp_path).unmarked() == ["test_plain.py::test_helper", "test_plain.py::test_fixture",
                                          "test_plain.py::TestGroup.test_in_class"]
