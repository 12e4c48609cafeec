"""The tube-mask generator of pre-training (data side, pure numpy; paper Sec. 3.1.2).

A tube mask hides the same spatial positions in every temporal slice of the token grid, so the
visible tokens form a (t, N_vis) grid in time-major order. The model side (indices, gathering,
checking, the count from a ratio under torch.compile) is ``models.masking``; a test keeps the two
counts equal.
"""
from typing import Optional, Sequence, Union

import numpy as np

__all__ = ['masked_positions', 'tube_mask', 'TubeMaskGenerator']


def masked_positions(num_spatial: int, mask_ratio: float) -> int:
    """Masked spatial positions per temporal slice: floor(mask_ratio * h*w).

    The small epsilon keeps e.g. 0.9 * 100 = 89.99999 from rounding down to 89.
    """
    return int(np.floor(mask_ratio * num_spatial + 1e-6))


def tube_mask(grid: Sequence[int], mask_ratio: float,
              generator: Optional[Union[np.random.Generator, int]] = None) -> np.ndarray:
    """Random tube mask over a (t, h, w) token grid -> bool array (t*h*w,), True = masked.

    floor(mask_ratio * h * w) spatial positions are drawn without replacement and masked in every
    temporal slice. ``generator``: a numpy Generator, an int seed, or None (fresh entropy).
    """
    t, h, w = (int(g) for g in grid)
    if not 0.0 <= mask_ratio < 1.0:
        raise ValueError(f'mask_ratio must be in [0, 1), got {mask_ratio}')
    rng = generator if isinstance(generator, np.random.Generator) else np.random.default_rng(generator)
    num_spatial = h * w
    num_masked = masked_positions(num_spatial, mask_ratio)
    spatial = np.zeros(num_spatial, dtype=bool)
    spatial[rng.choice(num_spatial, size=num_masked, replace=False)] = True
    return np.tile(spatial, t)


class TubeMaskGenerator:
    """Callable producing tube masks for a fixed grid: ``TubeMaskGenerator((8, 10, 10), 0.9)() -> (800,) bool``.

    ``seed`` (optional) makes the sequence of masks reproducible; without it every call draws fresh OS
    entropy, so forked data-loader workers do not repeat each other's masks. A generator or int seed
    may also be passed per call.
    """

    def __init__(self, grid: Sequence[int], mask_ratio: float, seed: Optional[int] = None):
        self.grid = tuple(int(g) for g in grid)
        self.mask_ratio = float(mask_ratio)
        t, h, w = self.grid
        self.num_patches = t * h * w
        self.num_masked_per_slice = masked_positions(h * w, self.mask_ratio)
        self.num_masked = t * self.num_masked_per_slice
        self._rng = None if seed is None else np.random.default_rng(seed)

    def __call__(self, generator: Optional[Union[np.random.Generator, int]] = None) -> np.ndarray:
        return tube_mask(self.grid, self.mask_ratio, self._rng if generator is None else generator)

    def __repr__(self) -> str:
        return (f'TubeMaskGenerator(grid={self.grid}, mask_ratio={self.mask_ratio}, '
                f'masked={self.num_masked}/{self.num_patches})')
