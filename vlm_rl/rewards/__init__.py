"""Reward functions (accuracy per problem type, format) and the reward pipeline with named sub-scores."""

from data_pipelines.completion_format import extract_answer, extract_think, find_answer
from vlm_rl.rewards.accuracy import (
    PROBLEM_TYPES,
    AnswerScorer,
    accuracy_reward,
    free_form_reward,
    multi_answer_reward,
    multi_answer_strict_reward,
    multiple_choice_lenient_reward,
    multiple_choice_strict_reward,
    normalize_number,
    numerical_reward,
    ocr_reward,
    option_letter,
    regression_reward,
    scorer_for,
    word_edit_distance,
)
from vlm_rl.rewards.answers import split_letters
from vlm_rl.rewards.format import answer_format_reward, format_reward, tw_format_reward
from vlm_rl.rewards.search import search_answer_score, search_format
from vlm_rl.rewards.pipeline import (
    RewardContext,
    RewardFn,
    RewardPipeline,
    RewardResult,
    builtin_rewards,
    load_custom_reward,
    register_reward,
)

__all__ = [
    "PROBLEM_TYPES",
    "AnswerScorer",
    "RewardContext",
    "RewardFn",
    "RewardPipeline",
    "RewardResult",
    "accuracy_reward",
    "answer_format_reward",
    "builtin_rewards",
    "extract_answer",
    "extract_think",
    "find_answer",
    "format_reward",
    "free_form_reward",
    "load_custom_reward",
    "multi_answer_reward",
    "multi_answer_strict_reward",
    "multiple_choice_lenient_reward",
    "multiple_choice_strict_reward",
    "normalize_number",
    "numerical_reward",
    "ocr_reward",
    "option_letter",
    "regression_reward",
    "register_reward",
    "scorer_for",
    "search_answer_score",
    "search_format",
    "tw_format_reward",
    "word_edit_distance",
    "split_letters",
]
