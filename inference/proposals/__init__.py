"""Swappable importance proposals behind one protocol (DESIGN.md §3)."""

from inference.proposals.base import Proposal
from inference.proposals.conditional import ConditionalFlow, DefensiveConditional
from inference.proposals.exact import ExactProposal
from inference.proposals.flow import Flow
from inference.proposals.gaussian import DiagonalGaussian, Gaussian
from inference.proposals.mixture import AnchorMixture, DefensiveMixture, GaussianMixture
from inference.proposals.policy import TabularExact, TabularPolicy

__all__ = [
    "AnchorMixture",
    "ConditionalFlow",
    "DefensiveConditional",
    "DefensiveMixture",
    "DiagonalGaussian",
    "ExactProposal",
    "Flow",
    "Gaussian",
    "GaussianMixture",
    "Proposal",
    "TabularExact",
    "TabularPolicy",
]
