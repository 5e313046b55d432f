"""Unit tests: pure functions of the gateway, no processes or sockets."""
