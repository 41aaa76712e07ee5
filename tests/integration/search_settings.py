"""Frame-search settings that fit the tiny model and the 1-second synthetic clips, and a scripted tool call."""

SEARCH = [
    "data.prompt_template=timesearch",
    "search.enabled=true",
    "search.max_turns=2",
    "search.max_turn_tokens=12",
    "search.cache_fps=4",
    "search.frame_min_pixels=3136",
    "search.frame_max_pixels=3136",
    "search.verify_max_tokens=6",
]
"""A 4-frame cache of 56x56 frames (one tool frame is a (1, 4, 4) image grid), two turns of 12 tokens."""

CALL = (
    '<think>{name}</think><tool_call>{{"name": "seek_video_frames", '
    '"arguments": {{"query": "red", "start_time": 0, "end_time": 1}}}}</tool_call>'
)
"""A model turn that searches the whole 1-second clip; `name` makes the turn's text unique."""
