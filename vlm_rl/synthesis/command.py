"""The options of `vlm-rl synth-server` (also ``python -m vlm_rl.synthesis``) and how they start the server."""

from __future__ import annotations

import argparse
import sys

from data_pipelines.synthesis import GENERATOR_NAMES
from vlm_rl.config import ConfigError
from vlm_rl.synthesis.guard import TOKEN_VARIABLE


EPILOG = """beside training:
  bash scripts/train_syn_grpo.sh configs/syn_grpo.yaml [overrides]   starts this server on 127.0.0.1, trains with
                                                                    algo.syn.server pointing at it, stops it after
on another machine (a GPU host for --generator diffusers):
  there:  vlm-rl synth-server --workdir DIR --host 0.0.0.0 --token-file TOKEN_FILE
  here:   SYNTH_SERVER=http://HOST:8100 bash scripts/train_syn_grpo.sh configs/syn_grpo.yaml algo.syn.token_file=TOKEN_FILE
  (or keep the server on loopback there and tunnel: ssh -L 8100:127.0.0.1:8100 HOST)
API, limits and load figures: docs/servers.md; the training side: docs/algorithms.md (Syn-GRPO)"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = EPILOG
    p.add_argument("--workdir", required=True, help="folder of the jobs, sources and finished samples (kept across restarts)")
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: loopback only; others need a token)")
    p.add_argument("--port", type=int, default=8100, help="port to listen on (0: a free one, printed at start)")
    p.add_argument(
        "--token-file",
        help=f"file holding the token every request but GET /health must carry (default: ${TOKEN_VARIABLE}; "
        "neither: no token, loopback only)",
    )
    p.add_argument("--generator", choices=GENERATOR_NAMES, default="procedural",
                   help="procedural: backgrounds drawn from the description on the CPU; diffusers: an inpainting pipeline")
    p.add_argument("--inpaint-model", help="diffusers: directory of a local inpainting pipeline (save_pretrained layout)")
    p.add_argument("--device", help="diffusers: torch device (default: cuda when available, else cpu)")
    p.add_argument("--workers", type=int, default=2, help="worker threads running the generator")
    p.add_argument("--max-queue", type=int, default=256, help="jobs that may wait; more get 429 with Retry-After")
    p.add_argument("--max-body-mb", type=int, default=32, help="largest request body in MiB; larger ones get 413")


def run(args: argparse.Namespace) -> None:
    from vlm_rl.synthesis.guard import read_token
    from vlm_rl.synthesis.server import serve

    serve(
        args.workdir,
        host=args.host,
        port=args.port,
        token=read_token(args.token_file),
        generator=args.generator,
        model_path=args.inpaint_model,
        device=args.device,
        workers=args.workers,
        max_queue=args.max_queue,
        max_body_mb=args.max_body_mb,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="vlm-rl synth-server", description="the Syn-GRPO data server")
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        run(args)
    except ConfigError as err:
        print(f"vlm-rl synth-server: error: {err}", file=sys.stderr)
        sys.exit(2)
