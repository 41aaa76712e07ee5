"""Custom reward plug-ins: `reward.custom` names a function as 'package.module:function' or 'path/to/file.py:function'."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from vlm_rl.rewards import RewardContext, RewardPipeline, load_custom_reward

PLUGIN = textwrap.dedent(
    """
    from __future__ import annotations

    from dataclasses import dataclass

    @dataclass
    class Scale:
        per_char: float = 0.1

    def length_score(ctx):
        return len(ctx.completion) * Scale().per_char

    NOT_CALLABLE = 3
    """
)


def _ctx(completion: str) -> RewardContext:
    return RewardContext(completion, "<answer>B</answer>", "multiple choice", (), "s0")


@pytest.fixture
def plugin_file(tmp_path: Path) -> Path:
    path = tmp_path / "my_rewards.py"
    path.write_text(PLUGIN)
    return path


@pytest.fixture
def plugin_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    name = "vlmrl_plugin_module_for_tests"
    (tmp_path / f"{name}.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, name, raising=False)
    yield name
    sys.modules.pop(name, None)


def test_file_form_scores_through_the_pipeline(plugin_file: Path) -> None:
    pipeline = RewardPipeline({"format": 0.0, "length": 2.0}, custom={"length": f"{plugin_file}:length_score"})
    result = pipeline([_ctx("abcd"), _ctx("abcdefghij")])
    assert result.scores["length"].tolist() == pytest.approx([0.4, 1.0])
    assert result.total.tolist() == pytest.approx([0.8, 2.0])


def test_file_form_relative_to_the_working_directory(plugin_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(plugin_file.parent)
    assert load_custom_reward("my_rewards.py:length_score")(_ctx("abc")) == pytest.approx(0.3)


def test_module_form(plugin_module: str) -> None:
    pipeline = RewardPipeline({"length": 1.0}, custom={"length": f"{plugin_module}:length_score"})
    assert pipeline([_ctx("abcde")]).scores["length"].tolist() == pytest.approx([0.5])


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("{dir}/missing.py:length_score", "file {dir}/missing.py does not exist"),
        ("{file}:missing_fn", "file {file} has no attribute 'missing_fn'"),
        ("{file}:NOT_CALLABLE", "'NOT_CALLABLE' in file {file} is not callable (int)"),
        ("{dir}/broken.py:length_score", "running file {dir}/broken.py failed: NameError"),
        ("{file}:", "must look like 'package.module:function' or 'path/to/rewards.py:function'"),
    ],
)
def test_file_form_errors_name_the_file_and_the_function(plugin_file: Path, spec: str, message: str) -> None:
    (plugin_file.parent / "broken.py").write_text("undefined_name + 1\n")
    folder = str(plugin_file.parent.resolve())
    spec = spec.format(dir=folder, file=plugin_file.resolve())
    with pytest.raises(ValueError) as info:
        RewardPipeline({"length": 1.0}, custom={"length": spec})
    text = str(info.value)
    assert text.startswith(f"custom reward spec {spec!r}"), text
    assert message.format(dir=folder, file=plugin_file.resolve()) in text
