"""The one handled-error type: printed for a person, never with a traceback."""


class SimgateError(Exception):
    """A mistake in the user's input (scenario, plugin, policy manifest) with the fix in it."""


def located(path, line: int | None, message: str) -> str:
    """``file:line: message`` (line omitted when unknown), the form editors jump to."""
    where = f"{path}:{line}" if line else f"{path}"
    return f"{where}: {message}"
