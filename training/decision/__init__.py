"""Stage 3 of PixOOD: the Neyman-Pearson decision strategy (docs/method.md §5), exportable.

Per class c a patch is mapped to z_c = (logit_c, sim_c), sim = 1 / (1 + 0.5 d_c). Two Gaussians
model z_c: the class model N(m_c, S_c) fitted on training patches of class c and a fixed broad
"OOD guess" N(0, S_ood). The score S_c = F_c(r_c) is the fraction of the class model's mass (on a
2000 x 2000 grid) whose likelihood ratio r = N_c / N_ood is lower than the patch's: a p-value-like
number in [0, 1], small = unlike class c. Modules: gaussian (float64 helpers), rules (published /
monotone), knots (the LR -> mass table), lookup (its bucketed evaluation), strategy (the
exportable module), fit (fitting on training patches).
"""

from .fit import fit_decision
from .gaussian import (
    DIST_TO_SIM_SLOPE,
    MAX_ABS_CORRELATION,
    distance_to_similarity,
    gaussian_logpdf,
    regularize_covariance,
)
from .knots import knots_from_interp, ratio_mass_knots, thin_knots
from .lookup import LOOKUP_TOLERANCE
from .rules import RULES, monotone_box
from .strategy import DEFAULT_EPSILON, GRID_MARGIN, GRID_SIZE, DecisionStrategy

__all__ = [
    "DEFAULT_EPSILON",
    "DIST_TO_SIM_SLOPE",
    "GRID_MARGIN",
    "GRID_SIZE",
    "LOOKUP_TOLERANCE",
    "MAX_ABS_CORRELATION",
    "RULES",
    "DecisionStrategy",
    "distance_to_similarity",
    "fit_decision",
    "gaussian_logpdf",
    "knots_from_interp",
    "monotone_box",
    "ratio_mass_knots",
    "regularize_covariance",
    "thin_knots",
]
