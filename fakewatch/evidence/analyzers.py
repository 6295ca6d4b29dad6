"""The analyzers: what a file's metadata says about where it came from.

Each returns a list of :class:`Evidence` with a strength: ``proves_ai`` (a generator wrote it: generation
parameters, its own tag, an AI ``DigitalSourceType``), ``suggests_ai`` (a generator is named where anyone
could have typed it), ``suggests_camera`` (camera EXIF: easily copied, so it never flips a label).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fakewatch.evidence.containers import Blocks
from fakewatch.evidence.exif import read_exif, read_iptc, text_of
from fakewatch.values import EvidenceStrength, choices

STRENGTHS = choices(EvidenceStrength)  # strongest first
GENERATORS = re.compile(
    r"\b(stable[ -]?diffusion|sdxl|midjourney|dall[-·\s]?e|openai|novelai|comfyui|invokeai|fooocus|automatic1111|"
    r"forge|swarmui|draw things|adobe firefly|firefly|imagen|gemini|nano banana|leonardo\.?ai|ideogram|flux\.?1?|"
    r"bing image creator|dreamstudio|nightcafe|craiyon|runway|playground ?ai|krea)\b", re.IGNORECASE)
AI_SOURCE_TYPES = ("trainedAlgorithmicMedia", "compositeWithTrainedAlgorithmicMedia", "algorithmicMedia",
                   "compositeSynthetic")
MIDJOURNEY_JOB = re.compile(r"Job ID:\s*([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})", re.IGNORECASE)


@dataclass(frozen=True)
class Evidence:
    analyzer: str
    version: int
    kind: str
    strength: str
    summary: str
    details: dict[str, Any] = field(default_factory=dict)


class Unreadable(ValueError):
    """Text that claims to be JSON (generator metadata) but cannot be read within bounds."""


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except RecursionError as exc:
        raise Unreadable("JSON nested too deeply to read") from exc
    except ValueError:
        return None


def _a1111(text: str) -> dict[str, str] | None:
    """AUTOMATIC1111/Forge `parameters`: prompt lines, then `Steps: 20, Sampler: ..., Model: name, ...`."""
    start = [match.start() for match in re.finditer(r"Steps:\s*\d+", text)]
    if not start:
        return None
    settings = text[start[-1]:]
    found = dict(re.findall(r"([A-Za-z][A-Za-z0-9 _-]{0,40}):\s*(\"[^\"]*\"|[^,\n]*)", settings))
    found = {key.strip(): value.strip().strip('"') for key, value in found.items()}
    return found if len(set(found) & {"Sampler", "CFG scale", "Seed", "Size", "Model", "Model hash"}) >= 2 else None


def _comfy_models(graph: Any) -> list[str]:
    """Checkpoint, UNet and LoRA names in a ComfyUI `prompt` (API format) or `workflow` (UI format)."""
    names: list[str] = []
    nodes = graph.values() if isinstance(graph, dict) and "nodes" not in graph else (
        graph.get("nodes", []) if isinstance(graph, dict) else [])
    for node in list(nodes)[:2000]:
        if not isinstance(node, dict):
            continue
        inputs = node.get("inputs")
        if isinstance(inputs, dict):
            names += [str(inputs[key]) for key in ("ckpt_name", "unet_name", "model_name", "lora_name")
                      if isinstance(inputs.get(key), str)]
        values = node.get("widgets_values")
        if isinstance(values, list) and str(node.get("type", "")).startswith(("Checkpoint", "UNET", "Lora")):
            names += [str(value) for value in values[:1] if isinstance(value, str)]
    return list(dict.fromkeys(names))


def generation_parameters(blocks: Blocks, exif: dict[str, bytes]) -> list[Evidence]:
    """Generator UIs' own records: A1111/Forge, ComfyUI, InvokeAI, NovelAI, Fooocus, SwarmUI, Midjourney."""
    text = dict(blocks.text)
    if "UserComment" in exif:  # A1111 and Forge write their parameters there in JPEG and WebP
        text.setdefault("parameters", text_of(exif["UserComment"]))
    found: list[Evidence] = []

    def prove(tool: str, model: str | None, details: dict[str, Any]) -> None:
        summary = f"{tool} generation parameters" + (f", model {model}" if model else "")
        found.append(Evidence("parameters", 1, "generator_parameters", "proves_ai", summary,
                              {"tool": tool, "model": model, **details}))

    parameters = text.get("parameters", "")
    as_json = _json(parameters) if parameters.lstrip().startswith("{") else None
    if isinstance(as_json, dict) and ("sui_image_params" in as_json):
        image = as_json["sui_image_params"] if isinstance(as_json["sui_image_params"], dict) else {}
        prove("SwarmUI", str(image.get("model")) if image.get("model") else None, {"keys": sorted(image)[:40]})
    elif "fooocus_scheme" in text or (isinstance(as_json, dict) and any("fooocus" in str(value).lower()
                                                                          for value in as_json.values())):
        model = as_json.get("base_model") or as_json.get("Base Model") if isinstance(as_json, dict) else None
        prove("Fooocus", str(model) if model else None, {})
    elif (settings := _a1111(parameters)) is not None:
        prove("AUTOMATIC1111/Forge", settings.get("Model"), {"settings": settings, "prompt": parameters[:500]})
    for key in ("prompt", "workflow"):
        graph = _json(text[key]) if key in text else None
        if isinstance(graph, dict) and (key == "workflow" or any(isinstance(node, dict) and "class_type" in node
                                                                  for node in list(graph.values())[:2000])):
            models = _comfy_models(graph)
            prove("ComfyUI", ", ".join(models[:3]) or None, {"source": key, "models": models[:20]})
            break
    for key in ("invokeai_metadata", "invokeai_graph", "sd-metadata", "Dream"):
        if key in text:
            metadata = _json(text[key])
            model = metadata.get("model") if isinstance(metadata, dict) else None
            name = model.get("name") or model.get("model_name") if isinstance(model, dict) else model
            prove("InvokeAI", str(name) if name else None, {"key": key})
            break
    software = text.get("Software", "")
    comment = _json(text.get("Comment", "")) if text.get("Comment", "").lstrip().startswith("{") else None
    if software.startswith("NovelAI") or (isinstance(comment, dict) and "NovelAI" in text.get("Source", "")):
        prove("NovelAI", text.get("Source") or None, {"software": software})
    job = MIDJOURNEY_JOB.search(text.get("Description", "")[:10000])
    if job:
        prove("Midjourney", None, {"job_id": job.group(1), "author": text.get("Author", "")[:200]})
    return found


def xmp(blocks: Blocks) -> list[Evidence]:
    """IPTC DigitalSourceType in XMP packets, and generator names in CreatorTool."""
    found: list[Evidence] = []
    for packet in blocks.xmp:
        lowered = packet.lower()  # a literal search is many times faster than a case-blind one on megabytes
        sources = sorted({value for value in AI_SOURCE_TYPES
                          if re.search(r"digitalsourcetype/" + value.lower() + r"\b", lowered)})
        if sources:
            found.append(Evidence("xmp", 1, "xmp_digital_source_type", "proves_ai",
                                  f"XMP DigitalSourceType {sources[0]}", {"digital_source_types": sources}))
        tools = re.findall(r"CreatorTool(?:=\"|>)([^\"<]{1,200})", packet)
        named = [tool for tool in tools if GENERATORS.search(tool)]
        if named:
            found.append(Evidence("xmp", 1, "xmp_creator_tool", "suggests_ai", f"XMP CreatorTool {named[0]}",
                                  {"creator_tools": named[:10]}))
    return found


def exif_tags(exif: dict[str, bytes], iptc: dict[str, str]) -> list[Evidence]:
    """Generator tags in EXIF and IPTC: a generator's own tag proves it, a name typed anywhere suggests it."""
    found: list[Evidence] = []
    maker_note = exif.get("MakerNote", b"")[:200]
    comment = text_of(exif["UserComment"]) if "UserComment" in exif else ""
    if maker_note.startswith(b"OpenAI--ImageGeneration") or comment.startswith("Made with OpenAI Labs"):
        found.append(Evidence("exif", 1, "exif_generator_tag", "proves_ai", "DALL-E download (OpenAI EXIF tag)",
                              {"maker_note": maker_note.decode("latin-1", errors="replace"), "user_comment": comment}))
    software = text_of(exif["Software"]) if "Software" in exif else ""
    if software and GENERATORS.search(software):
        found.append(Evidence("exif", 1, "exif_generator_tag", "proves_ai", f"EXIF Software {software[:80]}",
                              {"software": software[:200]}))
    fields: dict[str, str] = {tag: text_of(exif[tag]) for tag in ("Artist", "ImageDescription", "Copyright")
                              if tag in exif}
    fields.update({f"IPTC {key}": value for key, value in iptc.items()})
    named = {name: value for name, value in fields.items() if GENERATORS.search(value[:2000])}
    if named:
        where, value = next(iter(named.items()))
        found.append(Evidence("exif", 1, "exif_generator_name", "suggests_ai", f"{where} names {value[:80]}",
                              {key: value[:300] for key, value in named.items()}))
    return found


def camera(exif: dict[str, bytes]) -> list[Evidence]:
    """Camera make, model, lens and maker notes: a weak hint of camera origin."""
    make, model = (text_of(exif[tag])[:80] if tag in exif else "" for tag in ("Make", "Model"))
    if not (make or model) or GENERATORS.search(f"{make} {model}"):
        return []
    lens = text_of(exif["LensModel"])[:80] if "LensModel" in exif else ""
    details = {"make": make, "model": model, "lens": lens, "maker_note": "MakerNote" in exif,
               "taken": text_of(exif["DateTimeOriginal"]) if "DateTimeOriginal" in exif else ""}
    summary = "Camera EXIF: " + " ".join(part for part in (make, model) if part) + (f", lens {lens}" if lens else "")
    return [Evidence("camera", 1, "camera_exif", "suggests_camera", summary, details)]


def metadata_analyzers(blocks: Blocks) -> list[tuple[str, int, Callable[[], list[Evidence]]]]:
    """The analyzers of one file's blocks, ready to run (EXIF and IPTC are read here, once, for all of them;
    :class:`~fakewatch.errors.MetadataDamaged` when that goes over the file's budget)."""
    exif: dict[str, bytes] = {}
    for blob in blocks.exif:
        exif.update(read_exif(blob, blocks.notes, blocks.budget))
    iptc: dict[str, str] = {}
    for resources in blocks.iptc:
        iptc.update(read_iptc(resources))
    return [("parameters", 1, lambda: generation_parameters(blocks, exif)), ("xmp", 1, lambda: xmp(blocks)),
            ("exif", 1, lambda: exif_tags(exif, iptc)), ("camera", 1, lambda: camera(exif))]
