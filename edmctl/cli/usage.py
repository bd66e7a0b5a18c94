"""Usage errors — a bad option value, an unknown option, a missing argument — as one line on stderr:

    error: --threads 0: must be a whole number from 1 to 1024; try 'edmctl --help'.

click prints a usage block, a blank line and `Error: ...` instead. `main` runs the command tree in click's
non-standalone mode, which raises these errors, and prints each as `one_line`. click's exception does not keep
the value that failed to convert, so `check_values` makes every parameter attach it (`given`) on the way out; it
also refuses, for every parameter, what no command takes (`check_value`).
"""

import functools
import importlib
from pathlib import Path

import typer

# click's exceptions and current context: click's own modules, or typer's copy of click (typer >= 0.26)
exceptions = importlib.import_module(typer.BadParameter.__module__)
get_current_context = importlib.import_module(exceptions.__name__.rsplit(".", 1)[0] + ".globals").get_current_context
UsageError = exceptions.UsageError
NoArgsIsHelpError = getattr(exceptions, "NoArgsIsHelpError", ())  # click >= 8.2: a bare group shows its help


INT_MAX = 2**63 - 1  # no count edmctl takes comes near it; SQLite and itertools stop there


class Refused(typer.BadParameter):
    """A value every command refuses (`check_value`): its message is the whole reason."""


def check_value(given, value) -> None:
    """What every parameter refuses, whatever its command: a path given as '' or blanks (it would be `.`, the
    current folder, or a folder named ' '), and a whole number beyond 64 bits."""
    for text, item in zip(given if isinstance(given, (list, tuple)) else [given],
                          value if isinstance(value, (list, tuple)) else [value]):
        if isinstance(item, Path) and isinstance(text, str) and not text.strip():
            raise Refused("a path cannot be empty or blank")
        if isinstance(item, int) and not isinstance(item, bool) and abs(item) > INT_MAX:
            raise Refused(f"must be a whole number of at most {INT_MAX:,} in size")


def _checked(process_value):
    """A parameter's `process_value` that also refuses what `check_value` refuses, and whose errors carry the value
    the user gave (`BadParameter.given`)."""

    @functools.wraps(process_value)
    def process(ctx, value):
        try:
            result = process_value(ctx, value)
            check_value(value, result)
            return result
        except typer.BadParameter as e:
            e.given = getattr(e, "given", value)
            raise

    return process


def check_values(command) -> None:
    """Make every parameter of `command` and its subcommands `_checked`."""
    for param in command.params:
        param.process_value = _checked(param.process_value)
    for sub in getattr(command, "commands", {}).values():
        check_values(sub)


def shown(value) -> str:
    """A value as typed where that reads unambiguously (`0`, `abc`), else quoted (`''`, `' 1'`, `'a\\x00b'`)."""
    if isinstance(value, (list, tuple)):
        return " ".join(map(shown, value))
    text = str(value)
    return text if text and text.isprintable() and text.split() == [text] else repr(text)


def bounds(param) -> str | None:
    """`a whole number from 1 to 1024` (or `at least 1`, `at most 9`) for a parameter declared with min/max."""
    info = getattr(getattr(param, "type_descriptor", None), "parameter_info", None) or param.type  # typer, or click's range
    low, high = getattr(info, "min", None), getattr(info, "max", None)
    if low is None and high is None:
        return None
    kind = "a whole number" if all(isinstance(b, int) for b in (low, high) if b is not None) else "a number"
    return f"{kind} " + (f"from {low} to {high}" if low is not None and high is not None
                         else f"of at least {low}" if low is not None else f"of at most {high}")


def parameter_name(param) -> str:
    """`--threads` (the longest spelling of an option), or an argument's metavar (`RUN`)."""
    if getattr(param, "param_type_name", "") == "option":
        return max(param.opts, key=len)
    return param.metavar or param.name.upper()


def message(e, root) -> str:
    """What was wrong: for a value that failed conversion or a check, `--flag VALUE: what is allowed`."""
    if isinstance(e, typer.BadParameter) and not isinstance(e, exceptions.MissingParameter) and hasattr(e, "given"):
        allowed = None if isinstance(e, Refused) else bounds(e.param)
        reason = f"must be {allowed}" if allowed else e.message.replace("Input should be ", "must be ", 1)
        return f"{parameter_name(e.param)} {shown(e.given)}: {reason}"
    if isinstance(e, exceptions.NoSuchOption) and e.option_name in {o for p in root.params for o in p.opts}:
        return f"{e.option_name} is an option of edmctl itself: give it before the command (edmctl {e.option_name} ... COMMAND)"
    return e.format_message()


def command_path(root, argv: list[str]) -> str:
    """`edmctl fid measure`: the (sub)commands named in `argv`, for errors raised where click kept no context."""
    path, command = ["edmctl"], root
    for arg in argv:
        command = getattr(command, "commands", {}).get(arg)
        if command is None:
            break
        path.append(arg)
    return " ".join(path)


def one_line(e, root, argv: list[str]) -> str:
    """A usage error as one sentence, ending with the help page to read."""
    text = " ".join(line.strip() for line in message(e, root).splitlines() if line.strip()).rstrip(".")
    return f"{text}; try '{e.ctx.command_path if e.ctx is not None else command_path(root, argv)} --help'."
