"""Peak memory and time of the TW-GRPO token-weight forms for one group (CPU, float32).

python scripts/bench_token_weights.py [--g 8] [--t 256] [--v 151936] [--hidden 512] [--chunk 32]

Each form runs in a fresh process; "peak" is the growth of the process's maximum resident set
over a baseline taken after the inputs (hidden states [G, T, H], LM head [V, H]) exist:
- official: full-vocabulary log-probs with the autograd graph kept through the weights;
- exact: the same weights, detached (what the trainer uses with algo.tw_grpo.chunk=0);
- chunked: detached, log-probs materialised once, divergence computed algo.tw_grpo.chunk positions at a time;
- chunked_from_hidden: detached, each chunk's log-probs computed from its slice of hidden states,
  so the [G, T, V] tensor never exists.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

FORMS = ("official", "exact", "chunked", "chunked_from_hidden")


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_form(form: str, g: int, t: int, v: int, hidden: int, chunk: int) -> dict:
    import torch

    from vlm_rl.algorithms.token_weights import tw_grpo_token_weights, tw_grpo_token_weights_chunked

    torch.manual_seed(0)
    states = torch.randn(g, t, hidden) / hidden**0.5
    head = torch.randn(v, hidden)
    mask = torch.ones(g, t)
    mask[g // 2 :, t - t // 4 :] = 0
    baseline = _rss_mib()
    started = time.perf_counter()
    if form == "official":
        states.requires_grad_(True)
        weights = tw_grpo_token_weights(torch.log_softmax(states @ head.T, dim=-1), mask, alpha=1.7, detach=False)
    elif form == "exact":
        with torch.no_grad():
            weights = tw_grpo_token_weights(torch.log_softmax(states @ head.T, dim=-1), mask, alpha=1.7)
    elif form == "chunked":
        with torch.no_grad():
            weights = tw_grpo_token_weights_chunked(torch.log_softmax(states @ head.T, dim=-1), mask, alpha=1.7, chunk=chunk)
    else:
        weights = tw_grpo_token_weights_chunked(
            lambda a, b: torch.log_softmax(states[:, a:b] @ head.T, dim=-1), mask, alpha=1.7, chunk=chunk
        )
    seconds = time.perf_counter() - started
    return {"form": form, "peak_mib": _rss_mib() - baseline, "seconds": seconds, "weights": weights.detach().tolist()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--g", type=int, default=8)
    parser.add_argument("--t", type=int, default=256)
    parser.add_argument("--v", type=int, default=151936)
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--chunk", type=int, default=32)
    parser.add_argument("--form", choices=FORMS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.form:
        print(json.dumps(run_form(args.form, args.g, args.t, args.v, args.hidden, args.chunk)))
        return
    import torch

    size_mib = args.g * args.t * args.v * 4 / 2**20
    print(f"G={args.g} T={args.t} V={args.v} hidden={args.hidden} chunk={args.chunk}; one [G, T, V] float32 tensor = {size_mib:.0f} MiB")
    results = {}
    for form in FORMS:
        command = [sys.executable, __file__, "--form", form, *(f"--{k}={getattr(args, k)}" for k in ("g", "t", "v", "hidden", "chunk"))]
        results[form] = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
    exact = torch.tensor(results["exact"]["weights"])
    print("| form | peak memory (MiB) | time (s) | max abs difference to exact |")
    print("|---|---|---|---|")
    for form in FORMS:
        diff = (torch.tensor(results[form]["weights"]) - exact).abs().max().item()
        print(f"| {form} | {results[form]['peak_mib']:.0f} | {results[form]['seconds']:.2f} | {diff:.1e} |")


if __name__ == "__main__":
    main()
