import subprocess
import sys


def test_core_never_loads_the_ui_libraries() -> None:
    code = (
        "import importlib, pkgutil, sys, core\n"
        "for m in pkgutil.iter_modules(core.__path__): importlib.import_module('core.' + m.name)\n"
        "print(sorted(n for n in sys.modules if n.split('.')[0] in ('textual', 'rich')))\n"
        "print(len([n for n in sys.modules if n.startswith('core.')]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split("\n")
    assert out[0] == "[]"
    assert int(out[1]) >= 10  # every core module was imported


def test_the_command_line_loads_textual_only_for_the_app() -> None:
    """``cfg-tui runs`` and the other commands start without the UI library (it is slow to import)."""
    code = "import sys, tui.cli\nprint(sorted(n for n in sys.modules if n.split('.')[0] == 'textual'))\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
