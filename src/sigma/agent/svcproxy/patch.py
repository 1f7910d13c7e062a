"""Pure: one Service's fragment replaced in the applied table, and the nft commands for it.

A partial sync through ``rules.render_update`` compares the whole old table with the whole
new one: with 5,000 Services that comparison, and the merge before it, cost more than the
change itself. ``Applied`` keeps the table as the kernel holds it together with who owns
each chain and map key, so a sync that changed a few Services touches only their fragments:
the work is proportional to the change, not to the cluster.

Elements of the shared sets (``hairpin``, ``cluster-ips``) may come from several Services
(two Services selecting one pod): they are counted, added with the first owner and deleted
with the last. A change that would take a chain or map key another Service owns returns
None: the caller merges everything again, which decides such clashes for the whole table
(the same way each time).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from sigma.agent.svcproxy.rules import FAMILY, SETS, TABLE, Fragment, Ruleset, _elements, _set_decl

ServiceKey = tuple[str, str]


@dataclass
class Applied:
    """The applied table and the indexes a patch needs (built once per full merge)."""

    ruleset: Ruleset
    fragments: dict[ServiceKey, Fragment] = field(default_factory=dict)  # the merged ones
    chain_owner: dict[str, ServiceKey] = field(default_factory=dict)
    key_owner: dict[tuple[str, str], ServiceKey] = field(default_factory=dict)  # (map, key) -> service
    set_refs: Counter[tuple[str, str]] = field(default_factory=Counter)  # (set, element) -> owners

    @classmethod
    def of(cls, ruleset: Ruleset, merged: dict[ServiceKey, Fragment]) -> Applied:
        """``merged``: the fragments ``rules.merge`` kept (the skipped ones left out)."""
        applied = cls(ruleset)
        for key, fragment in merged.items():
            applied._own(key, fragment)
        return applied

    def _own(self, key: ServiceKey, f: Fragment) -> None:
        self.fragments[key] = f
        for name, _ in f.chains:
            self.chain_owner[name] = key
        refs, owner = self.set_refs, self.key_owner
        for m, k, _ in f.elements:  # every element of the table on a full merge: kept lean
            if m in SETS:
                refs[(m, k)] = refs.get((m, k), 0) + 1
            else:
                owner[(m, k)] = key

    def _disown(self, key: ServiceKey, f: Fragment) -> None:
        self.fragments.pop(key, None)
        for name, _ in f.chains:
            if self.chain_owner.get(name) == key:
                del self.chain_owner[name]
        for m, k, _ in f.elements:
            if m in SETS:
                self.set_refs[(m, k)] -= 1
                if self.set_refs[(m, k)] <= 0:
                    del self.set_refs[(m, k)]
            elif self.key_owner.get((m, k)) == key:
                del self.key_owner[(m, k)]


def _clashes(applied: Applied, key: ServiceKey, new: Fragment, changed: dict[ServiceKey, Fragment | None]) -> bool:
    """Whether ``new`` takes a chain or map key of a Service other than ``key`` that keeps it
    (one among the changed ones gives its old fragment up: ``_share`` compares the new ones)."""
    def taken(owner: ServiceKey | None) -> bool:
        return owner is not None and owner != key and owner not in changed

    if any(taken(applied.chain_owner.get(name)) for name, _ in new.chains):
        return True
    return any(m not in SETS and taken(applied.key_owner.get((m, k))) for m, k, _ in new.elements)


def patch(applied: Applied, changes: dict[ServiceKey, Fragment | None]) -> str | None:
    """Replace each changed Service's fragment (None: the Service is gone) in ``applied``
    and return the commands that do the same to the kernel's table ("" when nothing
    changed), or None, leaving ``applied`` untouched, when a change clashes with another
    Service's chain or key."""
    # Each change is checked against the table without the changed Services' old fragments
    # (the check reads the indexes, never copies them: a patch costs what it changes).
    news = [(key, new) for key, new in changes.items() if new is not None]
    for i, (key, new) in enumerate(news):
        if _clashes(applied, key, new, changes) or any(_share(new, other) for _, other in news[i + 1:]):
            return None

    rs, t = applied.ruleset, f"{FAMILY} {TABLE}"
    add_sets: list[str] = []
    add_chains: list[str] = []
    rules: list[str] = []
    delete_elements: dict[str, list[str]] = {}
    add_elements: dict[str, dict[str, str]] = {}
    gone_chains: list[str] = []
    gone_sets: list[str] = []
    old_of = {key: applied.fragments.get(key, Fragment()) for key in changes}
    new_of = {key: change or Fragment() for key, change in changes.items()}
    changed = [key for key in changes if old_of[key] != new_of[key]]
    remade = set(changed)
    # Every old fragment given up before any new one is taken: a key that moves between two
    # changed Services ends with its new owner whatever order they come in.
    for key in changed:
        applied._disown(key, old_of[key])
    for key in changed:
        if new_of[key].chains or new_of[key].elements or new_of[key].sets:
            applied._own(key, new_of[key])
    wanted: dict[tuple[str, str], str] = {}  # the new fragments' elements
    for key in changed:
        old, new = old_of[key], new_of[key]
        old_chains, new_chains = dict(old.chains), dict(new.chains)
        for name, body in new.chains:
            if name not in old_chains:
                add_chains.append(name)
            elif old_chains[name] == body:
                continue
            else:
                rules.append(f"flush chain {t} {name}")
            rules += [f"add rule {t} {name} {r}" for r in body]
            rs.chains[name] = body
        gone_chains += [name for name in old_chains if name not in new_chains]
        old_sets, new_sets = dict(old.sets), dict(new.sets)
        for name, timeout in new.sets:
            if name not in old_sets:
                add_sets.append(f"add set {t} {name} {_set_decl(timeout)}")
                rs.sets[name] = timeout
        gone_sets += [name for name in old_sets if name not in new_sets]
        wanted.update(((m, k), v) for m, k, v in new.elements)
    touched = dict.fromkeys((m, k) for key in changed for m, k, _ in old_of[key].elements)
    touched.update(dict.fromkeys(wanted))
    for m, k in touched:
        # What the table should hold for this element now: a shared set's while anyone
        # counts it, a map key's as its owner (a changed Service, or none) has it.
        if m in SETS:
            want = "" if (m, k) in applied.set_refs else None
        else:
            owner = applied.key_owner.get((m, k))
            if owner is not None and owner not in remade:
                continue  # another Service's, untouched here
            want = None if owner is None else wanted[(m, k)]
        have = rs.maps[m].get(k)
        if have == want:
            continue
        if have is not None:
            delete_elements.setdefault(m, []).append(k)
            del rs.maps[m][k]
        if want is not None:
            add_elements.setdefault(m, {})[k] = want
            rs.maps[m][k] = want
    for name in gone_chains:
        rs.chains.pop(name, None)
    for name in gone_sets:
        rs.sets.pop(name, None)

    out = add_sets + [f"add chain {t} {name}" for name in add_chains] + rules
    out += [f"delete element {t} {m} {{ {', '.join(sorted(keys))} }}" for m, keys in delete_elements.items()]
    out += [f"add element {t} {m} {{ {_elements(elements)} }}" for m, elements in add_elements.items()]
    # Flush first, then delete: a removed chain may jump to another removed one.
    out += [f"flush chain {t} {name}" for name in gone_chains]
    out += [f"delete chain {t} {name}" for name in gone_chains]
    out += [f"delete set {t} {name}" for name in gone_sets]
    return "\n".join(out) + "\n" if out else ""


def _share(a: Fragment, b: Fragment) -> bool:
    """Two changed fragments claiming one chain or map key."""
    chains = {name for name, _ in a.chains}
    if any(name in chains for name, _ in b.chains):
        return True
    keys = {(m, k) for m, k, _ in a.elements if m not in SETS}
    return any((m, k) in keys for m, k, _ in b.elements if m not in SETS)
