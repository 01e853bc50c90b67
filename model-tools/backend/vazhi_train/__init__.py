"""The training backend that `model-tools train` launches and supervises (issue 8).

It never renders templates or tokenizes: `model-tools prepare-data` hands it token sequences
with their labels. It reports everything as JSON lines on stdout.
"""
