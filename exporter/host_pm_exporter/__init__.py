"""host-pm-exporter: which sleep states a Linux host really supports, for Prometheus."""

__version__ = "0.1.0"
