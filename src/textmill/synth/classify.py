"""The one text classifier synth uses everywhere: TF-IDF features and logistic regression.

It checks label consistency (filters), measures utility (train on real and/or synthetic data, test
on held-out real data) and fidelity (tell real from synthetic). English uses word 1-2-grams, Chinese
character 1-3-grams (no segmenter needed). Classes are weighted by inverse frequency, so a rare
label is not simply outvoted.
"""

from __future__ import annotations

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline


def text_classifier(chinese: bool, seed: int = 0) -> Pipeline:
    features = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True) if chinese \
        else TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    return make_pipeline(features, LogisticRegression(max_iter=2000, class_weight="balanced", random_state=seed))
