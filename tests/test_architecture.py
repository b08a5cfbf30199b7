"""Structural rules: dependencies point one way, and local multiprocess runs listen on loopback only."""

from __future__ import annotations

import ast
import socket
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "vsm_actors"
CORE_ALLOWED = {"attrs", "cattrs", "__future__", "typing", "enum", "datetime", "itertools", "re", "math",
                "functools", "collections", "dataclasses", "hashlib", "json", "types", "uuid", "string",
                "operator", "bisect", "heapq", "decimal", "abc", "statistics", "fnmatch", "unicodedata"}


def imports_of(path: Path) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text())
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, 0) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            out.append((node.module or "", node.level))
    return out


CORE = PACKAGE / "core"
# inside core, dependencies point one way: model <- control <- evolution (DESIGN 2)
LAYER_MAY_IMPORT = {"model": {"model"}, "control": {"model", "control"},
                    "evolution": {"model", "control", "evolution"}, "": {"model", "control", "evolution", ""}}


def core_target(path: Path, module: str, level: int) -> tuple[str, ...] | None:
    """The core-relative module path a relative import names, or None when it leaves core."""
    package = path.parent.relative_to(CORE).parts
    if level - 1 > len(package):
        return None
    base = package[:len(package) - (level - 1)]
    return base + tuple(module.split(".")) if module else base


@pytest.mark.parametrize("path", sorted(CORE.rglob("*.py")), ids=lambda p: str(p.relative_to(CORE)))
def test_core_imports_only_core_and_pure_libraries(path):
    layer = path.relative_to(CORE).parts[0] if len(path.relative_to(CORE).parts) > 1 else ""
    for module, level in imports_of(path):
        if level == 0:
            root = module.split(".")[0]
            assert root in CORE_ALLOWED, f"{path.name} imports {module}: core must stay free of I/O"
            continue
        target = core_target(path, module, level)
        assert target is not None, f"{path.name} imports outside core (level {level}): {module}"
        target_layer = target[0] if target and target[0] in LAYER_MAY_IMPORT else ""
        assert target_layer in LAYER_MAY_IMPORT[layer], f"core/{layer}/{path.name} imports core/{target_layer}: {module}"


def test_core_is_layered_as_designed():
    assert {p.name for p in CORE.iterdir() if p.is_dir() and not p.name.startswith("_")} >= {"model", "control", "evolution"}


@pytest.mark.parametrize("area", ["ledger", "providers"])
def test_adapters_do_not_import_actors_or_the_cli(area):
    for path in (PACKAGE / area).glob("*.py"):
        for module, level in imports_of(path):
            target = module if level == 0 else module
            assert not (level >= 2 and target.split(".")[0] in ("actors", "commands", "cli", "system")), path


def non_loopback_address() -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("10.255.255.255", 1))
            address = s.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


def test_multiprocess_system_listens_on_loopback_only():
    from vsm_actors.actors.thespian_base import free_port, start_system
    address = non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address to probe from")
    port = free_port()
    asys = start_system("multiproc", port)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            pass  # reachable on loopback
        with pytest.raises(OSError):
            socket.create_connection((address, port), timeout=2).close()
    finally:
        asys.shutdown()
