"""ResUNet of Prakash, Manconi & Loew (2021, Sci Rep 11:9722) as a pure Keras builder.

The network maps a pre-event RGB image, a post-event RGB image and two terrain
bands (hillshade, slope) to a per-pixel landslide probability. This module only
builds the graph: no weights, no training loop, no I/O.

Topology (``width=1.0``; every filter count below is multiplied by ``width``)::

    pre_image  (H, W, 3) --conv1_A 7x7/2, 24 --+
    post_image (H, W, 3) --conv1_B 7x7/2, 24 --+-- concat (H/2, 64) = stem
    terrain    (H, W, 2) --conv1_C 7x7/2, 16 --+
    stem --maxpool 3x3/2--> res2 (3 blocks, 64,  H/4)
         --> res3 (4 blocks, 128, H/8) --> dropout
         --> res4 (6 blocks, 256, H/16) --> res5 (3 blocks, 256, H/32)
    each raw input --> 3 full-resolution residual blocks (24 / 24 / 16 filters)
                       (res1conv_preImage_Skip_*, ..._postImage_*, ..._terrain_*)
    decoder level k = 5, 4, 3, 2, 1 (256, 128, 64, 64, 64 filters):
        upsample x2 (bilinear) -> concat skip -> 3 residual blocks
        skips: dec5 <- res4, dec4 <- res3, dec3 <- res2, dec2 <- stem,
               dec1 <- concat of the three full-resolution branches (64)
    dec1 --SpatialDropout2D--> prediction (1x1 conv, 1 channel, sigmoid)
    dec2..dec5 --> conv_out_2..conv_out_5 (deep supervision, see below)

Level k of the decoder undoes the down-sampling of encoder stage k, so it runs
at 1/2**(k-1) of the input size: dec5 at H/16, ..., dec1 at full size.

Configuration choices. With ``width=1.0`` the model has exactly
20,775,893 parameters (``model.count_params()``: trainable weights plus the
batch-normalisation moving statistics), the count of the authors' published
HDF5 weights. The choices below were found by enumerating conv bias on/off,
pre- or post-activation blocks, 1x1 or 3x3 projections with or without bias
and BN, projections only where shapes change or in every first block,
max-pool or stride before stage 2, BN after the stem concatenation, learned
or fixed up-sampling and 1x1 or 3x3 heads; only this combination (and the
equivalent one noted in the max-pool item) gives the exact count:

* every convolution has a bias (the Keras default), even those followed by
  batch normalisation;
* post-activation residual blocks: ``conv3x3-BN-ReLU-conv3x3-BN``, plus the
  shortcut, then ReLU; no batch normalisation on concatenations or inputs;
* the first block of every stack (encoder stages, decoder levels and
  full-resolution branches) has a projection shortcut: 3x3 convolution with
  bias and batch normalisation, strided where the block down-samples; all
  other blocks have identity shortcuts. Stage 2 therefore has a projection
  (``res2a_branch1``) although it keeps 64 channels. Besides, a projection in
  every first block keeps the layer names independent of ``width``;
* a parameter-free 3x3/2 max-pool between the stems and stage 2 (a stride-2
  first block of stage 2 instead of the max-pool gives the same count);
  stages 3, 4, 5 down-sample with stride 2 in their first block;
* 7x7 stride-2 stems with batch normalisation and ReLU per input;
* 1x1 heads (with bias) for ``prediction`` and the four deep-supervision
  outputs; up-sampling layers are parameter-free (bilinear resizing).

Variants. :func:`build_resunet` can build the alternatives the published
diagram leaves open, for reading weights whose shapes say so
(``training/convert_original.py``): ``shortcut_kernel_px`` (3 or 1 for the
projection shortcuts), ``head_kernel_px`` (1 or 3 for ``prediction`` and the
deep-supervision heads) and ``upsampling`` (``"bilinear"`` or ``"nearest"``
parameter-free resizing). The defaults are the configuration above.

Choices that do not change the count: "dropout after the third stage" is read
in ResNet stage numbering, i.e. a (plain) ``Dropout`` on the output of
``res3`` (``res3_dropout``), which feeds both stage 4 and the ``dec4`` skip
(:data:`ENCODER_DROPOUT_AFTER_STAGE` moves it); up-sampling in the decoder is
bilinear; the deep-supervision heads resize logits, not probabilities;
convolutions use He-normal initialisation (heads: Keras defaults).

Parameter budget at ``width=1.0``: stems 8,944; encoder 12,677,952;
full-resolution branches 68,768; decoder 8,019,648; heads 581.
``width=0.25`` gives 1,311,377 parameters.

Outputs. The model returns a list, in this order (see :data:`OUTPUT_NAMES`):
``prediction`` (full resolution), then ``conv_out_2``, ``conv_out_3``,
``conv_out_4``, ``conv_out_5``. Deep-supervision output ``conv_out_k`` is a
1x1 convolution on decoder level k (``conv_out_k_logits``), resized
bilinearly by ``2**(k-1)`` to full size (``conv_out_k_resize``), then passed
through a sigmoid (``conv_out_k``). All five outputs are ``(N, H, W, 1)``
probabilities in [0, 1]; the Keras output names equal these layer names.

Layer names. Encoder layers follow ResNet naming: ``res{stage}{block}_branch2a``
and ``_branch2b`` for the main path, ``_branch1`` for the projection shortcut,
``bn`` instead of ``res`` for their batch normalisations (``bn2a_branch2a``).
Decoder layers use the same scheme with ``dec``/``bndec`` (``dec5a_branch2a``,
``bndec5a_branch1``). Full-resolution branch convolutions are lettered in
order, two per block (``res1conv_preImage_Skip_a`` ... ``_f``), the shortcut
of the first block is ``res1conv_preImage_Skip_a_branch1`` and batch
normalisations use ``bn1conv`` instead of ``res1conv``.

Export. Spatial sizes are free (``None``) but must be multiples of
:data:`SIZE_MULTIPLE`. Dropout layers are identities at inference. Up-sampling
uses :class:`BilinearUpSampling2D` rather than ``keras.layers.UpSampling2D``,
which cannot be traced with free spatial sizes (see the class); it maps to a
single ONNX ``Resize``. The layer is registered for Keras serialisation, so
``.keras`` files load without ``custom_objects`` once this module is imported.
:func:`prediction_model` keeps only the ``prediction`` output for ONNX export.
The input names ``pre_image``, ``post_image``, ``terrain`` and the output
name ``prediction`` are a contract with the QGIS plugin.
"""

from __future__ import annotations

import dataclasses
import string

import keras
from keras import layers

from model.card import (
    DEEP_SUPERVISION_PREFIX,
    INPUT_NAMES,
    OUTPUT_NAME,
    ROLE_POST_IMAGE,
    ROLE_PRE_IMAGE,
    ROLE_TERRAIN,
    SIZE_MULTIPLE_PX,
)

SERIALIZATION_PACKAGE = "landslide_resunet"
DEEP_SUPERVISION_LEVELS = (2, 3, 4, 5)
OUTPUT_NAMES = (OUTPUT_NAME,) + tuple(f"{DEEP_SUPERVISION_PREFIX}{level}" for level in DEEP_SUPERVISION_LEVELS)
SIZE_MULTIPLE = SIZE_MULTIPLE_PX
REFERENCE_PARAM_COUNT = 20_775_893

STEM_KERNEL_PX = 7
CONV_KERNEL_PX = 3
HEAD_KERNEL_PX = 1
POOL_SIZE_PX = 3
MIN_FILTERS = 4
UPSAMPLING_MODES = ("bilinear", "nearest")

# (stage number, residual blocks, filters); stage 2 follows the max-pool.
ENCODER_STAGES = ((2, 3, 64), (3, 4, 128), (4, 6, 256), (5, 3, 256))
ENCODER_DROPOUT_AFTER_STAGE = 3
# (decoder level, filters); level k runs at 1/2**(k-1) of the input size.
DECODER_LEVELS = ((5, 256), (4, 128), (3, 64), (2, 64), (1, 64))
DECODER_BLOCKS_PER_LEVEL = 3
BRANCH_BLOCKS = 3


@dataclasses.dataclass(frozen=True)
class InputSpec:
    """One network input and the names and widths of the layers it feeds.

    Attributes:
        name: Keras input name (plugin contract).
        channels: Number of input bands.
        stem_suffix: Suffix of the 7x7 stem convolution, ``conv1_<suffix>``.
        branch_tag: Tag of the full-resolution residual branch layers.
        filters: Filters of the stem and of the full-resolution branch at
            ``width=1.0``.
    """

    name: str
    channels: int
    stem_suffix: str
    branch_tag: str
    filters: int


INPUT_SPECS = (
    InputSpec(ROLE_PRE_IMAGE, 3, "A", "preImage", 24),
    InputSpec(ROLE_POST_IMAGE, 3, "B", "postImage", 24),
    InputSpec(ROLE_TERRAIN, 2, "C", "terrain", 16),
)
assert tuple(spec.name for spec in INPUT_SPECS) == INPUT_NAMES


@dataclasses.dataclass(frozen=True)
class BlockNames:
    """Layer names of one residual block.

    Attributes:
        conv_a: First 3x3 convolution of the main path.
        bn_a: Batch normalisation after ``conv_a``.
        relu_a: ReLU after ``bn_a``.
        conv_b: Second 3x3 convolution of the main path.
        bn_b: Batch normalisation after ``conv_b``.
        conv_shortcut: Projection shortcut convolution (first block only).
        bn_shortcut: Batch normalisation of the projection shortcut.
        add: Sum of main path and shortcut.
        out: Final ReLU of the block.
    """

    conv_a: str
    bn_a: str
    relu_a: str
    conv_b: str
    bn_b: str
    conv_shortcut: str
    bn_shortcut: str
    add: str
    out: str


@dataclasses.dataclass(frozen=True)
class ConvSettings:
    """Settings shared by the layers of the network.

    Attributes:
        l2: L2 kernel regularisation factor; 0 disables regularisation.
        shortcut_kernel_px: Kernel size of the projection shortcuts.
        head_kernel_px: Kernel size of ``prediction`` and of the
            deep-supervision heads.
        upsampling: Interpolation of the parameter-free up-sampling layers,
            one of :data:`UPSAMPLING_MODES`.
    """

    l2: float
    shortcut_kernel_px: int = CONV_KERNEL_PX
    head_kernel_px: int = HEAD_KERNEL_PX
    upsampling: str = "bilinear"

    def regularizer(self):
        """Returns the kernel regulariser, or None without regularisation."""
        return keras.regularizers.L2(self.l2) if self.l2 > 0 else None


@keras.saving.register_keras_serializable(package=SERIALIZATION_PACKAGE)
class BilinearUpSampling2D(layers.Layer):
    """Bilinear (or nearest) up-sampling by an integer factor that traces with free sizes.

    ``keras.layers.UpSampling2D(interpolation="bilinear")`` (Keras 3.15) checks
    the target size with a Python ``if``, which fails when a graph is traced
    with unknown height and width (``tf.function`` with ``None`` spatial
    dimensions, as tf2onnx and retracing ``fit`` do). This layer computes the
    size with tensor ops and calls ``tf.image.resize`` (half-pixel centres, no
    anti-aliasing: the same values as ``UpSampling2D``), which tf2onnx maps to
    one ONNX ``Resize``. It has no weights.

    Args:
        factor: Integer up-sampling factor of height and width.
        interpolation: ``"bilinear"`` (default) or ``"nearest"``, the values
            of ``UpSampling2D`` with the same interpolation.
        **kwargs: Standard Keras layer arguments (``name``, ``dtype``...).
    """

    def __init__(self, factor: int, interpolation: str = "bilinear", **kwargs):
        super().__init__(**kwargs)
        if int(factor) < 1:
            raise ValueError(f"factor must be a positive integer, got {factor}")
        if interpolation not in UPSAMPLING_MODES:
            raise ValueError(f"interpolation must be one of {UPSAMPLING_MODES}, got {interpolation!r}")
        self.factor = int(factor)
        self.interpolation = interpolation

    def call(self, inputs):
        """Resizes ``inputs`` (N, H, W, C) to (N, factor*H, factor*W, C)."""
        if keras.backend.backend() != "tensorflow":  # JAX (GPU training): static sizes, the same values
            _, height, width, channels = inputs.shape
            size = (height * self.factor, width * self.factor)
            return keras.ops.image.resize(inputs, size, interpolation=self.interpolation, antialias=False)
        import tensorflow as tf

        size_px = tf.shape(inputs)[1:3] * self.factor
        resized = tf.image.resize(inputs, size_px, method=self.interpolation)
        return tf.cast(resized, inputs.dtype)

    def compute_output_shape(self, input_shape):
        """Output shape; unknown spatial sizes stay unknown."""
        batch, height, width, channels = input_shape
        scale = lambda size: None if size is None else size * self.factor  # noqa: E731
        return (batch, scale(height), scale(width), channels)

    def get_config(self):
        """Layer config for serialisation."""
        return {**super().get_config(), "factor": self.factor, "interpolation": self.interpolation}


def block_id(stage: int, block_index: int) -> str:
    """ResNet block id: stage or level number plus block letter, e.g. ``2a``."""
    return f"{stage}{string.ascii_lowercase[block_index]}"


def resnet_block_names(conv_prefix: str, bn_prefix: str, block_id: str) -> BlockNames:
    """Names of a block in ResNet style, e.g. ``res2a_branch2a``.

    Args:
        conv_prefix: Prefix of convolution names (``res`` or ``dec``).
        bn_prefix: Prefix of batch-normalisation names (``bn`` or ``bndec``).
        block_id: Stage or level number plus block letter, e.g. ``2a``.

    Returns:
        The layer names of the block.
    """
    conv = f"{conv_prefix}{block_id}"
    bn = f"{bn_prefix}{block_id}"
    return BlockNames(
        conv_a=f"{conv}_branch2a",
        bn_a=f"{bn}_branch2a",
        relu_a=f"{conv}_branch2a_relu",
        conv_b=f"{conv}_branch2b",
        bn_b=f"{bn}_branch2b",
        conv_shortcut=f"{conv}_branch1",
        bn_shortcut=f"{bn}_branch1",
        add=f"{conv}_add",
        out=f"{conv}_relu",
    )


def branch_block_names(branch_tag: str, block_index: int) -> BlockNames:
    """Names of a full-resolution branch block, e.g. ``res1conv_preImage_Skip_a``.

    Convolutions are lettered in order, two per block: block 0 holds ``_a``
    and ``_b``, block 1 ``_c`` and ``_d``, block 2 ``_e`` and ``_f``.

    Args:
        branch_tag: ``preImage``, ``postImage`` or ``terrain``.
        block_index: Zero-based index of the block in the branch.

    Returns:
        The layer names of the block.
    """
    letter_a = string.ascii_lowercase[2 * block_index]
    letter_b = string.ascii_lowercase[2 * block_index + 1]
    conv = f"res1conv_{branch_tag}_Skip"
    bn = f"bn1conv_{branch_tag}_Skip"
    return BlockNames(
        conv_a=f"{conv}_{letter_a}",
        bn_a=f"{bn}_{letter_a}",
        relu_a=f"{conv}_{letter_a}_relu",
        conv_b=f"{conv}_{letter_b}",
        bn_b=f"{bn}_{letter_b}",
        conv_shortcut=f"{conv}_{letter_a}_branch1",
        bn_shortcut=f"{bn}_{letter_a}_branch1",
        add=f"{conv}_{letter_b}_add",
        out=f"{conv}_{letter_b}_relu",
    )


def scaled_filters(filters: int, width: float) -> int:
    """Scales a filter count by the width multiplier.

    Args:
        filters: Filter count at ``width=1.0``.
        width: Width multiplier.

    Returns:
        ``round(filters * width)``, at least :data:`MIN_FILTERS`.
    """
    return max(MIN_FILTERS, int(round(filters * width)))


def conv2d(x, filters: int, kernel_px: int, stride: int, name: str, settings: ConvSettings):
    """Same-padded 2D convolution with bias, He initialisation and L2 penalty.

    Args:
        x: Input tensor, channels last.
        filters: Output channels.
        kernel_px: Square kernel size in pixels.
        stride: Stride in pixels.
        name: Layer name.
        settings: Shared convolution settings.

    Returns:
        The output tensor.
    """
    return layers.Conv2D(
        filters,
        kernel_px,
        strides=stride,
        padding="same",
        use_bias=True,
        kernel_initializer="he_normal",
        kernel_regularizer=settings.regularizer(),
        name=name,
    )(x)


def residual_block(x, filters: int, names: BlockNames, settings: ConvSettings,
                   stride: int = 1, projection: bool = False):
    """Post-activation residual block: conv-BN-ReLU-conv-BN + shortcut, ReLU.

    Args:
        x: Input tensor.
        filters: Output channels.
        names: Layer names of the block.
        settings: Shared convolution settings.
        stride: Stride of the first convolution and of the projection.
        projection: Use a convolution + BN shortcut (kernel
            ``settings.shortcut_kernel_px``) instead of identity.

    Returns:
        The output tensor.
    """
    y = conv2d(x, filters, CONV_KERNEL_PX, stride, names.conv_a, settings)
    y = layers.BatchNormalization(name=names.bn_a)(y)
    y = layers.ReLU(name=names.relu_a)(y)
    y = conv2d(y, filters, CONV_KERNEL_PX, 1, names.conv_b, settings)
    y = layers.BatchNormalization(name=names.bn_b)(y)
    shortcut = x
    if projection:
        shortcut = conv2d(x, filters, settings.shortcut_kernel_px, stride, names.conv_shortcut, settings)
        shortcut = layers.BatchNormalization(name=names.bn_shortcut)(shortcut)
    y = layers.Add(name=names.add)([y, shortcut])
    return layers.ReLU(name=names.out)(y)


def residual_stack(x, filters: int, n_blocks: int, names_of, settings: ConvSettings,
                   first_stride: int = 1):
    """Stack of residual blocks; the first one projects (and may down-sample).

    Args:
        x: Input tensor.
        filters: Output channels of every block.
        n_blocks: Number of blocks.
        names_of: Callable mapping a zero-based block index to its
            :class:`BlockNames`.
        settings: Shared convolution settings.
        first_stride: Stride of the first block.

    Returns:
        The output tensor.
    """
    for block_index in range(n_blocks):
        is_first = block_index == 0
        x = residual_block(
            x,
            filters,
            names_of(block_index),
            settings,
            stride=first_stride if is_first else 1,
            projection=is_first,
        )
    return x


def build_stem(inputs, width: float, settings: ConvSettings):
    """Per-input 7x7 stride-2 stems (conv1_A/B/C + BN + ReLU), concatenated.

    Args:
        inputs: Input tensors in :data:`INPUT_SPECS` order.
        width: Width multiplier.
        settings: Shared convolution settings.

    Returns:
        The concatenated stem features at half resolution.
    """
    stem_features = []
    for spec, x in zip(INPUT_SPECS, inputs):
        name = f"conv1_{spec.stem_suffix}"
        y = conv2d(x, scaled_filters(spec.filters, width), STEM_KERNEL_PX, 2, name, settings)
        y = layers.BatchNormalization(name=f"bn_{name}")(y)
        stem_features.append(layers.ReLU(name=f"{name}_relu")(y))
    return layers.Concatenate(name="conv1_concat")(stem_features)


def build_encoder(stem, width: float, dropout: float, settings: ConvSettings):
    """Shared ResNet-34-style encoder (stages 2 to 5).

    Args:
        stem: Concatenated stem features at half resolution.
        width: Width multiplier.
        dropout: Dropout rate applied after stage
            :data:`ENCODER_DROPOUT_AFTER_STAGE`.
        settings: Shared convolution settings.

    Returns:
        Dict mapping stage number (1 for the stem, 2 to 5) to its output;
        stage k has 1/2**k of the input size.
    """
    features = {1: stem}
    x = layers.MaxPooling2D(POOL_SIZE_PX, strides=2, padding="same", name="pool1")(stem)
    for stage, n_blocks, filters in ENCODER_STAGES:
        first_stride = 1 if stage == 2 else 2
        x = residual_stack(
            x,
            scaled_filters(filters, width),
            n_blocks,
            lambda i, stage=stage: resnet_block_names("res", "bn", block_id(stage, i)),
            settings,
            first_stride=first_stride,
        )
        if stage == ENCODER_DROPOUT_AFTER_STAGE:
            x = layers.Dropout(dropout, name=f"res{stage}_dropout")(x)
        features[stage] = x
    return features


def build_full_resolution_branches(inputs, width: float, settings: ConvSettings):
    """Per-input residual branches at full resolution, concatenated.

    Args:
        inputs: Input tensors in :data:`INPUT_SPECS` order.
        width: Width multiplier.
        settings: Shared convolution settings.

    Returns:
        The concatenated branch features at full resolution.
    """
    branches = []
    for spec, x in zip(INPUT_SPECS, inputs):
        branches.append(
            residual_stack(
                x,
                scaled_filters(spec.filters, width),
                BRANCH_BLOCKS,
                lambda i, tag=spec.branch_tag: branch_block_names(tag, i),
                settings,
            )
        )
    return layers.Concatenate(name="res1conv_Skip_concat")(branches)


def build_decoder(encoder_features, full_resolution, width: float, settings: ConvSettings):
    """U-Net decoder: per level, up-sample x2, concatenate skip, 3 residual blocks.

    Args:
        encoder_features: Output of :func:`build_encoder`.
        full_resolution: Output of :func:`build_full_resolution_branches`.
        width: Width multiplier.
        settings: Shared convolution settings.

    Returns:
        Dict mapping decoder level (5 to 1) to its output; level k has
        1/2**(k-1) of the input size.
    """
    skips = dict(encoder_features)
    skips[0] = full_resolution
    x = encoder_features[5]
    decoder_features = {}
    for level, filters in DECODER_LEVELS:
        x = BilinearUpSampling2D(2, settings.upsampling, name=f"dec{level}_upsample")(x)
        x = layers.Concatenate(name=f"dec{level}_concat")([x, skips[level - 1]])
        x = residual_stack(
            x,
            scaled_filters(filters, width),
            DECODER_BLOCKS_PER_LEVEL,
            lambda i, level=level: resnet_block_names("dec", "bndec", block_id(level, i)),
            settings,
        )
        decoder_features[level] = x
    return decoder_features


def deep_supervision_head(x, level: int, settings: ConvSettings):
    """Logit head (1x1 by default) on decoder level ``level``, resized to full size, sigmoid.

    Args:
        x: Decoder features of the level (1/2**(level-1) of the input size).
        level: Decoder level, 2 to 5.
        settings: Shared convolution settings.

    Returns:
        Full-resolution probabilities, layer name ``conv_out_<level>``.
    """
    name = f"{DEEP_SUPERVISION_PREFIX}{level}"
    logits = conv2d(x, 1, settings.head_kernel_px, 1, f"{name}_logits", settings)
    logits = BilinearUpSampling2D(2 ** (level - 1), settings.upsampling, name=f"{name}_resize")(logits)
    return layers.Activation("sigmoid", dtype="float32", name=name)(logits)


def prediction_head(x, spatial_dropout: float, settings: ConvSettings):
    """Spatial dropout then sigmoid convolution (1x1 by default) named ``prediction``.

    Args:
        x: Full-resolution decoder features.
        spatial_dropout: SpatialDropout2D rate.
        settings: Shared convolution settings.

    Returns:
        Full-resolution landslide probabilities.
    """
    x = layers.SpatialDropout2D(spatial_dropout, name=f"{OUTPUT_NAME}_dropout")(x)
    return layers.Conv2D(
        1,
        settings.head_kernel_px,
        padding="same",
        activation="sigmoid",
        kernel_regularizer=settings.regularizer(),
        dtype="float32",
        name=OUTPUT_NAME,
    )(x)


def build_inputs():
    """Network inputs, channels last, free spatial size, float32.

    Returns:
        List of Keras inputs in :data:`INPUT_SPECS` order.
    """
    return [
        keras.Input(shape=(None, None, spec.channels), dtype="float32", name=spec.name)
        for spec in INPUT_SPECS
    ]


def validate_arguments(width: float, l2: float, dropout: float, spatial_dropout: float,
                       shortcut_kernel_px: int = CONV_KERNEL_PX, head_kernel_px: int = HEAD_KERNEL_PX,
                       upsampling: str = "bilinear") -> None:
    """Rejects out-of-range builder arguments.

    Args:
        width: Width multiplier, must be > 0.
        l2: L2 factor, must be >= 0.
        dropout: Dropout rate, must be in [0, 1).
        spatial_dropout: Spatial dropout rate, must be in [0, 1).
        shortcut_kernel_px: Projection kernel size, must be odd and >= 1.
        head_kernel_px: Head kernel size, must be odd and >= 1.
        upsampling: One of :data:`UPSAMPLING_MODES`.

    Raises:
        ValueError: If an argument is out of range.
    """
    for label, kernel_px in (("shortcut_kernel_px", shortcut_kernel_px), ("head_kernel_px", head_kernel_px)):
        if not (isinstance(kernel_px, int) and kernel_px >= 1 and kernel_px % 2 == 1):
            raise ValueError(f"{label} must be an odd positive integer, got {kernel_px!r}")
    if upsampling not in UPSAMPLING_MODES:
        raise ValueError(f"upsampling must be one of {UPSAMPLING_MODES}, got {upsampling!r}")
    if not width > 0:
        raise ValueError(f"width must be > 0, got {width}")
    if not l2 >= 0:
        raise ValueError(f"l2 must be >= 0, got {l2}")
    for label, rate in (("dropout", dropout), ("spatial_dropout", spatial_dropout)):
        if not 0 <= rate < 1:
            raise ValueError(f"{label} must be in [0, 1), got {rate}")


def build_resunet(width: float = 1.0, l2: float = 1e-4, dropout: float = 0.3,
                  spatial_dropout: float = 0.1, name: str = "resunet",
                  shortcut_kernel_px: int = CONV_KERNEL_PX, head_kernel_px: int = HEAD_KERNEL_PX,
                  upsampling: str = "bilinear") -> keras.Model:
    """Builds the multi-input ResUNet with deep supervision.

    Args:
        width: Multiplier of every filter count (rounded, at least
            :data:`MIN_FILTERS`); topology and layer names do not change.
            ``1.0`` is the published network (20,775,893 parameters).
        l2: L2 kernel regularisation factor of every convolution; 0 disables.
        dropout: Rate of the dropout after encoder stage 3.
        spatial_dropout: Rate of the SpatialDropout2D before ``prediction``.
        name: Model name.
        shortcut_kernel_px: Kernel size of the projection shortcuts (3 in
            the published configuration; 1 is the other reading of the
            diagram).
        head_kernel_px: Kernel size of ``prediction`` and the four
            deep-supervision heads (1 in the published configuration).
        upsampling: ``"bilinear"`` (published configuration) or
            ``"nearest"`` parameter-free up-sampling.

    Returns:
        A freshly initialised Keras model with inputs ``pre_image`` (H, W, 3),
        ``post_image`` (H, W, 3) and ``terrain`` (H, W, 2), H and W multiples
        of :data:`SIZE_MULTIPLE`, and the outputs listed in
        :data:`OUTPUT_NAMES` (in that order), each (N, H, W, 1) in [0, 1].

    Raises:
        ValueError: If an argument is out of range.
    """
    validate_arguments(width, l2, dropout, spatial_dropout, shortcut_kernel_px, head_kernel_px, upsampling)
    settings = ConvSettings(l2=float(l2), shortcut_kernel_px=shortcut_kernel_px,
                            head_kernel_px=head_kernel_px, upsampling=upsampling)
    inputs = build_inputs()
    stem = build_stem(inputs, width, settings)
    encoder_features = build_encoder(stem, width, dropout, settings)
    full_resolution = build_full_resolution_branches(inputs, width, settings)
    decoder_features = build_decoder(encoder_features, full_resolution, width, settings)
    outputs = [prediction_head(decoder_features[1], spatial_dropout, settings)]
    outputs += [deep_supervision_head(decoder_features[level], level, settings)
                for level in DEEP_SUPERVISION_LEVELS]
    return keras.Model(inputs=inputs, outputs=outputs, name=name)


def prediction_model(model: keras.Model) -> keras.Model:
    """Model sharing ``model``'s layers with only the ``prediction`` output.

    Args:
        model: A model from :func:`build_resunet` (trained or not).

    Returns:
        A Keras model with the same three inputs and the single output
        ``prediction``, for inference and ONNX export.
    """
    return keras.Model(
        inputs=model.inputs,
        outputs=model.get_layer(OUTPUT_NAME).output,
        name=f"{model.name}_prediction",
    )
