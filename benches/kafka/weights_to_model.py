#!/usr/bin/env python3
"""Turns ../shared/bench/kafka/weights.json (the Python consumer's fixed 64-32-8-32-64 ReLU network) into
an autoenc model file, so both consumers in the Kafka benchmark score with the same weights.

Usage: weights_to_model.py BASE.ae WEIGHTS.json OUT.ae
BASE.ae is a plain model of the same architecture and no scaling, trained by the CLI for one epoch
(compare_kafka.sh makes it); its weights are replaced, the scaler stays the identity, the threshold is
the benchmark's fixed one, and the file's CRC-32s over the tensors and the metadata are recomputed as autoenc computes them.
"""
import json
import sys
import zlib

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

base, weights_path, out = sys.argv[1:4]
tensors = load_file(base)
with safe_open(base, framework="numpy") as f:
    meta = json.loads(f.metadata()["autoenc"])
weights = json.load(open(weights_path))
layers = {"encoder.0": "enc1", "encoder.1": "enc2", "decoder.0": "dec1", "decoder.1": "dec2"}
for ours, theirs in layers.items():
    w = np.asarray(weights["layers"][theirs]["W"], dtype=np.float32)  # [in][out], as ours
    b = np.asarray(weights["layers"][theirs]["b"], dtype=np.float32)
    assert tensors[f"{ours}.weight"].shape == w.shape, (ours, tensors[f"{ours}.weight"].shape, w.shape)
    tensors[f"{ours}.weight"] = w
    tensors[f"{ours}.bias"] = b
assert np.all(tensors["scaler.offset"] == 0) and np.all(tensors["scaler.scale"] == 1), "base must have no scaling"
meta["threshold"] = {"value": float(weights["threshold"]), "rule": "explicit"}
# The checksum runs over the tensors in autoenc's order: network (encoder, decoder), scaler, sketch.
order = [f"{part}.{i}.{p}" for part in ("encoder", "decoder") for i in range(2) for p in ("weight", "bias")]
order += ["scaler.offset", "scaler.scale", "sketch.points"]
assert set(order) == set(tensors), sorted(tensors)
crc = 0
for name in order:
    crc = zlib.crc32(np.ascontiguousarray(tensors[name]).tobytes(), crc)
meta["tensor_crc32"] = crc
# The metadata checksum (format 2) covers the stored text with its own eight digits zeroed; the field
# stays last, where autoenc expects it.
meta.pop("metadata_crc32", None)
meta["metadata_crc32"] = "00000000"
text = json.dumps(meta, separators=(",", ":"))
text = text[:-10] + f'{zlib.crc32(text.encode()):08x}"}}'
save_file(tensors, out, metadata={"autoenc": text})
print(f"wrote {out} (threshold {weights['threshold']}, crc32 {crc:08x})")
