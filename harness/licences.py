"""Licence policy for what the image ships: every component of a CycloneDX SBOM must be under a
licence that allows distributing it beside MPL-2.0 code.

Licences come as SPDX ids, SPDX expressions or free names (Trove classifiers among them); names are
mapped to ids by a table, expressions are evaluated (OR: one acceptable side is enough; AND: both
must be). A component that declares several licences must have all of them acceptable. Anything
unknown fails until it is reviewed: a reviewed component goes in REVIEWED with the licence it is
actually under.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from license_expression import (
    ExpressionError,
    LicenseSymbol,
    LicenseWithExceptionSymbol,
    get_spdx_licensing,
)

# Permissive, weak copyleft or MPL itself: fine to distribute in the image beside MPL-2.0 code.
# LGPL: the packages are dynamically loaded Python modules, which the LGPL allows to combine.
ACCEPTABLE = frozenset(
    name.lower()
    for name in (
        "0BSD",
        "Apache-1.1",
        "Apache-2.0",
        "BSD-1-Clause",
        "BSD-2-Clause",
        "BSD-3-Clause",
        "BSD-3-Clause-Clear",
        "BSD-4-Clause",
        "BSL-1.0",
        "CC0-1.0",
        "CNRI-Python",
        "HPND",
        "ISC",
        "LGPL-2.0-only",
        "LGPL-2.0-or-later",
        "LGPL-2.1-only",
        "LGPL-2.1-or-later",
        "LGPL-3.0-only",
        "LGPL-3.0-or-later",
        "MIT",
        "MIT-0",
        "MIT-CMU",
        "MPL-1.1",
        "MPL-2.0",
        "PSF-2.0",
        "Python-2.0",
        "Unicode-3.0",
        "Unicode-DFS-2016",
        "Unlicense",
        "X11",
        "Zlib",
        "ZPL-2.0",
        "ZPL-2.1",
    )
)

# Classifiers and the free names packages put in their License field, lowercased, to SPDX ids.
# A classifier without a version (Apache, BSD) names a family whose every member is acceptable.
NAMES = {
    "license :: osi approved :: apache software license": "Apache-2.0",
    "license :: osi approved :: bsd license": "BSD-3-Clause",
    "license :: osi approved :: isc license (iscl)": "ISC",
    "license :: osi approved :: mit license": "MIT",
    "license :: osi approved :: mit no attribution license (mit-0)": "MIT-0",
    "license :: osi approved :: mozilla public license 2.0 (mpl 2.0)": "MPL-2.0",
    "license :: osi approved :: python software foundation license": "PSF-2.0",
    "license :: osi approved :: the unlicense (unlicense)": "Unlicense",
    "license :: osi approved :: zope public license": "ZPL-2.1",
    "license :: osi approved :: zlib/libpng license": "Zlib",
    "license :: osi approved :: historical permission notice and disclaimer (hpnd)": "HPND",
    "license :: osi approved :: boost software license 1.0 (bsl-1.0)": "BSL-1.0",
    "license :: osi approved :: gnu lesser general public license v2 (lgplv2)": "LGPL-2.0-only",
    "license :: osi approved :: gnu lesser general public license v2 or later (lgplv2+)": "LGPL-2.0-or-later",
    "license :: osi approved :: gnu lesser general public license v3 (lgplv3)": "LGPL-3.0-only",
    "license :: osi approved :: gnu lesser general public license v3 or later (lgplv3+)": "LGPL-3.0-or-later",
    "license :: osi approved :: gnu library or lesser general public license (lgpl)": "LGPL-2.0-or-later",
    "license :: osi approved :: gnu general public license (gpl)": "GPL-2.0-or-later",
    "license :: osi approved :: gnu general public license v2 (gplv2)": "GPL-2.0-only",
    "license :: osi approved :: gnu general public license v2 or later (gplv2+)": "GPL-2.0-or-later",
    "license :: osi approved :: gnu general public license v3 (gplv3)": "GPL-3.0-only",
    "license :: osi approved :: gnu general public license v3 or later (gplv3+)": "GPL-3.0-or-later",
    "license :: osi approved :: gnu affero general public license v3": "AGPL-3.0-only",
    "license :: osi approved :: gnu affero general public license v3 or later (agplv3+)": "AGPL-3.0-or-later",
    "license :: other/proprietary license": "LicenseRef-proprietary",
    "mit license": "MIT",
    "the mit license": "MIT",
    "bsd": "BSD-3-Clause",
    "bsd license": "BSD-3-Clause",
    "new bsd license": "BSD-3-Clause",
    "apache 2.0": "Apache-2.0",
    "apache license 2.0": "Apache-2.0",
    "apache license, version 2.0": "Apache-2.0",
    "apache software license": "Apache-2.0",
    "mpl 2.0": "MPL-2.0",
    "mozilla public license 2.0 (mpl 2.0)": "MPL-2.0",
    "psf": "PSF-2.0",
    "psf license": "PSF-2.0",
}

# Classifiers that qualify a licence without being one: skipped.
QUALIFIERS = frozenset({"license :: osi approved", "license :: dfsg approved"})

# Components whose metadata does not say their licence clearly, each with the SPDX id of the licence
# its source distribution actually carries, as reviewed. Keyed by lowercased package name.
REVIEWED: dict[str, str] = {}

# Exceptions that make a copyleft licence acceptable here (they allow combining with other code).
ACCEPTABLE_WITH = frozenset(
    {
        ("gpl-2.0-only", "classpath-exception-2.0"),
        ("gpl-2.0-or-later", "classpath-exception-2.0"),
        ("gpl-3.0-only", "gcc-exception-3.1"),
        ("gpl-3.0-or-later", "gcc-exception-3.1"),
    }
)

LICENSING = get_spdx_licensing()
# Strong copyleft and proprietary licences: named as such when they fail.
INCOMPATIBLE = re.compile(r"\b(A?GPL|SSPL)|proprietary", re.IGNORECASE)


@dataclass(frozen=True)
class Problem:
    """A component whose licence does not pass, and why."""

    component: str
    licence: str
    reason: str

    def __str__(self) -> str:
        return f"{self.component}: {self.licence or '(no licence)'}: {self.reason}"


def normalise(name: str) -> str:
    """An SPDX id or expression for a declared name; the name itself when the table does not know it."""
    return NAMES.get(" ".join(name.lower().split()), name.strip())


def symbol_acceptable(symbol: LicenseSymbol) -> bool:
    """Whether one licence of an expression, with its exception if it has one, is acceptable."""
    if isinstance(symbol, LicenseWithExceptionSymbol):
        licence, exception = symbol.license_symbol.key.lower(), symbol.exception_symbol.key.lower()
        return (licence, exception) in ACCEPTABLE_WITH or licence in ACCEPTABLE
    return symbol.key.lower() in ACCEPTABLE


def acceptable(expression: str) -> bool:
    """Whether an SPDX expression allows distribution here: OR needs one acceptable side, AND both.

    Known ids are read case-insensitively and the deprecated ``+`` as ``-or-later``; an unknown id
    (``LicenseRef-…``) is not acceptable. A malformed expression raises ValueError.
    """
    try:
        parsed = LICENSING.parse(expression, validate=False, strict=True)
    except ExpressionError as error:
        raise ValueError(f"malformed licence expression {expression!r}: {error}") from error
    verdicts = {
        symbol: LICENSING.TRUE if symbol_acceptable(symbol) else LICENSING.FALSE
        for symbol in LICENSING.license_symbols(parsed, unique=True, decompose=False)
    }
    return parsed.subs(verdicts).simplify() == LICENSING.TRUE


def declared_licences(component: dict) -> list[str]:
    """Each licence a CycloneDX component declares, as an SPDX id or expression where possible."""
    found = []
    for entry in component.get("licenses") or []:
        if "expression" in entry:
            found.append(entry["expression"])
        else:
            licence = entry.get("license", {})
            name = licence.get("name", "")
            if " ".join(name.lower().split()) not in QUALIFIERS:
                found.append(licence.get("id") or normalise(name))
    return [licence for licence in found if licence]


def components(sbom: dict) -> Iterator[dict]:
    """Every component of an SBOM, nested ones included."""
    pending = list(sbom.get("components") or [])
    while pending:
        component = pending.pop(0)
        yield component
        pending.extend(component.get("components") or [])


def check(sbom: dict, reviewed: dict[str, str] = REVIEWED) -> list[Problem]:
    """The components of ``sbom`` whose licence is missing, unknown or incompatible with MPL-2.0."""
    problems = []
    for component in components(sbom):
        name = f"{component.get('name')} {component.get('version', '')}".strip()
        licences = [reviewed[key]] if (key := str(component.get("name", "")).lower()) in reviewed else []
        for licence in licences or declared_licences(component) or [""]:
            if not licence:
                problems.append(
                    Problem(name, licence, "no licence declared; review it and add it to REVIEWED")
                )
                continue
            try:
                if acceptable(licence):
                    continue
                reason = (
                    "copyleft or proprietary: incompatible with distribution beside MPL-2.0 code"
                    if INCOMPATIBLE.search(licence)
                    else "not a known acceptable licence; review it, then add it to REVIEWED"
                )
            except ValueError:
                reason = "neither an SPDX expression nor a known licence name; review it"
            problems.append(Problem(name, licence, reason))
    return problems
