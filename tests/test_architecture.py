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


@pytest.mark.parametrize("path", sorted((PACKAGE / "core").glob("*.py")), ids=lambda p: p.name)
def test_core_imports_only_core_and_pure_libraries(path):
    for module, level in imports_of(path):
        if level == 1:
            continue  # sibling core module
        assert level == 0, f"{path.name} imports outside core (level {level}): {module}"
        root = module.split(".")[0]
        assert root in CORE_ALLOWED, f"{path.name} imports {module}: core must stay free of I/O"


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
