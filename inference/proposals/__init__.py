"""Swappable importance proposals behind one protocol (DESIGN.md §3)."""

from inference.proposals.base import Proposal
from inference.proposals.exact import ExactProposal
from inference.proposals.gaussian import DiagonalGaussian, Gaussian
from inference.proposals.mixture import AnchorMixture, DefensiveMixture, GaussianMixture
from inference.proposals.policy import TabularExact, TabularPolicy
from inference.proposals.registry import PROPOSALS, TRAJECTORY_PROPOSALS, make_proposal, proposal_names

__all__ = [
    "PROPOSALS",
    "TRAJECTORY_PROPOSALS",
    "AnchorMixture",
    "DefensiveMixture",
    "DiagonalGaussian",
    "ExactProposal",
    "Gaussian",
    "GaussianMixture",
    "Proposal",
    "TabularExact",
    "TabularPolicy",
    "make_proposal",
    "proposal_names",
]
