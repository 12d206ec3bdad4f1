"""Pickup routes for waste crews: which bins, in which order, by which truck."""
