"""`vlm-rl data` verbs: each runs its pipeline, prints its counts, and reports bad input in one line; a missing
media file's error names the setting in the form the entry point takes it."""

from __future__ import annotations

import json

import pytest

from vlm_rl.cli import main

MC = {
    "problem": "What did the person do with the clothes",
    "problem_type": "multiple choice",
    "options": ["A. lied on", "B. took", "C. put down", "D. washed"],
    "solution": "<answer>C</answer>",
    "data_type": "video",
    "path": "clip.mp4",
    "process": "<think>The person folds them.</think>",
}
HOW_MANY = {**MC, "problem": "How many shirts are there"}


def test_invert_qa_counts_inverted_and_unnegatable(tmp_path, capsys):
    source = tmp_path / "in.json"
    source.write_text(json.dumps([MC, HOW_MANY, {**MC, "problem_type": "numerical", "solution": "<answer>3</answer>"}]))
    main(["data", "invert-qa", str(source), str(tmp_path / "out.jsonl"), "--probability", "1", "--seed", "0"])
    out = capsys.readouterr().out
    assert "3 records, 1 inverted, 0 kept (not drawn), 1 kept (no negation rule), 1 skipped" in out
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert rows[0]["problem_type"] == "multi-answer" and rows[0]["problem"].startswith("what didn't the person do")
    assert rows[1] == HOW_MANY


def test_drop_thoughts_counts_and_writes(tmp_path, capsys):
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(MC) + "\n" for _ in range(4)))
    main(["data", "drop-thoughts", str(source), str(source), "--probability", "1"])
    assert "4 records, 4 thoughts dropped, 0 kept" in capsys.readouterr().out
    assert all(json.loads(line)["process"] == "<think>\n\n</think>" for line in source.read_text().splitlines())


def test_bad_record_is_one_line_without_traceback(tmp_path, capsys):
    source = tmp_path / "in.json"
    source.write_text(json.dumps([{**MC, "solution": "<answer>F</answer>"}]))
    with pytest.raises(SystemExit) as exit_info:
        main(["data", "invert-qa", str(source), str(tmp_path / "out.json")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and len(err.strip().splitlines()) == 1
    assert err.startswith("vlm-rl data: error:") and "record 0" in err and "solution" in err
    assert not (tmp_path / "out.json").exists()


def test_show_reads_any_format_and_renders_prompts(tmp_path, capsys):
    from data_pipelines.synthetic.generator import make_dataset

    data = make_dataset(tmp_path / "d", n_train=3, n_test=1, seed=0, tasks=["count"])
    main(["data", "show", str(data.train_path), "--limit", "1", "--template", "short"])
    out = capsys.readouterr().out
    assert out.startswith(f"{data.train_path}: video_r1 format, 3 samples (3 video/numerical)")
    assert "How many" in out and "=> <answer>" in out and "train_0.mp4" in out


@pytest.mark.parametrize(
    ("argv", "told", "not_told"),
    [
        (["data", "show", "{data}"], "--media-root DIR", "media_root="),
        (["data", "show", "{data}", "--media-root", "{root}"], "--media-root DIR", "media_root="),
        (["eval", "--model", "{root}", "--data", "{data}", "data.media_root={root}"], "data.media_root=DIR", "--media-root"),
    ],
)
def test_missing_media_names_the_setting_the_user_typed(tmp_path, capsys, argv, told, not_told):
    data = tmp_path / "in.json"
    data.write_text(json.dumps([MC]))
    with pytest.raises(SystemExit):
        main([a.format(data=data, root=tmp_path / "media") for a in argv])
    (line,) = capsys.readouterr().err.splitlines()
    assert "in.json record 0: field 'path': media file " in line
    assert f"clip.mp4 not found; pass {told} where DIR is the directory that 'clip.mp4' is relative to" in line
    assert not_told not in line


def test_missing_media_in_config_files_names_the_config_key(tmp_path):
    from data_pipelines.schema import RecordError
    from vlm_rl.records import load_records

    data = tmp_path / "in.json"
    data.write_text(json.dumps([MC]))
    with pytest.raises(RecordError, match=f"clip.mp4 not found; pass data.media_root=DIR where DIR is .* \\(now {tmp_path}\\)"):
        load_records([str(data)], None)
