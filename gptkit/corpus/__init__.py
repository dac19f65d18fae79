"""Pretraining data as the GPT papers built it, before `gptkit prepare` tokenizes it: exact and
near-duplicate removal (dedup), heuristic and classifier quality filtering (filter, quality), and
removal of documents that overlap evaluation tasks (decontaminate).

Every step streams JSON Lines (plain, .gz, .zst) or parquet records in, writes the records it keeps,
unchanged and in input order, as JSON Lines, runs as ``--part I/N`` of a corpus on many processes or
machines, resumes where it stopped, and reports what it removed (gptkit.corpus.step). No PyTorch.
"""

from gptkit.corpus.decontaminate import decontaminate_files, shipped_tasks
from gptkit.corpus.dedup import Settings as DedupSettings
from gptkit.corpus.dedup import dedup_files
from gptkit.corpus.filter import Rules, filter_files
from gptkit.corpus.quality import Classifier, fit, fit_files, keep, keep_probability, pareto

__all__ = ["Classifier", "DedupSettings", "Rules", "decontaminate_files", "dedup_files", "filter_files", "fit",
           "fit_files", "keep", "keep_probability", "pareto", "shipped_tasks"]
