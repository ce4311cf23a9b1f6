"""URL normalisation and the egress policy: which addresses Media Vault may fetch."""
