"""The Gradio app: one input form, then Answer (streamed), Sample G, Frame search, Compare checkpoints and a run
browser."""

from __future__ import annotations

import dataclasses
import html
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
from starlette.middleware import Middleware

from data_pipelines.schema import PROBLEM_TYPES
from vlm_rl.config import SearchConfig
from vlm_rl.demo.completion_view import view_completion
from vlm_rl.demo.examples import Example, ensure_examples
from vlm_rl.demo.group_view import (
    ScoredCompletion,
    agreement_groups,
    render_group,
    reward_mix,
    reward_notes,
    score_completions,
)
from vlm_rl.demo.login_guard import LoginGuard
from vlm_rl.demo.model_runner import Completions, DemoModel, PreparedPrompt
from vlm_rl.demo.path_guard import PathGuard
from vlm_rl.demo.prompting import PROMPT_MODES, WORDINGS, PromptSettings, build_sample
from vlm_rl.demo.runs import curve_files, find_runs, logged_samples, run_curves
from vlm_rl.demo.search_view import SearchView, view_search
from vlm_rl.demo.settings import AUTH_VARIABLE, DemoConfig, DemoError
from vlm_rl.demo.uploads import IMAGE_SUFFIXES, VIDEO_SUFFIXES, check_upload
from vlm_rl.media import MediaError
from vlm_rl.network import is_loopback

USER_FACING = (DemoError, MediaError, ValueError)
"""Errors shown in the status line as one sentence (bad upload, bad setting); anything else is a bug."""

CSS = """
#status .vr-error { color: #b71c1c; font-weight: 600; }
.vr-cards { display: flex; flex-wrap: wrap; gap: 8px; }
.vr-card { flex: 1 1 220px; border: 1px solid #ccc; border-radius: 6px; padding: 6px 8px; }
.vr-title { font-weight: 600; margin-bottom: 4px; }
.vr-chip { color: white; border-radius: 8px; padding: 0 6px; font-size: 0.8em; }
.vr-badge { display: inline-block; background: #eee; color: #222; border-radius: 4px; padding: 0 4px;
            margin: 2px 4px 2px 0; font-size: 0.8em; }
.vr-part pre { white-space: pre-wrap; margin: 2px 0 6px; font-size: 0.85em; }
.vr-summary { margin-bottom: 8px; }
.vr-search-turn { border-left: 4px solid #1565c0; padding: 4px 8px; margin: 6px 0; }
.vr-search-turn.vr-outcome-parse_error, .vr-search-turn.vr-outcome-no_action { border-left-color: #b71c1c; }
.vr-search-turn.vr-outcome-answer { border-left-color: #2e7d32; }
.vr-search-turn .vr-error { color: #b71c1c; }
"""


def model_labels(paths: Sequence[Path]) -> list[str]:
    """Short distinct names: the last two path parts, more where two models would share them."""
    parts = [Path(p).resolve().parts for p in paths]
    for depth in range(2, max(len(p) for p in parts) + 1):
        labels = ["/".join(p[-depth:]) for p in parts]
        if len(set(labels)) == len(labels):
            return labels
    return [str(p) for p in paths]


def _error(error: BaseException, upload: str | None) -> str:
    """The error as one line, with the server-side upload path reduced to the file name."""
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    if upload:
        for path in {str(upload), str(Path(upload).resolve())}:
            text = text.replace(path, Path(upload).name)
    return f'<span class="vr-error">Error: {html.escape(text)}</span>'


FRAMES_LABEL = "What the model saw (sampled and resized frames)"


def _frames(prompt: PreparedPrompt | None) -> dict:
    """The frame strip's update: the prompt's frames under a label saying how they were sampled, or empty."""
    if prompt is None:
        return gr.update(value=[], label=FRAMES_LABEL)
    return gr.update(value=prompt.strip, label=f"What the model saw: {prompt.strip_summary}")


def _stats(prompt: PreparedPrompt, completions: Completions, seconds: float) -> str:
    tokens = completions.lengths[0]
    view = view_completion(completions.texts[0])
    if view.think is None:
        thinking = "no think block"
    else:
        thinking = "skipped (empty think block)" if view.skipped_thinking else "yes"
    stop = "cut at max tokens" if completions.truncated[0] else "finished"
    return (
        f"**{tokens} tokens** in {seconds:.2f} s ({tokens / max(seconds, 1e-9):.1f} tokens/s), {stop} · "
        f"prompt {prompt.inputs.length} tokens ({prompt.vision_tokens} for the media) · thinking: {thinking}"
    )


@dataclass(frozen=True)
class Form:
    """The input form's values, in the order of the page's form components."""

    upload: str | None
    question: str | None
    options: str | None
    answer: str | None
    problem_type: str
    fps: float | None
    max_frames: float | None
    max_pixels: float | None
    mode: str
    wording: str
    temperature: float
    max_tokens: float


class DemoApp:
    """The loaded models, the bundled examples and the handlers behind the page."""

    def __init__(
        self, config: DemoConfig, models: Sequence[DemoModel], examples_dir: Path, examples: list[Example]
    ) -> None:
        self.config = config
        self.models = {m.label: m for m in models}
        self.examples = examples
        self.runs = find_runs(config.runs)
        self.uploads = PathGuard([gr.utils.get_upload_folder(), examples_dir])
        self.run_roots = PathGuard(config.runs) if config.runs else None

    def _prepare(self, model: DemoModel, form: Form, search_turns: int | None = None) -> PreparedPrompt:
        """The form's prompt for `model`; with `search_turns`, the frame-search prompt allowing that many rounds."""
        if not form.upload:
            raise DemoError("upload a video or an image, or pick one of the examples")
        path = self.uploads.check(form.upload)
        kind = check_upload(path, self.config)
        sample = build_sample(path, kind, form.question or "", form.options or "", form.answer or "", form.problem_type)
        settings = PromptSettings(
            float(form.fps or 0), int(form.max_frames or 0), int(form.max_pixels or 0), form.mode, form.wording
        )
        if search_turns is not None:
            return model.prepare_search(sample, settings, search_turns)
        return model.prepare(sample, settings)

    def answer(self, model_label: str, *values):
        """Stream one answer: (status, frames, think, answer, stats, raw) updates."""
        form, model = Form(*values), self.models[model_label]
        try:
            prompt = self._prepare(model, form)
        except USER_FACING as error:
            yield _error(error, form.upload), _frames(None), "", "", "", ""
            return
        yield f"{html.escape(model.label)} is answering…", _frames(prompt), "", "", "", ""
        started = time.perf_counter()
        for text, done in model.stream(prompt, int(form.max_tokens), float(form.temperature)):
            view = view_completion(text)
            status, stats = gr.skip(), ""
            if done is not None:
                status = f"Answered by {html.escape(model.label)}."
                stats = _stats(prompt, done, time.perf_counter() - started)
            yield status, gr.skip(), view.think or "", view.answer or "", stats, text

    def sample_group(self, model_label: str, group_size: float, *values):
        """G completions side by side: (status, frames, cards)."""
        form, model = Form(*values), self.models[model_label]
        try:
            prompt = self._prepare(model, form)
        except USER_FACING as error:
            return _error(error, form.upload), _frames(None), ""
        started = time.perf_counter()
        completions = model.sample(prompt, int(group_size), int(form.max_tokens), float(form.temperature))
        seconds = time.perf_counter() - started
        items, groups = score_completions(model, prompt.sample, completions)
        status = f"{len(items)} completions from {html.escape(model.label)} in {seconds:.2f} s."
        return status, _frames(prompt), render_group(items, groups, reward_notes(items, model.rewards.weights))

    def search(self, model_label: str, max_turns: float, turn_tokens: float, *values):
        """One frame-search rollout: (status, preview frames, the view the totals and turn cards are drawn from)."""
        form, model = Form(*values), self.models[model_label]
        try:
            prompt = self._prepare(model, form, search_turns=int(max_turns))
        except USER_FACING as error:
            return _error(error, form.upload), _frames(None), None
        started = time.perf_counter()
        rollouts = model.search(prompt, int(max_turns), int(turn_tokens), float(form.temperature))
        seconds = time.perf_counter() - started
        view = view_search(rollouts.trajectories[0], rollouts.truncated[0])
        status = f"{html.escape(model.label)} searched the video in {seconds:.2f} s."
        return status, _frames(prompt), view

    def _search_tab(self, search: SearchConfig) -> tuple[gr.Slider, gr.Slider, gr.Button, gr.State]:
        """The Frame search tab: its settings and button, and the totals and turn cards drawn from the view state."""
        gr.Markdown(
            "The model searches the video with the `seek_video_frames` tool (TimeSearch-R): each turn thinks, then "
            "asks for frames of a time window or answers. The frames above are its preview; the search prompt "
            "replaces the prompt mode and wording."
        )
        with gr.Row():
            max_turns = gr.Slider(
                1, max(16, search.max_turns), step=1, value=search.max_turns, label="max turns", elem_id="search-turns"
            )
            turn_tokens = gr.Slider(
                1,
                max(1024, search.max_turn_tokens),
                step=1,
                value=search.max_turn_tokens,
                label="max tokens per turn",
                elem_id="turn-tokens",
            )
            button = gr.Button("Search", variant="primary", elem_id="search-btn")
        view = gr.State(None)

        @gr.render(inputs=[view])
        def turns(shown: SearchView | None) -> None:
            if shown is None:
                return
            gr.HTML(shown.totals, elem_id="search-totals")
            for turn in shown.turns:
                gr.HTML(turn.html, elem_id=f"search-turn-{turn.number}")
                if turn.frames:
                    gr.Gallery(
                        turn.frames,
                        label=turn.gallery_label,
                        columns=4,
                        height="auto",
                        object_fit="contain",
                        format="png",
                        elem_id=f"search-frames-{turn.number}",
                    )

        return max_turns, turn_tokens, button, view

    def compare(self, label_a: str, label_b: str, *values):
        """The same input answered once by each of two models: (status, frames, cards)."""
        form, models = Form(*values), [self.models[label_a], self.models[label_b]]
        texts, lengths, truncated, prompts = [], [], [], []
        try:
            for model in models:
                prompt = self._prepare(model, form)
                done = model.sample(prompt, 1, int(form.max_tokens), float(form.temperature))
                prompts.append(prompt)
                texts += done.texts
                lengths += done.lengths
                truncated += done.truncated
        except USER_FACING as error:
            return _error(error, form.upload), _frames(None), ""
        both = Completions(texts, lengths, truncated)
        items, groups = score_completions(models[0], prompts[0].sample, both, titles=[label_a, label_b])
        items = [dataclasses.replace(item, advantage=None) for item in items]
        mix = reward_mix(models[0].rewards.weights)
        note = f"Both answers scored with the training rewards of {html.escape(label_a)}: {mix}."
        if items[0].reward is None:
            note = "Give the correct answer to see the rewards."
        status = f"{html.escape(label_a)} and {html.escape(label_b)} answered."
        return status, _frames(prompts[0]), render_group(items, groups, [note])

    def _run(self, run_name: str) -> Path:
        """The folder of a run found under --runs, checked to be still under its root (links resolved)."""
        if self.run_roots is None or run_name not in self.runs:
            raise DemoError(f"no run {run_name!r}; the runs are those found under --runs")
        return self.run_roots.check(self.runs[run_name])

    def show_run(self, run_name):
        """(status, curve images, step choices, samples of the last step) of a run."""
        if not run_name:
            return "", [], gr.update(choices=[], value=None), ""
        try:
            run = self._run(run_name)
            curves = [str(p) for p in run_curves(run)]
            steps = sorted(logged_samples(run))
        except (DemoError, OSError, ValueError) as error:
            return _error(error, None), [], gr.update(choices=[], value=None), ""
        status = f"{run_name}: {len(curves)} curves, samples logged at {len(steps)} steps."
        last = steps[-1] if steps else None
        return status, curves, gr.update(choices=steps, value=last), self.run_samples(run_name, last)

    def run_samples(self, run_name, step) -> str:
        """The completions a run logged at `step`, as cards with their logged rewards."""
        if not run_name or step is None:
            return "<div>This run logged no sample completions (trainer.sample_every).</div>"
        records = logged_samples(self._run(run_name)).get(int(step), [])
        views = [view_completion(r.get("completion", "")) for r in records]
        clusters, groups = agreement_groups([v.answer if v.answer_closed else None for v in views])
        items = []
        for record, view, cluster in zip(records, views, clusters):
            scores = {
                k: float(v)
                for k, v in record.items()
                if k not in ("sample", "completion", "reward") and isinstance(v, (int, float))
            }
            items.append(
                ScoredCompletion(
                    title=str(record.get("sample", "")),
                    text=record.get("completion", ""),
                    view=view,
                    tokens=None,
                    truncated=False,
                    cluster=cluster,
                    scores=scores,
                    reward=record.get("reward"),
                )
            )
        return render_group(
            items, groups, [f"Step {int(step)}: {len(items)} completions of one prompt, rewards as logged."]
        )

    def build(self) -> gr.Blocks:
        first = next(iter(self.models.values()))
        defaults = first.default_settings()
        rollout = first.config.rollout
        labels = list(self.models)
        with gr.Blocks(title="vlm-rl demo", analytics_enabled=False) as blocks:
            gr.Markdown(f"## vlm-rl demo\nModels: {', '.join(f'`{label}`' for label in labels)}")
            with gr.Row():
                with gr.Column(scale=2):
                    upload = gr.File(
                        label="Video or image",
                        file_types=list(VIDEO_SUFFIXES + IMAGE_SUFFIXES),
                        type="filepath",
                        elem_id="upload",
                    )
                    question = gr.Textbox(label="Question", lines=2, elem_id="question")
                    options = gr.Textbox(
                        label="Options (one per line; empty for an open question)", lines=3, elem_id="options"
                    )
                    with gr.Row():
                        problem_type = gr.Dropdown(
                            ["auto", *PROBLEM_TYPES], value="auto", label="Answer type", elem_id="problem-type"
                        )
                        answer = gr.Textbox(label="Correct answer (for rewards)", elem_id="answer-in")
                    gr.Examples(
                        [[e.path, e.question, e.options, e.answer, e.problem_type] for e in self.examples],
                        [upload, question, options, answer, problem_type],
                        label="Bundled synthetic examples",
                        example_labels=[f"{Path(e.path).name}: {e.question}" for e in self.examples],
                    )
                    with gr.Accordion("Frames, decoding and prompt", open=True):
                        model = gr.Dropdown(labels, value=labels[0], label="Model", elem_id="model")
                        with gr.Row():
                            fps = gr.Number(defaults.fps, label="fps (0: exactly max frames)", minimum=0, elem_id="fps")
                            max_frames = gr.Number(
                                defaults.max_frames, label="max frames", precision=0, minimum=1, elem_id="max-frames"
                            )
                            max_pixels = gr.Number(
                                defaults.max_pixels,
                                label="max pixels per frame",
                                precision=0,
                                minimum=1,
                                elem_id="max-pixels",
                            )
                        with gr.Row():
                            temperature = gr.Slider(
                                0,
                                2,
                                value=rollout.temperature,
                                step=0.05,
                                label="temperature (0: greedy)",
                                elem_id="temperature",
                            )
                            max_tokens = gr.Slider(
                                1,
                                max(2048, rollout.max_new_tokens),
                                step=1,
                                value=rollout.max_new_tokens,
                                label="max new tokens",
                                elem_id="max-tokens",
                            )
                        mode = gr.Radio(list(PROMPT_MODES), value=defaults.mode, label="Prompt", elem_id="mode")
                        wording = gr.Dropdown(
                            list(WORDINGS), value=defaults.wording, label="Question wording", elem_id="wording"
                        )
                with gr.Column(scale=3):
                    status = gr.Markdown(elem_id="status")
                    frames = gr.Gallery(
                        label=FRAMES_LABEL,
                        columns=8,
                        rows=1,
                        height=170,
                        object_fit="contain",
                        format="png",
                        elem_id="frames",
                    )
                    form = [upload, question, options, answer, problem_type, fps, max_frames, max_pixels, mode]
                    form += [wording, temperature, max_tokens]
                    with gr.Tabs():
                        with gr.Tab("Answer"):
                            answer_button = gr.Button("Answer", variant="primary", elem_id="answer-btn")
                            with gr.Row():
                                think_out = gr.Textbox(label="<think>", lines=6, elem_id="think")
                                answer_out = gr.Textbox(label="<answer>", lines=6, elem_id="answer-out")
                            stats = gr.Markdown(elem_id="stats")
                            raw = gr.Textbox(label="Raw output", lines=3, elem_id="raw")
                        with gr.Tab("Sample G"):
                            with gr.Row():
                                group_size = gr.Slider(
                                    2,
                                    16,
                                    step=1,
                                    value=min(16, max(2, rollout.num_generations)),
                                    label="G (completions)",
                                    elem_id="group-size",
                                )
                                sample_button = gr.Button("Sample G", variant="primary", elem_id="sample-btn")
                            group = gr.HTML(elem_id="group")
                        with gr.Tab("Frame search"):
                            search_turns, turn_tokens, search_button, search_view = self._search_tab(first.config.search)
                        with gr.Tab("Compare checkpoints"):
                            with gr.Row():
                                model_a = gr.Dropdown(labels, value=labels[0], label="Model A", elem_id="compare-a")
                                model_b = gr.Dropdown(labels, value=labels[-1], label="Model B", elem_id="compare-b")
                                compare_button = gr.Button("Compare", variant="primary", elem_id="compare-btn")
                            compared = gr.HTML(elem_id="compare")
                        with gr.Tab("Runs"):
                            runs = list(self.runs)
                            run = gr.Dropdown(
                                runs, value=None, label="Run" if runs else "Run (start with --runs DIR)", elem_id="run"
                            )
                            run_status = gr.Markdown(elem_id="run-status")
                            curves = gr.Gallery(
                                label="Curves (vlm-rl plot)",
                                columns=3,
                                height=520,
                                object_fit="contain",
                                format="png",
                                elem_id="run-curves",
                            )
                            step = gr.Dropdown([], label="Logged samples at step", elem_id="run-step")
                            samples = gr.HTML(elem_id="run-samples")
            answer_button.click(self.answer, [model, *form], [status, frames, think_out, answer_out, stats, raw])
            sample_button.click(self.sample_group, [model, group_size, *form], [status, frames, group])
            search_button.click(
                self.search,
                [model, search_turns, turn_tokens, *form],
                [status, frames, search_view],
            )
            compare_button.click(self.compare, [model_a, model_b, *form], [status, frames, compared])
            run.change(self.show_run, [run], [run_status, curves, step, samples])
            step.input(self.run_samples, [run, step], [samples])
        return blocks


def load_models(paths: Sequence[Path]) -> list[DemoModel]:
    return [DemoModel(path, label) for path, label in zip(paths, model_labels(paths))]


def launch_options(config: DemoConfig, examples_dir: Path, runs: dict[str, Path]) -> dict:
    """`gr.Blocks.launch` keyword arguments: the files served are the bundled examples and each run's curve PNGs
    (nothing else of a run folder); with logins, `LoginGuard` stands in front of the whole app."""
    served = [Path(examples_dir), *(p for run in runs.values() for p in curve_files(run))]
    options = {
        "server_name": config.host,
        "server_port": config.port,
        "auth": list(config.auth) or None,
        "max_file_size": config.max_upload_bytes,
        "allowed_paths": [str(p.resolve()) for p in served],
        "show_error": False,
        "ssr_mode": False,
        "css": CSS,
    }
    if config.auth:
        options["app_kwargs"] = {"middleware": [Middleware(LoginGuard)]}
    elif not is_loopback(config.host):
        print(
            f"WARNING: the vlm-rl demo listens on {config.host} WITHOUT A LOGIN: anyone who reaches the port can use "
            f"the models and see the runs. Give logins with --auth-file FILE or ${AUTH_VARIABLE}.",
            file=sys.stderr,
            flush=True,
        )
    return options


def launch(config: DemoConfig, models: Sequence[DemoModel] | None = None, *, block: bool = True) -> gr.Blocks:
    """Load the models (unless given, e.g. over a scripted engine in tests), make the examples and serve: until
    interrupted, or with ``block=False`` in the background (stop it with the returned app's ``close()``)."""
    examples_dir, examples = ensure_examples(config.cache_dir)
    app = DemoApp(config, models or load_models(config.models), examples_dir, examples)
    blocks = app.build()
    blocks.queue(default_concurrency_limit=1)
    blocks.launch(**launch_options(config, examples_dir, app.runs), prevent_thread_lock=not block)
    return blocks
