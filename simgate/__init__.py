"""simgate: a pytest gate for learned robot control policies in MuJoCo."""

__version__ = "0.1.0"
