"""The order training images are drawn in: a fresh seeded permutation of the dataset every epoch, so the
whole position in the stream is one integer (images drawn so far) and resuming needs nothing else."""

import torch


class IndexStream:
    """Global image indices for step after step: epoch e is `randperm(n)` from a generator seeded with
    (seed, e). `position` counts the indices handed out; setting it resumes the stream exactly there."""

    def __init__(self, length: int, seed: int, position: int = 0):
        if length < 1:
            raise ValueError("cannot draw from an empty dataset")
        self.length, self.seed, self.position = length, seed, position
        self._epoch, self._perm = -1, None

    def _permutation(self, epoch: int) -> torch.Tensor:
        if epoch != self._epoch:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._epoch, self._perm = epoch, torch.randperm(self.length, generator=generator)
        return self._perm

    def take(self, count: int) -> torch.Tensor:
        """The next `count` indices (int64), crossing epoch boundaries as needed."""
        chunks = []
        while count > 0:
            epoch, offset = divmod(self.position, self.length)
            chunk = self._permutation(epoch)[offset : offset + count]
            chunks.append(chunk)
            self.position += len(chunk)
            count -= len(chunk)
        return torch.cat(chunks) if chunks else torch.empty(0, dtype=torch.int64)
