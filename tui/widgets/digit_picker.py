"""The row picker of the Sample screen: the model's classes and null, toggled with their keys."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

NULL_KEY = "n"


class DigitPicker(Widget, can_focus=True):
    """Shows ``0 1 … 9 ∅`` (as many classes as the model has) with the chosen ones highlighted."""

    digits: reactive[frozenset[int]] = reactive(frozenset(range(10)))
    null: reactive[bool] = reactive(False)
    num_classes: reactive[int] = reactive(10)

    def __init__(self, num_classes: int = 10, id: str | None = None) -> None:
        super().__init__(id=id)
        self.set_classes(num_classes)

    def set_classes(self, num_classes: int) -> None:
        """Offer ``num_classes`` classes; a changed count selects them all again."""
        if num_classes != self.num_classes or not self.digits:
            self.num_classes = num_classes
            self.digits = frozenset(range(num_classes))

    def toggle(self, digit: int) -> None:
        if 0 <= digit < self.num_classes:
            self.digits = self.digits ^ {digit}

    def toggle_null(self) -> None:
        self.null = not self.null

    def labels(self) -> list[int]:
        """The chosen labels in display order: classes, then null (label ``num_classes``)."""
        return sorted(self.digits) + ([self.num_classes] if self.null else [])

    def render(self) -> Text:
        text = Text()
        for label in range(self.num_classes + 1):
            chosen = self.null if label == self.num_classes else label in self.digits
            name = "∅" if label == self.num_classes else str(label)
            text.append(name, style="bold reverse" if chosen else "dim")
            text.append(" ")
        return text
