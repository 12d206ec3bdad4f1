"""Great-circle distances (numpy) and GeoJSON for routes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

# Mean Earth radius (IUGG); the spherical error is far below the road detour we model.
EARTH_RADIUS_M = 6_371_008.8

FloatArray = npt.NDArray[np.float64]


def haversine_matrix(lat: Sequence[float], lon: Sequence[float]) -> FloatArray:
    """Great-circle distances in metres between every pair of points."""
    phi = np.radians(np.asarray(lat, np.float64))
    lam = np.radians(np.asarray(lon, np.float64))
    dphi = phi[:, None] - phi[None, :]
    dlam = lam[:, None] - lam[None, :]
    a = np.sin(dphi / 2) ** 2 + np.cos(phi)[:, None] * np.cos(phi)[None, :] * np.sin(dlam / 2) ** 2
    distances: FloatArray = 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))
    return distances


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres between two points."""
    return float(haversine_matrix([lat1, lat2], [lon1, lon2])[0, 1])


def route_geojson(
    depot: tuple[float, float],
    stops: Sequence[tuple[float, float, dict[str, Any]]],
    line_properties: dict[str, Any],
    depot_properties: dict[str, Any],
) -> dict[str, Any]:
    """A FeatureCollection: the path depot -> stops -> depot as a LineString (straight
    legs; we have no road geometry), then the depot and each stop as Points.

    Points are (lat, lon); GeoJSON positions are [lon, lat] (RFC 7946).
    """
    path = [[depot[1], depot[0]], *([lon, lat] for lat, lon, _ in stops), [depot[1], depot[0]]]
    features: list[dict[str, Any]] = [
        {
            "type": "Feature",
            "geometry": {"type": "LineString", "coordinates": path},
            "properties": line_properties,
        },
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [depot[1], depot[0]]},
            "properties": depot_properties,
        },
    ]
    for lat, lon, properties in stops:
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [lon, lat]},
                "properties": properties,
            }
        )
    return {"type": "FeatureCollection", "features": features}
