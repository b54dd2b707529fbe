"""Layout checks for pilot tests: no two widgets drawn over each other, none cut by the edge of
what holds it, and focus that shows.

Regions are the screen's own (``Widget.region``); a widget inside a scrolling container may lie
outside it (scrolled out of view), so only what a container clips without scrolling counts as cut.
"""

from __future__ import annotations

from collections.abc import Iterable

from rich.cells import cell_len
from rich.color import Color
from rich.style import Style
from textual.geometry import Region
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Static

VISIBLE_CHANGE = 40
"""The least change, in one RGB channel, that counts as a visible colour change. Textual's own focus
tint on a compact field is one shade of the 256-colour grey ramp (234 -> 235): 10."""


def _shown(widget: Widget) -> bool:
    return widget.display and widget.visible and widget.region.area > 0


def _scrolls(widget: Widget) -> bool:
    """Whether ``widget`` is a container that can scroll what it holds into view (so a child outside
    its region is not lost)."""
    return widget.is_scrollable and (widget.allow_vertical_scroll or widget.allow_horizontal_scroll)


def _visible_region(widget: Widget) -> Region:
    """The part of ``widget`` that is on screen: its region clipped by each container."""
    region = widget.region
    for ancestor in widget.ancestors:
        if isinstance(ancestor, Widget):
            region = region.intersection(ancestor.region)
    return region


def shown_widgets(screen: Screen) -> list[Widget]:
    """Every widget of ``screen`` that is displayed, with some of it on screen."""
    return [w for w in screen.walk_children(Widget) if _shown(w) and _visible_region(w).area > 0]


def layout_problems(screen: Screen) -> list[str]:
    """What is wrong with the layout, one line per problem (empty when it holds):

    - a widget that does not lie inside the screen, or inside a container that cannot scroll to it
      (it is cut);
    - a form's field label with no space left after its text ("precisionfp32");
    - two widgets, neither inside the other, whose visible regions overlap (drawn over each other:
      "checkpoinsde", the footer's keys under the palette's).
    """
    problems: list[str] = []
    widgets = shown_widgets(screen)
    for widget in widgets:
        for holder in widget.ancestors:
            if not isinstance(holder, Widget) or _scrolls(holder):
                break
            if not holder.region.contains_region(widget.region):
                problems.append(f"{widget!r} at {widget.region} is cut by {holder!r} at {holder.region}")
                break
    for label in screen.query(".field-label").results(Static):
        text = str(label.content)
        if _shown(label) and cell_len(text) >= label.region.width:
            problems.append(f"field label {text!r} fills its {label.region.width} cells: runs into its value")
    visible = {widget: _visible_region(widget) for widget in widgets}
    for i, a in enumerate(widgets):
        for b in widgets[i + 1 :]:
            if a in b.ancestors or b in a.ancestors:
                continue
            overlap = visible[a].intersection(visible[b])
            if overlap.area:
                problems.append(f"{a!r} at {visible[a]} overlaps {b!r} at {visible[b]}")
    return problems


def assert_no_overlaps(screen: Screen) -> None:
    """Fail with every :func:`layout_problems` of ``screen``."""
    problems = layout_problems(screen)
    assert not problems, "\n".join(problems)


def _rgb(color: Color | None, default: tuple[int, int, int]) -> tuple[int, int, int]:
    return tuple(color.get_truecolor()) if color is not None else default  # type: ignore[return-value]


def cell_colours(screen: Screen, region: Region) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """(foreground, background) RGB of every cell of ``region`` as the screen draws it."""
    out = []
    for y in range(region.y, region.bottom):
        for x in range(region.x, region.right):
            style: Style = screen.get_style_at(x, y)
            out.append((_rgb(style.color, (255, 255, 255)), _rgb(style.bgcolor, (0, 0, 0))))
    return out


def visibly_changed_cells(before: Iterable, after: Iterable) -> int:
    """How many cells changed colour (foreground or background) by at least :data:`VISIBLE_CHANGE`."""
    changed = 0
    for (fg0, bg0), (fg1, bg1) in zip(before, after, strict=True):
        most = max(abs(p - q) for p, q in zip((*fg0, *bg0), (*fg1, *bg1), strict=True))
        changed += most >= VISIBLE_CHANGE
    return changed


async def focus_problems(pilot: Pilot, screen: Screen) -> list[str]:
    """Focus each widget of ``screen``'s focus chain in turn: a problem for each one whose cells do
    not visibly change colour (at least a row's worth of them: a cursor alone is not enough)."""
    problems = []
    for widget in list(screen.focus_chain):
        if not _shown(widget):
            continue
        # A loaded machine may repaint a few frames late, even the unfocused "before": three tries.
        for _ in range(3):
            changed, width = await _focus_change(pilot, screen, widget)
            if changed >= width:
                break
        else:
            problems.append(f"{widget!r}: focus changes {changed} cells visibly, fewer than its width")
    return problems


async def _focus_change(pilot: Pilot, screen: Screen, widget: Widget) -> tuple[int, int]:
    """Cells of ``widget``'s region that visibly change colour when it takes the focus, and its width.
    The region is taken while it has the focus: focusing may scroll its container to show it."""
    widget.focus()
    await pilot.pause(0.1)
    region = _visible_region(widget)
    screen.set_focus(None)
    await pilot.pause(0.1)
    before = cell_colours(screen, region)
    widget.focus()
    changed = 0
    for _ in range(20):
        await pilot.pause(0.05)
        changed = visibly_changed_cells(before, cell_colours(screen, region))
        if changed >= region.width:
            break
    return changed, region.width
