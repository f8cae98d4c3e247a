"""Every Keras layer type the front end maps, each on a tiny model with its receptive field
derived by hand: r_l = r_{l-1} + d (k - 1) j_{l-1}, j_l = j_{l-1} s (a transposed conv or
an upsampling divides the jump)."""

import pytest

from keras_helpers import analyze, fields, keras

from rflint.frontends.keras.config_graph import KerasConfigError

layers = keras.layers


def functional(inputs_shape, body):
    def factory():
        inputs = keras.Input(inputs_shape)
        return keras.Model(inputs, body(inputs))
    return factory


def chain(x, *calls):
    """Apply layers in order (built in list order, so Keras names them in that order)."""
    for call in calls:
        x = call(x)
    return x


def test_conv1d_strides_and_dilation():
    # k3 s2: r 3, j 2; k5 d2: r = 3 + 2 * 4 * 2 = 19
    result = analyze(functional((32, 4), lambda x: chain(x, layers.Conv1D(8, 3, strides=2), layers.Conv1D(8, 5, dilation_rate=2))), 32)
    assert result.input_res == (32,)
    assert fields(result) == [("conv1d", "conv", (3,), (2,), (3,)), ("conv1d_1", "conv", (5,), (1,), (19,))]


def test_conv3d_per_axis_strides():
    # (1, 2, 2) strides: the second 3x3x3 conv adds 2 * (1, 2, 2)
    result = analyze(functional((8, 16, 16, 1), lambda x: chain(x, layers.Conv3D(4, 3, strides=(1, 2, 2)), layers.Conv3D(4, 3))),
                     (8, 16, 16))
    assert [layer.r_min for layer in result.layers] == [(3, 3, 3), (5, 7, 7)]


def test_depthwise_and_separable_convs():
    # depthwise 3x3/2: r 3, j 2; separable 3x3: 3 + 2 * 2 = 7
    result = analyze(functional((32, 32, 4), lambda x: chain(x, layers.DepthwiseConv2D(3, strides=2), layers.SeparableConv2D(8, 3))), 32)
    assert fields(result) == [("depthwise_conv2d", "conv", (3, 3), (2, 2), (3, 3)),
                              ("separable_conv2d", "conv", (3, 3), (1, 1), (7, 7))]


def test_conv2d_transpose_divides_the_jump():
    # conv 3x3/2: r 3, j 2; transposed 2x2/2: j = 2 / 2 = 1, r = 3 + 1 * 1 = 4
    result = analyze(functional((32, 32, 3), lambda x: chain(x, layers.Conv2D(4, 3, strides=2), layers.Conv2DTranspose(4, 2, strides=2))), 32)
    assert fields(result)[1] == ("conv2d_transpose", "conv_transpose", (2, 2), (2, 2), (4, 4))


def test_pools_and_global_pool():
    # max 3/2: r 3, j 2; AveragePooling2D(2) strides from its pool size: r = 3 + 1 * 2 = 5;
    # the global pool sees everything, so the Dense after it is no layer
    def body(x):
        return chain(x, layers.MaxPooling2D(3, strides=2), layers.AveragePooling2D(2), layers.GlobalMaxPooling2D(),
                     layers.Dense(4))
    result = analyze(functional((32, 32, 3), body), 32)
    assert fields(result) == [("max_pooling2d", "pool", (3, 3), (2, 2), (3, 3)),
                              ("average_pooling2d", "pool", (2, 2), (2, 2), (5, 5))]
    assert result.i_min == (5, 5)


def test_padding_and_cropping_move_no_field():
    # conv 3/2: r 3, j 2; padding and cropping; conv 3: 3 + 2 * 2 = 7
    def body(x):
        return chain(x, layers.Conv2D(4, 3, strides=2), layers.ZeroPadding2D(2), layers.Cropping2D(1), layers.Conv2D(4, 3))
    result = analyze(functional((32, 32, 3), body), 32)
    assert [layer.r_min for layer in result.layers] == [(3, 3), (7, 7)]


def test_cropping_too_much_cannot_run():
    with pytest.raises(KerasConfigError, match="crops"):
        analyze(functional((None, None, 3), lambda x: chain(x, layers.Conv2D(4, 3, strides=2), layers.Cropping2D(8))), 32)


def test_upsampling_and_resizing():
    # conv 3/2: r 3, j 2; upsampling x2: j 1; conv 3: 3 + 2 * 1 = 5
    result = analyze(functional((32, 32, 3), lambda x: chain(x, layers.Conv2D(4, 3, strides=2), layers.UpSampling2D(2), layers.Conv2D(4, 3))), 32)
    assert [layer.r_min for layer in result.layers] == [(3, 3), (3, 3), (5, 5)]
    assert result.layers[1].kind == "resample"
    # Resizing 32 -> 64: j 1/2; conv 3: 1 + 2 * 1/2 = 2
    resized = analyze(functional((32, 32, 3), lambda x: chain(x, layers.Resizing(64, 64), layers.Conv2D(4, 3))), 32)
    assert resized.layers[-1].r_min == (2, 2) and resized.layers[0].kind == "resample"


def test_rescaling_normalization_and_norms_are_neutral():
    def body(x):
        return chain(x, layers.Rescaling(1 / 255), layers.Normalization(mean=0.0, variance=1.0), layers.Conv2D(4, 3),
                     layers.BatchNormalization(), layers.LayerNormalization(), layers.Conv2D(4, 3))
    result = analyze(functional((32, 32, 3), body), 32)
    assert [layer.r_min for layer in result.layers] == [(3, 3), (5, 5)] and result.unknown_ops == {}


def test_merges_keep_every_path():
    # a 3x3 and a 5x5 branch merged, then a 3x3: r_min 3 + 2 = 5, r_max 5 + 2 = 7
    for merge in (layers.Add, layers.Multiply, layers.Concatenate):
        def body(x, merge=merge):
            branches = [layers.Conv2D(4, 3, padding="same")(x), layers.Conv2D(4, 5, padding="same")(x)]
            return layers.Conv2D(4, 3)(merge()(branches))
        last = analyze(functional((32, 32, 3), body), 32).layers[-1]
        assert (last.r_min, last.r_max) == ((5, 5), (7, 7)), merge


def test_space_to_depth_by_reshape_and_permute_is_a_patchify():
    # (8, 8, 3) -> blocks of 2x2 moved into channels -> 1x1 conv: a 2x2/2 window
    def body(x):
        return chain(x, layers.Reshape((4, 2, 4, 2, 3)), layers.Permute((1, 3, 2, 4, 5)), layers.Reshape((4, 4, 12)),
                     layers.Conv2D(8, 1))
    result = analyze(functional((8, 8, 3), body), 8)
    assert fields(result) == [("conv2d/space-to-depth", "pool", (2, 2), (2, 2), (2, 2)),
                              ("conv2d", "conv", (1, 1), (1, 1), (2, 2))]


def test_flatten_then_dense_sees_everything_and_dense_on_a_map_is_pointwise():
    flat = analyze(functional((16, 16, 3), lambda x: chain(x, layers.Conv2D(4, 3), layers.Flatten(), layers.Dense(4))), 16)
    assert [layer.name for layer in flat.layers] == ["conv2d"]  # the Dense sees the whole map
    mlp = analyze(functional((16, 16, 3), lambda x: chain(x, layers.Conv2D(4, 3), layers.Dense(8), layers.Conv2D(4, 3))), 16)
    assert fields(mlp) == [("conv2d", "conv", (3, 3), (1, 1), (3, 3)), ("dense", "linear", (1, 1), (1, 1), (3, 3)),
                           ("conv2d_1", "conv", (3, 3), (1, 1), (5, 5))]


def test_flatten_fixes_the_resolution_of_the_dense_after_it():
    with pytest.raises(KerasConfigError, match="built for 676 features, gets 3844"):
        analyze(functional((28, 28, 3), lambda x: chain(x, layers.Conv2D(4, 3, strides=2), layers.Flatten(), layers.Dense(4))), 64)


def test_attention_over_the_whole_map_is_global_and_over_windows_a_window():
    def whole(x):
        x = layers.Conv2D(8, 3, padding="same")(x)
        attention = layers.MultiHeadAttention(2, 4)
        return layers.Conv2D(8, 3)(attention(x, x))
    result = analyze(functional((16, 16, 8), whole), 16)
    # keys and values along both axes are read whole; each query reads its own position, so
    # the smallest field after it is still 3 + 2 = 5 (the torch side reads attention alike)
    assert [(layer.name, layer.r_min) for layer in result.layers] == [("conv2d", (3, 3)), ("conv2d_1", (5, 5))]

    def windows(x):
        # 8x8 map in 4x4 windows: (B, 2, 4, 2, 4, C) -> (B, 2, 2, 4, 4, C) -> (B, 4 windows, 16 tokens, C)
        x = chain(x, layers.Reshape((2, 4, 2, 4, 4)), layers.Permute((1, 3, 2, 4, 5)), layers.Reshape((4, 16, 4)))
        return layers.MultiHeadAttention(1, 4, attention_axes=(2,))(x, x)
    windowed = analyze(functional((8, 8, 4), windows), 8)
    # each query reads its own position (r_min 1) and the 4x4 window of its keys (r_max 4)
    [attention] = windowed.layers
    assert (attention.name, attention.kind, attention.r_min, attention.r_max) == \
        ("multi_head_attention", "attention", (1, 1), (4, 4))


def test_lambda_and_unknown_layers_are_counted_not_silently_neutral():
    class Blur(layers.Layer):
        def call(self, x):
            return x

    def body(x):
        return chain(x, layers.Conv2D(4, 3), layers.Lambda(lambda t: t * 2), Blur(), layers.Conv2D(4, 3))
    result = analyze(functional((16, 16, 3), body), 16)
    assert result.unknown_ops == {"Lambda": 1, "Blur": 1}


def test_every_call_of_a_shared_layer_and_nested_models_per_call():
    def shared_body(x):
        x = layers.Conv2D(4, 1)(x)
        shared = layers.Conv2D(4, 3, padding="same")
        return shared(shared(x))
    result = analyze(functional((16, 16, 3), shared_body), 16)
    assert [(layer.name, layer.r_min) for layer in result.layers][1:] == [("conv2d_1 (call 1)", (3, 3)),
                                                                           ("conv2d_1 (call 2)", (5, 5))]

    def nested_body(x):
        x = layers.Conv2D(4, 1)(x)
        inner = keras.Sequential([layers.Conv2D(4, 3, padding="same"), layers.Conv2D(4, 5, padding="same")],
                                 name="inner")
        return inner(inner(x))
    nested = analyze(functional((64, 64, 4), nested_body), 64)
    # first call: 3, 3 + 4 = 7; second call: 7 + 2 = 9, 9 + 4 = 13
    assert [(layer.name, layer.r_min) for layer in nested.layers][1:] == [
        ("inner (call 1)/conv2d_1", (3, 3)), ("inner (call 1)/conv2d_2", (7, 7)),
        ("inner (call 2)/conv2d_1", (9, 9)), ("inner (call 2)/conv2d_2", (13, 13))]


def test_channels_first_is_respected():
    # channels-first (3, 32, 24): strides run over H and W, not over the channels
    def body(x):
        return chain(x, layers.Conv2D(8, 3, strides=2, data_format="channels_first"),
                     layers.MaxPooling2D(2, data_format="channels_first"), layers.Flatten(data_format="channels_first"),
                     layers.Dense(4))
    result = analyze(functional((3, 32, 24), body), (32, 24))
    assert result.input_res == (32, 24)
    assert fields(result) == [("conv2d", "conv", (3, 3), (2, 2), (3, 3)),
                              ("max_pooling2d", "pool", (2, 2), (2, 2), (5, 5))]
