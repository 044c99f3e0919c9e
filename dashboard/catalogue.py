"""The shop page's furniture: a handful of products with their prices as exact strings."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Product:
    sku: str
    name: str
    price: str  # as the orders API takes it: a decimal string, two places
    blurb: str


CATALOGUE = (
    Product("oak-chair", "Oak chair", "89.90", "Solid oak, oiled finish. Stacks four high."),
    Product("dining-table", "Dining table", "449.00", "Seats six; one extension leaf."),
    Product("reading-lamp", "Reading lamp", "39.50", "Brass arm, linen shade, warm bulb."),
    Product("bookshelf", "Bookshelf", "129.00", "Five shelves of knot-free pine."),
    Product("wool-rug", "Wool rug", "210.00", "160 × 230 cm, hand-tufted, undyed."),
    Product("sofa", "Two-seat sofa", "799.00", "Linen cover, feather cushions."),
)
