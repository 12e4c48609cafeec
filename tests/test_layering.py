"""The one-way flow of the layers (docs/architecture.md): models <- datasets-free; datasets <-
models-free; engine <- models, datasets; cli (flags, recipes) <- models, datasets; tools and the
entry points on top. Every import in every
file counts, at the top or inside a function."""
import ast
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENTRY_POINTS = {'run_pretrain', 'run_finetune'}
FORBIDDEN = {
    'models': {'datasets', 'engine', 'cli', 'tools', 'benchmarks', 'preprocess'} | ENTRY_POINTS,
    'datasets': {'models', 'engine', 'cli', 'tools', 'benchmarks'} | ENTRY_POINTS,
    'engine': {'cli', 'tools', 'benchmarks', 'preprocess'} | ENTRY_POINTS,
    # the flags and the recipe loader: they name the models and the data defaults, the engine
    # reads what they produce
    'cli': {'engine', 'tools', 'benchmarks', 'preprocess'} | ENTRY_POINTS,
}


def imported_packages(path: str, package: str):
    """(line, top-level package) of every import in a file; relative imports resolve to `package`."""
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name.split('.')[0]
        elif isinstance(node, ast.ImportFrom):
            yield node.lineno, package if node.level else (node.module or '').split('.')[0]


def python_files(package: str):
    for dirpath, _, files in os.walk(os.path.join(ROOT, package)):
        for name in sorted(files):
            if name.endswith('.py'):
                yield os.path.join(dirpath, name)


@pytest.mark.parametrize('package', sorted(FORBIDDEN))
def test_layer_imports_only_downwards(package):
    bad = [f'{os.path.relpath(path, ROOT)}:{line} imports {top}'
           for path in python_files(package)
           for line, top in imported_packages(path, package) if top in FORBIDDEN[package]]
    assert not bad, '\n'.join(bad)


def test_the_rule_sees_function_level_and_relative_imports(tmp_path):
    p = tmp_path / 'm.py'
    p.write_text('from . import x\n\ndef f():\n    import engine.loop\n    from tools.flops import a\n')
    assert list(imported_packages(str(p), 'models')) == [(1, 'models'), (4, 'engine'), (5, 'tools')]


def _module_imports(path: str, package: str):
    """Modules of `package` a file imports (absolute `package.x` or relative `.x`)."""
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [f'{package}.{node.module}' if node.level else node.module or '']
        else:
            continue
        for name in names:
            parts = name.split('.')
            if parts[0] == package and len(parts) > 1:
                yield parts[1]


@pytest.mark.parametrize('package', ['models', 'datasets', 'engine'])
def test_no_import_cycles_inside_a_layer(package):
    graph = {os.path.basename(p)[:-3]: set(_module_imports(p, package)) for p in python_files(package)}
    state = {}

    def visit(node, path):
        if state.get(node) == 'done':
            return
        assert state.get(node) != 'open', f'import cycle in {package}: {" -> ".join(path + [node])}'
        state[node] = 'open'
        for nxt in sorted(graph.get(node, ())):
            visit(nxt, path + [node])
        state[node] = 'done'

    for node in sorted(graph):
        visit(node, [])
