"""Spec conformance runners (runtime-tools validation suite driven against pyrunc and runc)."""
