"""Reading a /metrics answer back: the samples of the exposition text, summed as a test needs."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

__all__ = ["Scrape"]


class Scrape:
    """The samples of one exposition text."""

    def __init__(self, text: str) -> None:
        self.samples = [
            sample for family in text_string_to_metric_families(text) for sample in family.samples
        ]

    def total(self, name: str, **labels: str) -> float:
        """The sum of `name`'s samples whose labels include `labels`."""
        return sum(
            sample.value
            for sample in self.samples
            if sample.name == name and labels.items() <= sample.labels.items()
        )

    def values(self, name: str, label: str) -> set[str]:
        """The values `label` takes in `name`'s samples."""
        return {s.labels[label] for s in self.samples if s.name == name and label in s.labels}
