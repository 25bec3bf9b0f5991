"""Human evaluation: a blinded study of systems' outputs in SQLite (study.py), rated in the browser
(serve/study.py: one task at a time), and its report (report.py)."""

from .report import export_csv, report
from .study import CRITERIA, Output, Study, create, invite, read_jsonl_outputs

__all__ = ["CRITERIA", "Output", "Study", "create", "export_csv", "invite", "read_jsonl_outputs", "report"]
