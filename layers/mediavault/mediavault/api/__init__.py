"""The HTTP API's contract: request and response models, and the error -> HTTP mapping."""
