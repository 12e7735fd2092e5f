"""Two engines on the same debate: how often their turns are identical, and their accuracies paired question by
question. Run the same `evaluate` with each engine, then compare the two run directories:

    python -m debate_ft evaluate +experiment=demo backend=hf backend.dtype=bfloat16 run.name=agree_hf
    .venv-vllm/bin/python -m debate_ft evaluate +experiment=demo backend=vllm backend.dtype=bfloat16 run.name=agree_vllm
    python benchmarks/agreement.py runs/agree_hf runs/agree_vllm

Greedy runs (generation.temperature=0) should agree turn for turn up to the engines' numerics; sampled runs draw
different random numbers, so there only the accuracies can agree (within their error bars).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from debate_ft.metrics import outcomes, summarize
from debate_ft.run_config import saved_config
from debate_ft.stats import compare
from debate_ft.tasks import get_task
from debate_ft.transcript import read


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("a", type=Path, help="a run directory of `evaluate`")
    parser.add_argument("b", type=Path, help="the same evaluate with another engine")
    args = parser.parse_args()
    task = get_task(saved_config(args.a).dataset)
    runs = [read(next((run / "iter0").glob("test_*.jsonl"))) for run in (args.a, args.b)]
    by_id = [{record.id: record for record in records} for records in runs]
    ids = [i for i in by_id[0] if i in by_id[1]]
    first, second = ([records[i] for i in ids] for records in by_id)
    turns = [(x, y) for r, s in zip(first, second) for x, y in zip(r.turns, s.turns)]
    for round_ in sorted({x.round for x, _ in turns}):
        pairs = [(x, y) for x, y in turns if x.round == round_]
        same = sum(x.response == y.response for x, y in pairs)
        print(f"round {round_}: {same} of {len(pairs)} turns identical ({same / len(pairs):.3f})")
    for method in ("base", "majority", "debate"):
        a, b = (outcomes(records, task, method) for records in (first, second))
        sa, sb = summarize(a), summarize(b)
        paired = compare([row["correct"] for row in a], [row["correct"] for row in b])
        print(
            f"{method}: {args.a.name} {sa['accuracy']:.3f} ± {sa['stderr']:.3f}, {args.b.name} {sb['accuracy']:.3f} ± "
            f"{sb['stderr']:.3f} (n = {sa['n']}); difference {paired.difference:+.3f} "
            f"[{paired.ci_low:+.3f}, {paired.ci_high:+.3f}], McNemar p = {paired.p_mcnemar:.3f}"
        )


if __name__ == "__main__":
    main()
