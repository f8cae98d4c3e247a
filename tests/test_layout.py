"""The layout algebra on its own (torch-free): which input axes each dimension carries."""

import subprocess
import sys

import pytest

from rflint.core import layout as lay
from rflint.core.layout import BATCH, FEATURES, TOKENS, Layout, LayoutError, Piece
from rflint.core.receptive_field import NEUTRAL, Window

H, W = 0, 1


def image(h=8, w=8, c=4, b=2):
    return Layout.image((b, c, h, w), 2)


def test_image_layout_keeps_the_batch_and_one_position_axes():
    x = Layout.image((1, 3, 8, 1), 2)
    assert x.dims == ((Piece(BATCH, 1, 1),), (Piece(FEATURES, 1, 3),), (Piece(H, 1, 8),), (Piece(W, 1, 1),))
    assert x.axes() == {H, W}  # a conv on a 1-position map still grows the field
    assert Layout.plain((1, 4)).dims == ((), (Piece(FEATURES, 1, 4),))


def test_flatten_merges_and_view_splits_back():
    tokens = image().reshape((2, 4, 64))  # ViT's flatten(2)
    assert tokens.dims[2] == (Piece(H, 1, 8), Piece(W, 1, 8))
    back = tokens.reshape((2, 4, 8, 8))
    assert back.dims == image().dims


def test_split_into_blocks_then_merge_again():
    # (B, C, H/4, 4, W/4, 4): coarse pieces step 4, fine pieces step 1
    blocks = image(16, 16).reshape((2, 4, 4, 4, 4, 4))
    assert blocks.dims[2:] == ((Piece(H, 4, 4),), (Piece(H, 1, 4),), (Piece(W, 4, 4),), (Piece(W, 1, 4),))
    assert blocks.reshape((2, 4, 16, 16)).dims == image(16, 16).dims  # adjacent blocks merge back


def test_uneven_cut_is_an_error():
    with pytest.raises(LayoutError):
        image(6, 6).reshape((2, 4, 4, 9))


def test_permute_moves_dimensions():
    nhwc = image().permute((0, 2, 3, 1))
    assert nhwc.dims[3] == (Piece(FEATURES, 1, 4),) and nhwc.dims[1] == (Piece(H, 1, 8),)


def test_space_to_depth_merged_into_channels_is_a_window_with_its_stride():
    # TResNet: view (B, C, H/4, 4, W/4, 4) -> permute (B, 4, 4, C, H/4, W/4) -> view (B, 16C, H/4, W/4)
    x = image(16, 16).reshape((2, 4, 4, 4, 4, 4)).permute((0, 3, 5, 1, 2, 4)).reshape((2, 64, 4, 4))
    op, out = lay.consume_offsets(x, 2)
    assert op == Window((4, 4), (4, 4), (1, 1))
    assert out.dims[2:] == ((Piece(H, 1, 4),), (Piece(W, 1, 4),))  # the grid is now whole axes
    assert out.axes([1]) == set()


def test_window_partition_into_the_batch_is_not_space_to_depth():
    # Swin: (B, H/4, 4, W/4, 4, C) -> (B * 16 windows, 16 tokens, C): blocks hide in the batch
    x = image(16, 16).permute((0, 2, 3, 1)).reshape((2, 4, 4, 4, 4, 4)).permute((0, 1, 3, 2, 4, 5))
    windows = x.reshape((32, 16, 4))
    assert lay.consume_offsets(windows, 2) == (NEUTRAL, windows)
    mixes = lay.mixed(windows, [1])  # attention over the 16 tokens of a window
    assert mixes.extent == {H: 4, W: 4} and not mixes.whole


def test_mixing_every_piece_of_an_axis_sees_it_whole():
    tokens = image().reshape((2, 4, 64)).permute((0, 2, 1))
    assert lay.mixed(tokens, [1]).whole == {H, W}
    assert lay.mixed(tokens, [2]) == lay.Mixing({}, frozenset())  # channels: pointwise


def test_reduction_over_fine_blocks_coarsens_the_output():
    # mean over the fine piece of H: a window of 4 with stride 4 (average pooling by reshape)
    blocks = image(16, 16).reshape((2, 4, 4, 4, 16))
    out = Layout(blocks.dims[:3] + blocks.dims[4:], (2, 4, 4, 16))
    op, rescaled = lay.mixing_op(lay.mixed(blocks, [3]), out, 2, blocks)
    assert op == Window((4, 1), (4, 1), (1, 1))
    assert rescaled.dims[2] == (Piece(H, 1, 4),)


def test_slide_maps_dimensions_to_axes():
    nwc = image().permute((0, 2, 1, 3)).reshape((16, 4, 8))  # rows in the batch: a Conv1d along W
    op, out = lay.slide(nwc, [2], (5,), (1,), (1,), (8,), 2)
    assert op == Window((1, 5), (1, 1), (1, 1))
    with pytest.raises(LayoutError):  # a window along a merged token dimension
        lay.slide(image().reshape((2, 4, 64)), [2], (3,), (1,), (1,), (64,), 2)


def test_class_token_pieces_move_whole_and_mix_as_whole_axes():
    cls = Piece(TOKENS, 1, 65, (Piece(H, 1, 8), Piece(W, 1, 8)))
    x = Layout(((Piece(BATCH, 1, 2),), (cls,), (Piece(FEATURES, 1, 4),)), (2, 65, 4))
    assert x.axes() == {H, W}
    assert lay.mixed(x, [1]).whole == {H, W}
    with pytest.raises(LayoutError):
        x.reshape((2, 5, 13, 4))


def test_the_core_imports_without_torch():
    code = "import rflint.core.layout, rflint.core.graph, rflint.core.receptive_field, sys; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
