"""convscope's own error classes, for files and data it cannot trust.

Bad arguments raise the built-in ``ValueError`` / ``TypeError``. Unreadable
files raise a subclass of ``ConvscopeFileError`` (itself a ``ValueError``, so
code that catches ``ValueError`` keeps working).
"""


class ConvscopeFileError(ValueError):
    """A file convscope was asked to read is missing, damaged, foreign or unsafe."""


class ModelFileError(ConvscopeFileError):
    """A model file (convscope or Keras) cannot be loaded safely."""


class DataFileError(ConvscopeFileError):
    """A data file (IDX, npz, image) is malformed or does not match its checksum."""


class DownloadError(ConvscopeFileError):
    """No mirror delivered a file whose content matches its checksum."""
