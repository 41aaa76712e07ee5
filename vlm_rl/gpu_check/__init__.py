"""`scripts/gpu_check.sh`: GRPO in bf16 at the real Qwen2.5-VL sizes on one GPU, measured and checked.

Random weights, built from the published configurations (`QWEN25_VL_SIZES`) on the GPU; nothing is
downloaded. Synthetic clips are made by ``prepare`` on any machine (it needs PyAV to write them),
so the GPU machine only reads them. ``run`` then does, each case in its own process:

- ``3b-repeated``, ``3b-shared``, ``3b-default``: GRPO steps of the 3B model on 16-frame clips with the
  prompt repeated, with the shared-prefix loss forward, and with the shared prefill too (the default);
- ``7b-lora``: the 7B model with LoRA and activation checkpointing at the largest frame count that fits
  (tried from the largest down);
- ``3b-zero3``: the 3B model under DeepSpeed ZeRO-3 on one GPU (bf16, activation checkpointing);
- ``3b-equivalence``: shared-prefix against repeated log-probs and gradients in bf16;
- ``3b-resume``: two steps, a checkpoint, two more, against four straight (3B widths, two layers).

Each step's phase times come from the trainer (CUDA-synchronised); the training pass is the loss
forward and backward, its model FLOPs are counted by `vlm_rl.flops`. Every completion gets a random
reward (random weights answer nothing right), so the advantages and the gradients are not zero.
With ``--smoke`` every case runs the ``small`` tiny model in float32 on whatever device there is,
which is how the test suite runs this code. Without a CUDA device and without ``--smoke``,
``run`` prints why and exits with `SKIPPED` (77).

Modules: `cases` (what runs, its clips, models and run configs), `measure` (one case, in its own
process), `driver` (``python -m vlm_rl.gpu_check``: runs the cases, writes the report).
"""
