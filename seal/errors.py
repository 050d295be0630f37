"""The one error hierarchy. The CLI catches `SealError` in one place and prints its message."""


class SealError(Exception):
    """Bad input or a broken invariant, with a message that says what is wrong and how to fix it."""


class InputError(SealError):
    """A document, file, option or request the user gave cannot be used."""


class ConfigError(SealError):
    """The configuration has invalid values; the message lists every problem."""


class NotFoundError(SealError):
    """A named thing (version, document, trial) does not exist."""


class IntegrityError(SealError):
    """Stored files disagree with what the database recorded (tampering, truncation, a crash)."""
