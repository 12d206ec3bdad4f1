"""Pickup-route quality and speed: OR-Tools against a nearest-neighbour baseline."""
