"""``python -m vlm_rl.synthesis``: the same server as `vlm-rl synth-server`, without loading the rest of vlm-rl."""

from vlm_rl.synthesis.command import main

main()
