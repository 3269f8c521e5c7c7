"""meritpay: policy-as-code for performance appraisal and incentive pay.

The pipeline, one stage a module: load -> schema -> validate -> (evaluate, explain, diff).
"""

from .diagnostics import (
    CODES,
    Diagnostic,
    EnvironmentFailure,
    FindingsError,
    InputError,
    Location,
    MeritpayError,
    Severity,
)
from .load import load_document, read_text
from .model import Document
from .validate import PolicyCheck, ValidationReport, check_policy, validate_paths

__version__ = "0.1.0"

__all__ = [
    "CODES",
    "Diagnostic",
    "Document",
    "EnvironmentFailure",
    "FindingsError",
    "InputError",
    "Location",
    "MeritpayError",
    "PolicyCheck",
    "Severity",
    "ValidationReport",
    "__version__",
    "check_policy",
    "load_document",
    "read_text",
    "validate_paths",
]
