"""The JSON Schemas pyrunc validates against (installed as ociruntime.schemas)."""
