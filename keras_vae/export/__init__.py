"""Export trained models for serving: SavedModel, TFLite/LiteRT and metadata.

:func:`export_model` writes to ``out_dir``:

- ``saved_model/``: a SavedModel loadable by ``tf.saved_model.load`` and TF
  Serving without importing keras_vae, with the signatures of
  :class:`ServingModule` (``serving_default`` = ``decode``):

  - ``decode``: ``z`` float32 ``[batch, latent_dim]`` -> the observation
    model's parameters (e.g. ``logits``/``probs`` for Bernoulli, ``loc``/``scale``
    for Gaussian) and ``mean``. ``z`` is the top stochastic layer ``h_M``;
    lower layers are set to their conditional means.
  - ``encode``: ``x`` float32 ``[batch, *input_shape]`` -> the posterior parameters
    of ``h_M`` (``loc`` and ``scale`` or ``scale_tril``; ``logits`` for binary
    units), lower layers at their posterior means.
  - ``sample``: ``num_samples`` int32 and ``seed`` int64 scalars -> ``z`` drawn
    from the prior of ``h_M`` with stateless random ops (the same seed gives
    the same draw) and ``x_mean``, the ``decode`` mean at ``z``.
  - ``score``: ``x`` and ``seed`` -> per-example ``elbo`` and ``log_px`` from
    ``score_k`` posterior samples (:func:`keras_vae.scoring.scores`).
  - ``ancestral_sample``: ``num_samples`` and ``seed`` -> every layer drawn
    top-down (``h_1``..``h_{M-1}``, ``z``, ``x``, ``x_mean``), as
    ``model.sample(num_samples, seed=seed)``.
  - ``score_from_noise``, ``ancestral_sample_from_noise``: the same with the
    random draws as inputs (``noise_h1``, ..., ``noise_x``).

  Input shapes and dtypes are fixed (batch dynamic): other inputs are
  rejected. Only ``sample``, ``score`` and ``ancestral_sample`` contain
  random ops, all stateless and seeded by their ``seed`` input.
- ``decoder.tflite``, ``encoder.tflite``, ``scorer.tflite``
  (``score_from_noise``) and ``sampler.tflite``
  (``ancestral_sample_from_noise``): float32, TFLite builtin ops only
  (conversion fails rather than fall back to Flex ops); with ``quantize``
  also ``<stem>_dynamic``, ``<stem>_float16`` and ``<stem>_int8.tflite``
  (see :mod:`keras_vae.export.tflite`).
- ``metadata.json``: latent size, observation family, input scaling, versions
  and every signature's documented inputs and outputs (a copy is in
  ``saved_model/assets/``).

Exporting needs TensorFlow only; ai-edge-litert, when installed, provides
the flatbuffer schema used to list each file's ops. The command line
(``keras-vae export MODEL --out DIR``) is in :mod:`keras_vae.cli.export`.

Example:

```python
from keras_vae import export

paths = export.export_model(model, "exported", quantize=("float16", "int8"), representative_data=x_train[:500])
```
"""

from keras_vae.export.exporter import ARTIFACTS
from keras_vae.export.exporter import FORMATS
from keras_vae.export.exporter import METADATA_FILE
from keras_vae.export.exporter import QUANTIZATIONS
from keras_vae.export.exporter import SAVED_MODEL_DIR
from keras_vae.export.exporter import TFLITE_FILES
from keras_vae.export.exporter import ExportError
from keras_vae.export.exporter import export_model
from keras_vae.export.exporter import load_model
from keras_vae.export.exporter import op_types
from keras_vae.export.exporter import random_op_types
from keras_vae.export.signatures import ServingModule
from keras_vae.export.tflite import interpreter
from keras_vae.export.tflite import tflite_ops
