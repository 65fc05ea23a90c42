"""The code that runs behind an endpoint: on Lambda and in the local target's workers alike.

Everything in this package depends on spaCy and the standard library only, because it is the whole of
what gets shipped to Lambda next to the model bundle.
"""
