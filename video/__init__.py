"""The path from video files to snippet tensors: decoding, preprocessing presets, backbones."""
