"""Batches: translating a collection of poems as one batch, and what comes out of it."""
