"""Noise that depends on the seed alone (NVlabs/edm `StackedRandomGenerator`).

Each image owns a `torch.Generator` seeded with `seed % 2**32` and draws, in this order:
1. its latent: `randn([C, H, W])` in float32, then float64 (the sampler scales it by σ(t_0)·s(t_0));
2. its class label when the model is conditional: `randint(label_dim)` (one draw, also under `--class`);
3. at every sampler step, one float64 `randn([C, H, W])` for the churn, also where γ_i = 0.
A batch stacks the per-image draws, so image `seed` is the same whatever batch or order it was sampled in.
"""

import torch


class SeedNoise:
    """The per-image generators of one batch; `noise()` is the per-step churn draw `run_sampler` calls."""

    def __init__(self, seeds: list[int], img_shape: tuple[int, int, int], device="cpu"):
        self.generators = [torch.Generator("cpu").manual_seed(int(seed) % 2**32) for seed in seeds]
        self.img_shape = list(img_shape)
        self.device = torch.device(device)

    def _stack(self, draw) -> torch.Tensor:
        return torch.stack([draw(g) for g in self.generators]).to(self.device)

    def latents(self) -> torch.Tensor:
        """Standard-normal latents (N, C, H, W): drawn in float32, returned in float64 (not yet scaled by σ_0)."""
        return self._stack(lambda g: torch.randn(self.img_shape, generator=g)).to(torch.float64)

    def class_labels(self, label_dim: int, class_label: int | None = None) -> torch.Tensor | None:
        """One-hot labels (N, label_dim) from one `randint(label_dim)` per image; `class_label` overrides them
        after the draw, as NVlabs generate.py does, so the later noise is the same either way. None if unconditional."""
        if label_dim == 0:
            return None
        labels = self._stack(lambda g: torch.randint(label_dim, size=[], generator=g))
        if class_label is not None:
            labels = torch.full_like(labels, class_label)
        return torch.nn.functional.one_hot(labels, label_dim).to(torch.float32)

    def __call__(self) -> torch.Tensor:
        """The next per-step churn draw ε_i (N, C, H, W), float64."""
        return self._stack(lambda g: torch.randn(self.img_shape, generator=g, dtype=torch.float64))
