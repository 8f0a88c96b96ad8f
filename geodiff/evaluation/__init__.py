"""Quality scores shared by benchmarks and tests (PROTOCOL definitions)."""

from geodiff.evaluation.fusion_metrics import fusion_report

__all__ = ["fusion_report"]
