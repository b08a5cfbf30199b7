"""Genome and simulation files: safe YAML/JSON loading with positions, the concise and full forms,
JSON Schema, diff and rendering."""
