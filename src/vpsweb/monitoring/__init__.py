"""Operating vpsweb: Flower with authentication."""
