"""Swappable importance proposals behind one protocol (DESIGN.md §3)."""

from inference.proposals.base import Proposal
from inference.proposals.exact import ExactProposal
from inference.proposals.gaussian import DiagonalGaussian, Gaussian
from inference.proposals.mixture import DefensiveMixture, GaussianMixture
from inference.proposals.registry import PROPOSALS, make_proposal

__all__ = [
    "PROPOSALS",
    "DefensiveMixture",
    "DiagonalGaussian",
    "ExactProposal",
    "Gaussian",
    "GaussianMixture",
    "Proposal",
    "make_proposal",
]
