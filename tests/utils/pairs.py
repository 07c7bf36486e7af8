"""Every (model, dataset) pair the specs allow, for parametrised tests."""
from ml.config import datasets_for
from ml.models import model_specs

VALID_PAIRS = {name: datasets_for(spec) for name, spec in model_specs().items()}
