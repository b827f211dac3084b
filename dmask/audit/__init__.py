"""Privacy and fidelity audit (``dmask audit``): dmask beside baseline anonymizers, judged by a real
face recognizer (the ``dmask[audit]`` extra), and the clinical measurements of original and mask compared.

Modules: ``stats`` (pure statistics), ``baselines`` (anonymizers, one interface), ``privacy``
(embeddings and identification scores), ``fidelity`` (measurement agreement), ``run`` (the driver),
``report`` (JSON and HTML). Nothing heavy is imported here.
"""
from .baselines import BASELINES, DMASK, METHODS, Anonymizer, anonymize_video, make_anonymizer
from .report import write_audit
from .run import AuditOptions, AuditResult, audit_videos, dataset_pairs

__all__ = ["Anonymizer", "AuditOptions", "AuditResult", "BASELINES", "DMASK", "METHODS", "anonymize_video",
           "audit_videos", "dataset_pairs", "make_anonymizer", "write_audit"]

