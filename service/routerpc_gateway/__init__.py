"""routerpc gateway: typed gRPC requests in, OpenRouter HTTP calls out."""

__version__ = "0.1.0"
