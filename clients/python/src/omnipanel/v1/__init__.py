"""The agent's gRPC API (`omnipanel.v1`), generated from proto/ by clients/python/scripts/gen.py: do not edit."""
