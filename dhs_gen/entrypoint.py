"""The one way every stage ends: ``sys.exit(run_main(main))``.

Used by ``dhs <stage>`` (``dhs/cli.py``) and by every job's ``if __name__ == "__main__"`` block, so a
stage behaves the same under ``dhs``, ``python -m jobs.<name>`` and ``spark-submit jobs/<name>.py``:

* an error prints ONE line on stderr, ``<prog>: error: <what, naming the file/key/path>``, and the
  process exits 2; the traceback is printed only with ``--debug`` (anywhere before a ``--``) or
  ``DHS_DEBUG=1``. Errors the project raises on purpose (config, schema, provenance, a missing file,
  any ``ValueError``/``RuntimeError`` subclass of the project) print their message; anything else
  also names its type and the line that raised it, since it is probably a bug;
* Spark's Python workers use this interpreter: ``PYSPARK_PYTHON`` (and ``PYSPARK_DRIVER_PYTHON``)
  default to ``sys.executable`` when unset, so ``.venv/bin/dhs <stage>`` works without an
  activated venv (otherwise the workers start the first ``python3`` on PATH and fail with
  ``No module named 'jobs'``).
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import traceback
from typing import Callable, List, Sequence

EXIT_ERROR = 2
EXIT_INTERRUPTED = 130
DEBUG_FLAG = "--debug"
PROJECT_PACKAGES = ("dhs", "dhs_gen", "jobs", "training", "emr", "benchmarks")
_PLAIN_BUILTINS = (FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError, FileExistsError, ImportError,
                   TimeoutError)
_PLAIN_FOREIGN = ("AnalysisException", "ValidationError")  # pyspark / pydantic: the message says it all


def debug_requested(argv: Sequence[str]) -> bool:
    """True when ``--debug`` is among the options (before any ``--``) or ``DHS_DEBUG`` is set and not 0."""
    head = argv[:list(argv).index("--")] if "--" in argv else argv
    return DEBUG_FLAG in head or os.environ.get("DHS_DEBUG", "").strip() not in ("", "0", "false", "no")


def strip_debug(argv: Sequence[str]) -> List[str]:
    """``argv`` without the ``--debug`` flags that come before any ``--``."""
    argv = list(argv)
    cut = argv.index("--") if "--" in argv else len(argv)
    return [a for a in argv[:cut] if a != DEBUG_FLAG] + argv[cut:]


def use_this_python_for_spark() -> None:
    """Default ``PYSPARK_PYTHON`` / ``PYSPARK_DRIVER_PYTHON`` to the running interpreter."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)


def _message(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.filename is not None:  # "[Errno 2] No such ..." -> what and where
        return f"{(exc.strerror or type(exc).__name__).lower()}: {exc.filename}"
    if isinstance(exc, FileNotFoundError) and "not" not in str(exc).lower():  # bare path (fsspec, pyarrow)
        return f"no such file or directory: {exc}"
    java = getattr(exc, "java_exception", None)  # py4j's Py4JJavaError: the Java exception's own text
    text = str(java.toString()) if java is not None else str(exc)
    if type(exc).__name__ == "ValidationError":  # pydantic: "N errors for X\nfield\n  msg ..." -> one line
        return "; ".join(line.strip() for line in text.splitlines() if line.strip() and "errors.pydantic" not in line)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def _is_expected(exc: BaseException) -> bool:
    if isinstance(exc, _PLAIN_BUILTINS) or type(exc).__name__ in _PLAIN_FOREIGN:
        return True
    module = type(exc).__module__.split(".")[0]
    return module in PROJECT_PACKAGES and isinstance(exc, (ValueError, RuntimeError, OSError, LookupError))


def _raised_at(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return "?"
    last = frames[-1]
    return f"{os.path.relpath(last.filename) if not last.filename.startswith('<') else last.filename}:{last.lineno}"


def error_line(prog: str, exc: BaseException) -> str:
    """The one line printed for ``exc``: what went wrong and where."""
    message = _message(exc)
    if _is_expected(exc):
        return f"{prog}: error: {message}"
    return (f"{prog}: error: {type(exc).__name__}: {message} (raised at {_raised_at(exc)}; "
            f"rerun with {DEBUG_FLAG} for the traceback)")


def default_prog() -> str:
    """``python -m jobs.x`` / ``spark-submit jobs/x.py`` -> ``x``."""
    name = os.path.basename(sys.argv[0] or "dhs")
    return name[:-3] if name.endswith(".py") else name


def run_main(main: Callable[[List[str]], int | None], argv: Sequence[str] | None = None, *,
             prog: str | None = None, debug: bool = False) -> int:
    """Run ``main(argv)`` and turn any error into one line and exit status 2 (see the module doc).

    ``argv`` defaults to ``sys.argv[1:]``; ``--debug`` is taken out of it before ``main`` sees it.
    ``prog`` names the stage in usage lines and errors (``dhs phase4c``): argparse parsers built
    inside ``main`` without an explicit ``prog`` take it. Returns the exit status.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = debug or debug_requested(argv)
    argv = strip_debug(argv)
    prog = prog or default_prog()
    use_this_python_for_spark()
    saved_argv0 = sys.argv[0] if sys.argv else None
    if sys.argv:
        sys.argv[0] = prog  # argparse's default prog is basename(sys.argv[0]); "dhs phase4c" has no "/"
    try:
        return int(main(argv) or 0)
    except SystemExit as exc:  # argparse errors / --help: already printed, keep their status
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        print(f"{prog}: error: {exc.code}", file=sys.stderr)  # sys.exit("message")
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - the one place every stage's errors are reported
        if debug:
            traceback.print_exc()
        print(error_line(prog, exc), file=sys.stderr)
        return EXIT_ERROR
    finally:
        if saved_argv0 is not None:
            sys.argv[0] = saved_argv0
        sys.stderr.flush()


_ROLE = re.compile(r":[a-z]+:`~?([^`]+)`")


def plain_text(doc: str | None) -> str:
    """A docstring's first paragraph as help text: reST roles and double backticks removed."""
    first = (doc or "").strip().split("\n\n")[0]
    return " ".join(_ROLE.sub(r"\1", first).replace("``", "").split())


def add_flag(parser: argparse.ArgumentParser, flag: str, *hidden_aliases: str, **kwargs) -> argparse.Action:
    """``parser.add_argument(flag, *hidden_aliases, **kwargs)`` showing only ``flag`` in help and usage.

    The aliases (a stage's older spelling, e.g. ``--manifest`` beside ``--input``) still parse, so
    existing commands, Makefile targets and EMR step definitions keep working.
    """
    action = parser.add_argument(flag, *hidden_aliases, **kwargs)
    action.option_strings = [flag]
    return action
