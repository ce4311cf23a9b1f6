"""Media Vault: archive the media of social posts into your own S3 bucket."""

__version__ = "0.1.0"
