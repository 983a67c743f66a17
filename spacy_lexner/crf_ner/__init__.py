"""``crf_ner``: a linear-chain CRF NER head over any token-vector layer."""
