"""Which provider a node uses, and the provider a leaf builds at its first call.

The choice, most specific first:

1. `RuntimeConfig.node_providers[node id or name]`: set by whoever starts the organization;
2. the node's genome model spec, when it names a provider (`model: {provider: codex, model: gpt-5}`):
   built with the options the command line gave that provider (`RuntimeConfig.providers`, from
   `--provider NAME --provider-option ...` or `--provider-option NAME.KEY=VALUE`), else its defaults;
   a spec naming no known provider ("abstract", the default, or "local") names none;
3. `RuntimeConfig.provider`, the command line's `--provider`.

A leaf whose provider runs an agent in a directory gets its own one under `RuntimeConfig.workspace`
(actors/workspaces.py).
"""

from __future__ import annotations

from ..providers import make_provider
from ..providers.options import SELECTABLE_PROVIDERS, default_options
from .protocol import ProviderSpec, RuntimeConfig
from .workspaces import WorkspaceProvider, leaf_workspace

__all__ = ["WORKSPACE_OPTIONS", "genome_provider", "leaf_provider", "node_provider_spec"]

# providers that run an agent in a directory -> the option naming it
WORKSPACE_OPTIONS = {"command": "workspace", "codex": "workspace_root"}


def genome_provider(node) -> str | None:
    """The provider the node's model spec names, if it names one this runtime has."""
    name = (node.model.provider or "").strip().lower()
    return name if name in SELECTABLE_PROVIDERS else None


def node_provider_spec(config: RuntimeConfig, node) -> ProviderSpec:
    """The provider `node` uses (see the module docstring)."""
    explicit = config.node_providers.get(node.id) or config.node_providers.get(node.name)
    if explicit is not None:
        return explicit
    return _from_genome(config, node) or config.provider


def _from_genome(config: RuntimeConfig, node) -> ProviderSpec | None:
    name = genome_provider(node)
    if name is None or name == config.provider.name.strip().lower():
        return None
    return config.providers.get(name) or ProviderSpec(name=name, options=default_options(name))


def leaf_provider(spec: ProviderSpec, config: RuntimeConfig, node) -> tuple[ProviderSpec, object]:
    """Build the provider a node's actor calls. `spec` is what the node was set up with; when that
    is the organization's default, the node's current model spec may still name another (a trial's
    candidate nodes are set up with the default)."""
    if spec == config.provider and not (config.node_providers.get(node.id) or config.node_providers.get(node.name)):
        spec = _from_genome(config, node) or spec
    key = spec.name.strip().lower()
    option = WORKSPACE_OPTIONS.get(key)
    if option is None or not config.workspace or not node.is_leaf:
        return spec, make_provider(spec.name, **spec.options)
    path = leaf_workspace(config.workspace, config.workspace_kind, node.id)
    inner = make_provider(spec.name, **{**spec.options, option: path})
    return spec, WorkspaceProvider(inner, config.workspace, config.workspace_kind, node.id)
