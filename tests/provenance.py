"""Files that carry provenance, built by the tests themselves: generator parameters in PNG text chunks,
XMP DigitalSourceType packets, EXIF tags, camera EXIF, and C2PA manifests signed with a certificate chain
made here (ES256, emailProtection), plus the hostile metadata the analyzers must survive."""

from __future__ import annotations

import datetime
import io
import json
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, PngImagePlugin

A1111 = ("a photo of a lighthouse at dusk\nNegative prompt: blurry\nSteps: 30, Sampler: DPM++ 2M Karras, "
         "CFG scale: 7, Seed: 1234, Size: 512x512, Model hash: 31e35c80fc, Model: sd_xl_base_1.0, Version: v1.9.4")
COMFY_PROMPT = {"4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "flux1-dev.safetensors"}},
                "3": {"class_type": "KSampler", "inputs": {"seed": 5, "steps": 20, "model": ["4", 0]}},
                "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "ComfyUI"}}}
AI_SOURCE = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"


def xmp_packet(source: str = AI_SOURCE, creator_tool: str = "") -> bytes:
    tool = f' xmp:CreatorTool="{creator_tool}"' if creator_tool else ""
    return (f'<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">'
            f'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description '
            f'xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" xmlns:xmp="http://ns.adobe.com/xap/1.0/"'
            f' Iptc4xmpExt:DigitalSourceType="{source}"{tool}/></rdf:RDF></x:xmpmeta><?xpacket end="w"?>').encode()


def pixels(seed: int, size: int = 64) -> np.ndarray:
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 1, size)
    image = rng.uniform(40, 200, 3) + rng.uniform(-40, 40, 3) * (ramp[:, None, None] + ramp[None, :, None]) / 2
    return np.clip(image + rng.normal(0, 6, (size, size, 3)), 0, 255).astype(np.uint8)


def png_with_text(rgb: np.ndarray, chunks: dict[str, str]) -> bytes:
    info = PngImagePlugin.PngInfo()
    for key, value in chunks.items():
        info.add_text(key, value)
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "PNG", pnginfo=info)
    return buffer.getvalue()


def jpeg(rgb: np.ndarray, exif: dict[int, str] | None = None, xmp: bytes | None = None, quality: int = 92) -> bytes:
    buffer = io.BytesIO()
    options: dict[str, object] = {"quality": quality}
    if exif:
        tags = Image.Exif()
        for tag, value in exif.items():
            tags[tag] = value
        options["exif"] = tags.tobytes()
    Image.fromarray(rgb).save(buffer, "JPEG", **options)
    data = buffer.getvalue()
    if xmp is not None:  # an APP1 XMP segment right after SOI
        body = b"http://ns.adobe.com/xap/1.0/\x00" + xmp
        data = data[:2] + b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body + data[2:]
    return data


def resaved(data: bytes) -> bytes:
    """What a screenshot or an upload pipeline does: decode and encode again, metadata gone."""
    buffer = io.BytesIO()
    Image.open(io.BytesIO(data)).convert("RGB").save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


@dataclass
class Chain:
    root_pem: bytes
    chain_pem: bytes
    key_pem: bytes


def signing_chain(common_name: str = "Test Generator Signer") -> Chain:
    """A root CA and an ES256 signing certificate under it (EKU emailProtection), valid for a month."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn),
                          x509.NameAttribute(NameOID.ORGANIZATION_NAME, "fakewatch tests")])

    def usage(signing: bool) -> x509.KeyUsage:
        return x509.KeyUsage(digital_signature=signing, content_commitment=False, key_encipherment=False,
                             data_encipherment=False, key_agreement=False, key_cert_sign=not signing,
                             crl_sign=not signing, encipher_only=False, decipher_only=False)

    now = datetime.datetime.now(datetime.UTC)
    root_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    root = (x509.CertificateBuilder().subject_name(name("fakewatch test root")).issuer_name(name("fakewatch test root"))
            .public_key(root_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(usage(False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), critical=False)
            .sign(root_key, hashes.SHA256()))
    leaf = (x509.CertificateBuilder().subject_name(name(common_name)).issuer_name(root.subject)
            .public_key(leaf_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(usage(True), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(leaf_key.public_key()), critical=False)
            .sign(root_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    return Chain(root.public_bytes(pem), leaf.public_bytes(pem) + root.public_bytes(pem),
                 leaf_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))


def c2pa_signed(source: bytes, chain: Chain, mime: str = "image/jpeg", ai: bool = True,
                generator: str = "TestGen Image Model") -> bytes:
    """``source`` with a C2PA manifest: a c2pa.created action, declared AI-generated when ``ai``."""
    import c2pa

    action: dict[str, object] = {"action": "c2pa.created"}
    action["digitalSourceType"] = AI_SOURCE if ai else "http://cv.iptc.org/newscodes/digitalsourcetype/digitalCapture"
    manifest = {"claim_generator_info": [{"name": generator, "version": "1.0"}], "title": "generated",
                "assertions": [{"label": "c2pa.actions", "data": {"actions": [action]}}]}
    signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(c2pa.C2paSigningAlg.ES256, chain.chain_pem, chain.key_pem,
                                                       None))
    output = io.BytesIO()
    with c2pa.Builder(json.dumps(manifest)) as builder:
        builder.sign(signer, mime, io.BytesIO(source), output)
    return output.getvalue()


def c2pa_edited(parent: bytes, chain: Chain, source: bytes) -> bytes:
    """``source`` signed by an editor that opened ``parent`` (an AI-generated, signed file) and adjusted it:
    the AI declaration lives only in the ingredient's manifest."""
    import c2pa

    manifest = {"claim_generator_info": [{"name": "Photo Editor", "version": "2.0"}], "title": "edited",
                "assertions": [{"label": "c2pa.actions", "data": {"actions": [
                    {"action": "c2pa.opened", "parameters": {"ingredientIds": ["parent"]}},
                    {"action": "c2pa.color_adjustments"}]}}]}
    signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(c2pa.C2paSigningAlg.ES256, chain.chain_pem, chain.key_pem,
                                                       None))
    output = io.BytesIO()
    with c2pa.Builder(json.dumps(manifest)) as builder:
        builder.add_ingredient(json.dumps({"title": "parent.jpg", "relationship": "parentOf", "label": "parent"}),
                               "image/jpeg", io.BytesIO(parent))
        builder.sign(signer, "image/jpeg", io.BytesIO(source), output)
    return output.getvalue()


def tamper_pixels(data: bytes) -> bytes:
    """Change one byte of a JPEG's entropy-coded data after signing: the data hash no longer matches."""
    changed = bytearray(data)
    changed[-200] ^= 0x55
    return bytes(changed)


def write(folder: Path, name: str, data: bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)
    return folder / name


# --- hostile metadata --------------------------------------------------------------------------------------


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def png_with_chunks(rgb: np.ndarray, *chunks: bytes) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "PNG")
    data = buffer.getvalue()
    return data[:33] + b"".join(chunks) + data[33:]  # after IHDR


def exif_loop() -> bytes:
    """A TIFF blob whose IFD0 points to an EXIF IFD that points back to IFD0, and an offset past the end."""
    entries = struct.pack("<HHII", 0x8769, 4, 1, 8) + struct.pack("<HHII", 0x0131, 2, 400, 10 ** 6)
    return b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 2) + entries + struct.pack("<I", 8)


def hostile_metadata(rgb: np.ndarray) -> dict[str, bytes]:
    """Metadata meant to hurt a parser: sizes, nesting, bombs, loops, lies, bad bytes."""
    huge_xmp = xmp_packet() + b"<x>" * 1_500_000  # an XMP packet of 4.5 MB: a million nested tags
    nested = "[" * 200_000 + "]" * 200_000  # JSON nesting far beyond any parser's recursion limit
    bomb = zlib.compress(b"\0" * (64 * 1024 * 1024), 9)  # 64 MB of zeros in about 64 kB
    return {
        "huge_xmp.png": png_with_chunks(rgb, png_chunk(b"iTXt", b"XML:com.adobe.xmp\x00\x00\x00\x00\x00" + huge_xmp)),
        "text_megabytes.png": png_with_chunks(rgb, png_chunk(b"tEXt", b"parameters\x00" + b"x" * 6_000_000)),
        "ztxt_bomb.png": png_with_chunks(rgb, png_chunk(b"zTXt", b"prompt\x00\x00" + bomb)),
        "nested_json.png": png_with_text(rgb, {"prompt": nested, "workflow": nested}),
        "exif_loop.jpg": jpeg(rgb)[:2] + b"\xff\xe1" + struct.pack(">H", len(exif_loop()) + 8) + b"Exif\x00\x00"
        + exif_loop() + jpeg(rgb)[2:],
        "jumbf_garbage.jpg": jpeg(rgb)[:2] + b"\xff\xeb\x00\x20JP\x00\x01" + bytes(range(26)) + jpeg(rgb)[2:],
        "cabx_garbage.png": png_with_chunks(rgb, png_chunk(b"caBX", b"\x00\x00\x00\x10jumb" + b"\xff" * 40)),
        "bad_utf8.png": png_with_chunks(rgb, png_chunk(b"iTXt", b"parameters\x00\x00\x00\x00\x00\xff\xfe\xc3(Steps:")),
        "chunk_past_end.png": png_with_chunks(rgb, struct.pack(">I", 2 ** 31) + b"tEXt" + b"abc"),
        "segment_past_end.jpg": b"\xff\xd8\xff\xe1\xff\xf0Exif\x00\x00II*\x00",
    }


# --- the reference Stable Diffusion watermark -----------------------------------------------------------------


def embed_watermark(rgb: np.ndarray, bits: list[int], order: str = "BGR") -> np.ndarray:
    """Embed ``bits`` as the `dwtDct` method does (U channel, Haar approximation, the largest non-first
    coefficient of each 4x4 block quantised to step 36); ``order`` "RGB" feeds RGB in as BGR, as SDXL does."""
    import cv2

    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR) if order == "BGR" else rgb.copy()
    yuv = cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV)
    rows, columns = yuv.shape[0] // 4 * 4, yuv.shape[1] // 4 * 4
    u = yuv[:rows, :columns, 1].astype(np.float64)
    a, b, c, d = u[0::2, 0::2], u[0::2, 1::2], u[1::2, 0::2], u[1::2, 1::2]
    approx, horizontal = (a + b + c + d) / 2, (a + b - c - d) / 2
    vertical, diagonal = (a - b + c - d) / 2, (a - b - c + d) / 2
    number = 0
    for row in range(approx.shape[0] // 4):
        for column in range(approx.shape[1] // 4):
            block = approx[row * 4:row * 4 + 4, column * 4:column * 4 + 4]
            flat = block.flatten()
            position = int(np.argmax(np.abs(flat[1:]))) + 1
            value, bit = flat[position], bits[number % len(bits)]
            quantised = (abs(value) // 36 + 0.25 + 0.5 * bit) * 36
            block[position // 4, position % 4] = quantised if value >= 0 else -quantised
            number += 1
    u = np.empty_like(u)
    u[0::2, 0::2] = (approx + horizontal + vertical + diagonal) / 2
    u[0::2, 1::2] = (approx + horizontal - vertical - diagonal) / 2
    u[1::2, 0::2] = (approx - horizontal + vertical - diagonal) / 2
    u[1::2, 1::2] = (approx - horizontal - vertical + diagonal) / 2
    yuv[:rows, :columns, 1] = np.clip(np.round(u), 0, 255).astype(np.uint8)
    encoded = cv2.cvtColor(yuv, cv2.COLOR_YUV2BGR)
    return cv2.cvtColor(encoded, cv2.COLOR_BGR2RGB) if order == "BGR" else encoded


def png_bytes(rgb: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "PNG")
    return buffer.getvalue()
