"""squall: a self-hosted serverless platform that runs AWS Lambda-style functions."""

__version__ = "0.1.0"
