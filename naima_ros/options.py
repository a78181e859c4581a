"""The values every entry point accepts, in one place (no imports: any module may use it).

``naima-eval``, ``naima-bag``, the node's parameters, training and ``naima-info`` all take their
choices from here, so a method, a scale or a precision is spelled one way everywhere.
"""

SCALES = (4, 8, 16)  # super-resolution factors the networks are built and shipped for
PRECISIONS = ("auto", "fp32", "bf16", "fp16")  # auto: fp16 autocast on CUDA, fp32 on CPU
BASELINE_METHODS = ("bicubic", "guided_filter", "jbu")
METHODS = ("naima",) + BASELINE_METHODS  # what a predictor can be (naima_ros.predictors)
