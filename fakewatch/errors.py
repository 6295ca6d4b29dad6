"""The fakewatch exception tree.

    FakewatchError                 base of everything fakewatch raises on purpose
    ├── ConfigError                a setting or config file is invalid
    ├── FilterError                a results filter (label, status, since, ...) has a value it does not allow
    ├── DatasetError               a training/evaluation folder has no usable layout or images
    ├── ImageError                 one file cannot become classifier input (recorded on its row)
    │   ├── UnsupportedImage       kind "unsupported": not an image, or a format we do not decode
    │   ├── CorruptImage           kind "corrupt": an image format, but truncated or damaged
    │   ├── TooLargeImage          kind "too_large": over max_file_bytes or max_pixels
    │   ├── EmptyFile              kind "empty": zero bytes
    │   ├── UnreadableFile         kind "unreadable": permissions, vanished, dangling link, I/O error
    │   ├── NotRegularFile         kind "fifo", "socket", "device" or "directory": never opened for reading
    │   ├── SymlinkLoop            kind "symlink_loop": a link that leads back to itself
    │   └── OutsideRoot            kind "outside_root": a link whose target leaves every scanned folder
    ├── MetadataDamaged            kind "metadata_damaged": a file's metadata is damaged or over the reading
    │                              limits; recorded as evidence of that kind, the pixels are still classified
    ├── ClassifierError            a classifier version cannot be used
    │   ├── ClassifierNotFound     no such version id or path
    │   └── IncompatibleClassifier card missing, malformed, or disagreeing with the weights
    └── QueueError                 the broker cannot be reached or refused a message

Messages say what happened and what to do about it.
"""

from __future__ import annotations


class FakewatchError(Exception):
    """Base class for errors fakewatch raises deliberately."""


class ConfigError(FakewatchError):
    """A setting, flag or config file is invalid."""


class FilterError(FakewatchError, ValueError):
    """A results filter (command line option, API query parameter, console form) has a value it does not
    allow; the message names the filter and what it takes."""


class DatasetError(FakewatchError):
    """A dataset folder cannot be used for training or evaluation."""


class ImageError(FakewatchError):
    """A file cannot be turned into classifier input. ``kind`` is what the database records."""

    kind = "error"


class UnsupportedImage(ImageError):
    kind = "unsupported"


class CorruptImage(ImageError):
    kind = "corrupt"


class TooLargeImage(ImageError):
    kind = "too_large"


class EmptyFile(ImageError):
    kind = "empty"


class UnreadableFile(ImageError):
    kind = "unreadable"


class NotRegularFile(ImageError):
    """A FIFO, socket, device or folder where a file was expected; ``kind`` says which."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


class SymlinkLoop(ImageError):
    kind = "symlink_loop"


class OutsideRoot(ImageError):
    kind = "outside_root"


class MetadataDamaged(FakewatchError):
    """A file's metadata cannot be read within bounds (bytes inflated, directory entries, time).

    Not an :class:`ImageError`: the pixels may be fine, so the file is classified all the same and this is
    recorded as a ``metadata_damaged`` finding beside its verdict."""

    kind = "metadata_damaged"


class ClassifierError(FakewatchError):
    """A classifier version cannot be loaded or used."""


class ClassifierNotFound(ClassifierError):
    """No classifier with the requested version id or path exists."""


class IncompatibleClassifier(ClassifierError):
    """The classifier's card is missing, malformed, or does not match its weights."""


class QueueError(FakewatchError):
    """The task queue cannot be reached or rejected a message."""
