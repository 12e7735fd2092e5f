"""Each flow run against arm A, the untrained flow, on the same test questions; read from the test traces.

A run's `test_trace_ep0.jsonl` is its `eval_before` evaluation: fresh LoRA adapters start as the base model and
episodes are greedy, so it is arm A, the same in every run on the same test questions, and each trained run's
last evaluation pairs with it (or, without one, with the first run's) question by question (differences with a
paired bootstrap 95% interval). Progressive validation over the second half of the training stream comes from
the greedy episodes in train_trace.jsonl.
"""

from __future__ import annotations

from pathlib import Path

from debate_ft.layout import RunDir
from debate_ft.runs import read_records
from debate_ft.seeds import derive_seed
from debate_ft.stats import mean_stderr, paired_bootstrap
from debate_ft.tasks.musique import answer_em, answer_f1, support_f1

MEASURES = ("answer_f1", "answer_em", "support_f1", "support_rr")


def question_scores(record: dict) -> dict[str, float | None]:
    """The per-question measures of an answerable test record (support_rr: None where no hop ranked)."""
    return {
        "answer_f1": answer_f1(record["answer"], record["gold"]),
        "answer_em": answer_em(record["answer"], record["gold"]),
        "support_f1": support_f1(record["support"], record["gold_support"]),
        "support_rr": record["support_rr"],
    }


def scored(path: Path) -> dict[str, dict]:
    return {r["id"]: question_scores(r) for r in read_records(path) if r.get("gold_answerable", True)}


def comparisons(runs: list[tuple[str, Path]], seed: int = 0) -> list[dict]:
    """Per run and measure: A's mean, the run's mean after its training, and the paired difference with its CI.
    A run evaluated without `eval_before` pairs with the first run's A (the same episodes, by construction)."""
    rows, found = [], {label: RunDir(folder).test_traces() for label, folder in runs}
    shared = next((scored(paths[0]) for paths in found.values() if 0 in paths), None)
    for label, folder in runs:
        episodes = max(found[label], default=0)
        if episodes == 0 or (0 not in found[label] and shared is None):
            continue
        before = scored(found[label][0]) if 0 in found[label] else shared
        after = scored(found[label][episodes])
        for measure in MEASURES:
            ids = [i for i in before if i in after and None not in (before[i][measure], after[i][measure])]
            if len(ids) < 2:
                continue
            a = [before[i][measure] for i in ids]
            b = [after[i][measure] for i in ids]
            low, high = paired_bootstrap(b, a, derive_seed(seed, label, measure))
            trained, trained_se = mean_stderr(b)
            rows.append(
                {
                    "run": label,
                    "episodes": episodes,
                    "measure": measure,
                    "n": len(ids),
                    "A": mean_stderr(a)[0],
                    "trained": trained,
                    "trained_se": trained_se,
                    "difference": (sum(b) - sum(a)) / len(ids),
                    "ci_low": low,
                    "ci_high": high,
                }
            )
        rows.append(progressive_second_half(label, folder))
    return rows


def progressive_second_half(label: str, folder: Path) -> dict:
    """Mean episode reward (answer F1) of the greedy training episodes in the second half of the stream."""
    greedy = [r for r in read_records(RunDir(folder).train_trace) if r["kind"] == "greedy"]
    half = [r["reward"] for r in greedy if r["episode"] >= len(greedy) // 2]
    mean, se = mean_stderr(half)
    return {
        "run": label,
        "episodes": len(greedy),
        "measure": "progressive_f1_2nd_half",
        "n": len(half),
        "trained": mean,
        "trained_se": se,
    }
