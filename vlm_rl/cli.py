"""The `vlm-rl` command: train, sft, eval, make-tiny-model, make-data, data (invert-qa, drop-thoughts, show),
bench, demo, plot, report, config, vllm-serve, synth-server."""

from __future__ import annotations

import argparse
import json
from importlib import metadata
import os
import sys
from pathlib import Path

from data_pipelines.schema import RecordError
from vlm_rl.config import ConfigError
from vlm_rl.demo.settings import DemoConfig, DemoError, default_cache_dir, read_credentials
from vlm_rl.eval.table import ReportError
from vlm_rl.media import MediaError
from vlm_rl.models.loading import ModelLoadError
from vlm_rl.rollout.vllm_server import VLLMServerError
from vlm_rl.synthesis.command import add_arguments as add_synth_server_arguments

RECORD_FORMATS = "Video-R1/TW-GRPO, SEED-Bench-R1, MMVU, TimeSearch-R, VLM-R1 or chat-message (qwen-vl-utils/TRL, LLaMA-Factory) records"
"""The record shapes the readers detect, for help texts."""
USER_ERRORS = (
    ConfigError, RecordError, MediaError, ModelLoadError, ReportError, VLLMServerError, FileNotFoundError, DemoError
)
"""Errors about the user's input: printed as one line, without a traceback."""


def _train(args: argparse.Namespace, kind: str) -> None:
    from vlm_rl.config import load_config

    config = load_config(args.config, args.overrides)
    if kind == "grpo":
        from vlm_rl.training.grpo import GRPOTrainer as TrainerClass
    else:
        from vlm_rl.training.sft import SFTTrainer as TrainerClass
    final = TrainerClass(config).train()
    print(f"final model: {final}")


def _eval(args: argparse.Namespace) -> None:
    from vlm_rl.eval.benchmarks import benchmark_jobs
    from vlm_rl.eval.table import comparison_table

    if args.compare:
        print(comparison_table([Path(p) for p in args.compare]))
        return
    if args.model is None:
        raise ConfigError("--model is required (or --compare REPORT REPORT)")
    jobs = benchmark_jobs(args.benchmark, data_root=args.data_root, data=args.data, levels=args.levels, mode=args.mode)
    single = len(jobs) == 1 and args.benchmark in (None, "synthetic")
    reports = []
    for job in jobs:
        out = _eval_out(args, job.name, single)
        _eval_job(args, job, out)
        reports.append(out)
    if len(reports) > 1:
        table = comparison_table(reports, [Path(r).stem for r in reports])
        summary = reports[0].parent / f"{args.benchmark}.md"
        summary.write_text(table + "\n")
        print(f"\n{table}\n-> {summary}")


def _eval_out(args: argparse.Namespace, name: str, single: bool) -> Path:
    if args.out is None:
        return Path(args.model) / "eval" / f"{name}.json"
    return Path(args.out) if single else Path(args.out) / f"{name}.json"


def _eval_job(args: argparse.Namespace, job, out: Path) -> None:
    from data_pipelines.formats import load_benchmark_samples
    from data_pipelines.record_files import MediaNotFoundError
    from vlm_rl.config import load_config, to_dict
    from vlm_rl.eval.judge import OpenAIJudge
    from vlm_rl.eval.runner import JudgeScorer, evaluate
    from vlm_rl.eval.search_eval import SearchEval, search_line, search_table
    from vlm_rl.eval.table import comparison_table
    from vlm_rl.models.loading import load_adapter, load_model
    from vlm_rl.models.prompt_encoder import PromptEncoder
    from vlm_rl.records import dataset_columns
    from vlm_rl.rollout import HFRolloutEngine

    config_path = args.config or job.preset
    if config_path is None and (Path(args.model) / "vlm_rl.yaml").is_file():
        config_path = Path(args.model) / "vlm_rl.yaml"
    overrides = [*args.overrides, f"model.path={args.model}"]
    if args.search:
        overrides = [*_search_overrides(load_config(config_path, overrides)), *overrides]
    config = load_config(config_path, overrides)
    try:
        image = config.data.image
        samples = load_benchmark_samples(
            job.data, media_root=config.data.media_root, limit=args.limit, image_pixels=(image.min_pixels, image.max_pixels),
            columns=dataset_columns(config.data), **job.reader_kwargs,
        )
    except MediaNotFoundError as err:
        raise err.naming("data.media_root=") from None
    adapter = load_adapter(config.model.path)
    if config.eval.engine == "vllm":
        from vlm_rl.rollout.vllm_engine import LocalVLLM, VLLMRolloutEngine

        engine = VLLMRolloutEngine(LocalVLLM(config.model.path, config.rollout.vllm, seed=config.seed, sleep=False), adapter)
    else:
        engine = HFRolloutEngine(load_model(config.model, trainable=False), adapter)
    items = out.with_suffix(".items.jsonl")
    if args.restart:
        items.unlink(missing_ok=True)
    settings = {
        "model": str(args.model),
        "data": str(job.data),
        "config": str(config_path) if config_path else None,
        "data_settings": to_dict(config.data),
        "scoring": "judge" if job.judge else config.eval.mc_mode,
        "engine": config.eval.engine,
    }
    search = SearchEval(config.search, engine, adapter, config.eval, config.data.video.reader) if config.search.enabled else None
    report = evaluate(
        engine,
        PromptEncoder(adapter, config.data, search_turns=config.search.max_turns),
        samples,
        config.eval,
        scorer=JudgeScorer(OpenAIJudge.from_env()) if job.judge else None,
        items_path=items,
        group_by=job.group_by,
        settings=settings,
        progress=True,
        search=search,
    )
    report.write(out)
    tables = [comparison_table([out], [job.name])] + ([search_table(report.search)] if report.search else [])
    out.with_suffix(".md").write_text("\n\n".join(tables) + "\n")
    if report.accuracy_strict is None:
        accuracy = f"judge accuracy {report.accuracy:.4f} (rule check, then LLM judge: one verdict per item)"
    else:
        accuracy = (
            f"accuracy {report.accuracy:.4f} ({settings['scoring']}; strict {report.accuracy_strict:.4f}, "
            f"lenient {report.accuracy_lenient:.4f})"
        )
    print(
        f"{args.model} on {job.data}: {accuracy}, failures {report.failures}, format {report.format_rate:.4f}, "
        f"mean length {report.mean_length:.1f} tokens, n={report.n}, {report.wall_time_s:.1f} s -> {out}"
    )
    if report.search:
        print(search_line(report.search))


def _search_overrides(config) -> list[str]:
    """What `eval --search` sets before the command's own overrides: search on, and the timesearch prompt unless
    the config already has a search prompt."""
    from vlm_rl.config import SEARCH_TEMPLATES

    keep = config.data.prompt_template in SEARCH_TEMPLATES
    return ["search.enabled=true", *([] if keep else ["data.prompt_template=timesearch"])]


def _make_tiny_model(args: argparse.Namespace) -> None:
    from vlm_rl.models.tiny import build_tiny_model

    path = build_tiny_model(args.out_dir, size=args.size, seed=args.seed, family=args.family)
    print(f"tiny {args.size} {args.family} model written to {path}")


def _int_pair(text: str) -> tuple[int, int]:
    """``"MIN,MAX"`` as two integers (an argparse type)."""
    parts = text.split(",")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise argparse.ArgumentTypeError(f"expected MIN,MAX (two whole numbers), got {text!r}")
    low, high = (int(p) for p in parts)
    return low, high


def _make_data(args: argparse.Namespace) -> None:
    from data_pipelines.synthetic.generator import make_dataset
    from data_pipelines.synthetic.needle import NeedleSettings
    from data_pipelines.synthetic.perception import PerceptionSettings
    from data_pipelines.synthetic.scenes import Difficulty

    difficulty = Difficulty(
        frames=args.frames, size=args.size, fps=args.fps, distractors=args.distractors, speed=args.speed
    )
    needle = NeedleSettings(
        frames=args.needle_frames, preview_frames=args.needle_preview_frames, distractors=args.needle_distractors
    )
    tasks = args.tasks.split(",") if args.tasks else None
    kwargs = {"tasks": tasks} if tasks else {}
    try:
        perception = PerceptionSettings(size=args.image_size, min_objects=args.image_objects[0], max_objects=args.image_objects[1])
    except ValueError as err:
        raise ConfigError(f"--image-size {args.image_size} --image-objects {args.image_objects[0]},{args.image_objects[1]}: {err}") from None
    data = make_dataset(
        args.out_dir, n_train=args.n_train, n_test=args.n_test, seed=args.seed, difficulty=difficulty, needle=needle,
        perception=perception, **kwargs,
    )
    print(f"wrote {data.train_path} and {data.test_path}")


def _invert_qa(args: argparse.Namespace) -> None:
    from data_pipelines.qa_inversion import invert_file

    report = invert_file(args.input, args.output, probability=args.probability, seed=args.seed)
    reasons = ", ".join(f"{n} {reason}" for reason, n in sorted(report.skip_reasons.items()))
    print(
        f"{args.output}: {report.total} records, {report.inverted} inverted, {report.kept} kept (not drawn), "
        f"{report.no_rule} kept (no negation rule), {report.skipped} skipped" + (f" ({reasons})" if reasons else "")
    )


def _drop_thoughts(args: argparse.Namespace) -> None:
    from data_pipelines.thought_dropout import drop_thoughts_file

    report = drop_thoughts_file(args.input, args.output, probability=args.probability, seed=args.seed)
    print(f"{args.output}: {report.total} records, {report.dropped} thoughts dropped, {report.kept} kept")


def _show_data(args: argparse.Namespace) -> None:
    from collections import Counter

    from data_pipelines.formats import is_hf_dataset, load_benchmark_samples, record_format
    from data_pipelines.prompts import build_prompt_text
    from data_pipelines.record_files import MediaNotFoundError, iter_records
    from vlm_rl.config import SEARCH_TEMPLATES, load_config
    from vlm_rl.records import dataset_columns

    config = load_config(args.config, args.overrides)
    template = args.template
    if template is None:
        chosen = args.config or any(o.startswith("data.prompt_template=") for o in args.overrides)
        template = config.data.prompt_template if chosen else "video_r1_eval"
    try:
        samples = load_benchmark_samples(args.input, media_root=args.media_root, columns=dataset_columns(config.data))
    except MediaNotFoundError as err:
        raise err.naming("--media-root ") from None
    name = "hf_dataset" if is_hf_dataset(args.input) else record_format(next(iter_records(args.input))[2])
    kinds = Counter(f"{s.data_type}/{s.problem_type}" for s in samples)
    print(f"{args.input}: {name} format, {len(samples)} samples ({', '.join(f'{n} {k}' for k, n in sorted(kinds.items()))})")
    search = template in SEARCH_TEMPLATES
    if search:
        print(_search_prompt_settings(config, template))
    for sample in samples[: args.limit]:
        media = ", ".join(str(p) for p in (sample.media_path, *sample.extra_images) if p is not None) or "none"
        prompt = _search_user_turn(sample, config, template) if search else build_prompt_text(sample, template)
        print(f"\n--- {sample.origin} (media: {media})\n{prompt}\n=> {sample.solution}")


def _search_prompt_settings(config, template: str) -> str:
    """What every frame-search prompt of `template` shares: the system turn that describes the tool, how the
    preview video is sampled (data.video) and how the tool's frames are (search)."""
    from data_pipelines.search_prompt import MAX_FRAMES_PER_CALL, SEARCH_SYSTEM_PROMPT, SHORT_SEARCH_SYSTEM_PROMPT

    video, search = config.data.video, config.search
    system = config.data.system_prompt
    if system is None:
        system = SEARCH_SYSTEM_PROMPT if template == "timesearch" else SHORT_SEARCH_SYSTEM_PROMPT
    return (
        f"\n=== system turn (template {template})\n{system}\n"
        f"=== preview video (data.video): fps {video.fps}, nframes {video.nframes}, frames {video.min_frames}-"
        f"{video.max_frames}, pixels per frame {video.min_pixels}-{video.max_pixels}, total pixels {video.total_pixels}, "
        f"reader {video.reader}\n"
        f"=== tool frames (search): cache_fps {search.cache_fps}, pixels per frame {search.frame_min_pixels}-"
        f"{search.frame_max_pixels}, at most {MAX_FRAMES_PER_CALL} per call, max_turns {search.max_turns}"
    )


def _search_user_turn(sample, config, template: str) -> str:
    """The user turn of a frame-search prompt: the preview video (with the record's own sampling, if any), then
    the search instructions, the question and the video's duration (the record's, else the file's)."""
    from data_pipelines.search_prompt import search_question, short_search_question
    from vlm_rl.media import probe_video

    if sample.data_type != "video":
        raise ConfigError(f"{sample.origin}: the {template} prompt needs a video record, got data_type {sample.data_type!r}")
    if "duration" in sample.extra:
        duration = float(sample.extra["duration"])
    else:
        info = probe_video(sample.media_path, config.data.video.reader)
        duration = info.total_frames / info.fps
    own = ", ".join(f"{k} {v}" for k, v in sample.media_overrides.items())
    preview = f"<preview video{': ' + own if own else ''}>"
    if template == "timesearch":
        return f"{preview}\n{search_question(sample, duration, config.search.max_turns)}"
    return f"{preview}\n{short_search_question(sample, duration)}"


def _bench(args: argparse.Namespace) -> None:
    from vlm_rl.bench import bench_table, run_mode

    if args.worker:
        print(json.dumps(run_mode(args.workload, args.worker, args.steps, args.warmup)))
        return
    modes = {"all": ["prefill", "shared", "repeated"], "both": ["prefill", "repeated"], "vs-trl": ["prefill", "shared", "trl"]}.get(
        args.mode, [args.mode]
    )
    if "trl" in modes:
        from vlm_rl.bench_trl import check_trl

        check_trl(args.workload)  # before any output: the one error line
    print(f"workload {args.workload}: {args.steps} timed steps after {args.warmup} warm-up, medians")
    print(bench_table(args.workload, modes, args.steps, args.warmup))


def add_demo_arguments(p: argparse.ArgumentParser) -> None:
    """The options of `vlm-rl demo` (also those of ``demo/app.py``)."""
    p.add_argument("--model", required=True, help="model directory")
    p.add_argument("--compare", nargs="*", default=[], metavar="DIR", help="more model directories to compare with")
    p.add_argument("--runs", nargs="*", default=[], metavar="DIR", help="run folders (or folders of runs) to browse")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback only)")
    p.add_argument("--port", type=int, default=7860, help="port to listen on (default: %(default)s)")
    p.add_argument(
        "--auth-file",
        metavar="FILE",
        help="file of user:password lines: a login is required to open the page (or set VLM_RL_DEMO_AUTH)",
    )
    p.add_argument("--auth", help=argparse.SUPPRESS)
    p.add_argument("--max-upload-mb", type=float, default=50.0, help="largest accepted upload")
    p.add_argument("--max-video-seconds", type=float, default=120.0, help="longest accepted video")
    p.add_argument("--cache-dir", help="where the bundled examples are written (default ~/.cache/vlm-rl/demo)")


def demo_config(args: argparse.Namespace) -> DemoConfig:
    """The `DemoConfig` of parsed `add_demo_arguments` options; DemoError for a bad value."""
    if args.auth is not None:
        raise DemoError(
            "--auth is no longer accepted (a password on the command line shows in ps): put user:password lines "
            "in a file for --auth-file FILE, or set VLM_RL_DEMO_AUTH"
        )
    return DemoConfig(
        models=tuple(Path(m) for m in [args.model, *args.compare]),
        runs=tuple(Path(r) for r in args.runs),
        host=args.host,
        port=args.port,
        auth=read_credentials(args.auth_file),
        max_upload_mb=args.max_upload_mb,
        max_video_seconds=args.max_video_seconds,
        cache_dir=Path(args.cache_dir) if args.cache_dir else default_cache_dir(),
    )


def _demo(args: argparse.Namespace) -> None:
    from vlm_rl.demo.app import launch

    launch(demo_config(args))


def _plot(args: argparse.Namespace) -> None:
    from vlm_rl.training.plots import plot_run

    for path in plot_run(Path(args.run_dir)):
        print(path)


def _report(args: argparse.Namespace) -> None:
    from vlm_rl.eval.table import comparison_table

    print(comparison_table([Path(p) for p in args.reports], args.labels.split(",") if args.labels else None))


def _config(args: argparse.Namespace) -> None:
    from vlm_rl.config import describe, load_config, save_config

    if args.config is None and not args.overrides:
        print("\n".join(describe()))
        return
    config = load_config(args.config, args.overrides)
    save_config(config, "/dev/stdout")


def _vllm_serve(args: argparse.Namespace) -> None:
    from vlm_rl.config import load_config
    from vlm_rl.rollout.vllm_engine import LocalVLLM
    from vlm_rl.rollout.vllm_server import body_cap_bytes, make_server, read_token

    config = load_config(args.config, [*args.overrides, f"model.path={args.model}"])
    settings = config.rollout.vllm
    token = read_token(args.token_file or settings.token_file)
    backend = LocalVLLM(args.model, settings, seed=config.seed, sleep=False)
    server = make_server(backend, args.host, args.port, model=args.model, token=token, max_body_bytes=body_cap_bytes(settings))
    guard = "clients must send the token" if token else "no token"
    print(f"serving {args.model} with vLLM on http://{args.host}:{server.server_address[1]} ({guard})", flush=True)
    server.serve_forever()


def _synth_server(args: argparse.Namespace) -> None:
    from vlm_rl.synthesis.command import run

    run(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vlm-rl", description=__doc__)
    parser.add_argument(
        "--version", action="version", version=f"vlm-rl {metadata.version('vlm-rl')}",
        help="print the installed vlm-rl version and exit",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    for name, help in (("train", "GRPO training from a YAML config"), ("sft", "supervised fine-tuning from a YAML config")):
        p = sub.add_parser(name, help=help)
        p.add_argument("config", help="YAML config file (see configs/)")
        p.add_argument("overrides", nargs="*", help="dotted overrides, e.g. trainer.steps=20 algo.beta=0.04")
        p.set_defaults(func=lambda a, kind="grpo" if name == "train" else "sft": _train(a, kind))

    p = sub.add_parser("eval", help="evaluate a model on a record file or a benchmark; JSON + Markdown reports")
    p.add_argument("--model", help="model directory")
    p.add_argument(
        "--data", type=Path,
        help=f"record file (.json/.jsonl of {RECORD_FORMATS}) or a Hugging Face dataset "
        "(.parquet/.arrow file or dataset folder, optionally @SPLIT; columns from data.prompt_key etc.)",
    )
    p.add_argument("--benchmark", choices=("seed-bench-r1", "mmvu", "synthetic"), help="a known benchmark and its preset")
    p.add_argument("--data-root", type=Path, help="the benchmark's download folder (seed-bench-r1, mmvu)")
    p.add_argument("--levels", default="L1,L2,L3", help="SEED-Bench-R1 levels, comma-separated (default: %(default)s)")
    p.add_argument(
        "--mode", default="mc",
        help="MMVU: mc (the 625 MC items, strict letter match; the default) or official (CoT + judge)",
    )
    p.add_argument("--config", help="config for prompts, media and decoding (default: the benchmark preset, else MODEL/vlm_rl.yaml)")
    p.add_argument("--out", help="report path (one evaluation) or folder (a benchmark); default MODEL/eval/")
    p.add_argument("--limit", type=int, help="evaluate only the first N records")
    p.add_argument("--restart", action="store_true", help="discard the results of an interrupted run instead of resuming it")
    p.add_argument(
        "--search",
        action="store_true",
        help="answer with frame search (the seek_video_frames tool loop): sets search.enabled=true and, unless the "
        "config has a search prompt, data.prompt_template=timesearch (on by itself when the config has search.enabled)",
    )
    p.add_argument("--compare", nargs="+", metavar="REPORT", help="print eval reports side by side and exit")
    p.add_argument("overrides", nargs="*", help="dotted overrides, e.g. eval.temperature=0.7")
    p.set_defaults(func=_eval)

    p = sub.add_parser("make-tiny-model", help="build a tiny random-weight Qwen2.5-VL with a local tokenizer")
    p.add_argument("out_dir", help="folder to write the model, tokenizer and processor to")
    p.add_argument(
        "--size", choices=("tiny", "small"), default="tiny",
        help="tiny: hidden size 128, 2 layers; small: hidden size 256, 4 layers (default: %(default)s)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the random weights (default: %(default)s)")
    p.add_argument(
        "--family", choices=("qwen2_5_vl", "qwen2_vl"), default="qwen2_5_vl", help="model family (default: %(default)s)"
    )
    p.set_defaults(func=_make_tiny_model)

    p = sub.add_parser("make-data", help="generate the synthetic video-reasoning dataset (mp4 + Video-R1 json)")
    p.add_argument("out_dir", help="folder for videos/, images/, train.json, test.json and dataset_info.json")
    p.add_argument("--n-train", type=int, default=2000, help="samples in train.json (default: %(default)s)")
    p.add_argument("--n-test", type=int, default=256, help="samples in test.json (default: %(default)s)")
    p.add_argument(
        "--seed", type=int, default=0, help="seed of the generator: the same seed and settings give the same data "
        "(default: %(default)s)",
    )
    p.add_argument(
        "--tasks",
        help="comma-separated subset of: color,direction,count,order,colors_present (the default), "
        "and the opt-in needle (a brief event in a long clip, for frame search), rec (the box of the one shape a "
        "phrase names), detection (the boxes of every shape of a kind), compare (are there more of one shape than "
        "another; the thought states both counts), difficulty_mix (easy and hard counts, each record labelled "
        "with its difficulty), direction_fixed and colors_fixed (the direction and colours-present questions with "
        "their options in one fixed order); rec and detection write PNG images",
    )
    p.add_argument("--frames", type=int, default=4, help="frames per clip, at least 2 (default: %(default)s)")
    p.add_argument(
        "--size", type=int, default=56, help="frame width and height in pixels, even (default: %(default)s)"
    )
    p.add_argument(
        "--fps", type=float, default=4.0, help="frame rate of the clips; needle clips use 8 (default: %(default)s)"
    )
    p.add_argument("--distractors", type=int, default=0, help="extra static objects per clip (default: %(default)s)")
    p.add_argument(
        "--speed", type=float, default=1.0,
        help="motion speed multiplier; 1.0 moves a third of an object's size per frame (default: %(default)s)",
    )
    p.add_argument(
        "--needle-frames", type=int, default=96,
        help="needle clips: frames per clip (64-256, at 8 fps; default: %(default)s)",
    )
    p.add_argument(
        "--needle-preview-frames", type=int, default=8,
        help="needle clips: the event never falls on a frame of a uniform preview of this many frames (even; "
        "default: %(default)s)",
    )
    p.add_argument(
        "--needle-distractors", type=int, default=3,
        help="needle clips: static shapes on every frame, at least 1 (default: %(default)s)",
    )
    p.add_argument(
        "--image-size", type=int, default=112,
        help="rec and detection images: side in pixels (a multiple of 28; default: %(default)s)",
    )
    p.add_argument(
        "--image-objects", type=_int_pair, default=(3, 6), metavar="MIN,MAX",
        help="rec and detection images: shapes per image (default 3,6; at most one per 28-pixel cell)",
    )
    p.set_defaults(func=_make_data)

    data = sub.add_parser("data", help="offline data pipelines over record files").add_subparsers(dest="verb", required=True)
    p = data.add_parser("invert-qa", help="TW-GRPO question-answer inversion: single-answer MC -> negated multi-answer")
    p.add_argument("input", type=Path, help=".json or .jsonl records")
    p.add_argument("output", type=Path, help="output file (.jsonl writes JSON Lines, anything else a JSON list)")
    p.add_argument("--probability", type=float, default=0.5, help="chance that a negatable record is inverted (TW-GRPO: 0.5)")
    p.add_argument(
        "--seed", type=int, default=0, help="seed of the draws; the same seed gives the same output (default: %(default)s)"
    )
    p.set_defaults(func=_invert_qa)
    p = data.add_parser("drop-thoughts", help="TON thought dropout for SFT records: empty the thought with probability p")
    p.add_argument("input", type=Path, help=".json or .jsonl records with a 'process' thought")
    p.add_argument("output", type=Path, help="output file with the input's suffix (may be the input)")
    p.add_argument("--probability", type=float, default=0.5, help="dropout probability (TON: 0.5)")
    p.add_argument(
        "--seed", type=int, default=0, help="seed of the draws; the same seed gives the same output (default: %(default)s)"
    )
    p.set_defaults(func=_drop_thoughts)
    p = data.add_parser(
        "show", help="read a record file or a Hugging Face dataset, say its format and print its first prompts"
    )
    p.add_argument(
        "input", type=Path,
        help=f".json or .jsonl of {RECORD_FORMATS}, or a Hugging Face dataset (a .parquet/.arrow file or a dataset folder, "
        "optionally @SPLIT; its columns are data.prompt_key, answer_key, image_key and video_key)",
    )
    p.add_argument(
        "--template",
        help="prompt template (see data.prompt_template; timesearch and timesearch_short show the frame-search prompt "
        "and its settings); "
        "default: the config's data.prompt_template with --config or a data.prompt_template override, else video_r1_eval",
    )
    p.add_argument("--config", help="YAML config whose data.video and search sections the timesearch prompt shows")
    p.add_argument("overrides", nargs="*", help="dotted overrides, e.g. data.prompt_template=timesearch data.video.nframes=8")
    p.add_argument("--limit", type=int, default=2, help="how many rendered prompts to print")
    p.add_argument("--media-root", type=Path, help="directory the media paths are relative to")
    p.set_defaults(func=_show_data)

    p = sub.add_parser("bench", help="time complete GRPO steps phase by phase on a synthetic workload")
    p.add_argument("--workload", choices=("video", "image", "long-video", "search"), default="video",
                   help="video: 16 frames at 224x224; image: one 224x224 image; long-video: 64 frames (G=8, 64 new tokens); "
                   "search: frame-search rollouts (8-frame preview of 96-frame clips, tool turns, CSV verification)")
    p.add_argument("--mode", choices=("all", "both", "vs-trl", "prefill", "shared", "repeated", "trl"), default="all",
                   help="prompt once per group in generation and loss (prefill, the default settings), in the loss only (shared), "
                   "or per completion (repeated); trl = TRL's GRPOTrainer at the same settings (image workload only; extra "
                   "'bench'); both = prefill and repeated, all = the three of this project, vs-trl = prefill, shared and trl")
    p.add_argument("--steps", type=int, default=3, help="timed steps (default: %(default)s)")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps first (default: %(default)s)")
    p.add_argument("--worker", choices=("prefill", "shared", "repeated", "trl"), help=argparse.SUPPRESS)
    p.set_defaults(func=_bench)

    p = sub.add_parser("demo", help="Gradio app: answer, sample a group, compare checkpoints, browse runs")
    add_demo_arguments(p)
    p.set_defaults(func=_demo)

    p = sub.add_parser("plot", help="write PNG curves of a run's metrics.jsonl")
    p.add_argument("run_dir", help="run folder holding metrics.jsonl; the PNGs go to RUN_DIR/plots")
    p.set_defaults(func=_plot)

    p = sub.add_parser("report", help="print a before/after table of eval reports")
    p.add_argument("reports", nargs="+", help="eval report JSON files")
    p.add_argument(
        "--labels", help="comma-separated column labels, one per report (default: the file names without suffix)"
    )
    p.set_defaults(func=_report)

    p = sub.add_parser("config", help="list every config field with its help, or print a resolved config")
    p.add_argument(
        "config", nargs="?", help="YAML config file; with it or overrides, print the resolved config as YAML"
    )
    p.add_argument("overrides", nargs="*", help="dotted overrides applied on top, e.g. trainer.steps=20")
    p.set_defaults(func=_config)

    p = sub.add_parser("vllm-serve", help="serve a model with vLLM over HTTP for rollout.engine=vllm-server (CUDA)")
    p.add_argument("--model", required=True, help="model directory (the policy's starting weights)")
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: loopback only)")
    p.add_argument("--port", type=int, default=8000, help="port to listen on (default: %(default)s)")
    p.add_argument(
        "--token-file",
        help="file holding the token every request must carry (default: rollout.vllm.token_file, else "
        "$VLM_RL_SERVER_TOKEN; neither: no token, keep the default loopback host)",
    )
    p.add_argument("--config", help="YAML config whose rollout.vllm section sets the engine (default: the defaults)")
    p.add_argument("overrides", nargs="*", help="dotted overrides, e.g. rollout.vllm.tensor_parallel_size=2")
    p.set_defaults(func=_vllm_serve)

    p = sub.add_parser("synth-server", help="Syn-GRPO data server: new images of submitted samples, foreground kept, over HTTP")
    add_synth_server_arguments(p)
    p.set_defaults(func=_synth_server)
    return parser


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # dotted overrides may also come after options, e.g. `eval --data F eval.temperature=0 --out R`
        if not hasattr(args, "overrides") or any(a.startswith("-") or "=" not in a for a in extra):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.overrides = [*args.overrides, *extra]
    try:
        args.func(args)
    except USER_ERRORS as err:
        print(f"vlm-rl {args.command}: error: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
