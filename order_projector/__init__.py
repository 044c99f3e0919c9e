"""order_projector: the order topics folded into the order store (``orderflow.store``), its only writer."""
