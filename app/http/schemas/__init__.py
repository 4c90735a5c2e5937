"""Marshmallow schemas, one module per resource. Instances are module-level and reused."""
