"""C2PA Content Credentials, read and validated offline with ``c2pa-python``.

Integrity is what counts: a manifest whose hashes and signature validate and that declares an AI source
(``digitalSourceType`` trainedAlgorithmicMedia and kin, in the active manifest or any manifest up its
ingredient chain) proves the file is AI-generated. A hash or signature failure (pixels edited after
signing) proves nothing and is recorded as ``c2pa_invalid``. Whether the signer is trusted is a fact about
the signer, shown beside it: untrusted or expired credentials (``signingCredential.*``) do not break a
manifest. With ``c2pa_strict`` on, only signers under the configured trust anchors prove; others suggest.
Nothing is fetched: remote manifests and OCSP are off.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from fakewatch.evidence.analyzers import AI_SOURCE_TYPES, Evidence

VERSION = 1
MIME = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp"}
MAX_MANIFESTS = 64


@dataclass(frozen=True)
class C2paOptions:
    trust_anchors: str = ""  # PEM file of trusted roots; empty: no signer is trusted
    strict: bool = False  # only trusted signers prove; the rest suggest


@lru_cache(maxsize=4)
def _context(anchors_file: str) -> Any:
    import c2pa

    settings: dict[str, Any] = {"verify": {"verify_trust": True, "remote_manifest_fetch": False,
                                           "ocsp_fetch": False}}
    if anchors_file:
        settings["trust"] = {"trust_anchors": Path(anchors_file).read_text(encoding="utf-8")}
    return c2pa.Context.from_dict(settings)


def _actions(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for assertion in manifest.get("assertions", [])[:200]:
        if str(assertion.get("label", "")).startswith("c2pa.actions"):
            found += [action for action in (assertion.get("data") or {}).get("actions", [])[:200]
                      if isinstance(action, dict)]
    return found


def _chain(store: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The active manifest, then the manifests of its ingredients, breadth first, each once."""
    manifests = store.get("manifests") or {}
    queue: list[Any] = [store.get("active_manifest")]
    seen: set[str] = set()
    chain: list[tuple[str, dict[str, Any]]] = []
    while queue and len(chain) < MAX_MANIFESTS:
        label = queue.pop(0)
        if not isinstance(label, str) or label in seen or label not in manifests:
            continue
        seen.add(label)
        chain.append((label, manifests[label]))
        queue += [ingredient.get("active_manifest") for ingredient in manifests[label].get("ingredients", [])[:50]
                  if isinstance(ingredient, dict)]
    return chain


def _generator(manifest: dict[str, Any]) -> str:
    info = manifest.get("claim_generator_info")
    if isinstance(info, list) and info and isinstance(info[0], dict):
        return " ".join(str(info[0].get(key, "")) for key in ("name", "version")).strip()
    return str(manifest.get("claim_generator") or "unknown tool")


def read_credentials(data: bytes, kind: str, options: object = None) -> list[Evidence]:
    """What the file's C2PA manifest store says, validated; [] when it has none."""
    import c2pa

    chosen = options if isinstance(options, C2paOptions) else C2paOptions()
    if kind not in MIME:
        return []
    reader = c2pa.Reader.try_create(MIME[kind], io.BytesIO(data), context=_context(chosen.trust_anchors))
    if reader is None:  # the file has a JUMBF box (that is why we are here), but no manifest in it
        return [Evidence("c2pa", VERSION, "c2pa_invalid", "none", "C2PA/JUMBF data present, but no manifest in it")]
    with reader:
        store = json.loads(reader.json())
    chain = _chain(store)
    if not chain:
        return [Evidence("c2pa", VERSION, "c2pa_invalid", "none", "C2PA manifest store without an active manifest")]
    results = (store.get("validation_results") or {}).get("activeManifest") or {}
    failures = [str(item.get("code")) for item in results.get("failure", []) if isinstance(item, dict)]
    successes = [str(item.get("code")) for item in results.get("success", []) if isinstance(item, dict)]
    broken = [code for code in failures if not code.startswith("signingCredential.")]
    trusted = "signingCredential.trusted" in successes
    active = chain[0][1]
    signature = active.get("signature_info") or {}
    signer = signature.get("common_name") or signature.get("issuer") or "unknown signer"
    sources = [(label, action.get("action"), str(action.get("digitalSourceType", "")))
               for label, manifest in chain for action in _actions(manifest)]
    ai = [(label, action, source) for label, action, source in sources
          if source.rsplit("/", 1)[-1] in AI_SOURCE_TYPES]
    details = {"claim_generator": _generator(active), "signer": signer, "issuer": signature.get("issuer"),
               "signed_at": signature.get("time"), "trusted_signer": trusted, "validation_state":
               store.get("validation_state"), "failures": failures[:20], "manifests": [label for label, _ in chain],
               "actions": [{"manifest": label, "action": action, "digitalSourceType": source}
                           for label, action, source in sources[:50]]}
    who = f"signed by {signer} ({'trusted' if trusted else 'untrusted'} signer)"
    if broken:
        return [Evidence("c2pa", VERSION, "c2pa_invalid", "none",
                         f"C2PA manifest from {details['claim_generator']} fails validation "
                         f"({', '.join(broken[:3])}): proves nothing; {who}", details)]
    if ai:
        label, action, source = ai[0]
        made_by = _generator(dict(chain)[label])
        where = (f"by {made_by}" if label == chain[0][0]
                 else f"in an ingredient made by {made_by}, edited in {details['claim_generator']}")
        strength = "suggests_ai" if chosen.strict and not trusted else "proves_ai"
        return [Evidence("c2pa", VERSION, "c2pa_ai_source", strength,
                         f"C2PA {action} {source.rsplit('/', 1)[-1]} {where}, {who}", details)]
    return [Evidence("c2pa", VERSION, "c2pa_manifest", "none",
                     f"C2PA manifest from {details['claim_generator']}, no AI source declared; {who}", details)]
