"""Swappable importance proposals behind one protocol."""

from maxent_gan.inference.proposals.base import Proposal
from maxent_gan.inference.proposals.conditional import ConditionalFlow, DefensiveConditional
from maxent_gan.inference.proposals.exact import ExactProposal
from maxent_gan.inference.proposals.flow import Flow
from maxent_gan.inference.proposals.gaussian import DiagonalGaussian, Gaussian
from maxent_gan.inference.proposals.mixture import AnchorMixture, DefensiveMixture, GaussianMixture
from maxent_gan.inference.proposals.policy import TabularExact, TabularPolicy

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
