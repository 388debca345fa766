"""U-Net with a dilated "spatial pyramid" bottleneck (papers 000 / 002).

The encoder halves the resolution ``depth`` times, doubling the filters each
time; the bottleneck replaces plain convolutions by dilated 3×3 convolutions
(dilations 2, 4, 6 by default) whose outputs are summed, which widens the
receptive field cheaply and helps on noisy images; the decoder upsamples,
concatenates the encoder's skip features and convolves. The head is a 1×1
convolution to ``n_classes`` logits (softmax over channels gives
probabilities). Class channel ``c`` corresponds to napari label ``c + 1``
(label 1 = background).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch
from torch import nn
import torch.nn.functional as F


@dataclass
class UNetConfig:
    """Architecture of a segmentation U-Net; round-trips to JSON.

    Parameters
    ----------
    n_classes : int
        Output channels = number of napari label values used (1 = background,
        2 … = classes), at least 2.
    in_channels : int
        Input channels (1 for a grey-scale frame).
    filters : int
        Filters of the first (full-resolution) level; doubled at each level.
    depth : int
        Number of 2× down-samplings (frames are padded to a multiple of
        ``2**depth`` pixels).
    convs_per_level : list of int
        3×3 convolutions per encoder level (length ``depth``); the decoder mirrors it.
    dilations : list of int
        Dilations of the bottleneck's pyramid (one 3×3 convolution each).
    pyramid : {"parallel", "cascaded"}
        ``parallel``: every dilated convolution sees the encoder output;
        ``cascaded``: each sees the previous one's output. Outputs are summed.
    batchnorm : bool
        BatchNorm after each convolution.
    dropout : float
        Dropout probability before the bottleneck and in the decoder (enables MC-dropout).
    upsampling : {"bilinear", "nearest"}
    reduce_upsampled : bool
        A 1×1 convolution halves the channels coming up from the coarser level
        before they are concatenated with the skip features (as in AtomAI's
        U-Net). It is applied before the upsampling, which is exact (both are
        linear per pixel / per channel) and 4× cheaper.
    """

    n_classes: int = 2
    in_channels: int = 1
    filters: int = 8
    depth: int = 3
    convs_per_level: list = field(default_factory=lambda: [1, 2, 2])
    dilations: list = field(default_factory=lambda: [2, 4, 6])
    pyramid: str = "parallel"
    batchnorm: bool = True
    dropout: float = 0.0
    upsampling: str = "bilinear"
    reduce_upsampled: bool = False

    def __post_init__(self) -> None:
        if int(self.n_classes) < 2:
            raise ValueError(f"n_classes must be >= 2 (background + one class), got {self.n_classes}")
        if int(self.depth) < 1 or int(self.filters) < 1:
            raise ValueError("depth and filters must be positive integers")
        self.convs_per_level = [int(c) for c in self.convs_per_level]
        if len(self.convs_per_level) != int(self.depth) or min(self.convs_per_level) < 1:
            raise ValueError(
                f"convs_per_level needs {self.depth} positive entries (one per level), got {self.convs_per_level}"
            )
        self.dilations = [int(d) for d in self.dilations]
        if not self.dilations or min(self.dilations) < 1:
            raise ValueError(f"dilations must be positive integers, got {self.dilations}")
        if self.pyramid not in ("parallel", "cascaded"):
            raise ValueError(f"pyramid must be 'parallel' or 'cascaded', got {self.pyramid!r}")
        if self.upsampling not in ("bilinear", "nearest"):
            raise ValueError(f"upsampling must be 'bilinear' or 'nearest', got {self.upsampling!r}")
        if not 0.0 <= float(self.dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        # bounds that keep a hostile model.json from allocating gigabytes before its weights are compared
        if (int(self.filters) * 2 ** int(self.depth) > 8192 or int(self.depth) > 8 or int(self.n_classes) > 256
                or int(self.in_channels) > 16 or max(self.convs_per_level) > 8 or len(self.dilations) > 8
                or max(self.dilations) > 64):
            raise ValueError(f"U-Net too large to build (filters {self.filters}, depth {self.depth}, classes "
                             f"{self.n_classes}): at most 8192 channels at the bottom, depth 8, 256 classes")

    @property
    def multiple(self) -> int:
        """Frame sizes must be a multiple of this (pixels)."""
        return 2 ** int(self.depth)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "UNetConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown U-Net settings {sorted(unknown)}; known: {sorted(names)}")
        return cls(**d)


def _conv(cin: int, cout: int, batchnorm: bool, dilation: int = 1) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, 3, padding=dilation, dilation=dilation, bias=not batchnorm)
    ]
    if batchnorm:
        layers.append(nn.BatchNorm2d(cout))
    layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class ConvBlock(nn.Sequential):
    """``n`` 3×3 convolutions (+ BatchNorm) + ReLU."""

    def __init__(self, cin: int, cout: int, n: int, batchnorm: bool):
        super().__init__(*[_conv(cin if i == 0 else cout, cout, batchnorm) for i in range(n)])


class DilatedPyramid(nn.Module):
    """Sum of dilated 3×3 convolutions (parallel or cascaded)."""

    def __init__(self, cin: int, cout: int, dilations: list, batchnorm: bool, cascaded: bool):
        super().__init__()
        self.cascaded = cascaded
        self.branches = nn.ModuleList(
            _conv(cout if (cascaded and i > 0) else cin, cout, batchnorm, d) for i, d in enumerate(dilations)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        total = None
        for branch in self.branches:
            y = branch(x)
            total = y if total is None else total + y
            if self.cascaded:
                x = y
        return total


class UNet(nn.Module):
    """U-Net; ``forward`` maps ``(B, in_channels, H, W)`` to logits ``(B, n_classes, H, W)``.

    ``H`` and ``W`` must be multiples of ``config.multiple``.
    """

    def __init__(self, config: UNetConfig | None = None):
        super().__init__()
        self.config = config = config or UNetConfig()
        f, bn = int(config.filters), bool(config.batchnorm)
        widths = [f * 2**i for i in range(config.depth)]
        self.down = nn.ModuleList()
        cin = config.in_channels
        for w, n in zip(widths, config.convs_per_level):
            self.down.append(ConvBlock(cin, w, n, bn))
            cin = w
        self.bottleneck = DilatedPyramid(cin, 2 * cin, config.dilations, bn, config.pyramid == "cascaded")
        self.up = nn.ModuleList()
        self.reduce = nn.ModuleList()
        cin = 2 * cin
        for w, n in zip(reversed(widths), reversed(config.convs_per_level)):
            if config.reduce_upsampled:
                self.reduce.append(nn.Conv2d(cin, w, 1))
                cin = w
            self.up.append(ConvBlock(cin + w, w, n, bn))
            cin = w
        self.drop = nn.Dropout2d(config.dropout) if config.dropout > 0 else nn.Identity()
        self.head = nn.Conv2d(cin, config.n_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        x = self.bottleneck(self.drop(x))
        mode = self.config.upsampling
        for i, (block, skip) in enumerate(zip(self.up, reversed(skips))):
            if self.config.reduce_upsampled:
                x = self.reduce[i](x)
            x = F.interpolate(x, size=skip.shape[-2:], mode=mode, **({"align_corners": False} if mode == "bilinear" else {}))
            x = block(self.drop(torch.cat([x, skip], dim=1)))
        return self.head(x)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def atomai_equivalent_config(n_classes: int = 2) -> UNetConfig:
    """The size of AtomAI's default segmentation U-Net (16 filters, levels 1-2-2, 3 cascaded dilated convs,
    1×1 channel reduction of the upsampled features).

    Used only to compare inference speed at equal network size (see ``benchmark.py``).
    """
    return UNetConfig(
        n_classes=n_classes, filters=16, depth=3, convs_per_level=[1, 2, 2], dilations=[2, 4, 6], pyramid="cascaded",
        reduce_upsampled=True,
    )
