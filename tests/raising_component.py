"""A pipeline component that raises on texts containing "boom" (shipped in bundles by code capture)."""
from spacy.language import Language


@Language.component("nimbus_raises_on_boom")
def raises_on_boom(doc):
    if "boom" in doc.text:
        raise RuntimeError("the component broke on this doc")
    return doc
