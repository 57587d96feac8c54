"""The lesson's defaults, in one place: its MLP (one hidden layer of 25 ReLUs with He
initialization), its SGD (learning rate 0.01, momentum 0.9), and its training length.
`stablelearn train`, the doctor and experiment files all start from these."""

HIDDEN_LAYER = {"units": 25, "activation": "relu", "kernel_initializer": "he_uniform"}
DEPTH = 1
OPTIMIZER = {"name": "sgd", "learning_rate": 0.01, "momentum": 0.9}
SGD_MOMENTUM = OPTIMIZER["momentum"]  # the lesson's, not Keras' 0.0
EPOCHS = 100
BATCH_SIZE = 32
REPEATS = 10
N_TRAIN = 500  # the lesson's split of its own data: the first 500 rows train
TEST_FRACTION = 0.3  # held out of a user's data file
BUILTIN_DATASET = "lesson-regression"


def model_table() -> dict:
    """The lesson's [model] table in depth form (without the output layer)."""
    return {"depth": DEPTH, **HIDDEN_LAYER}
