"""The NAIMA network, its semantic encoders and its foreign-weight converters (no ROS imports)."""

from naima_ros.model.convert import from_reference_state_dict
from naima_ros.model.encoders import prepare_encoder
from naima_ros.model.naima import PRESETS, Naima, NaimaConfig, build_model, count_parameters, preset_config

__all__ = ["PRESETS", "Naima", "NaimaConfig", "build_model", "count_parameters", "from_reference_state_dict",
           "prepare_encoder", "preset_config"]
