"""The one error type users see for bad input: ``InputError("path: what is wrong")``."""


class InputError(ValueError):
    """Bad user input (a file, a flag, a checkpoint); printed as one line by the CLIs."""

    def __init__(self, where: object, problem: str) -> None:
        super().__init__(f"{where}: {problem}")
