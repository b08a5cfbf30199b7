"""The providers of `vsm run` and `vsm up`: options, the agent's command line, workspaces, and the
check before boot.

    --provider NAME                    the default for nodes whose genome model names no provider
    --provider-option KEY=VALUE        an option of NAME, typed (numbers, booleans, JSON lists and objects)
    --provider-option OTHER.KEY=VALUE  an option of provider OTHER, for nodes whose model names it
    --script FILE                      the scripted provider's script
    --workspace DIR                    a directory (a git worktree in a repository) per leaf
    -- ARGV...                         the command provider's argument template

Every provider the genome's nodes will use is built once here, as the leaves will build it, so an
unknown option, a value of the wrong type, a missing program or API key is bad input (exit 2) with
a message naming the option and the valid ones, and nothing starts.
"""

from __future__ import annotations

import json
import os

import click

from ..actors.leaf_providers import node_provider_spec
from ..actors.protocol import ProviderSpec, RuntimeConfig
from ..actors.workspaces import check_workspace
from ..files.safe_load import DocumentError, load_document
from ..providers.options import SELECTABLE_PROVIDERS, OptionError, absolute_program, check_provider, parse_options
from .common import BadInput

__all__ = ["check_providers", "configure_providers", "provider_options", "provider_settings"]


def provider_options(fn):
    """--provider, --script, --provider-option, --workspace and a trailing `-- ARGV...`."""
    fn = click.argument("agent_argv", nargs=-1, type=click.UNPROCESSED, metavar="[-- AGENT_ARGV...]")(fn)
    fn = click.option("--workspace", "workspace", metavar="DIR",
                      help="Each leaf running an agent (command, codex) works in a directory of its own: a git "
                           "worktree of DIR on branch vsm/<leaf id> (in DIR/.vsm-worktrees/) when DIR is a git "
                           "repository, else DIR/<leaf id>. Results list the files each call changed.")(fn)
    fn = click.option("--provider-option", "provider_options", multiple=True, metavar="KEY=VALUE",
                      help="Provider option, repeatable, typed: timeout_seconds=60, "
                           "argv='[\"aider\",\"--message\",\"{prompt}\"]', pass_env='[\"GH_TOKEN\",\"AWS_*\"]' "
                           "(the agent's process gets only PATH, HOME, LANG and such of your environment, plus "
                           "what pass_env names; inherit_env=true gives it all). PROVIDER.KEY=VALUE configures "
                           "another provider, for nodes whose genome model names it (e.g. codex.model=gpt-5).")(fn)
    fn = click.option("--script", "script", type=click.Path(dir_okay=False),
                      help="Script file (YAML/JSON) for the scripted provider.")(fn)
    return click.option("--provider", "provider", default=lambda: os.environ.get("VSM_PROVIDER", "echo"),
                        show_default="$VSM_PROVIDER or echo",
                        help="Model provider for nodes whose genome model names none: echo (does no work), "
                             "scripted, command, codex, openai.")(fn)


def provider_settings(provider: str, script: str | None, options: tuple[str, ...], argv: tuple[str, ...] = (),
                      workspace: str | None = None) -> dict:
    """The RuntimeConfig fields the provider flags give (provider, providers, workspace, workspace_kind)."""
    name = (provider or "").strip().lower()
    if name not in SELECTABLE_PROVIDERS:
        raise BadInput(f"--provider {provider!r}: unknown provider; valid names: {', '.join(SELECTABLE_PROVIDERS)}")
    grouped: dict[str, list[tuple[str, str]]] = {}
    for item in options:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise BadInput(f"--provider-option expects KEY=VALUE, got {item!r}")
        target, dot, rest = key.partition(".")
        owner, key = (target.lower(), rest) if dot and target.lower() in SELECTABLE_PROVIDERS else (name, key)
        grouped.setdefault(owner, []).append((key, value))
    typed: dict[str, dict] = {}
    for owner, items in grouped.items():
        try:
            typed[owner] = parse_options(owner, items)
        except OptionError as error:
            raise BadInput(f"--provider-option: {error.detail}") from None
    if argv:
        if name != "command":
            raise BadInput(f"unexpected arguments {' '.join(argv)!r}: a command line after -- is the command "
                           "provider's; use --provider command")
        if "argv" in typed.get("command", {}):
            raise BadInput("the command's argv is given twice: --provider-option argv=... and -- ARGV")
        typed.setdefault("command", {})["argv"] = list(argv)
    if script:
        try:
            typed.setdefault("scripted", {})["script"] = load_document(script).data
        except DocumentError as exc:
            raise BadInput(str(exc)) from None
    if name == "scripted" and "script" not in typed.get("scripted", {}):
        typed.setdefault("scripted", {})["script"] = {"rules": []}
    typed = {owner: absolute_program(opts, owner) for owner, opts in typed.items()}
    settings: dict = {}
    if workspace is not None:
        for owner, option in (("command", "workspace"), ("codex", "workspace_root")):
            if option in typed.get(owner, {}):
                raise BadInput(f"--workspace and --provider-option {option}= both say where {owner} works; "
                               "give one")
        try:
            settings["workspace"], settings["workspace_kind"] = check_workspace(workspace)
        except ValueError as exc:
            raise BadInput(str(exc)) from None
    settings["provider"] = ProviderSpec(name=name, options=typed.pop(name, {}))
    settings["providers"] = {owner: ProviderSpec(name=owner, options=opts) for owner, opts in typed.items()}
    return settings


def check_providers(genome, config: RuntimeConfig) -> None:
    """Build every provider the genome's nodes will use (and the default) once; BadInput if one fails."""
    checked: set[str] = set()

    def check(spec: ProviderSpec, where: str) -> None:
        key = spec.name + json.dumps(spec.options, sort_keys=True, default=repr)
        if key in checked:
            return
        checked.add(key)
        try:
            check_provider(spec.name, spec.options, where=where)
        except OptionError as error:
            raise BadInput(error.detail) from None

    check(config.provider, "--provider")
    for node in genome.nodes.values():
        spec = node_provider_spec(config, node)
        if spec is not config.provider:
            check(spec, f"node {node.name}, from its genome model spec")


def configure_providers(genome, provider: str, script: str | None, options: tuple[str, ...],
                        argv: tuple[str, ...] = (), workspace: str | None = None) -> dict:
    """`provider_settings`, checked against `genome` (see the module docstring)."""
    settings = provider_settings(provider, script, options, argv, workspace)
    check_providers(genome, RuntimeConfig(**settings))
    return settings
