"""Memory bank: exact 1-NN squared L2 search (faiss / tiled torch), bank fraction, greedy coreset."""

from autopatch.bank.coreset import greedy_coreset
from autopatch.bank.memory_bank import MemoryBank

__all__ = ["MemoryBank", "greedy_coreset"]
