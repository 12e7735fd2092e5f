from debate_ft.backends import Request
from debate_ft.config import GenerationConfig


def test_tiny_backend_generates_and_scores(tiny_backend):
    requests = [Request([{"role": "user", "content": "What is 1+1?"}])] * 2
    out = tiny_backend.generate(requests, GenerationConfig(max_new_tokens=5, temperature=0), seed=0)
    assert len(out) == 2 and out[0] == out[1]
    scores = tiny_backend.logprobs(requests, ["Two", "Three"])
    assert all(all(v <= 0 for v in row) for row in scores)
