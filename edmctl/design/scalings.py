"""Signal scalings s(t) with s'(t) (EDM Table 1, row "Scaling"). Each takes the schedule it scales."""

import torch

from edmctl.design.schedules import as_f64


class VPScaling:
    """s(t) = 1/sqrt(1 + σ(t)²); s'(t) = −σ(t)σ'(t)s(t)³ (Table 1, VP column)."""

    def __init__(self, schedule):
        self.schedule = schedule

    def s(self, t):
        return 1 / (1 + self.schedule.sigma(t) ** 2).sqrt()

    def s_deriv(self, t):
        return -self.schedule.sigma(t) * self.schedule.sigma_deriv(t) * self.s(t) ** 3


class NoScaling:
    """s(t) = 1 (Table 1, VE, iDDPM and EDM columns)."""

    def __init__(self, schedule):
        self.schedule = schedule

    def s(self, t):
        return torch.ones_like(as_f64(t))

    def s_deriv(self, t):
        return torch.zeros_like(as_f64(t))


SCALINGS = {"vp": VPScaling, "none": NoScaling}
