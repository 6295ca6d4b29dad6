"""Why a verdict has its label: the values of ``verdicts.reason``, and so of the ``reason`` filter that the
command line and the HTTP API accept. Free of SQLAlchemy, so building the CLI's options loads no database code.

    classifier     a classifier's score decided the label
    provenance     proof in the file (C2PA, generator metadata, ...) decided it, whatever the score
    out_of_domain  no active classifier covers the image: the label is ``uncertain`` and there is no score
"""

CLASSIFIER = "classifier"
PROVENANCE = "provenance"
OUT_OF_DOMAIN = "out_of_domain"
VERDICT_REASONS = (CLASSIFIER, PROVENANCE, OUT_OF_DOMAIN)
