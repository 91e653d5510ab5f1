"""kinsta-scheduler: scheduled maintenance for WordPress sites on Kinsta, with a run history."""

__version__ = "0.1.0"
