"""Where the faces are in the photo data's real photos of people: boxes for tight face crops of real faces.

    python scripts/face_crops.py data/photo > data/face_crops.csv     (in a virtualenv with mediapipe 0.10.14)

The generated faces the photo classifier trains on are tight crops of one face, and most real photos of
people show whole scenes: without real faces cropped the same way, "a face filling the frame" becomes a
sign of a generator, and a folder of real portraits is flagged. This finds the faces in the real groups
listed in ``SOURCES`` (all of them groups that no leave-out fold holds out) with MediaPipe's face detector,
and writes one square box per face large enough to crop at its own resolution: ``side`` pixels, about 1.4
times the detected face, centred on it a little above its middle, inside the picture. ``scripts/build_data.py``
turns each box into a row of the manifest (group ``face-crops``: the source file's repository, commit, path
and SHA-256, with the box after ``#crop=``) and crops it when it builds the data folder, so building needs no
face detector. The detector runs only here, once; mediapipe stays out of the project's own environment.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import cv2
import mediapipe as mp
import numpy as np

SOURCES = ("deepface-people-photos", "faceapi-people-photos", "face-detector-group-photos", "old-photo-scans",
           "face-recognition-examples", "dlib-face-examples", "openface-examples")
MIN_SIDE = 128  # pixels: smaller faces would have to be enlarged, and enlarging leaves traces of its own
MIN_SCORE = 0.75  # the detector's threshold, and again on the score it reports (which can fall below it)
SCALE = 1.4  # the crop's side over the detected face box's longer side
MAX_PER_PHOTO = 4


def boxes(rgb: np.ndarray, detector) -> list[tuple[int, int, int, float]]:  # type: ignore[no-untyped-def]
    height, width = rgb.shape[:2]
    found = detector.process(rgb).detections or []
    out = []
    for detection in sorted(found, key=lambda d: -d.score[0]):
        box = detection.location_data.relative_bounding_box
        face_w, face_h = box.width * width, box.height * height
        side = int(round(SCALE * max(face_w, face_h)))
        if detection.score[0] < MIN_SCORE or side < MIN_SIDE or side > min(height, width):
            continue
        centre_x = (box.xmin + box.width / 2) * width
        centre_y = (box.ymin + box.height / 2) * height - 0.1 * face_h
        x = int(min(max(0, round(centre_x - side / 2)), width - side))
        y = int(min(max(0, round(centre_y - side / 2)), height - side))
        if any(abs(x - ox) < side / 2 and abs(y - oy) < side / 2 for ox, oy, _, _ in out):
            continue  # the same face found twice
        out.append((x, y, side, float(detection.score[0])))
        if len(out) == MAX_PER_PHOTO:
            break
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", type=Path, help="the built data folder (data/photo)")
    args = parser.parse_args()
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(["source", "x", "y", "side", "score"])
    with mp.solutions.face_detection.FaceDetection(model_selection=1, min_detection_confidence=MIN_SCORE) as detector:
        for group in SOURCES:
            for path in sorted((args.data / "real" / group).glob("*")):
                bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
                if bgr is None:
                    continue
                for x, y, side, score in boxes(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), detector):
                    writer.writerow([f"real/{group}/{path.name}", x, y, side, f"{score:.3f}"])


if __name__ == "__main__":
    main()
