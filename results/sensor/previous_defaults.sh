# The node's defaults before issue 19 (checkpoint: shipped until then): what every sensor-grade candidate is judged against.
declare -A OLD_DEFAULT=([4]=checkpoints/naima_light_x4_demo.safetensors [8]=checkpoints/naima_semantic_x8.safetensors
                        [16]=checkpoints/naima_semantic_x16.safetensors)
