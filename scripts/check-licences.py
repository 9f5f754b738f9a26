#!/usr/bin/env python3
"""`make licences`: the licences of Nexrel's runtime dependencies; fails on GPL or AGPL.

Runtime dependencies are the packages that [project].dependencies in pyproject.toml require,
with their extras, transitively, as installed in this interpreter's environment (the dev
extras are not part of what Nexrel ships, so they are not checked). Licences come from
pip-licenses --from=mixed: the License-Expression (PEP 639) or the License field, and the
trove classifiers where those say UNKNOWN. A licence still unknown after that fails too,
since it can't be checked.

LGPL fails as well unless the package is in LGPL_ACCEPTED below, with the reason.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent

# LGPL packages accepted, each decided on its own. psycopg (3) is LGPL-3.0-only: Nexrel
# imports it unmodified as a separately installed library (dynamic linking in LGPL terms);
# Nexrel's source neither contains nor modifies it, and installs get it from PyPI as its own
# package, which a user can always replace with another build. LGPL-3.0 puts no terms on the
# code of an application that uses a library that way. (Should Nexrel ever be shipped as a
# bundle, an image or installer, the bundle must carry psycopg's licence and keep it
# replaceable: LGPL-3.0 section 4.) psycopg-binary is the same project's compiled build of it
# (psycopg[binary]), same licence. Any other LGPL package fails until it gets a line here.
LGPL_ACCEPTED = {
    "psycopg": "used unmodified as a separately installed, replaceable library",
    "psycopg-binary": "psycopg's compiled build, same terms as psycopg",
}

AGPL = re.compile(r"\bAGPL|Affero", re.IGNORECASE)
GPL = re.compile(r"\bGPL|GNU General Public", re.IGNORECASE)
LGPL = re.compile(r"\bLGPL|Lesser General Public|Library General Public", re.IGNORECASE)
# Most restrictive first.
SEVERITY = ("AGPL", "GPL", "LGPL", None)


def copyleft_kind(licence: str) -> str | None:
    """'AGPL', 'GPL', 'LGPL' or None (permissive or weak file-level copyleft such as MPL).

    An SPDX expression "A OR B" is a choice: it counts as its least restrictive alternative.
    Anything else naming several licences (AND, or classifiers joined by ';') is the worst.
    """
    alternatives = [licence] if "(" in licence else re.split(r"\s+OR\s+", licence)
    kinds = []
    for alternative in alternatives:
        if AGPL.search(alternative):
            kinds.append("AGPL")
        elif GPL.search(alternative):
            kinds.append("GPL")
        elif LGPL.search(alternative):
            kinds.append("LGPL")
        else:
            kinds.append(None)
    return max(kinds, key=SEVERITY.index)


def runtime_distributions() -> dict[str, str]:
    """{canonical name: version} of every installed package the runtime dependencies need."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    todo = [Requirement(spec) for spec in project["dependencies"]]
    todo = [req for req in todo if req.marker is None or req.marker.evaluate({"extra": ""})]
    found: dict[str, str] = {}
    done: set[tuple[str, str]] = set()  # (package, extra), "" for its own requirements
    missing = []
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            missing.append(str(req))
            continue
        found[name] = dist.version
        for extra in {"", *req.extras} - {e for n, e in done if n == name}:
            done.add((name, extra))
            for spec in dist.requires or []:
                sub = Requirement(spec)
                if sub.marker is None or sub.marker.evaluate({"extra": extra}):
                    todo.append(sub)
    if missing:
        sys.exit(f"licences: not installed: {', '.join(sorted(missing))} (run `make setup`)")
    found.pop(canonicalize_name(project["name"]), None)
    return found


def licences() -> dict[str, str]:
    """{canonical name: licence} from pip-licenses, for every installed package."""
    out = subprocess.run(
        [sys.executable, "-m", "piplicenses", "--from=mixed", "--format=json", "--with-system"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return {canonicalize_name(row["Name"]): row["License"] for row in json.loads(out)}


def main() -> int:
    runtime = runtime_distributions()
    known = licences()
    problems = []
    width = max(map(len, runtime))
    print(f"Licences of the {len(runtime)} runtime dependencies (pyproject.toml, transitively):")
    for name in sorted(runtime):
        licence = " ".join(known.get(name, "UNKNOWN").split())
        kind = copyleft_kind(licence)
        if licence == "UNKNOWN" or not licence:
            note = "FAIL: licence unknown (no License-Expression, License or classifier)"
        elif kind in ("AGPL", "GPL"):
            note = f"FAIL: {kind}"
        elif kind == "LGPL" and name in LGPL_ACCEPTED:
            note = f"LGPL, accepted: {LGPL_ACCEPTED[name]}"
        elif kind == "LGPL":
            note = "FAIL: LGPL, not accepted (decide, then add it to LGPL_ACCEPTED with why)"
        else:
            note = ""
        if note.startswith("FAIL"):
            problems.append(f"{name} {runtime[name]} ({licence}): {note[6:]}")
        print(f"  {name:{width}}  {runtime[name]:12}  {licence}" + (f"  [{note}]" if note else ""))
    if problems:
        print("\nlicence check FAILED: runtime dependencies under licences Nexrel can't ship with:")
        for problem in problems:
            print(f"  {problem}")
        return 1
    print("licence check passed: no GPL or AGPL (nor unaccepted LGPL) runtime dependency")
    return 0


if __name__ == "__main__":
    sys.exit(main())
