"""Evidence beside the classifier: what a file's own bytes say about where it came from.

:func:`analyze` reads a file's metadata once (generation parameters, XMP, EXIF and IPTC, camera hints,
C2PA Content Credentials) without any network access and returns :class:`Evidence` records. An analyzer
that fails returns one ``error`` record instead of raising: the image is classified all the same.
Every metadata read of one file shares a :class:`~fakewatch.evidence.budget.Budget` (bytes inflated,
EXIF entries visited, time); a limit met stops the reading and is recorded as ``metadata_damaged``.
``proves_ai`` evidence outranks the classifier (:func:`proof`); camera hints never flip a label. Only a
C2PA manifest that validates is signed; everything else that proves (generator parameters, XMP, EXIF,
the watermark) anyone can write, and :func:`provenance` says which it is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fakewatch.errors import MetadataDamaged
from fakewatch.evidence.analyzers import STRENGTHS, Evidence, metadata_analyzers
from fakewatch.evidence.budget import Budget
from fakewatch.evidence.containers import blocks as read_blocks

C2PA_VERSION = 1
VERSION = "parameters:1,xmp:1,exif:1,camera:1,c2pa:1,watermark:1"  # bump an analyzer's number when it learns more

if TYPE_CHECKING:
    import numpy as np

    from fakewatch import jpeg

__all__ = ["STRENGTHS", "VERSION", "Evidence", "analyze", "proof", "provenance", "signed"]
SOURCES = {"c2pa": "signed C2PA credentials", "parameters": "unsigned generator parameters",
           "xmp": "unsigned XMP metadata", "exif": "unsigned EXIF tag", "watermark": "unsigned invisible watermark"}


def analyze(data: bytes, kind: str | None, c2pa_options: object = None,
            rgb: np.ndarray | None = None, layout: jpeg.Layout | None = None) -> list[Evidence]:
    """Every analyzer's findings for one file's bytes (``kind`` as :func:`fakewatch.imaging.sniff` says);
    with the decoded picture ``rgb``, also the invisible-watermark reader (not on chroma-subsampled JPEGs,
    which cannot carry the watermark). ``layout``: a JPEG's :func:`fakewatch.jpeg.layout`, when the caller
    walked it already."""
    found: list[Evidence] = []
    structure = read_blocks(data, kind or "", layout, Budget())
    if rgb is not None and not structure.chroma_subsampled:
        from fakewatch.evidence import watermark

        try:
            found += watermark.find(rgb)
        except Exception as exc:  # noqa: BLE001 - a reader bug must not stop classification
            found.append(Evidence("watermark", watermark.VERSION, "watermark_error", "none",
                                  f"watermark reader failed: {exc!r}"[:300]))
    try:
        analyzers = metadata_analyzers(structure) if structure.carries_metadata else []
    except MetadataDamaged as exc:
        structure.note(f"{exc}; the rest was not read")
        analyzers = []
    for name, version, run in analyzers:
        try:
            structure.budget.check_time()
            found += run()
        except MetadataDamaged as exc:
            structure.note(f"{exc}; the rest was not read")
            break
        except Exception as exc:  # noqa: BLE001 - attacker-controlled metadata: record, never crash
            found.append(Evidence(name, version, f"{name}_error", "none", f"{name} analyzer failed: {exc!r}"[:300]))
    if structure.notes:  # limits met and damage seen on the way (after the analyzers: EXIF adds its own)
        notes = list(dict.fromkeys(structure.notes))
        found.append(Evidence("containers", 1, "metadata_damaged", "none",
                              ("metadata: " + "; ".join(notes[:3]))[:300], {"notes": notes[:20]}))
    if structure.c2pa:
        from fakewatch.evidence.c2pa import read_credentials

        try:
            found += read_credentials(data, kind or "", c2pa_options)
        except Exception as exc:  # noqa: BLE001 - a malformed manifest store is the file's problem
            found.append(Evidence("c2pa", C2PA_VERSION, "c2pa_error", "none",
                                  f"C2PA manifest unreadable: {exc}"[:300]))
    return _unique(found)


def _unique(found: list[Evidence]) -> list[Evidence]:
    """One record per (analyzer, version, kind): the strongest first seen."""
    if len(found) < 2:
        return found
    order = {strength: index for index, strength in enumerate(STRENGTHS)}
    kept: dict[tuple[str, int, str], Evidence] = {}
    for item in sorted(found, key=lambda item: order.get(item.strength, 9)):
        kept.setdefault((item.analyzer, item.version, item.kind), item)
    return list(kept.values())


def proof(found: list[Evidence]) -> Evidence | None:
    """The evidence that settles the label (``proves_ai``), signed first, if any."""
    proving = [item for item in found if item.strength == "proves_ai"]
    return next((item for item in proving if signed(item)), proving[0] if proving else None)


def signed(item: Evidence) -> bool:
    """Whether ``item`` is signed provenance: a C2PA manifest whose hashes and signature validate (the
    c2pa analyzer proves nothing otherwise). Text chunks, XMP and EXIF anyone can write."""
    return item.analyzer == "c2pa" and item.strength == "proves_ai"


def provenance(item: Evidence, p_fake: float | None = None, threshold: float | None = None) -> str:
    """Why a proof decided a label, for ``reason_detail``: whether it is signed, what it says, and whether
    the classifier (``p_fake`` against ``threshold``, when it judged the picture) disagrees, e.g.
    "unsigned generator parameters: ComfyUI generation parameters; the classifier disagrees (p 0.01)"."""
    text = f"{SOURCES.get(item.analyzer, 'unsigned ' + item.analyzer + ' metadata')}: {item.summary}"
    if p_fake is not None and threshold is not None and p_fake < threshold:
        text += f"; the classifier disagrees (p {p_fake:.2f})"
    return text
