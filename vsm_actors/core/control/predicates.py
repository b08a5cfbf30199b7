"""Static task predicates: deterministic text heuristics over a directive (reference §3.3).

System 3 reads these facts before any work happens — routers, replay and mutation opportunities
use them — so they must be reproducible from the directive alone: no file system access, only the
repository inventory the mapper was configured with.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Iterable, Mapping

from attrs import frozen

from ..model.task import Directive, RiskClass, StaticTaskPredicates

_PATH_EXTENSIONS = (
    ".rs", ".toml", ".md", ".json", ".yaml", ".yml", ".sql", ".ts", ".tsx", ".js", ".jsx",
    ".py", ".go", ".java", ".rb", ".sh",
)
_TOKEN_EDGE = "`'\",;:()[]{}"
# Rust's `split_whitespace` uses the Unicode White_Space property, which differs from Python's
# `str.split()` (the latter also splits on the ASCII separators \x1c-\x1f).
_WHITESPACE = re.compile("[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+")
_NOT_WORDISH = re.compile(r"[^A-Za-z0-9_.\-]+")
_LIST_SEPARATORS = re.compile(r"[,;|\n]")

# language <- lowercase corpus substrings ("sqlite" therefore implies sql, ".json" implies javascript)
_TEXT_LANGUAGES = (
    ("rust", ("rust", "cargo", "crate", ".rs")),
    ("typescript", ("typescript", ".ts", ".tsx")),
    ("javascript", ("javascript", ".js", ".jsx")),
    ("python", ("python", ".py")),
    ("sql", ("sql", ".sql")),
    ("markdown", ("markdown", ".md", "readme")),
    ("toml", ("toml", "cargo.toml")),
)
_EXTENSION_LANGUAGES = (
    (".rs", "rust"), (".toml", "toml"), (".md", "markdown"), (".sql", "sql"), (".ts", "typescript"),
    (".tsx", "typescript"), (".js", "javascript"), (".jsx", "javascript"), (".py", "python"),
)
_LIST_KEYS = ("languages", "likely_files", "modules", "dependencies", "test_targets", "tags")
_FLAG_KEYS = (
    "public_api_touched", "database_touched", "auth_touched", "config_touched", "migration_touched",
    "security_sensitive",
)
_MARKER_PREFIXES = ("domain_marker.", "static_predicates.domain_marker.", "task.static_predicates.domain_marker.")
_RISK_BY_NAME = {r.value.lower(): r for r in RiskClass}


@frozen(kw_only=True)
class DomainKeywordHint:
    """A configured domain marker: `<marker>=true` whenever any keyword occurs in the directive text."""

    marker: str
    keywords: tuple[str, ...] = ()


def is_truthy(value: str | None) -> bool:
    """Apply the reference's truthiness rule for metadata flags: "true", "1" or any-case "yes"."""
    return value is not None and (value in ("true", "1") or value.lower() == "yes")


def metadata_key_variants(key: str) -> tuple[str, ...]:
    """Return the five metadata spellings of a predicate key, in the order they are read."""
    return (key, f"task.{key}", f"task.metadata.{key}", f"static_predicates.{key}",
            f"task.static_predicates.{key}")


def split_list_items(value: str) -> list[str]:
    """Split a metadata list value on `,` `;` `|` or newline, trimming and dropping empty items."""
    return [item.strip() for item in _LIST_SEPARATORS.split(value) if item.strip()]


def directive_corpus(directive: Directive) -> str:
    """Join the text a directive offers to the heuristics, one part per line.

    Metadata values are taken in sorted key order because the reference keeps metadata in a
    sorted map; the order only matters for tokens that would span two parts.
    """
    parts = [directive.title, directive.body]
    if directive.desired_state is not None:
        parts.append(directive.desired_state)
    parts.extend(directive.constraints)
    parts.extend(directive.metadata[k] for k in sorted(directive.metadata))
    return "\n".join(parts)


def first_keyword(keywords: Iterable[str], text: str) -> str | None:
    """Return the first of `keywords` (in their order) that occurs in `text` as whole words.

    Case-insensitive; a keyword of several words matches them in sequence across any whitespace;
    "review" matches "Review PR 12" and "re-review" but not "reviewer" or "preview". Blank
    keywords never match.
    """
    for keyword in keywords:
        pattern = _keyword_pattern(keyword)
        if pattern is not None and pattern.search(text):
            return keyword
    return None


@lru_cache(maxsize=4096)  # keywords come from genome rules: few, and asked for on every routing
def _keyword_pattern(keyword: str) -> re.Pattern | None:
    words = keyword.split()
    if not words:
        return None
    return re.compile(r"(?<!\w)" + r"\s+".join(map(re.escape, words)) + r"(?!\w)", re.IGNORECASE)


def path_like_tokens(corpus: str) -> list[str]:
    """Return whitespace tokens that look like repository paths, in order of first appearance."""
    out: list[str] = []
    for raw in _WHITESPACE.split(corpus):
        # one pass each, as in the reference: "(see a/b.rs)." keeps its ")" after the dot goes
        token = raw.strip(_TOKEN_EDGE).rstrip(".")
        if not token or token in out:
            continue
        lower = token.lower()
        if "/" in token or lower.endswith(_PATH_EXTENSIONS):
            out.append(token)
    return out


def wordish_tokens(text: str) -> set[str]:
    """Return the maximal runs of ASCII alphanumerics, `_`, `-` and `.` in `text`."""
    return {t for t in _NOT_WORDISH.split(text) if t}


def inventory_matches(repository_files: Iterable[str], lower_corpus: str) -> list[str]:
    """Return the repository files the directive refers to by full path, file name or stem.

    Short names are ignored (file name < 5 chars, stem < 4) because words like "lib" or "mod"
    occur in ordinary prose.
    """
    words = wordish_tokens(lower_corpus)
    out: list[str] = []
    for path in repository_files:
        lower = path.lower()
        basename = lower.rsplit("/", 1)[-1]
        stem = basename.split(".", 1)[0]
        if (lower and lower in lower_corpus) or (len(basename) >= 5 and basename in words) \
                or (len(stem) >= 4 and stem in words):
            out.append(path)
    return out


def _mentions(lower_corpus: str, needles: tuple[str, ...]) -> bool:
    """Any needle a substring of the corpus: one regex scan per needle group (every directive is
    tested against a dozen groups)."""
    pattern = _NEEDLE_PATTERNS.get(needles)
    if pattern is None:
        pattern = _NEEDLE_PATTERNS[needles] = re.compile("|".join(map(re.escape, needles)))
    return pattern.search(lower_corpus) is not None


_NEEDLE_PATTERNS: dict[tuple[str, ...], re.Pattern] = {}


class _Draft:
    """Mutable accumulator used only inside `extract_static_predicates`."""

    def __init__(self) -> None:
        self.lists: dict[str, list[str]] = {k: [] for k in _LIST_KEYS}
        self.flags: dict[str, bool] = dict.fromkeys(_FLAG_KEYS, False)
        self.markers: dict[str, str] = {}
        self.blast_radius: RiskClass | None = None

    def add(self, key: str, *items: str) -> None:
        bucket = self.lists[key]
        bucket.extend(i for i in items if i and i not in bucket)

    def mark(self, key: str, value: str = "true") -> None:
        if key and value:
            self.markers[key] = value

    def freeze(self) -> StaticTaskPredicates:
        return StaticTaskPredicates(
            **{k: tuple(sorted(set(v))) for k, v in self.lists.items()},
            **self.flags,
            estimated_blast_radius=self.blast_radius,
            domain_markers=dict(sorted(self.markers.items())),
        )


def extract_static_predicates(
    directive: Directive,
    repository_files: Iterable[str] = (),
    domain_keyword_hints: Iterable[DomainKeywordHint] = (),
) -> StaticTaskPredicates:
    """Derive a directive's static predicates (reference §3.3, extraction steps 1-11).

    Args:
        directive: the incoming directive; its text and metadata are the only inputs.
        repository_files: repo-relative paths the directive may refer to by name.
        domain_keyword_hints: configured markers set when any of their keywords occurs.

    Returns:
        Predicates with every list deduplicated and sorted and the markers in key order.
    """
    repository_files = tuple(repository_files)
    corpus = directive_corpus(directive)
    lower = corpus.lower()
    draft = _Draft()
    draft.add("likely_files", *path_like_tokens(corpus))
    draft.add("likely_files", *inventory_matches(repository_files, lower))
    if _mentions(lower, ("cargo", "crate", "dependency", "dependencies")):
        draft.add("likely_files", *(f for f in repository_files if f == "Cargo.toml" or f.endswith("/Cargo.toml")))
    for language, needles in _TEXT_LANGUAGES:
        if _mentions(lower, needles):
            draft.add("languages", language)
    for path in list(draft.lists["likely_files"]):
        _apply_file_predicates(draft, path)
    _apply_text_predicates(draft, lower)
    for hint in domain_keyword_hints:
        if any(k.lower() in lower for k in hint.keywords if k):
            draft.mark(hint.marker)
    _merge_explicit_metadata(draft, directive.metadata)
    if draft.blast_radius is None:
        draft.blast_radius = _derived_blast_radius(draft)
    return draft.freeze()


def _apply_file_predicates(draft: _Draft, path: str) -> None:
    lower = path.lower()
    flags = draft.flags
    for extension, language in _EXTENSION_LANGUAGES:
        if lower.endswith(extension):
            draft.add("languages", language)
    if lower.endswith(".toml"):
        flags["config_touched"] = True
    if lower.endswith(".sql"):
        flags["database_touched"] = True
        draft.mark("data_store", "sql")
    if "migrations/" in lower or "/migration" in lower:
        flags["migration_touched"] = flags["database_touched"] = True
        draft.mark("migration")
    if "auth" in lower or "security" in lower:
        # a path naming either is treated as both: auth code is security code and vice versa
        flags["auth_touched"] = flags["security_sensitive"] = True
        if "auth" in lower:
            draft.mark("auth")
        if "security" in lower:
            draft.mark("security")
    if "api" in lower or "route" in lower:
        flags["public_api_touched"] = True
        draft.mark("public_interface")
    if lower.endswith(("cargo.toml", ".json", ".yaml", ".yml")):
        flags["config_touched"] = True
        draft.mark("configuration")
    if "_test." in lower or ".test." in lower or "/tests/" in lower:
        draft.add("test_targets", path)
    draft.add("modules", *_module_names(path))


def _module_names(path: str) -> list[str]:
    """`crates/<name>/...` names a crate; the file stem names a module when it is not trivially short."""
    segments = path.split("/")
    out = [second for first, second in zip(segments, segments[1:]) if first == "crates"]
    stem = segments[-1].split(".", 1)[0]
    if len(stem) >= 3:
        out.append(stem)
    return out


def _apply_text_predicates(draft: _Draft, lower: str) -> None:
    flags = draft.flags
    if _mentions(lower, ("security", "secret", "credential", "vulnerability")):
        flags["security_sensitive"] = True
        draft.mark("security")
    if _mentions(lower, ("public api", "endpoint", "route", "interface")):
        flags["public_api_touched"] = True
    if _mentions(lower, ("config", "configuration", "settings")):
        flags["config_touched"] = True
    if _mentions(lower, ("test", "tests", "verify", "validation")):
        draft.add("tags", "verification")
    if "cargo test" in lower:
        draft.add("test_targets", "cargo test")


def _merge_explicit_metadata(draft: _Draft, metadata: Mapping[str, str]) -> None:
    """Let a directive state predicates outright; explicit facts add to, never erase, heuristics.

    Files named only here skip the per-file rules: the sender is trusted to state the flags too.
    """
    if not metadata:
        return
    for key in _LIST_KEYS:
        for variant in _VARIANTS[key]:
            if variant in metadata:
                draft.add(key, *split_list_items(metadata[variant]))
    for variant in _VARIANTS["domain_markers"]:
        if variant in metadata:
            for item in split_list_items(metadata[variant]):
                name, sep, value = item.partition("=")
                draft.mark(name.strip(), value.strip() if sep else "true")
    for key in sorted(metadata):
        for prefix in _MARKER_PREFIXES:
            if key.startswith(prefix):
                draft.mark(key[len(prefix):], metadata[key])
    for flag in _FLAG_KEYS:
        value = _last_present(metadata, flag)
        if is_truthy(value):
            draft.flags[flag] = True
    radius = _last_present(metadata, "estimated_blast_radius")
    if radius is not None:
        draft.blast_radius = _RISK_BY_NAME.get(radius.lower())


def _last_present(metadata: Mapping[str, str], key: str) -> str | None:
    found = None
    for variant in _VARIANTS[key]:
        if variant in metadata:
            found = metadata[variant]
    return found


# read for every directive with metadata: spelled out once
_VARIANTS = {key: metadata_key_variants(key)
             for key in (*_LIST_KEYS, *_FLAG_KEYS, "domain_markers", "estimated_blast_radius")}


def _derived_blast_radius(draft: _Draft) -> RiskClass | None:
    flags = draft.flags
    if flags["security_sensitive"] or flags["auth_touched"] or flags["database_touched"] or flags["migration_touched"]:
        return RiskClass.High
    if flags["public_api_touched"] or flags["config_touched"]:
        return RiskClass.Medium
    if draft.lists["likely_files"]:
        return RiskClass.Low
    return None
