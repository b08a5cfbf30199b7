"""The thin Thespian shell: node actors, the ledger actor and the organization supervisor."""
