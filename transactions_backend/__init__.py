"""Checks each placed order against payment and business rules and publishes the verdict."""
