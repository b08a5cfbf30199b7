"""What an organization is: ids, capabilities, channels, nodes, genome, genes, patches, validation,
suggestions, tasks, traces, messages and payloads, ledger event records. Imports nothing else of core."""
