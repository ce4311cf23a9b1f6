"""The worker pipeline: browser, extraction, download, upload.

The only package that imports Playwright; zip functions (API, recovery) never load it.
"""
