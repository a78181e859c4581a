"""The values every entry point accepts, in one place (no imports: any module may use it).

``naima-eval``, ``naima-bag``, the node's parameters (``naima_ros.contract``), the model, training
and ``naima-info`` all take their choices from here, so a method, a scale or a precision is spelled
one way everywhere.
"""

SCALES = (4, 8, 16)  # super-resolution factors the networks are built and shipped for
PRECISIONS = ("auto", "fp32", "bf16", "fp16")  # auto: fp16 autocast on CUDA, fp32 on CPU
BASELINE_METHODS = ("bicubic", "guided_filter", "jbu")
METHODS = ("naima",) + BASELINE_METHODS  # what a predictor can be (naima_ros.predictors)
# The baselines scored beside the models when none are named: naima-eval scores every one on the
# benchmark images; naima-bag eval, which runs one per recorded frame, the two of the demo's table.
EVAL_DEFAULT_BASELINES = BASELINE_METHODS
BAG_DEFAULT_BASELINES = ("bicubic", "guided_filter")
