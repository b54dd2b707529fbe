"""The help screen is made from the bindings, so it lists every key and cannot drift from them."""

from textual.binding import Binding

from tui.app import CfgTuiApp, screen_classes
from tui.screens.help import help_markdown, key_rows


def test_every_binding_of_the_app_and_its_screens_is_in_the_help() -> None:
    screens = {name: [*mode.BINDINGS, *mode.HELP_KEYS] for name, mode in screen_classes().items()}
    text = help_markdown(CfgTuiApp.BINDINGS, screens)
    for bindings in [CfgTuiApp.BINDINGS, *screens.values()]:
        for binding in Binding.make_bindings(bindings):
            assert (binding.tooltip or binding.description) in text, binding
    for section in ("Everywhere", "Train", "Sample", "Evaluate"):
        assert f"## {section}" in text
    assert "| `f1, ?` | this help |" in text and "| `0 … 9` | toggle a digit |" in text
    assert "| `ctrl+x` | stop the followed run (it checkpoints first) |" in text


def test_keys_that_do_the_same_share_a_row() -> None:
    rows = key_rows([Binding("a", "x", "one"), Binding("b", "y", "two"), Binding("c", "z", "one")])
    assert rows == [("a, c", "one"), ("b", "two")]
