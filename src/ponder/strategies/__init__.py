"""Test-time scaling strategies, each against the generator and verifier protocols and the meter.

Pick one by name with `make_strategy` (the names are `STRATEGIES`' keys), or
build one from its class and parameter object. docs/strategies.md says what
the budget N means for each.
"""

from ponder.strategies.adaptive import Adaptive, AdaptiveParams, mode_error
from ponder.strategies.base import BaseStrategy, Choice, Run, Strategy
from ponder.strategies.beam_search import BeamSearch, BeamSearchParams
from ponder.strategies.best_of_majority import BestOfMajority, BestOfMajorityParams
from ponder.strategies.best_of_n import BestOfN, BestOfNParams
from ponder.strategies.budget_forcing import BudgetForcing, BudgetForcingParams
from ponder.strategies.dvts import DVTS, DVTSParams
from ponder.strategies.first_finish import FirstFinish, FirstFinishParams
from ponder.strategies.lookahead import Lookahead, LookaheadParams
from ponder.strategies.majority import Majority, MajorityParams
from ponder.strategies.mcts import MCTS, MCTSParams
from ponder.strategies.particle_filter import ParticleFilter, ParticleFilterParams
from ponder.strategies.registry import STRATEGIES, make_strategy, parse_pairs, parse_params
from ponder.strategies.revision import Revision, RevisionParams
from ponder.strategies.self_certainty import SelfCertainty, SelfCertaintyParams
from ponder.strategies.single import Single, SingleParams
from ponder.strategies.weighted_majority import WeightedMajority, WeightedMajorityParams

__all__ = [
    "DVTS",
    "MCTS",
    "STRATEGIES",
    "Adaptive",
    "AdaptiveParams",
    "BaseStrategy",
    "BeamSearch",
    "BeamSearchParams",
    "BestOfMajority",
    "BestOfMajorityParams",
    "BestOfN",
    "BestOfNParams",
    "BudgetForcing",
    "BudgetForcingParams",
    "Choice",
    "DVTSParams",
    "FirstFinish",
    "FirstFinishParams",
    "Lookahead",
    "LookaheadParams",
    "MCTSParams",
    "Majority",
    "MajorityParams",
    "ParticleFilter",
    "ParticleFilterParams",
    "Revision",
    "RevisionParams",
    "Run",
    "SelfCertainty",
    "SelfCertaintyParams",
    "Single",
    "SingleParams",
    "Strategy",
    "WeightedMajority",
    "WeightedMajorityParams",
    "make_strategy",
    "mode_error",
    "parse_pairs",
    "parse_params",
]
