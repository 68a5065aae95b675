"""Builds tokenwise's reference models from scratch: `python3 tools/train/train.py [stage ...]`.

Stages: tokenizer, target, draft, vlm, export (default: all, in that order); export-vlm writes
the VLM's files and figures alone (after `tokenizer vlm`, when only the VLM was retrained). Intermediate files go
to tools/train/out/ (ignored by git); export writes F32 GGUFs there and the reference outputs and
figures under models/; `npx tsx tools/train/export.ts` then writes the committed GGUF files.
"""
import json
import os
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import lm  # noqa: E402

OUT = os.path.join(HERE, "out")
MODELS = os.path.join(HERE, "..", "..", "models")
REFERENCE = os.path.join(MODELS, "reference")


def main(stages):
    torch.set_num_threads(int(os.environ.get("TRAIN_THREADS", os.cpu_count() or 1)))
    os.makedirs(OUT, exist_ok=True)
    os.makedirs(REFERENCE, exist_ok=True)
    for stage in stages:
        start = time.time()
        if stage == "tokenizer":
            lm.train_tokenizer(OUT)
        elif stage in ("target", "draft"):
            lm.train_lm(stage, lm.TARGET if stage == "target" else lm.DRAFT, OUT)
        elif stage == "vlm":
            import vlm
            vlm.train_vlm(OUT)
        elif stage == "export":
            figures = {name: lm.export_lm(name, OUT, REFERENCE) for name in ("target", "draft")}
            lm.write_held_out_sample(REFERENCE)
            import vlm
            figures["vlm"] = vlm.export_vlm(OUT, MODELS, REFERENCE)
            with open(os.path.join(MODELS, "figures.json"), "w") as f:
                json.dump(figures, f, indent=1)
        elif stage == "export-vlm":  # the VLM alone, after retraining only it
            import vlm
            with open(os.path.join(MODELS, "figures.json")) as f:
                figures = json.load(f)
            figures["vlm"] = vlm.export_vlm(OUT, MODELS, REFERENCE)
            with open(os.path.join(MODELS, "figures.json"), "w") as f:
                json.dump(figures, f, indent=1)
        else:
            raise SystemExit(f"unknown stage {stage}")
        lm.log(f"stage {stage} took {time.time() - start:.0f} s")


if __name__ == "__main__":
    main(sys.argv[1:] or ["tokenizer", "target", "draft", "vlm", "export"])
