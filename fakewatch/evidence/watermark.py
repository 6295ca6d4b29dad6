"""The invisible DWT-DCT watermark that the reference Stable Diffusion pipelines embed, decoded with NumPy.

The reference SD 1.x scripts embed the bytes ``StableDiffusionV1``, SD 2.x ``SDV2``, and the SDXL
pipeline a fixed 48-bit string, with the `dwtDct` method of the ``invisible-watermark`` package: the U
channel (YUV) of the picture, one level of a Haar wavelet, and in each 4x4 block of its approximation the
largest coefficient after the first quantised so that its remainder modulo 36 carries one bit; the
message repeats across the blocks. Reading it back needs the same block grid, so cropping, resizing and
JPEG chroma subsampling destroy it, and the popular UIs never add it. A match therefore counts only when
nearly every bit agrees (``MAX_WRONG_BITS``), as positive evidence only; its absence says nothing.
"""

from __future__ import annotations

import cv2
import numpy as np

from fakewatch.evidence.analyzers import Evidence

VERSION = 1
SCALE = 36
BLOCK = 4
MIN_PIXELS = 256 * 256  # the package refuses smaller pictures; so does this reader
SDXL_BITS = [int(bit) for bit in bin(0b101100111110110010010000011110111011000110011110)[2:]]
MESSAGES: dict[str, list[int]] = {
    "Stable Diffusion 1.x (StableDiffusionV1)": [int(bit) for bit in np.unpackbits(np.frombuffer(b"StableDiffusionV1",
                                                                                                 np.uint8))],
    "Stable Diffusion 2.x (SDV2)": [int(bit) for bit in np.unpackbits(np.frombuffer(b"SDV2", np.uint8))],
    "SDXL": SDXL_BITS,
}
MAX_WRONG_BITS = 0.05  # share of a message's bits allowed to disagree (2 of 48, 6 of 136)


def block_scores(bgr: np.ndarray) -> np.ndarray:
    """One 0/1 reading per 4x4 block of the U channel's Haar approximation, in row-major block order."""
    rows, columns = bgr.shape[0] // 4 * 4, bgr.shape[1] // 4 * 4
    u = cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV)[:rows, :columns, 1].astype(np.float64)
    approximation = (u[0::2, 0::2] + u[0::2, 1::2] + u[1::2, 0::2] + u[1::2, 1::2]) / 2  # Haar cA
    height, width = approximation.shape[0] // BLOCK, approximation.shape[1] // BLOCK
    blocks = (approximation[:height * BLOCK, :width * BLOCK].reshape(height, BLOCK, width, BLOCK)
              .transpose(0, 2, 1, 3).reshape(-1, BLOCK * BLOCK))
    position = np.argmax(np.abs(blocks[:, 1:]), axis=1) + 1
    values = np.abs(blocks[np.arange(len(blocks)), position])
    return (np.mod(values, SCALE) > SCALE / 2).astype(np.float64)


def decode_bits(scores: np.ndarray, length: int) -> np.ndarray:
    """The message of ``length`` bits the block readings vote for."""
    index = np.arange(len(scores)) % length
    votes = np.bincount(index, weights=scores, minlength=length) / np.maximum(np.bincount(index, minlength=length), 1)
    return (votes * 255 > 127).astype(np.uint8)


def find(rgb: np.ndarray) -> list[Evidence]:
    """A Stable Diffusion reference watermark in decoded ``rgb``, if one reads back nearly intact."""
    if rgb.shape[0] * rgb.shape[1] < MIN_PIXELS:
        return []
    found = []
    for order, bgr in (("BGR", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)), ("RGB", rgb)):  # SDXL encodes RGB as BGR
        scores = block_scores(np.ascontiguousarray(bgr))
        for name, message in MESSAGES.items():
            wrong = int(np.sum(decode_bits(scores, len(message)) != np.array(message, np.uint8)))
            if wrong <= MAX_WRONG_BITS * len(message):
                found.append(Evidence("watermark", VERSION, "generator_watermark", "proves_ai",
                                      f"{name} invisible watermark ({len(message) - wrong}/{len(message)} bits)",
                                      {"generator": name, "bits_wrong": wrong, "bits": len(message),
                                       "channel_order": order}))
        if found:
            break
    return found[:1]
