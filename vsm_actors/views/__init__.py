"""Views: what people see of an organization, each read from one source (the ledger or the
running organization). Rendering only; no decisions."""
