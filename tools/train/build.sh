#!/bin/sh
# Rebuilds tokenwise's reference models from scratch, seeded: Debian's PyTorch trains them
# (tools/train/train.py), then tokenwise's own GGUF writer types and writes the committed files
# (tools/train/export.ts). About an hour on 2 cores; see docs/MODELS.md. CI never runs this.
set -e
cd "$(dirname "$0")/../.."
if [ "$(id -u)" = 0 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
    python3-torch python3-sentencepiece python3-numpy libopenblas0-pthread bible-kjv
fi
# Debian's python, not a pyenv one on PATH: the python3-* packages live there.
/usr/bin/python3 tools/train/train.py "$@"
npx tsx tools/train/export.ts
