"""Built-in adapters, one package each (found through the lapor_gateway.adapters entry points)."""
