"""Routing: each decoded image goes to the active classifier whose domain (the image sizes it takes) is the
narrowest that covers it; an image none covers is :class:`Uncovered`, judged under :data:`NO_CLASSIFIER`."""

from __future__ import annotations

from dataclasses import dataclass

from fakewatch.classifiers.lazy import LazyClassifier
from fakewatch.registry import Domain, narrowest

NO_CLASSIFIER = "none"  # the classifier named on verdicts for images no active classifier covers


@dataclass(frozen=True)
class Uncovered:
    """A decoded image that no active classifier's domain covers."""

    height: int
    width: int


class Router:
    """The classifiers in use and their domains: each image goes to the narrowest domain that covers it."""

    def __init__(self, routes: list[tuple[Domain, LazyClassifier]]) -> None:
        self.routes = sorted(routes, key=lambda route: route[0].span())  # narrowest first
        self._chosen: dict[tuple[int, int], LazyClassifier | None] = {}  # a folder's images share a few sizes

    def route(self, height: int, width: int) -> LazyClassifier | None:
        size = (height, width)
        if size not in self._chosen:
            if len(self._chosen) > 4096:
                self._chosen.clear()
            self._chosen[size] = narrowest(self.routes, height, width)
        return self._chosen[size]

    @property
    def versions(self) -> list[str]:
        return [classifier.version for _, classifier in self.routes]

    def explain(self, height: int, width: int) -> str:
        domains = "; ".join(domain.describe() for domain, _ in self.routes)
        return f"{width}x{height} px: no active classifier covers images this size ({domains})"
