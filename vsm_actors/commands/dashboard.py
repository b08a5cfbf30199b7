"""`vsm dashboard`: the read-only web page over a ledger, on a loopback address only.

The socket is bound here, before the server starts, so a port in use is a plain error (exit 2)
rather than a server log line, and `--port 0` can print the port the kernel chose. The ledger
is read before the URL is printed, so the first page is as fast as every later one.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import sys

import click

from ..ledger import describe_ledger
from .common import BadInput
from .ledger import ledger_location, ledger_option, read_ledger
from .run import install_signal_shutdown

DEFAULT_PORT = 8766
EXIT_INTERRUPTED = 130


def loopback_address(host: str) -> str:
    """The loopback IP `host` names; anything else is bad input (the page shows the whole
    ledger to whoever can reach it, and it has no login)."""
    name = host.strip().strip("[]")
    if name.lower() == "localhost":
        return "127.0.0.1"
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        raise BadInput(f"--host {host}: not an IP address; the dashboard binds only to a loopback address "
                       "such as 127.0.0.1 or ::1") from None
    if not address.is_loopback:
        raise BadInput(f"--host {host}: not a loopback address; the dashboard is read by anyone who can reach "
                       "it, so it binds only to 127.0.0.1 (or ::1); use an SSH tunnel to see it from elsewhere")
    return str(address)


def bind(address: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a restart may follow a stop at once
    try:
        sock.bind((address, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise BadInput(f"--port {port}: {address}:{port} is already in use; pick another port "
                           "(--port 0 picks a free one)") from None
        raise BadInput(f"cannot listen on {address}:{port}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock


@click.command("dashboard")
@ledger_option
@click.option("--port", type=click.IntRange(0, 65535), default=DEFAULT_PORT, show_default=True,
              help="Port to listen on (0: any free one; the URL is printed).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Loopback address to listen on (127.0.0.1, ::1 or localhost); nothing else is accepted.")
def dashboard_cmd(ledger_url: str | None, port: int, host: str) -> None:
    """Serve a read-only web page over the ledger: the champion organization's tree with live
    node figures, the directives with search and per-directive timelines, trials with their
    genome diff and objectives, and the fitness plot. Prints the URL; runs until interrupted
    (exit 130). Works on SQLite files and PostgreSQL URLs; never writes the ledger."""
    address = loopback_address(host)
    try:
        import uvicorn

        from ..dashboard.app import create_app
        from ..dashboard.source import LedgerSource
    except ImportError as exc:
        raise BadInput(f"the dashboard needs starlette and uvicorn ({exc.name} is missing): "
                       "pip install 'vsm_actors[dashboard]'") from None
    sock = bind(address, port)
    location = ledger_location(ledger_url)
    install_signal_shutdown()
    try:
        with read_ledger(ledger_url) as ledger:
            try:
                source = LedgerSource(ledger, describe_ledger(location))
            except Exception as exc:  # noqa: BLE001 - any reason the reader cannot start is bad input
                raise BadInput(f"{location}: {exc}") from None
            seq = source.warm()
            shown = f"[{address}]" if ":" in address else address
            click.echo(f"http://{shown}:{sock.getsockname()[1]}/")
            click.echo(f"dashboard: {describe_ledger(location)}, {source.fold.events} events (seq {seq}); "
                       "Ctrl-C stops it", err=True)
            sys.stdout.flush()
            config = uvicorn.Config(create_app(source), log_level="warning", access_log=False, lifespan="off")
            server = uvicorn.Server(config)
            server.run(sockets=[sock])
            if server.should_exit:  # a signal stopped it (uvicorn may re-raise it, or not: versions differ)
                raise KeyboardInterrupt
    except KeyboardInterrupt:
        sys.stdout.flush()
        sys.exit(EXIT_INTERRUPTED)
    finally:
        sock.close()
