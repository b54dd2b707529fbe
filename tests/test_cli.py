import subprocess
import sys


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tui.cli", *args], capture_output=True, text=True, timeout=120
    )


def test_info_reports_the_labs_model_size() -> None:
    result = _cli("info")
    assert result.returncode == 0, result.stderr
    assert "4.715 MiB" in result.stdout
    smaller = _cli("info", "--channels", "16,32", "--layers", "1")
    assert smaller.returncode == 0 and "4.715 MiB" not in smaller.stdout


def test_bad_input_is_one_line_and_exit_two() -> None:
    for args in (["info", "--channels", "3,x"], ["info", "--embed-dim", "3"], ["info", "--bogus"], ["nope"]):
        result = _cli(*args)
        assert result.returncode == 2, args
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("cfg-tui: error:"), result.stderr
        assert "Traceback" not in result.stderr
