"""The help screen (``?`` / F1): every key of the app and of the current screen."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

HELP = """\
# cfg-tui

Train a class-conditional generator of MNIST digits (flow matching, classifier-free
guidance, the lab's U-Net) and sample from it. Everything here is also a command:
`cfg-tui train`, `cfg-tui sample`, `cfg-tui runs`.

## Everywhere
| key | action |
|---|---|
| `ctrl+t` | Train screen |
| `ctrl+s` | Sample screen |
| `ctrl+n` | Evaluate screen (the numbers: accuracy, Fréchet distance, diversity) |
| `f1` or `?` | this help |
| `ctrl+p` | command palette |
| `ctrl+q` | quit (training goes on in its own process) |
| `tab` / `shift+tab` | next / previous field |

## Train
| key | action |
|---|---|
| `ctrl+g` | start a run with the form's settings |
| `ctrl+x` | stop the followed run (it checkpoints first) |
| `ctrl+r` | resume the selected run |
| `ctrl+o` | open the selected run in Sample |
| `enter` (run list) | follow the selected run |

## Sample
| key | action |
|---|---|
| `0`-`9`, `n` | toggle a digit, or null (unconditional) |
| `ctrl+g` | generate |
| `ctrl+e` | export the grid as PNG (and .npz) |
| `p` | play the trajectory from noise to digit |
| `left` / `right` | previous / next guidance panel |
| `pageup` / `pagedown` | previous / next rows of the grid |
| `escape` | leave a field (so digit keys toggle again) |

## Evaluate
| key | action |
|---|---|
| `ctrl+g` | run eval (one row per w) or a sweep (every w × solver × steps) |
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,f1,question_mark", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Markdown(HELP)
