"""Models: the layer language, the presets written in it, the user's own modules, layer tables
and diagrams. One module per concept:

    layers    the layer tables of a spec, their shapes, and the LayerNet built from them
    presets   arch = "lenet5" | "mlp" as layer lists
    user      target = "module:Class": located and hashed without running it; imported and checked
    build     ModelConfig and build_model, for any of the above
    counts    layer tables: output shape, formula and parameter count of each layer
    diagram   one picture per model: its layers in order, with shapes and counts
"""
from __future__ import annotations

from runner.models.build import ModelConfig, build_model
from runner.models.layers import ACTIVATIONS, POOLS, InputTransform, Layer, LayerError, LayerNet
from runner.models.presets import PRESETS, preset_layers

__all__ = ["ModelConfig", "build_model", "ACTIVATIONS", "POOLS", "InputTransform", "Layer", "LayerError",
           "LayerNet", "PRESETS", "preset_layers"]
