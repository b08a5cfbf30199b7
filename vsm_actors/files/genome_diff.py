"""Node-by-node differences between two genomes (`vsm genome diff`)."""

from __future__ import annotations

from attrs import frozen

from .. import codec
from ..core.model.genome import OrganizationalGenome


@frozen
class GenomeChange:
    change: str  # added | removed | changed
    subject: str  # node | channel | gene | genome
    key: str
    fields: tuple[str, ...] = ()

    def render(self) -> str:
        sign = {"added": "+", "removed": "-", "changed": "~"}[self.change]
        detail = f" ({', '.join(self.fields)})" if self.fields else ""
        return f"{sign} {self.subject} {self.key}{detail}"

    def as_data(self) -> dict:
        return {"change": self.change, "subject": self.subject, "key": self.key, "fields": list(self.fields)}


def diff_genomes(a: OrganizationalGenome, b: OrganizationalGenome) -> list[GenomeChange]:
    out: list[GenomeChange] = []
    wa, wb = codec.to_wire(a), codec.to_wire(b)
    for key in ("root_node_id", "lineage", "metadata", "relations", "routing_rules", "audit_policies",
                "trial_settings"):
        if wa.get(key) != wb.get(key):
            out.append(GenomeChange("changed", "genome", key))
    for node_id in sorted(set(wa["nodes"]) | set(wb["nodes"])):
        na, nb = wa["nodes"].get(node_id), wb["nodes"].get(node_id)
        if na is None:
            out.append(GenomeChange("added", "node", node_id))
        elif nb is None:
            out.append(GenomeChange("removed", "node", node_id))
        elif na != nb:
            out.append(GenomeChange("changed", "node", node_id, tuple(k for k in na if na[k] != nb.get(k))))
    ca = {c["id"]: c for c in wa["channels"]}
    cb = {c["id"]: c for c in wb["channels"]}
    for cid in sorted(set(ca) | set(cb)):
        if cid not in ca:
            out.append(GenomeChange("added", "channel", cid))
        elif cid not in cb:
            out.append(GenomeChange("removed", "channel", cid))
        elif ca[cid] != cb[cid]:
            out.append(GenomeChange("changed", "channel", cid, tuple(k for k in ca[cid] if ca[cid][k] != cb[cid].get(k))))
    return out
