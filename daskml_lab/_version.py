"""Version of daskml_lab (single source, read by the build backend)."""

__version__ = "0.1.0"
