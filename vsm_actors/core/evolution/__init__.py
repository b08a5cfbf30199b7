"""How the structure changes: fitness and attribution, audit (System 3*), operators, candidates,
replay, selection, trials and generations. Imports `core.model` and `core.control`."""
