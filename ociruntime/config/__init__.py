"""Loading, validating and modelling a bundle's config.json."""
