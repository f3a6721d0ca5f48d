"""Which SPDX ids may be distributed: one answer for the license gate, the release and the audit.

The crawler's gate names every license it accepts with an SPDX id built from the tables below;
the release plan and the license audit ask :func:`acceptable_spdx` again about the id itself, so
an NC/ND/unknown id never passes whatever a ``license_family`` column says (defence in depth: a
manifest written by an older gate, or edited by hand, is judged by its id).

Creative Commons ports are those CC published, per version (from CC's own license RDF,
``cc.licenserdf``, and its current legal-tools data, which adds am/az/ca/ge to 3.0 and ca to
2.1). 4.0 has no ports. 2.1 exists only as ports.
"""

from __future__ import annotations

import re

PUBLIC_DOMAIN_FAMILY = "public-domain"
US_GOVERNMENT = "LicenseRef-US-Government-Work"
PD_DEDICATION = "LicenseRef-CC-PD-Dedication"  # creativecommons.org/licenses/publicdomain/
# Public-domain ids, most authoritative first: a waiver by the rights holder, then a work's
# legal status (17 U.S.C. § 105), then a label and the retired dedication. When an item states
# several, the first of these names it (several public-domain statements are not a conflict).
PUBLIC_DOMAIN = ("CC0-1.0", US_GOVERNMENT, "CC-PDM-1.0", PD_DEDICATION)

CC_VERSIONS = ("1.0", "2.0", "2.1", "2.5", "3.0", "4.0")


def _codes(text: str) -> frozenset[str]:
    return frozenset(text.split())


CC_PORTS: dict[str, frozenset[str]] = {
    "1.0": _codes("br de fi il nl tw"),
    "2.0": _codes("at au be br ca cl de es fr hr it jp kr nl pl tw uk za"),
    "2.1": _codes("au ca es jp"),
    "2.5": _codes("ar au bg br ca ch cn co dk es hr hu il in it mk mt mx my nl pe pl pt "
                  "scotland se si tw za"),
    "3.0": _codes("am at au az br ca ch cl cn cr cz de ec ee eg es fr ge gr gt hk hr ie igo "
                  "it lu nl no nz ph pl pr pt ro rs sg th tw ug us ve vn za"),
    "4.0": frozenset(),
}
# Ported CC licenses that have their own SPDX id; other ports get a LicenseRef- id.
SPDX_PORTED = frozenset({
    "CC-BY-2.5-AU", "CC-BY-3.0-AT", "CC-BY-3.0-AU", "CC-BY-3.0-DE", "CC-BY-3.0-IGO",
    "CC-BY-3.0-NL", "CC-BY-3.0-US", "CC-BY-SA-2.0-UK", "CC-BY-SA-2.1-JP", "CC-BY-SA-3.0-AT",
    "CC-BY-SA-3.0-DE", "CC-BY-SA-3.0-IGO", "CC-BY-NC-3.0-DE", "CC-BY-NC-ND-3.0-DE",
    "CC-BY-NC-ND-3.0-IGO", "CC-BY-NC-SA-2.0-DE", "CC-BY-NC-SA-2.0-FR", "CC-BY-NC-SA-2.0-UK",
    "CC-BY-NC-SA-3.0-DE", "CC-BY-NC-SA-3.0-IGO", "CC-BY-ND-3.0-DE",
})
PERMITTED_CC = {"BY": "by", "BY-SA": "by-sa"}
_CC_ID = re.compile(r"(LicenseRef-)?CC-([A-Z+-]+?)-(\d\.\d)(?:-([A-Z]+))?")


def valid_port(version: str, port: str | None) -> bool:
    """Whether CC published this version in this port (None: the international/generic one)."""
    if version not in CC_PORTS:
        return False
    if port is None:
        return version != "2.1"
    return port.lower() in CC_PORTS[version]


def cc_spdx(elements: str, version: str, port: str | None = None) -> str:
    """The SPDX id of a CC license (``elements`` like ``BY-SA``): a ``LicenseRef-`` id for
    ports the SPDX list does not name."""
    spdx = f"CC-{elements.upper()}-{version}"
    if port:
        spdx = f"{spdx}-{port.upper()}"
        if spdx not in SPDX_PORTED:
            spdx = f"LicenseRef-{spdx}"
    return spdx


def acceptable_spdx(spdx: object) -> str | None:
    """The license family (``public-domain``, ``by``, ``by-sa``) of an SPDX id the gate may
    accept, or None for anything else: NC, ND, ports CC never published, misspelt or
    non-canonical ids, non-strings."""
    if not isinstance(spdx, str) or len(spdx) > 64:
        return None
    if spdx in PUBLIC_DOMAIN:
        return PUBLIC_DOMAIN_FAMILY
    m = _CC_ID.fullmatch(spdx)
    if not m or m[2] not in PERMITTED_CC:
        return None
    _, elements, version, port = m.groups()
    if not valid_port(version, port) or cc_spdx(elements, version, port) != spdx:
        return None
    return PERMITTED_CC[elements]
