"""Media Vault's local stack: development-only code that runs the handlers on one machine."""
