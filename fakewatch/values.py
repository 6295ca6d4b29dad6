"""Every value a column, a filter or an export allows, defined once.

The tables, the command line's choices, the HTTP API's validation, the console's filter menus and the CSV
export all read these. Free of SQLAlchemy, so building the CLI's options loads no database code. Each is a
:class:`enum.StrEnum`: a member compares equal to, and is stored as, its plain string.

    Status            an image's state: pending (recorded, not classified), done, error, skipped
    VerdictLabel      a verdict's label: fake, real, uncertain
    AnalystLabel      an analyst's judgement: fake or real
    Reason            why a verdict has its label (``verdicts.reason``):
                        classifier     a classifier's score decided the label
                        provenance     proof in the file (C2PA, generator metadata, ...) decided it, whatever
                                       the score
                        out_of_domain  no active classifier covers the image: the label is ``uncertain`` and
                                       there is no score
    EvidenceStrength  how much a finding says: proves_ai, suggests_ai, suggests_camera, none (strongest first)
    EvidenceKind      what a finding is (``evidence.kind``)
    ErrorKind         why a file could not be read (``images.error_kind``; :mod:`fakewatch.errors` raises them)
    ActionStatus      how a verdict action ended: done or failed
    Order             how results are listed: newest verdict first (keyset pages), most likely fake first
                      (classified images only), or by path
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    PENDING = "pending"
    DONE = "done"
    ERROR = "error"
    SKIPPED = "skipped"


class VerdictLabel(StrEnum):
    FAKE = "fake"
    REAL = "real"
    UNCERTAIN = "uncertain"


class AnalystLabel(StrEnum):
    FAKE = "fake"
    REAL = "real"


class Reason(StrEnum):
    CLASSIFIER = "classifier"
    PROVENANCE = "provenance"
    OUT_OF_DOMAIN = "out_of_domain"


class EvidenceStrength(StrEnum):
    PROVES_AI = "proves_ai"
    SUGGESTS_AI = "suggests_ai"
    SUGGESTS_CAMERA = "suggests_camera"
    NONE = "none"


class EvidenceKind(StrEnum):
    C2PA_AI_SOURCE = "c2pa_ai_source"
    C2PA_MANIFEST = "c2pa_manifest"
    C2PA_INVALID = "c2pa_invalid"
    C2PA_ERROR = "c2pa_error"
    GENERATOR_PARAMETERS = "generator_parameters"
    GENERATOR_WATERMARK = "generator_watermark"
    XMP_DIGITAL_SOURCE_TYPE = "xmp_digital_source_type"
    XMP_CREATOR_TOOL = "xmp_creator_tool"
    EXIF_GENERATOR_TAG = "exif_generator_tag"
    EXIF_GENERATOR_NAME = "exif_generator_name"
    CAMERA_EXIF = "camera_exif"
    METADATA_DAMAGED = "metadata_damaged"


class ErrorKind(StrEnum):
    ERROR = "error"
    UNSUPPORTED = "unsupported"
    CORRUPT = "corrupt"
    TOO_LARGE = "too_large"
    EMPTY = "empty"
    UNREADABLE = "unreadable"
    FIFO = "fifo"
    SOCKET = "socket"
    DEVICE = "device"
    DIRECTORY = "directory"
    SYMLINK_LOOP = "symlink_loop"
    OUTSIDE_ROOT = "outside_root"


class ActionStatus(StrEnum):
    DONE = "done"
    FAILED = "failed"


class Order(StrEnum):
    NEWEST = "newest"
    P_FAKE = "p_fake"
    PATH = "path"


def choices(values: type[StrEnum]) -> tuple[str, ...]:
    """The plain strings an enum allows, in definition order (for click choices and messages)."""
    return tuple(member.value for member in values)


def one_of(values: type[StrEnum]) -> str:
    """``a, b or c``: the allowed values as a message says them."""
    allowed = choices(values)
    return allowed[0] if len(allowed) == 1 else f"{', '.join(allowed[:-1])} or {allowed[-1]}"


# The fields of a result row as `results --format csv` and the API's CSV export write them, in order
RESULT_COLUMNS = ("id", "path", "sha256", "size", "status", "label", "p_fake", "confidence", "threshold",
                  "classifier", "classified_at", "reason", "reason_detail", "error_kind", "error", "deleted",
                  "warnings", "original_path", "evidence")
