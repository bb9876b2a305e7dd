#!/usr/bin/env python3
"""Lists imports that run up the layer order of homeserver/src (docs/ARCHITECTURE.md, "Layers").

Each module belongs to a unit (a top-level module, a folder of service/, or a sub-module of a
folder in SPLIT: service/peer/, whose `fanout` sits below the others as ephemeral and e2ee use
it, and service/appservice/, whose registry sits below rooms and the service above) and each
unit to a rank. A `use` (or an inline `crate::` path) from a unit to a unit of a HIGHER rank is a violation. Test code is exempt
(`tests.rs`, `*_tests.rs`, test helpers `test_*.rs`, and every `#[cfg(test)]` item;
docs/ARCHITECTURE.md, "Tests", names the style).

    scripts/check-layers.py            # exit 1 on a violation not in the baseline, or a stale one
    scripts/check-layers.py --update   # rewrite the baseline from the code (only ever shrink it)

The baseline (scripts/layers-baseline.txt) lists the upward imports that predate this check; it
is a ratchet: a new upward import fails, and so does a baseline line the code no longer has, so
the file stays true and only shrinks. Issue 13 empties it.
"""
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
SRC = os.path.join(ROOT, "homeserver", "src")
BASELINE = os.path.join(ROOT, "scripts", "layers-baseline.txt")

# Higher rank = higher layer. Same rank: either way is fine. Unknown units fail loudly.
RANKS = {
    # the binary and the wiring
    "main": 100, "commands": 100, "lib": 100, "server": 100, "listener": 100, "ops": 100,
    "api": 95,
    "service": 90,  # service/mod.rs: re-exports Services (the wiring) and `blocking`
    "service/wiring": 90,  # Services, built in one pass; the policy assembled
    # read side and operators
    "service/console": 85,
    "service/admin": 80, "service/sar": 80,
    "service/sliding_sync": 75, "service/sync": 75,
    "service/spaces": 70, "service/retention": 70, "service/reports": 70,
    "service/account_rooms": 70, "service/registration": 70, "service/openid": 70,
    "service/voip": 70, "service/support": 70, "service/health": 70,
    "service/identity": 70, "service/oauth": 70, "service/search": 70,
    # peer-facing federation (service/peer/): uses rooms, users and ephemeral
    "service/peer": 65, "service/peer/transactions": 65, "service/peer/edu": 65,
    "service/peer/room_read": 65, "service/peer/query": 65,
    "service/e2ee": 60, "service/ephemeral": 60, "service/push": 60,
    # who gets each outbound EDU: uses rooms, used by ephemeral and e2ee
    "service/peer/fanout": 60,
    # application services: as_token sessions, the sender workers, queries (uses rooms, users)
    "service/appservice": 55, "service/appservice/login": 55,
    "service/appservice/queries": 55, "service/appservice/sender": 55,
    # MSC3202 for encrypted appservices: part of the service (it extends AppserviceService)
    "service/appservice/crypto": 55,
    # media: downloads check membership of the room a file was sent in
    "service/media": 55,
    "service/rooms": 50,
    "service/users": 40, "service/account_data": 40, "service/filter": 40,
    "service/uiaa": 40,
    # exempts appservice users (the registry)
    "service/rate_limit": 43,
    # federation transport and trust (client, discovery, gate, list, pdu checks, outbox, keys):
    # used by rooms
    "service/federation": 35,
    "service/audit": 30, "service/audit_checkpoint": 30, "service/notifier": 30,
    "service/signing_key": 30, "service/commit": 30,
    # the appservice registry (namespaces, interest), its pipeline subscriber, the ephemeral
    # buffer and the HTTP client: used by rooms, ephemeral, rate limits; reads room data types
    "service/appservice/registration": 42, "service/appservice/registry": 42,
    "service/appservice/ephemeral": 42, "service/appservice/subscriber": 42,
    "service/appservice/client": 42,
    # data types of rooms (PDU, current state) the commit pipeline and the registry read
    "service/room_state": 25,
    "service/blocking": 20, "service/progress": 20,
    "error": 15, "store": 10, "metrics": 8, "config": 5,
}

# Folders of service/ whose sub-modules are units of their own (two floors in one folder).
SPLIT = ("peer", "appservice")

USE = re.compile(r"\buse\s+([^;]+);", re.S)
INLINE = re.compile(r"\bcrate::[A-Za-z_][\w:]*")
TEST_FILE = re.compile(r"^(tests|test_\w+|\w+_tests)\.rs$")


def module_path(path):
    rel = os.path.relpath(path, SRC)[:-3].split(os.sep)
    if rel[-1] == "mod":
        rel = rel[:-1]
    return rel


def expand(prefix, tree):
    """`a::{b, c::{d, e}}` -> [[a, b], [a, c, d], [a, c, e]]"""
    tree = tree.strip()
    m = re.match(r"^([\w:]*?)::\{(.*)\}$", tree, re.S)
    if not m:
        head = tree.split(" as ")[0].strip()
        return [prefix + [p for p in head.split("::") if p]]
    base = [p for p in m.group(1).split("::") if p]
    parts, depth, cur = [], 0, ""
    for ch in m.group(2):
        depth += ch == "{"
        depth -= ch == "}"
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    out = []
    for p in parts:
        if p.strip() and p.strip() != "self":
            out += expand(prefix + base, p)
        elif p.strip() == "self":
            out.append(prefix + base)
    return out


def is_module(parts):
    base = os.path.join(SRC, *parts)
    return os.path.exists(base + ".rs") or os.path.exists(os.path.join(base, "mod.rs"))


def unit(path):
    """The unit a path lands in: an item of service/mod.rs (e.g. `blocking`) is `service`."""
    if not path:
        return None
    if path[0] == "service" and len(path) > 1:
        if not is_module(path[:2]):
            return "service"
        if path[1] in SPLIT and len(path) > 2 and is_module(path[:3]):
            return f"service/{path[1]}/{path[2]}"
        return "service/" + path[1]
    return path[0]


def targets(me, src):
    for m in USE.finditer(src):
        for p in expand([], m.group(1)):
            if not p:
                continue
            if p[0] == "crate":
                yield p[1:]
            elif p[0] in ("self", "super"):
                cur, i = list(me), 0
                if p[0] == "super":
                    while i < len(p) and p[i] == "super":
                        cur, i = cur[:-1], i + 1
                else:
                    i = 1
                yield cur + p[i:]
    for m in INLINE.finditer(src):
        yield [p for p in m.group(0).split("::")[1:] if p]


def strip_test_items(src):
    """Drops each `#[cfg(test)]` item: a `mod x;` or `use ...;` declaration, or a braced item
    (an inline test module, a test-only fn or impl) up to its matching brace."""
    out, i = [], 0
    while True:
        at = src.find("#[cfg(test)]", i)
        if at < 0:
            out.append(src[i:])
            return "".join(out)
        out.append(src[i:at])
        semi, brace = src.find(";", at), src.find("{", at)
        if brace < 0 or (0 <= semi < brace):
            i = semi + 1 if semi >= 0 else len(src)
            continue
        depth, j = 0, brace
        while j < len(src):
            depth += src[j] == "{"
            depth -= src[j] == "}"
            j += 1
            if depth == 0:
                break
        i = j


def violations():
    found = set()
    unknown = set()
    for d, _, files in os.walk(SRC):
        for fn in files:
            if not fn.endswith(".rs") or TEST_FILE.match(fn):
                continue
            path = os.path.join(d, fn)
            me = module_path(path)
            src = open(path, encoding="utf-8").read()
            src = strip_test_items(re.sub(r"//[^\n]*", "", src))
            a = unit(me)
            for tgt in targets(me, src):
                b = unit(tgt)
                if not b or b == a:
                    continue
                for u in (a, b):
                    if u not in RANKS:
                        unknown.add(u)
                if a in RANKS and b in RANKS and RANKS[b] > RANKS[a]:
                    found.add(f"{os.path.relpath(path, SRC)}: {a} -> {b}")
    return found, unknown


def main():
    found, unknown = violations()
    if unknown:
        print("units with no rank (add them to RANKS in scripts/check-layers.py):")
        for u in sorted(unknown):
            print("  " + u)
        return 1
    if "--update" in sys.argv:
        with open(BASELINE, "w") as f:
            f.write("# Upward imports that predate scripts/check-layers.py; only ever shrinks.\n")
            f.writelines(line + "\n" for line in sorted(found))
        print(f"{len(found)} upward imports written to {os.path.relpath(BASELINE, ROOT)}")
        return 0
    baseline = set()
    if os.path.exists(BASELINE):
        baseline = {
            line.strip() for line in open(BASELINE) if line.strip() and not line.startswith("#")
        }
    new, stale = sorted(found - baseline), sorted(baseline - found)
    for line in new:
        print("upward import: " + line)
    for line in stale:
        print("fixed, remove from scripts/layers-baseline.txt: " + line)
    print(f"layers: {len(found)} upward imports ({len(new)} new, {len(stale)} stale baseline lines)")
    return 1 if new or stale else 0


if __name__ == "__main__":
    sys.exit(main())
